"""CBOT Rule 971.E as a live compliance event: the disbursement event, its route, the book ignoring it, the
notice records, and the monitor that checks each disbursement against the latest excess calculation."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.alerts import Alert, DisbursementCheckRecord
from schemas.errors import input_errors
from schemas.events import EVENT_ADAPTER, EVENT_MODELS, Disbursement, parse_event_json
from schemas.records import Figures
from segwatch.cli.alerter import format_alert
from segwatch.core.book import Book
from segwatch.core.rules import (
    DISBURSEMENT_OUTCOMES,
    AlertStates,
    DisbursementMonitor,
    disbursement_notice_id,
    evaluate,
)
from segwatch.kafka import topics
from services.alerter import metrics as m
from services.alerter.metrics import AlerterMetrics
from services.alerter.recovery import parse_alerts, parse_records
from services.ingest.publisher import REQUIRED_TOPICS, event_key, event_value, topic_for
from tests.support.figures import T0, real_figures
from tests.support.ingest import JSON, NDJSON, account, serving

EXCESS = Decimal("1000000.00")  # limit: 250,000.00


def figures(segment: str = "4d2", version: int = 1, excess: Decimal = EXCESS) -> Figures:
    """The segment's real figures with the excess set to `excess` and a zero target (no alert of their own)."""
    real = real_figures(segment, target=0)
    return real_figures(segment, version, funds_delta=excess - real.excess, target=0)


def raw(event_id: str = "d-1", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "disbursement", "event_id": event_id, "source": "treasury", "as_of": "2026-11-20T15:00:00-05:00",
        "segment": "4d2", "amount": "100000.00", "recipient": "Segwatch Holdings LLC (parent)",
        "purpose": "dividend to the parent company", "for_customer_benefit": False,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def disbursement(event_id: str = "d-1", amount: str = "100000.00", **changes: Any) -> Disbursement:
    ev = EVENT_ADAPTER.validate_json(json.dumps(raw(event_id, amount=amount, **changes)))
    assert isinstance(ev, Disbursement)
    return ev


def errors(**changes: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as exc:
        EVENT_ADAPTER.validate_json(json.dumps(raw(**changes)))
    return {e.field: e.reason for e in input_errors(exc.value)}


# --- the event ---------------------------------------------------------------------------------------------


def test_a_disbursement_parses_with_an_exact_amount_and_its_key() -> None:
    ev = disbursement(amount="250000.01", approval="CFO-2026-117")
    assert ev.amount == Decimal("250000.01") and ev.currency == "USD"
    assert ev.for_customer_benefit is False and ev.approval == "CFO-2026-117"
    assert ev.key == "disb|4d2"
    assert Disbursement in EVENT_MODELS
    # Defaults: USD, no approval.
    plain = disbursement()
    assert plain.approval is None and plain.currency == "USD"
    # A JSON number is read from its text, never through a float.
    exact = parse_event_json(json.dumps(raw()).replace('"100000.00"', "123456789012.37"))
    assert isinstance(exact, Disbursement) and exact.amount == Decimal("123456789012.37")


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"amount": "0"}, "amount", "greater than 0"),
        ({"amount": "-5.00"}, "amount", "greater than 0"),
        ({"amount": "1.001"}, "amount", "no more than 2 decimal places"),
        ({"amount": "NaN"}, "amount", "finite number"),
        ({"currency": "EUR"}, "currency", "send its USD equivalent"),
        ({"currency": "XXQ"}, "currency", "not an ISO 4217 currency code"),
        ({"for_customer_benefit": None}, "for_customer_benefit", "required field is missing"),
        ({"for_customer_benefit": "no"}, "for_customer_benefit", "valid boolean"),
        ({"recipient": None}, "recipient", "required field is missing"),
        ({"recipient": "  "}, "recipient", "at least 1 character"),
        ({"purpose": None}, "purpose", "required field is missing"),
        ({"approval": ""}, "approval", "at least 1 character"),
        ({"segment": "4d9"}, "segment", "'4d2', '30.7' or '4df'"),
        ({"as_of": "2026-11-20T15:00:00"}, "as_of", "timezone"),
        ({"approved": True}, "approved", "unknown field"),
    ],
)
def test_a_bad_disbursement_names_the_field_and_the_reason(changes: dict[str, Any], field: str, reason: str) -> None:
    errs = errors(**changes)
    assert field in errs, errs
    assert reason in errs[field]


def test_a_disbursement_in_another_currency_says_why_it_is_refused() -> None:
    reason = errors(currency="GBP")["currency"]
    assert "US-dollar excess" in reason and "not GBP" in reason


