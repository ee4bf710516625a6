"""Integer cents, as the aggregate holds money: exact both ways, for every amount the schemas accept."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segwatch.core.money import from_cents, to_cents
from services.calculator.fastparse import _cents

amounts = st.integers(min_value=-(10**17) + 1, max_value=10**17 - 1)


@given(amounts)
def test_cents_round_trip_exactly(cents: int) -> None:
    assert to_cents(from_cents(cents)) == cents
    assert from_cents(cents) == Decimal(cents) / 100


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("0", 0),
        ("-0", 0),
        ("0.00", 0),
        ("-0.0", 0),
        ("1", 100),
        ("1.5", 150),
        ("1.50", 150),
        ("-1.05", -105),
        ("-0.5", -50),
        ("-0.05", -5),
        ("123456789012345.99", 12345678901234599),
    ],
)
def test_wire_amounts_become_cents(text: str, cents: int) -> None:
    assert _cents(text) == cents
    assert to_cents(Decimal(text)) == cents


def test_cents_become_two_place_decimals() -> None:
    assert str(from_cents(1234)) == "12.34"
    assert str(from_cents(-5)) == "-0.05"
    assert from_cents(0) == 0
