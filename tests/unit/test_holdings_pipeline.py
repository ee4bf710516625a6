"""Issue #14 wired in: the calculator's partials and combiner, the alerter's holdings alerts, the twin and
`segwatch replay`, the report of investments at a close."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from schemas.alerts import Alert
from schemas.events import (
    DepositoryBalance,
    DepositoryReference,
    ForeignMarginRequirement,
    FxRate,
    HoldingSetting,
)
from segwatch.core.book import Book
from segwatch.core.holding_alerts import evaluate_holdings
from segwatch.core.investment_close import report_for_close
from segwatch.core.rules import AlertStates, evaluate
from segwatch.core.twin import Record, Twin
from services.alerter import holdings as alerter_holdings
from services.alerter.metrics import AlerterMetrics
from services.calculator.combiner import Combiner, digest, figures_digest
from services.calculator.holdings_stage import note_depository
from services.calculator.partials import Partial, PartitionState

T0 = datetime(2026, 10, 30, 18, 0, tzinfo=UTC)
NOW = datetime(2026, 10, 30, 19, 0, tzinfo=UTC)
_n = iter(range(10**9))


def bal(
    segment: str,
    depository: str,
    line: str,
    amount: str,
    *,
    location: str = "us",
    instrument: str = "cash",
    at: datetime = T0,
    **extra: object,
) -> DepositoryBalance:
    return DepositoryBalance(
        event_id=f"b{next(_n):06d}",
        source="t",
        as_of=at,
        segment=segment,  # type: ignore[arg-type]
        depository=depository,
        line=line,
        currency="USD",
        location=location,  # type: ignore[arg-type]
        instrument=instrument,  # type: ignore[arg-type]
        amount=Decimal(amount),
        **extra,  # type: ignore[arg-type]
    )


def fmr(amount: str, at: datetime = T0) -> ForeignMarginRequirement:
    return ForeignMarginRequirement(event_id=f"m{next(_n):06d}", source="t", as_of=at, amount=Decimal(amount))


def ref(segment: str, depository: str, ack: bool) -> DepositoryReference:
    return DepositoryReference(
        event_id=f"r{next(_n):06d}",
        source="t",
        as_of=T0,
        segment=segment,  # type: ignore[arg-type]
        depository=depository,
        kind="bank",
        country="US",
        acknowledgment_letter=ack,
    )


def alerts_of(records: list[Record]) -> list[tuple[str, str, str]]:
    return [(r.value.segment, r.value.rule, r.value.state) for r in records if isinstance(r.value, Alert)]


# --- the twin (segwatch replay) ----------------------------------------------------------------------------------


def test_twin_offshore_funds_900_over_700_fires_and_a_restatement_to_820_resolves() -> None:
    twin = Twin()
    out = twin.feed_all(
        [fmr("700"), bal("30.7", "NY", "7500", "5000"), bal("30.7", "LDN", "7520", "900", location="non_us")]
    )
    assert ("30.7", "offshore_funds", "firing") in alerts_of(out)
    h = twin.figures["30.7"].holdings
    assert h is not None and h.outside_us == Decimal("900.00") and h.foreign_margin_requirement == Decimal("700")
    assert h.offshore_limit == Decimal("840.00") and h.offshore_headroom == Decimal("-60.00")
    out = twin.feed(bal("30.7", "LDN", "7520", "820", location="non_us", at=T0 + timedelta(minutes=1)))
    assert alerts_of(out) == [("30.7", "offshore_funds", "resolved")]
    assert twin.figures["30.7"].holdings.offshore_headroom == Decimal("20.00")  # type: ignore[union-attr]


def test_twin_a_4d2_investment_of_type_other_fires_investment_not_permitted_and_pages() -> None:
    twin = Twin()
    out = twin.feed_all([bal("4d2", "B", "7070", "1000"), bal("4d2", "B", "7080", "50", instrument="other")])
    fired = [r.value for r in out if isinstance(r.value, Alert) and r.value.rule == "investment_not_permitted"]
    assert [(a.state, a.severity, a.page) for a in fired] == [("firing", "critical", True)]
    assert fired[0].runbook == "docs/RUNBOOK.md#investment-not-permitted"


def test_replay_command_prints_the_offshore_alerts(tmp_path: Path) -> None:
    events = [
        fmr("700"),
        bal("30.7", "LDN", "7520", "900", location="non_us"),
        bal("30.7", "LDN", "7520", "820", location="non_us", at=T0 + timedelta(minutes=1)),
    ]
    path = tmp_path / "events.ndjson"
    path.write_text("".join(ev.model_dump_json() + "\n" for ev in events))
    run = subprocess.run(
        [sys.executable, "-m", "segwatch.cli", "replay", str(path)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    got = [json.loads(line) for line in run.stdout.splitlines()]
    offshore = [(a["segment"], a["state"]) for a in got if a["rule"] == "offshore_funds"]
    assert offshore == [("30.7", "firing"), ("30.7", "resolved")]


def test_an_unacknowledged_depository_fires_and_its_funds_are_shown_apart() -> None:
    twin = Twin()
    out = twin.feed_all(
        [ref("4d2", "SMALL", False), bal("4d2", "BIG", "7070", "1000"), bal("4d2", "SMALL", "7070", "250")]
    )
    assert ("4d2", "depository_not_acknowledged", "firing") in alerts_of(out)
    f = twin.figures["4d2"]
    assert f.lines["7070"] == Decimal("1000") and f.holdings is not None
    assert f.holdings.unacknowledged == {"SMALL": Decimal("250.00")} and f.holdings.unclassified == ["BIG"]


# --- the calculator: partials and combiner -----------------------------------------------------------------------


def test_partials_carry_the_holdings_and_the_combiner_equals_the_book() -> None:
    events = [
        bal("30.7", "LDN", "7520", "900", location="non_us"),
        bal("30.7", "NY", "7540", "300", instrument="us_agency", issuer="FNMA", maturity=date(2027, 6, 30)),
        bal("4d2", "SMALL", "7070", "250"),
        bal("4d2", "BIG", "7070", "1000"),
    ]
    settings: list[HoldingSetting] = [fmr("700"), ref("4d2", "SMALL", False)]
    states = [PartitionState(0), PartitionState(1)]
    for i, ev in enumerate(events):
        state = states[i % 2]
        assert state.apply(ev, i, None)
        note_depository(
            state.holdings, f"depo|{ev.segment}|{ev.depository}|{ev.line}|USD", ev.model_dump_json().encode()
        )
    combiner = Combiner()
    for setting in settings:
        combiner.on_setting(setting)
    for state in states:
        combiner.on_partial(Partial.from_json(state.partial().to_json()))  # through the wire form
    published = {f.segment: f for f in combiner.flush(NOW)}
    book = Book()
    book.apply_all([*settings, *events])
    for sid in ("4d2", "30.7"):
        assert published[sid].lines == book.figures(sid).lines
        assert published[sid].holdings == book.figures(sid).holdings
        assert digest(combiner.consolidated(sid)) == figures_digest(published[sid])  # restore sees no change
    assert published["4d2"].lines["7070"] == Decimal("1000")
    assert published["30.7"].holdings.foreign_margin_requirement == Decimal("700")  # type: ignore[union-attr]


def test_a_requirement_alone_changes_the_30_7_figures_record() -> None:
    state = PartitionState(0)
    ev = bal("30.7", "LDN", "7520", "900", location="non_us")
    state.apply(ev, 0, None)
    note_depository(state.holdings, "depo|30.7|LDN|7520|USD", ev.model_dump_json().encode())
    combiner = Combiner()
    combiner.on_partial(Partial.from_json(state.partial().to_json()))
    assert [f.version for f in combiner.flush(NOW)] == [1]
    assert combiner.on_setting(fmr("700")) == frozenset({"30.7"})
    (second,) = combiner.flush(NOW)
    assert second.version == 2 and second.holdings.offshore_limit == Decimal("840.00")  # type: ignore[union-attr]


def test_the_combiner_restores_references_and_requirements_from_its_table() -> None:
    state = PartitionState(0)
    ev = bal("4d2", "SMALL", "7070", "250")
    state.apply(ev, 0, None)
    note_depository(state.holdings, "depo|4d2|SMALL|7070|USD", ev.model_dump_json().encode())
    partial = Partial.from_json(state.partial().to_json())
    one = Combiner()
    one.on_setting(ref("4d2", "SMALL", False))
    one.on_partial(partial)
    (published,) = one.flush(NOW)
    two = Combiner()
    two.restore({0: partial}, list(one.holdings.references.refs.values()), {"4d2": published})
    assert two.flush(NOW) == []  # the same figures: nothing re-sent
    assert two.consolidated("4d2").lines["7070"] == Decimal("0")


# --- the alerter ------------------------------------------------------------------------------------------------


def test_alerter_extend_fires_once_and_a_replayed_record_changes_nothing() -> None:
    book = Book()
    book.apply_all([fmr("700"), bal("30.7", "LDN", "7520", "900", location="non_us")])
    figures = book.figures("30.7", computed_at=NOW).model_copy(update={"version": 1})
    result = alerter_holdings.extend(evaluate(AlertStates(), figures, now=NOW), figures, now=NOW)
    assert [(a.rule, a.state) for a in result.changes if a.rule == "offshore_funds"] == [("offshore_funds", "firing")]
    # Recovered from the alert topic: the same record again fires nothing.
    recovered = AlertStates.from_alerts(result.changes)
    again = alerter_holdings.extend(evaluate(recovered, figures, now=NOW), figures, now=NOW)
    assert again.stale and again.changes == ()
    later = figures.model_copy(update={"version": 2})
    states, changes = evaluate_holdings(recovered, later, now=NOW)
    assert changes == () and states.is_firing("30.7", "offshore_funds")


def test_holdings_gauges() -> None:
    book = Book()
    book.apply_all(
        [
            fmr("700"),
            bal("30.7", "LDN", "7520", "900", location="non_us"),
            FxRate(event_id="fx", source="t", as_of=T0, currency="EUR", usd_per_unit=Decimal("1.1")),
        ]
    )
    metrics = AlerterMetrics()
    metrics.show_figures(book.figures("30.7", computed_at=NOW).model_copy(update={"version": 1}))
    text = metrics.exposition().decode()
    assert 'segwatch_offshore_funds_dollars{segment="30.7"} 900.0' in text
    assert 'segwatch_foreign_margin_requirement_dollars{segment="30.7"} 700.0' in text
    assert 'segwatch_offshore_headroom_dollars{segment="30.7"} -60.0' in text
    assert 'segwatch_holdings_dollars{instrument="cash",segment="30.7"} 900.0' in text
    assert 'segwatch_alert_firing{rule="investment_not_permitted",segment="4d2"} 0.0' in text


# --- the report of investments at a close ------------------------------------------------------------------------


def test_a_month_end_close_produces_its_report_equal_to_the_balances_by_instrument() -> None:
    day = date(2026, 10, 30)  # the last business day of October 2026 (a Friday)
    at = datetime(2026, 10, 30, 20, 0, tzinfo=UTC)
    events = [
        bal("4d2", "B", "7070", "1000", at=at),
        bal("4d2", "B", "7080", "400", instrument="us_government", maturity=date(2027, 1, 1), at=at),
        bal("4d2", "C", "7080", "100", instrument="money_market_fund", at=at),
        bal("4d2", "B", "7070", "9999", at=datetime(2026, 10, 31, 12, 0, tzinfo=UTC)),
    ]  # after the close
    closed = report_for_close(day, events)
    assert closed is not None and closed.key == "investment_report|2026-10-30"
    pool = closed.record["pools"]["4d2"]
    assert pool["cash_and_permitted_investments"]["cash"] == "1000.00"
    assert pool["cash_and_permitted_investments"]["us_government"] == "400.00"
    assert pool["cash_and_permitted_investments"]["money_market_fund"] == "100.00"
    assert pool["total"] == "1500.00" and pool["depositories"] == {"B": "1400.00", "C": "100.00"}
    assert "REPORT OF INVESTMENTS as of 2026-10-30" in closed.text
    assert report_for_close(date(2026, 10, 29), events) is None  # not a report date


def test_ingest_with_a_reference_file_also_emits_its_depository_reference_events() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "segwatch.cli",
            "ingest",
            "services/ingest/examples/bank.bai2",
            "--depositories",
            "services/ingest/examples/depositories.csv",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode in (0, 1), run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    refs = [e for e in events if e["type"] == "depository_reference"]
    assert refs and events[: len(refs)] == refs  # first: the balances find them in force
    assert {(r["segment"], r["depository"]) for r in refs} >= {("4d2", "JPMC-SEG-CASH")}
    assert any(e["type"] == "depository_balance" for e in events)
