"""Field types shared by every schema: exact money, currency codes, segment ids, line codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from schemas.currencies import ISO_4217
from segwatch.environment import EventsPart, load

SegmentId = Literal["4d2", "30.7", "4df"]


# The error a float amount raises: a binary float has already lost the digits of a 16- or 17-digit amount
# (90071992547409.93 reads as ...94), so money never comes from one. JSON text is re-read exactly instead
# (schemas.events.parse_event_json) when a JSON number has a fraction or an exponent.
INEXACT_NUMBER = "inexact_number"


def _plain_digits(value: object) -> object:
    """A decimal string in ASCII only: Python's Decimal() also reads other scripts' digits ("١٢٣" is 123),
    digit separators ("1_000") and Unicode blanks, none of which an amount on the wire may contain. Never a
    float (see INEXACT_NUMBER)."""
    if isinstance(value, float):
        raise PydanticCustomError(
            INEXACT_NUMBER,
            "an amount is never read from a binary float ({value}): send a decimal string",
            {"value": value},
        )
    if isinstance(value, str):
        if not value.isascii():
            bad = next(ch for ch in value if not ch.isascii())
            raise ValueError(f"an amount is written with the ASCII digits 0-9, got {bad!r} (U+{ord(bad):04X})")
        if "_" in value:
            raise ValueError(f"an amount has no digit separators, got {value!r}")
    return value


# Exact money: a decimal string (preferred) or JSON number, at most 2 decimal places, |x| < 10^15.
# Strings in ASCII only (see _plain_digits); JSON numbers are read from their text (parse_event_json), never
# through a float.
# (The check comes after the constraints: pydantic then keeps them on the Decimal, JSON Schema included.)
Money = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=17, decimal_places=2), BeforeValidator(_plain_digits)]
NonNegativeMoney = Annotated[
    Decimal, Field(allow_inf_nan=False, max_digits=17, decimal_places=2, ge=0), BeforeValidator(_plain_digits)
]
NonPositiveMoney = Annotated[
    Decimal, Field(allow_inf_nan=False, max_digits=17, decimal_places=2, le=0), BeforeValidator(_plain_digits)
]
PositiveMoney = Annotated[
    Decimal, Field(allow_inf_nan=False, max_digits=17, decimal_places=2, gt=0), BeforeValidator(_plain_digits)
]
# Aggregates can exceed one amount's range; they are sums of Money, so still exact cents.
Total = Annotated[Decimal, Field(allow_inf_nan=False, decimal_places=2)]
Rate = Annotated[
    Decimal, Field(allow_inf_nan=False, gt=0, max_digits=20, decimal_places=12), BeforeValidator(_plain_digits)
]


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


@cache
def max_clock_skew() -> timedelta:
    """How far in the future an as-of may be (clocks differ a little): SEGWATCH_MAX_CLOCK_SKEW_SECONDS, 300
    (segwatch/environment.py, EventsPart). Read once per process."""
    return timedelta(seconds=load(EventsPart).max_clock_skew)


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
