"""What the sample day (segwatch.sample.Day) must cause, shared by the pipeline's e2e test and the replay test."""

from __future__ import annotations

EXPECTED_ALERTS = [
    # A small 4d(2) bank account without its acknowledgment letter (issue #14): shown apart, firing all day.
    ("4d2", "depository_not_acknowledged", "firing"),
    # 30.7 holds euros before the day's EUR rate is in: incomplete figures, then complete.
    ("30.7", "missing_fx", "firing"),
    ("30.7", "missing_fx", "resolved"),
    ("4d2", "under_target", "firing"),
    ("4d2", "deficiency", "firing"),
    ("4d2", "deficiency", "resolved"),
    ("4d2", "under_target", "resolved"),
]
