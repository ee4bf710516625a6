"""Field types shared by every schema: exact money, currency codes, segment ids, line codes."""

from __future__ import annotations

from decimal import Decimal
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
Timestamp = AwareDatetime
