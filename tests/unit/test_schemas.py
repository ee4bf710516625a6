"""Wire schemas: validation names the field and the reason; exported JSON Schemas match the models."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from schemas import EVENT_ADAPTER, AccountBalance, Figures, input_errors
from schemas.events import parse_event_json
from schemas.export import HERE, file_name, models, render

GOOD = {
    "type": "account_balance",
    "event_id": "e1",
    "source": "ledger",
    "as_of": "2026-11-20T21:00:00-05:00",
    "segment": "4d2",
    "account": "C-1",
    "currency": "USD",
    "cash": "10.50",
    "securities": "0",
    "unrealized": "-1.25",
    "long_options": "0",
    "short_options": "0",
}


def errors(**changes: object) -> dict[str, str]:
    data = {**GOOD, **changes}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ValidationError) as exc:
        EVENT_ADAPTER.validate_json(json.dumps(data))
    return {e.field: e.reason for e in input_errors(exc.value)}


def test_a_good_event_parses_with_exact_amounts() -> None:
    ev = EVENT_ADAPTER.validate_json(json.dumps(GOOD))
    assert isinstance(ev, AccountBalance)
    assert (ev.cash, ev.unrealized, ev.offset_securities) == (Decimal("10.50"), Decimal("-1.25"), Decimal(0))
    assert ev.key == "acct|4d2|C-1"


def test_json_numbers_are_read_exactly_not_through_floats() -> None:
    for text in ("123456789012345.67", "90071992547409.93"):  # the second is ...94 as a binary float
        ev = parse_event_json(json.dumps(GOOD).replace('"10.50"', text))
        assert ev.cash == Decimal(text)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"cash": "1.001"}, "cash", "no more than 2 decimal places"),
        ({"cash": "Infinity"}, "cash", "finite number"),
        ({"cash": None}, "cash", "required field is missing"),
        ({"segment": "4d9"}, "segment", "Input should be '4d2', '30.7' or '4df'"),
        ({"currency": "XXQ"}, "currency", "not an ISO 4217 currency code"),
        ({"short_options": "5"}, "short_options", "less than or equal to 0"),
        ({"as_of": "2026-11-20T21:00:00"}, "as_of", "timezone"),
        ({"account": "has space"}, "account", "pattern"),
        ({"colour": "red"}, "colour", "unknown field"),
        ({"type": "balance"}, "type", "unknown event type 'balance'"),
    ],
)
def test_bad_events_name_the_field_and_reason(changes: dict[str, object], field: str, reason: str) -> None:
    errs = errors(**changes)
    assert field in errs, errs
    assert reason in errs[field]


def test_depository_line_must_be_a_depository_line_of_its_segment() -> None:
    ev = {
        "type": "depository_balance",
        "event_id": "d",
        "source": "bank",
        "as_of": "2026-11-20T21:00:00Z",
        "segment": "4df",
        "depository": "BANK1",
        "line": "7070",
        "currency": "USD",
        "location": "us",
        "amount": "1",
    }
    with pytest.raises(ValidationError) as exc:
        EVENT_ADAPTER.validate_json(json.dumps(ev))
    [err] = input_errors(exc.value)
    assert err.field == "line"
    assert "not a depository line of segment 4df" in err.reason


def test_figures_serialise_amounts_as_decimal_strings() -> None:
    f = Figures(
        segment="4d2",
        version=1,
        as_of=None,
        computed_at=datetime(2026, 1, 1, tzinfo=UTC),
        lines={"7190": Decimal("-0.01")},
        requirement=Decimal(0),
        funds=Decimal(0),
        excess=Decimal("-0.01"),
        target=Decimal(0),
        excess_over_target=Decimal("-0.01"),
        accounts=0,
        depositories=0,
    )
    assert json.loads(f.model_dump_json())["lines"]["7190"] == "-0.01"


@pytest.mark.parametrize("model", models(), ids=lambda m: m.__name__)
def test_exported_json_schema_matches_the_model(model: type[BaseModel]) -> None:
    path = HERE / file_name(model)
    assert path.exists(), f"{path.name} missing: run `python -m schemas.export`"
    assert path.read_text() == render(model), f"{path.name} drifted: run `python -m schemas.export`"
