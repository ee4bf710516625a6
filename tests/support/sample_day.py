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

# The business day (issue #12): the ledger's end of day closes it (INITIAL of every segment, the 4d(2) one a
# thousand dollars short: the clearing-house account's provisional balance), then the account's final balance
# arrives late and amends 4d(2) to the filing (version 2). The sign-off and filing after it raise no alert.
EXPECTED_STATEMENTS = [
    ("4d2", "INITIAL", 1),
    ("30.7", "INITIAL", 1),
    ("4df", "INITIAL", 1),
    ("4d2", "AMENDMENT", 2),
]
