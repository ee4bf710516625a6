"""CBOT Rule 971.E as a live compliance event: the disbursement event, its route, the book ignoring it, the
notice records (the 25% control itself: test_controls.py, test_alerter_controls.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.alerts import Alert
from schemas.errors import input_errors
from schemas.events import EVENT_ADAPTER, EVENT_MODELS, Disbursement, parse_event_json
from schemas.records import Figures
from segwatch.cli.alerter import format_alert
from segwatch.core.book import Book
from segwatch.core.controls import Controls
from segwatch.core.rules import AlertStates, evaluate
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
        "type": "disbursement",
        "event_id": event_id,
        "source": "treasury",
        "as_of": "2026-11-20T15:00:00-05:00",
        "segment": "4d2",
        "amount": "100000.00",
        "recipient": "Segwatch Holdings LLC (parent)",
        "purpose": "dividend to the parent company",
        "for_customer_benefit": False,
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
    result = subprocess.run(
        [sys.executable, "-m", "segwatch.cli", "statement", "from-events", "-"],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["4d2"]["7010"] == "500.00"


# --- the notice record ------------------------------------------------------------------------------------------


def notice_of(ev: Disbursement, *records: Figures) -> Alert:
    """The notice the 25% control (segwatch.core.controls) owes for `ev`, given the live figures."""
    controls = Controls()
    for f in records:
        controls.on_figures(f)
    result = controls.process(ev, now=T0)
    assert result is not None and result.alert is not None
    return result.alert


def test_notice_records_are_checked_for_consistency() -> None:
    notice = notice_of(disbursement())
    assert notice.state == "notice" and notice.figures is None and notice.rule == "disbursement_violation"
    data = notice.model_dump(mode="json")
    with pytest.raises(ValidationError, match="state: rule disbursement_violation publishes notices only"):
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


def test_notices_are_not_alert_state() -> None:
    # A notice made against figures v9 (seen early, from the compacted topic) must not make v5..v9 stale.
    notice = notice_of(disbursement("d-1", "999999.00"), figures(version=9))
    assert notice.figures is not None and notice.figures.version == 9
    states = AlertStates.from_alerts([notice])
    assert states == AlertStates() and AlertStates().with_alert(notice) == AlertStates()
    deficient = evaluate(states, figures(version=5, excess=Decimal("-1.00")), now=T0)
    assert not deficient.stale and [a.rule for a in deficient.changes] == ["under_target", "deficiency"]
    with pytest.raises(ValueError, match="a notice is not alert state"):
        AlertStates.from_dict({"alerts": {notice.key: notice.model_dump(mode="json")}})


@dataclass
class Record:
    value: bytes | None


def test_recovery_tells_alerts_notices_and_decisions_apart() -> None:
    controls = Controls()
    controls.on_figures(figures(excess=EXCESS))
    result = controls.process(disbursement("d-1", "300000.00"), now=T0)
    assert result is not None and result.alert is not None
    firing = evaluate(AlertStates(), figures(version=2, excess=Decimal(-1)), now=T0).changes
    records = [Record(a.model_dump_json().encode()) for a in (*firing, result.alert)]
    records += [Record(n.model_dump_json().encode()) for n in result.notices]
    records += [Record(result.decision.model_dump_json().encode()), Record(b"junk"), Record(None)]
    alerts, decisions, bad = parse_records(records)
    assert alerts == [*firing, result.alert] and decisions == [result.decision] and bad == 1
    assert parse_alerts(records) == ([*firing, result.alert], 1)
    assert result.decision.key == "4d2|disbursement|d-1"


# --- metrics and the tail -------------------------------------------------------------------------------------------


def test_disbursement_metrics_and_a_notice_never_fires() -> None:
    metrics = AlerterMetrics()
    assert m.DISBURSEMENT_OUTCOMES == ("within_limit", "needs_approval", "approved", "violation")
    for outcome in m.DISBURSEMENT_OUTCOMES:
        assert metrics.registry.get_sample_value(m.DISBURSEMENTS_TOTAL, {"segment": "4df", "outcome": outcome}) == 0
    metrics.disbursement("4d2", "violation")
    metrics.disbursement("4d2", "within_limit")
    metrics.disbursement("4d2", "within_limit")
    metrics.duplicate_disbursement("4d2")
    sample = metrics.registry.get_sample_value
    assert sample(m.DISBURSEMENTS_TOTAL, {"segment": "4d2", "outcome": "within_limit"}) == 2
    assert sample(m.DISBURSEMENTS_TOTAL, {"segment": "4d2", "outcome": "violation"}) == 1
    assert sample(m.DUPLICATE_DISBURSEMENTS_TOTAL, {"segment": "4d2"}) == 1
    notice = notice_of(disbursement("d-1", "999999.00"), figures())
    metrics.alert_published(notice, T0 + timedelta(seconds=1), T0)
    labels = {"rule": "disbursement_violation", "severity": "critical", "state": "notice"}
    assert sample(m.ALERTS_TOTAL, labels) == 1
    assert sample(m.ALERT_FIRING, {"segment": "4d2", "rule": "disbursement_violation"}) is None
    metrics.show_alert_states([notice])
    assert sample(m.ALERT_FIRING, {"segment": "4d2", "rule": "disbursement_violation"}) is None


def test_the_tail_prints_a_notice() -> None:
    checked = notice_of(disbursement("d-1", "999999.00"), figures())
    unchecked = notice_of(disbursement("d-2", "1.00"))
    line = format_alert(checked.model_dump_json().encode())
    assert "NOTICE" in line and "disbursement_violation" in line and " v1 " in line
    assert line.endswith("[4d2:disbursement_violation:d-1]")
    assert " v- " in format_alert(unchecked.model_dump_json().encode())
