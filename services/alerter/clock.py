"""The alerter's clock, shifted for tests and rehearsals by SEGWATCH_CLOCK_OFFSET_SECONDS.

The time-based rules (the noon filing deadline, the report of investments, residual interest at 6 pm Eastern)
judge `now`. In an end-to-end test or a rehearsal the alerter can run at another time of day:
SEGWATCH_CLOCK_OFFSET_SECONDS (AlerterConfig.clock_offset, default 0; services/alerter/settings.py) is added to
the clock, so the clock still runs (the noon deadline passes while the test waits) and a restarted alerter goes
on where it was. A negative offset puts it in the past (e.g. the offset to 11:59:50 Chicago of a past business
day). Never set it in production: every alert would carry the shifted time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta


def shifted(clock: Callable[[], datetime], offset_seconds: float) -> Callable[[], datetime]:
    """`clock` with `offset_seconds` added (the clock itself when the offset is 0)."""
    if not offset_seconds:
        return clock
    shift = timedelta(seconds=offset_seconds)

    def shifted_clock() -> datetime:
        return clock() + shift

    return shifted_clock