# --- routing and the calculator side ----------------------------------------------------------------------------


def test_ingest_routes_disbursements_to_their_own_topic() -> None:
    ev = disbursement()
    assert topic_for(ev) == topics.DISBURSEMENTS == "segwatch.disbursements"
    assert event_key(ev) == b"disb|4d2"
    assert json.loads(event_value(ev))["amount"] == "100000.00"  # a decimal string on the wire
    assert topics.DISBURSEMENTS in REQUIRED_TOPICS  # ingest refuses to start without the topic


async def test_the_http_api_accepts_a_disbursement_and_names_a_bad_ones_field() -> None:
    good = json.dumps(raw("http-1"))
    bad = json.dumps(raw("http-2", currency="EUR"))
    async with serving() as (client, publisher):
        response = await client.post("/v1/events", data=good, headers=JSON)
        assert response.status == 202, await response.text()
        [published] = publisher.published
        assert isinstance(published, Disbursement) and topic_for(published) == topics.DISBURSEMENTS
        response = await client.post("/v1/events", data=f"{good}\n{bad}", headers=NDJSON)
        body = await response.json()
        assert body["accepted"] == ["http-1"]
        [rejected] = body["rejected"]
        assert rejected["line"] == 2 and rejected["field"] == "currency"


def test_the_book_accepts_a_disbursement_and_changes_no_figure() -> None:
    book = Book()
    book.apply(EVENT_ADAPTER.validate_json(account("a-1", cash='"500.00"')))
    before = (book.statement(), dict(book.versions))
    assert book.apply(disbursement()) == frozenset()
    assert (book.statement(), dict(book.versions)) == before


