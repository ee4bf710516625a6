"""Controls before the money moves on the real broker (issue #13): disbursements, approvals and undermargined
amounts go through the ingest publisher to the disbursements topic; the alerter decides each disbursement
against the last daily computation (a StatementRecord on the statements topic, published here by the test as
the calculator's close would) and the live figures, publishes its decision records and notices once (a
violation pages), recovers after a restart, and answers the what-if; what is not a control input is
dead-lettered.

Every test runs on throwaway topics and its own consumer group.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from schemas.alerts import Alert
from schemas.events import Disbursement, DisbursementApproval, EventBase, UndermarginedAmounts
from schemas.records import DeadLetter, Figures
from schemas.statements import DayStatus, StatementRecord
from segwatch.config import KafkaSettings
from segwatch.kafka.topics import DISBURSEMENTS
from services.alerter import metrics as m
from services.alerter.service import AlerterService
from services.ingest.publisher import KafkaPublisher
from tests.support.alerter import decisions_of
from tests.support.figures import real_figures
from tests.support.kafka import NewTopic, unique_name

from .test_alerter_kafka import (
    RecordingLogger,
    Topics,
    alerts_on,
    new_topics,
    produce,
    read_all,
    running,
    sample,
    scrape,
    until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(60)]

EXCESS = Decimal("1000000.00")  # 25%: 250,000.00
AS_OF = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)


@pytest.fixture
def topics(kafka_topics: object, new_topic: NewTopic) -> Topics:
    return new_topics(new_topic)


def figures(segment: str, version: int, excess: Decimal) -> Figures:
    """Real figures with the excess set to `excess` and no management target (so no alert of their own)."""
    real = real_figures(segment, target=0)
    return real_figures(segment, version, funds_delta=excess - real.excess, target=0, event=f"fig-{version}")


def payout(
    event_id: str, amount: str, *, segment: str = "4d2", approval: str | None = None, customers: bool = False
) -> Disbursement:
    return Disbursement(
        event_id=event_id,
        source="treasury",
        as_of=AS_OF,
        segment=segment,  # type: ignore[arg-type]
        amount=Decimal(amount),
        recipient=f"Recipient of {event_id}",
        purpose="transfer to the firm's account",
        for_customer_benefit=customers,
        approval=approval,
    )


async def publish(settings: KafkaSettings, topic: str, events: Sequence[EventBase]) -> None:
    """Through the ingest publisher, as `POST /v1/events` does (routing by type; the topic renamed)."""
    publisher = KafkaPublisher(settings, topic_map={DISBURSEMENTS: topic})
    await publisher.start()
    try:
        assert await publisher.publish(events) == [None] * len(events)
    finally:
        await publisher.stop()


def count(service: AlerterService, outcome: str, segment: str = "4d2") -> float:
    value = service.metrics.registry.get_sample_value(m.DISBURSEMENTS_TOTAL, {"segment": segment, "outcome": outcome})
    return value or 0.0


def duplicates(service: AlerterService, segment: str = "4d2") -> float:
    value = service.metrics.registry.get_sample_value(m.DUPLICATE_DISBURSEMENTS_TOTAL, {"segment": segment})
    return value or 0.0


def notices(alerts: Sequence[Alert]) -> list[tuple[str | None, str]]:
    return [(a.correlation_id, a.severity) for a in alerts]


async def test_ingest_publishes_a_disbursement_on_its_topic_keyed_by_segment(
    kafka_settings: KafkaSettings, kafka_topics: object, new_topic: NewTopic
) -> None:
    topic = new_topic("disbursements")
    event = payout(unique_name("route"), "1234.56", segment="4df", approval="CFO-1")
    await publish(kafka_settings, topic, [event])
    [record] = await read_all(kafka_settings, topic, expect=1, settle=0.2)
    assert record.key == b"disb|4df"
    assert Disbursement.model_validate_json(record.value) == event
    assert json.loads(record.value)["amount"] == "1234.56"


M = Decimal(1_000_000)
DAY1, DAY2 = date(2026, 11, 19), date(2026, 11, 20)
CUT1, CUT2 = datetime(2026, 11, 19, 23, 0, tzinfo=UTC), datetime(2026, 11, 20, 23, 0, tzinfo=UTC)
MORNING = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
MONDAY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # the alerter's clock: the open day is 11-23, prior 11-20
TOKEN = "what-if-token"


def close(day: date, cutoff: datetime, excess: Decimal) -> bytes:
    """The calculator's StatementRecord of a close (published by the test itself)."""
    return (
        StatementRecord(
            business_day=day,
            segment="4d2",
            kind="INITIAL",
            version=1,
            cutoff=cutoff,
            computed_at=cutoff + timedelta(minutes=5),
            lines={"7190": excess},
        )
        .model_dump_json()
        .encode()
    )


