"""Strict numbers on the wire: ASCII digits only, a real integer schema_version, an oversized number named by
its field; and the calculator's fast reading of balances agrees with pydantic on all of it."""

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.events import EVENT_ADAPTER, AccountBalance, DepositoryBalance, parse_event_json
from segwatch.core.ledger import held_of
from services.calculator.fastparse import read_balance
from services.ingest.records import Bad, parse_event

ACCOUNT = {
    "schema_version": 1,
    "event_id": "e1",
    "source": "ledger",
    "as_of": "2026-11-20T21:00:00Z",
    "type": "account_balance",
    "segment": "4d2",
    "account": "A1",
    "currency": "USD",
    "cash": "1.50",
    "securities": "0",
    "unrealized": "-3.00",
    "long_options": "0",
    "short_options": "-0.10",
}
DEPOSITORY = {
    "schema_version": 1,
    "event_id": "d1",
    "source": "bank",
    "as_of": "2026-11-20T21:00:00Z",
    "type": "depository_balance",
    "segment": "4d2",
    "depository": "B1",
    "line": "7070",
    "currency": "USD",
    "location": "us",
    "amount": "100.00",
}
FX = {
    "event_id": "f1",
    "source": "treasury",
    "as_of": "2026-11-20T21:00:00Z",
    "type": "fx_rate",
    "currency": "EUR",
    "usd_per_unit": "1.08",
}


def bad(event: dict[str, Any], raw: bytes | None = None) -> Bad:
    result = parse_event(1, raw if raw is not None else json.dumps(event).encode())
    assert isinstance(result, Bad), result
    return result


@pytest.mark.parametrize("text", ["١٢٣", "۱۲۳", "१२३", "１２３", "𝟏𝟐𝟑", "12\u00a0", "\u20071", "1_000", "1.0_0"])
def test_an_amount_in_other_digits_or_with_separators_is_refused_naming_the_field(text: str) -> None:
    for event, field in ((ACCOUNT, "cash"), (DEPOSITORY, "amount"), (FX, "usd_per_unit")):
        result = bad({**event, field: text})
        assert (result.field, result.malformed) == (field, False)
        assert "ASCII digits" in result.reason or "separators" in result.reason


@pytest.mark.parametrize("version", [True, False, 1.0, "1", 2, None, [1]])
def test_schema_version_is_the_integer_1_only(version: object) -> None:
    result = bad({**ACCOUNT, "schema_version": version})
    assert result.field == "schema_version"


def test_schema_version_1_and_plain_amounts_still_parse() -> None:
    for event in (ACCOUNT, DEPOSITORY, FX, {**ACCOUNT, "cash": 12.5, "securities": -3}):
        assert not isinstance(parse_event(1, json.dumps(event).encode()), Bad)


@pytest.mark.parametrize("digits", [4301, 5000, 100_000])
def test_an_oversized_json_number_is_reported_with_its_field(digits: int) -> None:
    for event, field in ((ACCOUNT, "unrealized"), (DEPOSITORY, "amount")):
        raw = (
            json.dumps({**event, field: 0})
            .encode()
            .replace(f'"{field}": 0'.encode(), f'"{field}": {"9" * digits}.5'.encode())
        )
        result = bad(event, raw)
        assert result.field == field and not result.malformed
        assert f"{digits + 2} characters" in result.reason


def test_an_oversized_number_in_a_nested_value_names_its_path() -> None:
    raw = b'{"type": "account_balance", "cash": {"a": [1, ' + b"7" * 5000 + b"]}}"
    assert bad({}, raw).field == "cash.a.1"


def test_json_that_is_not_json_stays_malformed() -> None:
    result = bad({}, b'{"cash": ' + b"9" * 5000 + b",")
    assert (result.field, result.malformed) == ("(record)", True)


# -- the calculator's fast path agrees ----------------------------------------------------------------------

