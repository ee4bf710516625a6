"""The alerter's clock, and a test clock shifted by SEGWATCH_CLOCK_OFFSET_SECONDS.

The time-based rules (the noon filing deadline, the report of investments, residual interest at 6 pm Eastern)
judge `now`. In an end-to-end test or a rehearsal the alerter can run at another time of day:
SEGWATCH_CLOCK_OFFSET_SECONDS (default 0) is added to the system clock, so the clock still runs (the noon
deadline passes while the test waits) and a restarted alerter goes on where it was. A negative offset
puts it in the past (e.g. the offset to 11:59:50 Chicago of a past business day). Never set it in
production: every alert would carry the shifted time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Final

from segwatch.errors import InputError

CLOCK_OFFSET_ENV: Final = "SEGWATCH_CLOCK_OFFSET_SECONDS"


def utcnow() -> datetime:
    return datetime.now(UTC)


def clock_offset(env: Mapping[str, str] | None = None) -> timedelta:
    env = os.environ if env is None else env
    raw = env.get(CLOCK_OFFSET_ENV, "").strip()
    if not raw:
        return timedelta(0)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise InputError(CLOCK_OFFSET_ENV, f"expected a number of seconds, got {raw!r}") from None
    if not value.is_finite() or abs(value) > 10**10:
        raise InputError(CLOCK_OFFSET_ENV, f"expected a finite number of seconds, got {raw!r}")
    return timedelta(microseconds=int(value * 1_000_000))


def clock_from_env(env: Mapping[str, str] | None = None) -> Callable[[], datetime]:
    """The system clock, shifted by SEGWATCH_CLOCK_OFFSET_SECONDS when it is set."""
    shift = clock_offset(env)
    if not shift:
        return utcnow

    def shifted() -> datetime:
        return datetime.now(UTC) + shift

    return shifted