def filed(day: date) -> bytes:
    return (
        DayStatus(
            business_day=day,
            status="filed",
            segments=["4d2", "30.7", "4df"],
            version=1,
            computed_at=CUT2,
            filed_at=CUT2 + timedelta(hours=14),
            confirmation="WJ-1",
            due_at=CUT2 + timedelta(hours=19),
        )
        .model_dump_json()
        .encode()
    )


def paid(
    event_id: str, amount: Decimal, at: datetime, *, approval: str | None = None, customers: bool = False
) -> Disbursement:
    return Disbursement(
        event_id=event_id,
        source="treasury",
        as_of=at,
        segment="4d2",
        amount=amount,
        recipient="Holdco LLC (parent)",
        purpose="dividend to the parent",
        for_customer_benefit=customers,
        approval=approval,
    )


async def what_if(service: AlerterService, body: dict[str, Any], token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{service.port}/v1/what-if", json=body, headers=headers) as response,
    ):
        return response.status, await response.json()


async def test_the_issue_example_live_a_violation_pages_and_the_what_if_refuses(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Issue #13 on the broker: within / needs / within / needs / needs / within; then a violation pages; a
    restart decides nothing twice; the what-if refuses before the filing and under the target."""
    ref = "CFO-MEMO-7"
    config = topics.config(controls_interval=0, tokens=(TOKEN.encode(),))
    service = AlerterService(kafka_settings, config, clock=lambda: MONDAY, logger=RecordingLogger())
    await service.start()
    try:
        await until(lambda: service.ready, "the alerter to become ready")
        evaluated = 0

        async def tick(version: int, excess: Decimal) -> None:
            nonlocal evaluated
            await produce(kafka_settings, topics.figures, [figures("4d2", version, excess)])
            evaluated += 1
            await until(
                lambda: service.metrics.registry.get_sample_value(m.FIGURES_TOTAL, {"segment": "4d2"}) == evaluated,
                f"figures v{version}",
            )

        async def pay(ev: Disbursement) -> None:
            before = len(service.controls.state.controls.decided)
            await publish(kafka_settings, topics.disbursements, [ev])
            await until(lambda: len(service.controls.state.controls.decided) == before + 1, f"{ev.event_id}")

        await produce(kafka_settings, topics.statements, [close(DAY1, CUT1, 100 * M)])
        await until(lambda: "4d2" in service.controls.state.controls.baselines, "the close of DAY1")
        await tick(1, 100 * M)
        await pay(paid("d1", 20 * M, MORNING))
        await tick(2, 80 * M)
        await pay(paid("d2", 20 * M, MORNING + timedelta(minutes=10), approval=ref))
        await tick(3, 81 * M)
        await pay(paid("c1", 5 * M, MORNING + timedelta(minutes=20), customers=True))
        await tick(4, 60 * M)
        await pay(paid("d3", 20 * M, MORNING + timedelta(minutes=30), approval=ref))
        await tick(5, 40 * M)
        await pay(paid("d4", 20 * M, MORNING + timedelta(minutes=40), approval=ref))
        await tick(6, 100 * M)
        await produce(kafka_settings, topics.statements, [close(DAY2, CUT2, 100 * M)])
        await until(lambda: service.controls.state.controls.baselines["4d2"].business_day == DAY2, "DAY2's close")
        await pay(paid("d5", 20 * M, MONDAY - timedelta(hours=1)))
        got = decisions_of(await read_all(kafka_settings, topics.state, expect=6, settle=0.2))
        assert [d.correlation_id for d in got] == ["d1", "d2", "c1", "d3", "d4", "d5"]
        assert [d.needs_approval for d in got] == [False, True, False, True, True, False]
        assert [d.outcome for d in got] == [
            "within_limit",
            "needs_approval",
            "within_limit",
            "needs_approval",
            "needs_approval",
            "within_limit",
        ]

        # Over 25% with no pre-approval at all: a violation, critical, and it pages.
        await pay(paid("d6", 30 * M, MONDAY - timedelta(minutes=30)))
        # Besides the notices: DAY1's statement, never filed, is past its noon deadline (issue #12).
        published = await alerts_on(kafka_settings, topics.alerts, expect=5)
        assert [(a.rule, a.alert_id) for a in published if not a.is_notice] == [
            ("statement_not_filed", "2026-11-19|statement_not_filed|critical")
        ]
        notices = [a for a in published if a.is_notice]
        assert [(a.correlation_id, a.rule, a.page) for a in notices] == [
            ("d2", "disbursement_25pct", False),
            ("d3", "disbursement_25pct", False),
            ("d4", "disbursement_25pct", False),
            ("d6", "disbursement_violation", True),
        ]
        assert notices[3].severity == "critical"
        samples = await scrape(service)
        assert sample(samples, m.DISBURSEMENTS_TOTAL, segment="4d2", outcome="violation") == 1
        assert sample(samples, m.WINDOW_AGGREGATE, segment="4d2") == float(50 * M)
        assert sample(samples, m.WINDOW_HEADROOM, segment="4d2", basis="daily") == float(-25 * M)

        # The what-if: a token is required; before DAY2's statement is filed, refused.
        body = {
            "segment": "4d2",
            "proposal_id": "p-1",
            "withdrawals": [{"amount": "1000.00", "recipient": "Holdco LLC", "purpose": "dividend"}],
        }
        status, answer = await what_if(service, body, token=None)
        assert status == 401
        status, answer = await what_if(service, body)
        assert status == 200 and answer["verdict"] == "refused" and not answer["prior_statement_filed"]
        assert "prior_statement_not_filed" in [r["code"] for r in answer["reasons"]]
        await produce(kafka_settings, topics.statements, [filed(DAY2)])
        await until(lambda: DAY2 in service.controls.state.filings, "the filing of DAY2")
        status, answer = await what_if(service, body)
        assert status == 200 and answer["prior_statement_filed"]
        # With a management target of 90M, 20M more takes the excess (100M) under it: refused, by JAC 18-04.
        real = real_figures("4d2", target=0)
        targeted = real_figures("4d2", 7, funds_delta=100 * M - real.excess, target=90 * M, event="fig-7")
        await produce(kafka_settings, topics.figures, [targeted])
        await until(lambda: service.controls.state.figures["4d2"].version == 7, "figures v7")
        crossing = {**body, "withdrawals": [{"amount": str(20 * M), "recipient": "Holdco LLC", "purpose": "div"}]}
        status, answer = await what_if(service, crossing)
        assert status == 200 and answer["verdict"] == "refused" and answer["prior_statement_filed"]
        assert "under_target" in {r["code"] for r in answer["reasons"]}
        assert answer["live"]["pro_forma_excess"] == str(80 * M) and answer["live"]["target"] == str(90 * M)
    finally:
        await service.stop()

    # A restart in the same group decides and pages nothing twice; a replayed disbursement is a duplicate.
    async with running(kafka_settings, config) as again:
        assert again.controls.state.controls.aggregate("4d2") == 50 * M
        assert again.controls.state.controls.baselines["4d2"].business_day == DAY2
        await publish(kafka_settings, topics.disbursements, [paid("d6", 30 * M, MONDAY - timedelta(minutes=30))])
        await until(lambda: duplicates(again) == 1, "the replayed disbursement")
    # Nothing again; on the real clock of this second alerter, DAY2's statement is past its deadline too.
    after = await alerts_on(kafka_settings, topics.alerts, expect=6)
    assert len(after) == 6 and after[5].alert_id == "2026-11-20|statement_not_filed|critical"
    assert len(decisions_of(await read_all(kafka_settings, topics.state, expect=7, settle=0.2))) == 7


async def test_approvals_and_undermargined_amounts_are_routed_with_the_disbursements(
    kafka_settings: KafkaSettings, kafka_topics: object, new_topic: NewTopic
) -> None:
    topic = new_topic("disbursements")
    approval = DisbursementApproval(
        event_id=unique_name("ap"),
        source="treasury",
        as_of=AS_OF,
        segment="4d2",
        reference="CFO-9",
        approver="Jane Doe",
        role="cfo",
    )
    amounts = UndermarginedAmounts(
        event_id=unique_name("um"),
        source="risk",
        as_of=AS_OF,
        segment="4d2",
        business_day=DAY2,
        amount=Decimal("12.50"),
    )
    await publish(kafka_settings, topic, [approval, amounts])
    records = await read_all(kafka_settings, topic, expect=2, settle=0.2)
    assert [r.key for r in records] == [b"approval|4d2|CFO-9", b"undermargined|4d2|2026-11-20"]


async def test_a_record_that_is_not_a_control_input_is_dead_lettered(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    async with running(kafka_settings, topics.config()) as alerter:
        await produce(
            kafka_settings,
            topics.disbursements,
            [
                b"not json",
                b'{"type": "fx_rate", "event_id": "fx-1", "source": "fx", "as_of": "2026-11-20T21:00:00Z", '
                b'"currency": "EUR", "usd_per_unit": "1.08"}',
                paid("d-blind", Decimal("5.00"), AS_OF).model_dump_json().encode(),
            ],
        )
        [notice] = await alerts_on(kafka_settings, topics.alerts, expect=1)
        letters = [
            DeadLetter.model_validate_json(r.value)
            for r in await read_all(kafka_settings, topics.deadletter, expect=2, settle=0.2)
        ]
        assert alerter.alive and count(alerter, "violation") == 1
    assert (notice.rule, notice.severity, notice.page, notice.figures) == (
        "disbursement_violation",
        "critical",
        True,
        None,
    )
    assert [letter.stage for letter in letters] == ["alerter", "alerter"]
    assert "JSON" in letters[0].reason
    assert letters[1].field == "type" and "a fx_rate event does not belong on" in letters[1].reason
