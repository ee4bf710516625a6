"""Exact money: amounts are Decimal with at most two decimal places (cents). No binary floats."""

from __future__ import annotations

import decimal
from decimal import Decimal, InvalidOperation

from segwatch.errors import InputError

CENT = Decimal("0.01")
# Largest single amount accepted: 10^15 dollars. Sums of millions of such amounts stay far inside the
# 28 significant digits of the default decimal context, so every addition in segwatch is exact.
MAX_AMOUNT = Decimal(10) ** 15
# FX products can need more digits than the default context; this one is wide enough to be exact.
WIDE = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN, traps=[InvalidOperation])


def to_cents(amount: Decimal) -> int:
    """An amount of at most two decimal places (a checked amount) as integer cents, exactly."""
    return int(amount.scaleb(2))


def from_cents(cents: int) -> Decimal:
    """Integer cents as a Decimal amount with two places: 1234 -> Decimal("12.34")."""
    return Decimal(cents).scaleb(-2)


def parse_amount(value: object, field: str) -> Decimal:
    """A money amount from a decimal string, an int or a Decimal; rejects floats, NaN, Infinity, sub-cents."""
    if isinstance(value, bool):
        raise InputError(field, "expected a decimal amount, got a boolean")
    if isinstance(value, float):
        raise InputError(field, "binary floating-point amounts are not exact; send a decimal string or integer")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise InputError(field, f"{value!r} is not a decimal amount") from None
    else:
        raise InputError(field, f"expected a decimal amount, got {type(value).__name__}")
    return check_amount(amount, field)


def check_amount(amount: Decimal, field: str) -> Decimal:
    if not amount.is_finite():
        raise InputError(field, f"{amount} is not a finite amount")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(CENT, context=WIDE):
        raise InputError(field, f"{amount} has fractions of a cent; at most 2 decimal places")
    if abs(amount) >= MAX_AMOUNT:
        raise InputError(field, f"{amount} is out of range (|amount| < 10^15)")
    return amount + 0  # normalises -0 to 0


def parse_rate(value: object, field: str) -> Decimal:
    """An FX rate (US dollars per unit of currency): a positive finite decimal, not a float."""
    if isinstance(value, bool | float):
        raise InputError(field, "send the rate as a decimal string; binary floats are not exact")
    try:
        rate = Decimal(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        raise InputError(field, f"{value!r} is not a decimal rate") from None
    if not rate.is_finite() or rate <= 0:
        raise InputError(field, f"{value} is not a positive finite rate")
    if len(rate.as_tuple().digits) > 20:
        raise InputError(field, f"{value} has more than 20 significant digits")
    return rate


def to_usd(amount: Decimal, rate: Decimal) -> Decimal:
    """Convert exactly, then round half-even to the cent (the only rounding segwatch does)."""
    return WIDE.multiply(amount, rate).quantize(CENT, context=WIDE)


def fmt(amount: Decimal) -> str:
    """The wire form of an amount: a plain decimal string with exactly two places."""
    return f"{amount.quantize(CENT, context=WIDE):f}"


def fmt_form(amount: Decimal) -> str:
    """As printed on the form: thousands separators, whole dollars unless there are cents."""
    q = amount.quantize(CENT, context=WIDE)
    return f"{q:,.0f}" if q == q.to_integral_value() else f"{q:,.2f}"