def test_statement_from_events_takes_a_disbursement_line() -> None:
    stdin = "\n".join([account("a-1", cash='"500.00"'), json.dumps(raw())]) + "\n"
    result = subprocess.run([sys.executable, "-m", "segwatch.cli", "statement", "from-events", "-"],
                            input=stdin, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["4d2"]["7010"] == "500.00"


# --- the notice record ------------------------------------------------------------------------------------------


def test_notice_records_are_checked_for_consistency() -> None:
    notice = DisbursementMonitor(calculations={}).assess(disbursement(), now=T0).notice
    assert notice is not None and notice.state == "notice" and notice.figures is None
    data = notice.model_dump(mode="json")
    with pytest.raises(ValidationError, match="state: rule disbursement_25pct publishes notices only"):
        Alert.model_validate({**data, "state": "firing"})
    with pytest.raises(ValidationError, match="disbursement: required"):
        Alert.model_validate({**data, "disbursement": None})
    firing = evaluate(AlertStates(), figures(version=1, excess=Decimal(-1)), now=T0).changes[0]
    with pytest.raises(ValidationError, match="figures: required on a firing record"):
        Alert.model_validate({**firing.model_dump(mode="json"), "figures": None})
    with pytest.raises(ValidationError, match="publishes firing/resolved only"):
        Alert.model_validate({**firing.model_dump(mode="json"), "state": "notice"})
    # Round trip through JSON, exact amounts.
    assert Alert.model_validate_json(notice.model_dump_json()) == notice


# --- the monitor: Rule 971.E wired to the events ---------------------------------------------------------------------


@dataclass
class Run:
    """A monitor fed like the alerter feeds it: assess, then record (as if every record was published)."""

    monitor: DisbursementMonitor

    def send(self, ev: Disbursement, now: datetime = T0) -> tuple[str | None, Alert | None]:
        assessment = self.monitor.assess(ev, now=now)
        self.monitor.record(assessment)
        return assessment.outcome, assessment.notice


def monitor_with(*records: Figures) -> Run:
    monitor = DisbursementMonitor()
    for f in records:
        monitor.on_figures(f)
    return Run(monitor)


def test_within_25_percent_no_notice_then_the_aggregate_crosses_it() -> None:
    run = monitor_with(figures(excess=EXCESS))
    assert run.send(disbursement("d-1", "200000.00")) == ("within_limit", None)
    assert run.send(disbursement("d-2", "50000.00")) == ("within_limit", None)  # exactly 25%: no approval
    outcome, notice = run.send(disbursement("d-3", "0.01", approval="CFO-77"))
    assert outcome == "needs_approval" and notice is not None
    assert notice.rule == "disbursement_25pct" and notice.state == "notice" and notice.page is False
    assert notice.severity == "warning"  # pre-approved: the Audit Department notice is still owed
    assert notice.alert_id == disbursement_notice_id("4d2", "d-3") == "4d2:disbursement_25pct:d-3"
    assert notice.correlation_id == "d-3" and notice.regulation == "CBOT Rule 971.E"
    assert notice.runbook == "docs/RUNBOOK.md#disbursement-25pct"
    assert notice.figures is not None and notice.figures.version == 1 and notice.figures.excess == EXCESS
    d = notice.disbursement
    assert d is not None
    assert (d.amount, d.prior, d.aggregate, d.limit, d.excess, d.calculation) == (
        Decimal("0.01"), Decimal("250000.00"), Decimal("250000.01"), Decimal("250000.0000"), EXCESS, 1,
    )
    assert (d.alone_exceeds, d.aggregate_exceeds, d.exceeds_excess) == (False, True, False)
    assert (d.recipient, d.purpose, d.approval) == (
        "Segwatch Holdings LLC (parent)", "dividend to the parent company", "CFO-77",
    )
    assert "$0.01 to Segwatch Holdings LLC (parent)" in notice.summary
    assert "aggregate $250,000.01" in notice.summary and "limit $250,000.00" in notice.summary
    assert "excess $1,000,000.00" in notice.summary and "pre-approved (CFO-77)" in notice.summary
    assert notice.started_at == d.as_of and notice.at == T0


def test_without_a_pre_approval_the_notice_is_critical() -> None:
    run = monitor_with(figures(excess=EXCESS))
    _, notice = run.send(disbursement("d-1", "250000.01"))
    assert notice is not None and notice.severity == "critical"
    assert notice.disbursement is not None and notice.disbursement.alone_exceeds
    assert "NO written CEO/CFO pre-approval" in notice.summary and "alone exceeds 25%" in notice.summary


def test_one_that_would_leave_the_segment_under_segregated_is_critical_even_approved() -> None:
    run = monitor_with(figures(excess=EXCESS))
    _, notice = run.send(disbursement("d-1", "1000000.01", approval="CEO-1"))
    assert notice is not None and notice.severity == "critical"
    assert notice.disbursement is not None and notice.disbursement.exceeds_excess
    assert "UNDER-SEGREGATED" in notice.summary


def test_a_quarter_of_an_odd_cent_excess_is_exact_in_the_notice() -> None:
    run = monitor_with(figures(excess=Decimal("1000000.01")))  # limit 250,000.0025
    assert run.send(disbursement("d-1", "250000.00"))[0] == "within_limit"
    _, notice = run.send(disbursement("d-2", "0.01"))  # 250,000.01 > 250,000.0025
    assert notice is not None and notice.disbursement is not None
    assert notice.disbursement.limit == Decimal("250000.0025")
    assert json.loads(notice.model_dump_json())["disbursement"]["limit"] == "250000.0025"
    assert "limit $250,000.00)" in notice.summary  # shown to the cent, decided exactly


@pytest.mark.parametrize("excess", [Decimal(0), Decimal("-5000.00")])
def test_with_no_excess_any_disbursement_needs_approval(excess: Decimal) -> None:
    run = monitor_with(figures(excess=excess))
    outcome, notice = run.send(disbursement("d-1", "0.01", approval="CFO-9"))
    assert outcome == "needs_approval" and notice is not None and notice.severity == "critical"


def test_for_the_benefit_of_customers_is_counted_not_checked_nor_aggregated() -> None:
    run = monitor_with(figures(excess=EXCESS))
    assert run.send(disbursement("c-1", "900000.00", for_customer_benefit=True)) == ("customer_benefit", None)
    assert run.monitor.window.total("4d2", 1) == 0
    assert run.send(disbursement("d-1", "250000.00")) == ("within_limit", None)


def test_without_figures_the_excess_is_unknown_and_a_warning_says_so() -> None:
    run = monitor_with(figures("4d2"))  # figures of another segment only
    outcome, notice = run.send(disbursement("d-1", "1.00", segment="30.7"))
    assert outcome == "unchecked" and notice is not None
    assert notice.severity == "warning" and notice.figures is None and notice.segment == "30.7"
    assert notice.disbursement is not None and notice.disbursement.excess is None
    assert "could NOT be checked" in notice.summary
    # Nothing passes silently: a second one is noticed too; customer disbursements are still exempt.
    assert run.send(disbursement("d-2", "1.00", segment="30.7"))[0] == "unchecked"
    assert run.send(disbursement("c-1", "1.00", segment="30.7", for_customer_benefit=True))[0] == "customer_benefit"


def test_each_figures_record_is_a_new_calculation_that_starts_a_new_window() -> None:
    run = monitor_with(figures(version=1, excess=EXCESS))
    assert run.send(disbursement("d-1", "200000.00"))[0] == "within_limit"
    # A new excess calculation (the funds left: the excess is lower now): the window starts again.
    assert run.monitor.on_figures(figures(version=2, excess=Decimal("800000.00")))
    assert run.send(disbursement("d-2", "200000.00"))[0] == "within_limit"  # 200,000 <= 25% of 800,000
    _, notice = run.send(disbursement("d-3", "0.01"))
    assert notice is not None and notice.disbursement is not None
    assert notice.disbursement.calculation == 2 and notice.disbursement.prior == Decimal("200000.00")
    # An older figures record arriving late is not the most recent calculation.
    assert not run.monitor.on_figures(figures(version=1, excess=Decimal("9999999.00")))
    assert run.monitor.calculations["4d2"].version == 2
    # Segments never net: 30.7 has its own calculation and window.
    run.monitor.on_figures(figures("30.7", version=5, excess=EXCESS))
    assert run.send(disbursement("d-4", "250000.00", segment="30.7"))[0] == "within_limit"


def test_a_duplicate_is_neither_counted_nor_noticed_twice() -> None:
    run = monitor_with(figures(excess=EXCESS))
    assert run.send(disbursement("d-1", "200000.00"))[0] == "within_limit"
    assert run.send(disbursement("d-1", "200000.00")) == (None, None)  # the same event again
    assert run.monitor.window.total("4d2", 1) == Decimal("200000.00")
    _, first = run.send(disbursement("d-2", "300000.00"))
    assert first is not None
    assert run.send(disbursement("d-2", "300000.00")) == (None, None)
    assert run.monitor.assess(disbursement("d-2", "300000.00"), now=T0).duplicate


def _published(run: Run, *events: Disbursement) -> tuple[list[DisbursementCheckRecord], list[Alert]]:
    """What the alerter would have published for `events`: check records and notices."""
    checks: list[DisbursementCheckRecord] = []
    notices: list[Alert] = []
    for ev in events:
        assessment = run.monitor.assess(ev, now=T0)
        run.monitor.record(assessment)
        if assessment.notice is not None:
            notices.append(assessment.notice)
        if not assessment.duplicate:
            checks.append(assessment.check_record(T0))
    return checks, notices


def test_a_restarted_monitor_keeps_the_window_and_never_notices_twice() -> None:
    latest = figures(version=3, excess=EXCESS)
    before = monitor_with(figures(version=2, excess=EXCESS * 2), latest)
    older = monitor_with(figures(version=2, excess=EXCESS * 2))
    old_checks, _ = _published(older, disbursement("old-1", "400000.00"))  # checked against v2
    checks, notices = _published(
        before, disbursement("d-1", "100000.00"), disbursement("d-2", "200000.00"),
        disbursement("c-1", "5.00", for_customer_benefit=True),
    )
    assert [c.outcome for c in checks] == ["within_limit", "needs_approval", "customer_benefit"]
    assert [n.correlation_id for n in notices] == ["d-2"] and checks[1].notice_id == notices[0].alert_id

    after = Run(DisbursementMonitor.restore([latest], [*old_checks, *checks], notices))
    assert after.monitor.window.total("4d2", 3) == Decimal("300000.00")  # only the current calculation's
    assert after.monitor.processed == {"old-1", "d-1", "d-2", "c-1"}
    for event_id, amount in (("d-1", "100000.00"), ("d-2", "200000.00"), ("old-1", "400000.00")):
        assert after.send(disbursement(event_id, amount)) == (None, None)
    outcome, notice = after.send(disbursement("d-3", "1.00"))  # the window survived the restart
    assert outcome == "needs_approval" and notice is not None and notice.disbursement is not None
    assert notice.disbursement.prior == Decimal("300000.00")


def test_a_notice_published_before_a_crash_is_not_published_again() -> None:
    # The notice reached the alert topic, the check record did not: the disbursement is read again.
    first = monitor_with(figures(excess=EXCESS))
    notice = first.monitor.assess(disbursement("d-1", "300000.00"), now=T0).notice
    assert notice is not None
    again = DisbursementMonitor.restore([figures(excess=EXCESS)], [], [notice])
    assessment = again.assess(disbursement("d-1", "300000.00"), now=T0)
    assert assessment.outcome == "needs_approval" and assessment.notice is None
    assert assessment.notice_id == notice.alert_id  # the check record still names it
    again.record(assessment)
    assert again.window.total("4d2", 1) == Decimal("300000.00")


def test_notices_are_not_alert_state() -> None:
    # A notice checked against figures v9 (seen early, from the compacted topic) must not make v5..v9 stale.
    notice = monitor_with(figures(version=9)).monitor.assess(disbursement("d-1", "999999.00"), now=T0).notice
    assert notice is not None and notice.figures is not None and notice.figures.version == 9
    states = AlertStates.from_alerts([notice])
    assert states == AlertStates() and AlertStates().with_alert(notice) == AlertStates()
    deficient = evaluate(states, figures(version=5, excess=Decimal("-1.00")), now=T0)
    assert not deficient.stale and [a.rule for a in deficient.changes] == ["under_target", "deficiency"]
    with pytest.raises(ValueError, match="a notice is not alert state"):
        AlertStates.from_dict({"alerts": {notice.key: notice.model_dump(mode="json")}})


@dataclass
class Record:
    value: bytes | None


def test_recovery_tells_alerts_notices_and_check_records_apart() -> None:
    run = monitor_with(figures(excess=EXCESS))
    checks, notices = _published(run, disbursement("d-1", "300000.00"))
    firing = evaluate(AlertStates(), figures(version=2, excess=Decimal(-1)), now=T0).changes
    records = [Record(a.model_dump_json().encode()) for a in (*firing, *notices)]
    records += [Record(c.model_dump_json().encode()) for c in checks] + [Record(b"junk"), Record(None)]
    alerts, parsed_checks, bad = parse_records(records)
    assert alerts == [*firing, *notices] and parsed_checks == checks and bad == 1
    assert parse_alerts(records) == ([*firing, *notices], 1)
    assert checks[0].key == "4d2|disbursement|d-1"


# --- metrics and the tail -------------------------------------------------------------------------------------------


def test_disbursement_metrics_and_a_notice_never_fires() -> None:
    metrics = AlerterMetrics()
    for outcome in DISBURSEMENT_OUTCOMES:
        assert metrics.registry.get_sample_value(m.DISBURSEMENTS_TOTAL, {"segment": "4df", "outcome": outcome}) == 0
    metrics.disbursement("4d2", "needs_approval")
    metrics.disbursement("4d2", "within_limit")
    metrics.disbursement("4d2", "within_limit")
    metrics.duplicate_disbursement("4d2")
    sample = metrics.registry.get_sample_value
    assert sample(m.DISBURSEMENTS_TOTAL, {"segment": "4d2", "outcome": "within_limit"}) == 2
    assert sample(m.DISBURSEMENTS_TOTAL, {"segment": "4d2", "outcome": "needs_approval"}) == 1
    assert sample(m.DUPLICATE_DISBURSEMENTS_TOTAL, {"segment": "4d2"}) == 1
    notice = monitor_with(figures()).monitor.assess(disbursement("d-1", "999999.00"), now=T0).notice
    assert notice is not None
    metrics.alert_published(notice, T0 + timedelta(seconds=1), T0)
    assert sample(m.ALERTS_TOTAL, {"rule": "disbursement_25pct", "severity": "critical", "state": "notice"}) == 1
    assert sample(m.ALERT_FIRING, {"segment": "4d2", "rule": "disbursement_25pct"}) is None
    metrics.show_alert_states([notice])
    assert sample(m.ALERT_FIRING, {"segment": "4d2", "rule": "disbursement_25pct"}) is None


def test_the_tail_prints_a_notice() -> None:
    checked = monitor_with(figures()).monitor.assess(disbursement("d-1", "999999.00"), now=T0).notice
    unchecked = DisbursementMonitor().assess(disbursement("d-2", "1.00"), now=T0).notice
    assert checked is not None and unchecked is not None
    line = format_alert(checked.model_dump_json().encode())
    assert "NOTICE" in line and "disbursement_25pct" in line and " v1 " in line
    assert line.endswith("[4d2:disbursement_25pct:d-1]")
    assert " v- " in format_alert(unchecked.model_dump_json().encode())


def test_check_records_round_trip() -> None:
    run = monitor_with(figures())
    [check], _ = _published(run, disbursement("d-1", "1.00"))
    assert DisbursementCheckRecord.model_validate_json(check.model_dump_json()) == check
    assert check.calculation == 1 and check.outcome == "within_limit" and check.notice_id is None
    assert check.at == datetime(2017, 11, 6, 21, 0, tzinfo=UTC)
