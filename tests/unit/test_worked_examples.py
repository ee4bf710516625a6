"""Issue #10's worked examples, by name: through the Book, the rules and `segwatch statement from-events`;
and the refusals (a haircut above the securities, implausible as-of dates) naming their field."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas import AccountBalance, DepositoryBalance, EventBase, ManagementTarget
from schemas.errors import first_error
from schemas.events import EVENT_ADAPTER
from segwatch.core.book import Book
from segwatch.core.rules import AlertStates, evaluate, evaluate_all
from services.calculator.combiner import Combiner
from services.calculator.fastparse import read_balance
from services.calculator.partials import PartitionState
from tests.unit.oracle import oracle
from tests.worked_examples import (
    EXCESS,
    FUNDS,
    GROSS,
    MULTI_LINE_DCO_FUNDS,
    NET,
    NET_EQUITY,
    OFFSET,
    REQUIRED,
    SECURITIES_DEBIT_EXPECTED,
    TARGET_LINES,
    missing_jpy_rate,
    multi_line_dco,
    ndjson,
    no_target,
    only_jpy,
    securities_debit,
)

D = Decimal
NOW = datetime(2026, 11, 20, 23, tzinfo=UTC)


def book_of(events: list[EventBase]) -> Book:
    book = Book()
    book.apply_all(events)
    return book


def from_events(tmp_path: Path, events: list[EventBase]) -> dict[str, dict[str, str]]:
    path = tmp_path / "events.ndjson"
    path.write_text(ndjson(events))
    out = subprocess.run(
        [sys.executable, "-m", "segwatch.cli", "statement", "from-events", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, dict[str, str]] = json.loads(out.stdout)
    return result


@pytest.mark.parametrize("sid", ["4d2", "30.7", "4df"])
def test_worked_example_customer_securities_secure_a_debit_once(sid: str, tmp_path: Path) -> None:
    expected = SECURITIES_DEBIT_EXPECTED
    lines = book_of(securities_debit(sid)).statement()[sid]
    got = {
        "net_equity": lines[NET_EQUITY[sid]],
        "gross": lines[GROSS[sid]],
        "offset": lines[OFFSET[sid]],
        "net": lines[NET[sid]],
        "required": lines[REQUIRED[sid]],
        "funds": lines[FUNDS[sid]],
        "excess": lines[EXCESS[sid]],
    }
    assert got == expected
    assert oracle(securities_debit(sid))[sid].lines == lines
    cli = from_events(tmp_path, securities_debit(sid))[sid]
    assert (D(cli[GROSS[sid]]), D(cli[OFFSET[sid]]), D(cli[NET[sid]]), D(cli[REQUIRED[sid]]), D(cli[EXCESS[sid]])) == (
        D(100),
        D(-60),
        D(40),
        D(1020),
        D(60),
    )


def test_worked_example_one_dco_account_on_three_lines(tmp_path: Path) -> None:
    lines = book_of(multi_line_dco()).statement()["4d2"]
    assert (lines["7100"], lines["7120"], lines["7130"], lines["7180"]) == (
        D(500),
        D(300),
        D(-40),
        MULTI_LINE_DCO_FUNDS,
    )
    assert D(from_events(tmp_path, multi_line_dco())["4d2"]["7180"]) == MULTI_LINE_DCO_FUNDS


def test_worked_example_missing_jpy_rate_is_incomplete_and_pages(tmp_path: Path) -> None:
    f = book_of(missing_jpy_rate()).figures("4d2", NOW)
    assert f.incomplete and f.missing_fx == ["JPY"]
    assert f.excess == D(58_000_000)  # the dollars without the yen: not a figure to trust
    assert f.excess_by_currency == {"USD": D(58_000_000), "JPY": D(-9_000_000_000)}
    result = evaluate(AlertStates(), f, now=NOW)
    [missing] = [a for a in result.changes if a.rule == "missing_fx"]
    assert missing.state == "firing" and missing.severity == "critical" and missing.page
    assert "JPY" in missing.summary
    # With the rate, the same book is in deficiency: 100M + ¥9bn x 0.0067 = 160.3M owed, 158M held.
    with_rate = book_of(missing_jpy_rate(jpy_rate="0.0067")).figures("4d2", NOW)
    assert not with_rate.incomplete and with_rate.excess == D(-2_300_000)
    assert D(from_events(tmp_path, missing_jpy_rate())["4d2"]["7190"]) == D(58_000_000)


def test_incomplete_figures_never_resolve_a_deficiency() -> None:
    deficient = book_of(missing_jpy_rate(jpy_rate="0.0067"))
    first = deficient.figures("4d2", NOW)
    # The deficiency fires on complete figures; then the JPY balance arrives in a second currency without a
    # rate (GBP), and the dollars alone would look cured.
    cured_looking = first.model_copy(
        update={"version": first.version + 1, "excess": D(1), "incomplete": True, "missing_fx": ["GBP"]}
    )
    states, alerts = evaluate_all(AlertStates(), [first, cured_looking], now=lambda: NOW)
    assert states.is_firing("4d2", "deficiency")
    assert not [a for a in alerts if a.rule == "deficiency" and a.state == "resolved"]
    complete = first.model_copy(update={"version": first.version + 2, "excess": D(1), "target": D(0)})
    _, later = evaluate_all(states, [complete], now=lambda: NOW)
    assert ("deficiency", "resolved") in [(a.rule, a.state) for a in later]


def test_a_segment_holding_only_a_currency_without_a_rate_publishes_incomplete_figures() -> None:
    state = PartitionState(0)
    for offset, ev in enumerate(only_jpy()):
        assert isinstance(ev, AccountBalance | DepositoryBalance)
        state.apply(ev, offset, NOW)
    combiner = Combiner()
    combiner.on_partial(state.partial())
    [figures] = [f for f in combiner.flush(NOW) if f.segment == "4df"]
    assert figures.incomplete and figures.missing_fx == ["JPY"]
    assert all(v == 0 for v in figures.lines.values())
    assert evaluate(AlertStates(), figures, now=NOW).changes[0].rule in {"missing_fx", "no_target"}


def test_worked_example_no_target_has_no_target_lines_and_warns(tmp_path: Path) -> None:
    f = book_of(no_target()).figures("30.7", NOW)
    assert f.target is None and f.excess_over_target is None
    assert not set(TARGET_LINES["30.7"]) & set(f.lines)
    assert f.excess == D(-100)
    changes = [(a.rule, a.state, a.severity) for a in evaluate(AlertStates(), f, now=NOW).changes]
    assert ("no_target", "firing", "warning") in changes
    assert ("deficiency", "firing", "critical") in changes
    assert not [c for c in changes if c[0] == "under_target"]
    assert not set(TARGET_LINES["30.7"]) & set(from_events(tmp_path, no_target())["30.7"])


def test_a_percentage_target_follows_the_requirement() -> None:
    events = [
        *securities_debit("4d2")[:-1],
        ManagementTarget(
            event_id="pct",
            source="treasury",
            as_of=datetime(2026, 11, 20, tzinfo=UTC),
            segment="4d2",
            percentage=D("2.5"),
        ),
    ]
    f = book_of(events).figures("4d2", NOW)
    assert f.target == D("25.50")  # 2.5% of 1,020
    assert f.excess_over_target == D("34.50")


def test_a_target_is_an_amount_or_a_percentage_never_both_nor_neither() -> None:
    common = {
        "type": "management_target",
        "event_id": "t",
        "source": "s",
        "as_of": "2026-11-20T00:00:00Z",
        "segment": "4d2",
    }
    for extra in ({}, {"amount": "1", "percentage": "1"}):
        with pytest.raises(ValidationError) as exc:
            EVENT_ADAPTER.validate_python({**common, **extra})
        assert first_error(exc.value).field == "amount"


def account_json(**over: object) -> bytes:
    body: dict[str, object] = {
        "event_id": "x1",
        "source": "ledger",
        "as_of": "2026-11-20T22:00:00Z",
        "type": "account_balance",
        "segment": "4d2",
        "account": "A",
        "currency": "USD",
        "cash": "-100.00",
        "securities": "80.00",
        "unrealized": "0.00",
        "long_options": "0.00",
        "short_options": "0.00",
        "offset_securities": "60.00",
    }
    body.update(over)
    return json.dumps(body, separators=(",", ":")).encode()


@pytest.mark.parametrize("over", [{"offset_securities": "80.01"}, {"securities": "-5.00", "offset_securities": "1.00"}])
def test_a_haircut_above_the_securities_is_refused_naming_offset_securities(over: dict[str, str]) -> None:
    for read in (EVENT_ADAPTER.validate_json, read_balance):
        with pytest.raises(ValidationError) as exc:
            read(account_json(**over))
        assert first_error(exc.value).field == "offset_securities"


def test_the_fast_path_reads_a_canonical_debit_account_like_pydantic() -> None:
    raw = account_json()
    fast = read_balance(raw)
    assert isinstance(fast, tuple)
    slow = EVENT_ADAPTER.validate_json(raw)
    assert isinstance(slow, AccountBalance)
    book = Book()
    book.apply(slow)
    assert book.aggregate.held[fast[1]] == fast[2]
    assert dict(fast[2].contribution)["7045"] == D(100) and dict(fast[2].contribution)["7047"] == D(-60)


@pytest.mark.parametrize(
    "as_of",
    [
        "9999-12-31T00:00:00Z",
        "1999-12-31T23:59:59Z",
        (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ],
)
def test_implausible_as_of_is_refused_naming_the_field(as_of: str, tmp_path: Path) -> None:
    raw = account_json(as_of=as_of)
    for read in (EVENT_ADAPTER.validate_json, read_balance):
        with pytest.raises(ValidationError) as exc:
            read(raw)
        assert first_error(exc.value).field == "as_of"
    path = tmp_path / "bad.ndjson"
    path.write_bytes(raw + b"\n")
    out = subprocess.run(
        [sys.executable, "-m", "segwatch.cli", "statement", "from-events", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2 and "as_of" in out.stderr and "Traceback" not in out.stderr


def test_an_as_of_within_the_clock_skew_is_accepted() -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert isinstance(read_balance(account_json(as_of=soon)), tuple)


def test_the_figures_as_of_is_the_stalest_sources_newest() -> None:
    t = datetime(2026, 11, 20, 20, tzinfo=UTC)
    events = [
        AccountBalance(
            event_id="l1",
            source="ledger",
            as_of=t,
            segment="4d2",
            account="A",
            currency="USD",
            cash=D(1),
            securities=D(0),
            unrealized=D(0),
            long_options=D(0),
            short_options=D(0),
        ),
        AccountBalance(
            event_id="l2",
            source="ledger",
            as_of=t + timedelta(hours=2),
            segment="4d2",
            account="B",
            currency="USD",
            cash=D(1),
            securities=D(0),
            unrealized=D(0),
            long_options=D(0),
            short_options=D(0),
        ),
        *multi_line_dco(),  # the bank's balances, as of 22:00
    ]
    events[2:] = [ev.model_copy(update={"as_of": t + timedelta(hours=1)}) for ev in events[2:]]
    f = book_of(events).figures("4d2", NOW)
    assert f.as_of == t + timedelta(hours=1)  # the bank is the stalest source, as of 21:00
