"""Field types shared by every schema: exact money, currency codes, segment ids, line codes."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

from schemas.currencies import ISO_4217

SegmentId = Literal["4d2", "30.7", "4df"]

# Exact money: a decimal string (preferred) or JSON number, at most 2 decimal places, |x| < 10^15.
# JSON numbers are parsed from their text, never through a binary float.
Money = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=17, decimal_places=2)]
NonNegativeMoney = Annotated[Money, Field(ge=0)]
NonPositiveMoney = Annotated[Money, Field(le=0)]
# Aggregates can exceed one amount's range; they are sums of Money, so still exact cents.
Total = Annotated[Decimal, Field(allow_inf_nan=False, decimal_places=2)]
Rate = Annotated[Decimal, Field(allow_inf_nan=False, gt=0, max_digits=20, decimal_places=12)]


def _currency(code: str) -> str:
    if code not in ISO_4217:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return code


Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_currency)]
LineCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\s|]+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]

# A balance is a fact as of a time, and the newest as-of wins: a date far in the future would pin its key for
# ever, one before 2000 is a typo. Both are refused, naming the field.
EARLIEST_AS_OF = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW_VAR = "SEGWATCH_MAX_CLOCK_SKEW_SECONDS"
DEFAULT_MAX_CLOCK_SKEW = timedelta(minutes=5)


@cache
def max_clock_skew() -> timedelta:
    """How far in the future an as-of may be (clocks differ a little): SEGWATCH_MAX_CLOCK_SKEW_SECONDS, 300."""
    raw = os.environ.get(MAX_CLOCK_SKEW_VAR, "").strip()
    if not raw:
        return DEFAULT_MAX_CLOCK_SKEW
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{MAX_CLOCK_SKEW_VAR} must be a number of seconds, got {raw!r}") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"{MAX_CLOCK_SKEW_VAR} must be a finite number of seconds >= 0, got {raw!r}")
    return timedelta(seconds=seconds)


def as_of_error(at: datetime, now: datetime | None = None) -> str | None:
    """Why `at` (timezone-aware) is not a plausible as-of, or None."""
    if at < EARLIEST_AS_OF:
        return f"{at.isoformat()} is before {EARLIEST_AS_OF.date().isoformat()}"
    skew = max_clock_skew()
    if at > (now or datetime.now(UTC)) + skew:
        return f"{at.isoformat()} is in the future (more than {int(skew.total_seconds())} s ahead of this clock)"
    return None


def _plausible(at: datetime) -> datetime:
    reason = as_of_error(at)
    if reason is not None:
        raise ValueError(reason)
    return at


Timestamp = Annotated[AwareDatetime, AfterValidator(_plausible)]