NUMBERS = [
    "0",
    "1",
    "1.5",
    "1.50",
    "-0.10",
    "١٢٣",
    "١.٥٠",
    "１",
    "1_0",
    "\u00a01",
    "1\u2007",
    "NaN",
    "1e2",
    "+1",
    True,
    False,
    1,
    1.0,
    1.5,
    "9" * 20,
    10**18,
    None,
]
VERSIONS = [1, True, 1.0, "1", 2, None]


@st.composite
def balances(draw: st.DrawFn) -> bytes:
    event = dict(draw(st.sampled_from([ACCOUNT, DEPOSITORY])))
    amounts = [k for k in event if k in ("cash", "securities", "unrealized", "long_options", "short_options", "amount")]
    for _ in range(draw(st.integers(0, 2))):
        event[draw(st.sampled_from(amounts))] = draw(st.sampled_from(NUMBERS))
    if draw(st.booleans()):
        event["schema_version"] = draw(st.sampled_from(VERSIONS))
    raw = json.dumps(event, separators=(",", ":"), ensure_ascii=draw(st.booleans())).encode()  # the canonical form
    if draw(st.integers(0, 4)) == 0:  # an oversized JSON number where an amount was
        field = draw(st.sampled_from(amounts))
        raw = orjson.dumps({**event, field: 0}).replace(f'"{field}":0'.encode(), f'"{field}":{"9" * 4400}'.encode())
    return raw


def outcome(read: Any) -> Any:
    try:
        result = read()
    except ValidationError as exc:
        return ("rejected", [(e["type"], e["loc"]) for e in exc.errors()])
    if isinstance(result, tuple):
        key, held_key, held = result
        return ("balance", key, held_key, held.as_of, held.currency, held.codes, [str(a) for a in held.amounts])
    return ("other", result)


def reference(raw: bytes) -> Any:
    event = parse_event_json(raw)
    assert isinstance(event, AccountBalance | DepositoryBalance)
    return (event.key, *held_of(event))


@settings(max_examples=300, derandomize=True)
@given(balances())
def test_the_calculators_fast_reading_agrees_with_pydantic_on_numbers(raw: bytes) -> None:
    assert outcome(lambda: read_balance(raw)) == outcome(lambda: reference(raw))


# 16- and 17-digit amounts that a binary float cannot hold: pydantic's JSON parser would read them as floats.
EXACT = ["90071992547409.93", "12345678901234.57", "999999999999999.99", "-444221938123456.01", "0.07"]


@pytest.mark.parametrize("text", EXACT)
def test_a_json_number_amount_is_read_exactly_from_its_text(text: str) -> None:
    raw = json.dumps({**ACCOUNT, "cash": "@"}).replace('"@"', text).encode()
    event = parse_event_json(raw)
    assert isinstance(event, AccountBalance) and str(event.cash) == text
    parsed = parse_event(1, raw)  # ingest
    assert not isinstance(parsed, Bad) and isinstance(parsed.event, AccountBalance) and str(parsed.event.cash) == text
    read = read_balance(raw)  # the calculator
    assert isinstance(read, tuple)
    assert read[-1].amounts[0] == int(text.replace(".", ""))
    depository = json.dumps({**DEPOSITORY, "amount": "@"}).replace('"@"', text.lstrip("-")).encode()
    event = parse_event_json(depository)
    assert isinstance(event, DepositoryBalance) and str(event.amount) == text.lstrip("-")


def test_a_json_number_with_too_many_decimals_is_refused_not_rounded() -> None:
    raw = json.dumps({**ACCOUNT, "cash": "@"}).replace('"@"', "12345678901234.561").encode()
    result = bad(ACCOUNT, raw)
    assert result.field == "cash" and "2 decimal places" in result.reason


def test_an_amount_never_comes_from_a_python_float() -> None:
    with pytest.raises(ValidationError) as exc:
        EVENT_ADAPTER.validate_python({**ACCOUNT, "cash": 1.5})
    [err] = exc.value.errors()
    assert err["loc"][-1] == "cash" and err["type"] == "inexact_number"
