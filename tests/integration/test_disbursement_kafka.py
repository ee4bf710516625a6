"""CBOT Rule 971.E on the real broker: disbursements go through the ingest publisher to their own topic, and
the alerter checks each against the latest figures it has seen — within the limit nothing, the aggregate
crossing 25% a notice, critical without a pre-approval and warning with one — never a second notice for a
duplicate, nor after a restart (same group, or a new group re-reading everything), and the aggregation
window survives the restart. Without figures the check cannot be made and a warning says so; a record that
is not a disbursement is dead-lettered and the consumer goes on.

Every test runs on throwaway topics and its own consumer group.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from schemas.alerts import Alert
from schemas.events import Disbursement
from schemas.records import DeadLetter, Figures
from segwatch.config import KafkaSettings
from segwatch.kafka.topics import DISBURSEMENTS
from services.alerter import metrics as m
from services.alerter.service import AlerterService
from services.ingest.publisher import KafkaPublisher
from tests.support.figures import real_figures
from tests.support.kafka import NewTopic, unique_name

from .test_alerter_kafka import Topics, alerts_on, new_topics, produce, read_all, running, sample, scrape, until

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


def payout(event_id: str, amount: str, *, segment: str = "4d2", approval: str | None = None,
           customers: bool = False) -> Disbursement:
    return Disbursement(
        event_id=event_id, source="treasury", as_of=AS_OF, segment=segment,  # type: ignore[arg-type]
        amount=Decimal(amount), recipient=f"Recipient of {event_id}", purpose="transfer to the firm's account",
        for_customer_benefit=customers, approval=approval,
    )


async def publish(settings: KafkaSettings, topic: str, events: Sequence[Disbursement]) -> None:
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


async def test_the_25_percent_rule_live_once_and_across_restarts(kafka_settings: KafkaSettings, topics: Topics) -> None:
    within, crossing = payout("d-within", "200000.00"), payout("d-crossing", "100000.00")  # 300,000 > 250,000
    approved = payout("d-approved", "300000.00", approval="CFO-2026-117")
    for_customers = payout("c-customers", "900000.00", customers=True)

    async with running(kafka_settings, topics.config()) as alerter:
        await produce(kafka_settings, topics.figures, [figures("4d2", 1, EXCESS)])
        await until(lambda: alerter.metrics.registry.get_sample_value(m.FIGURES_TOTAL, {"segment": "4d2"}) == 1,
                    "the figures to be evaluated")
        await publish(kafka_settings, topics.disbursements, [within, crossing, approved, for_customers, crossing])
        await until(lambda: duplicates(alerter) == 1, "the duplicate to be read")
        first = await alerts_on(kafka_settings, topics.alerts, expect=2)
        assert notices(first) == [("d-crossing", "critical"), ("d-approved", "warning")]
        assert [a.state for a in first] == ["notice", "notice"] and {a.rule for a in first} == {"disbursement_25pct"}
        crossed, pre_approved = (a.disbursement for a in first)
        assert crossed is not None and pre_approved is not None
        assert (crossed.prior, crossed.aggregate, crossed.limit, crossed.excess, crossed.calculation) == (
            Decimal("200000.00"), Decimal("300000.00"), Decimal("250000.00"), EXCESS, 1,
        )
        assert crossed.approval is None and pre_approved.approval == "CFO-2026-117" and pre_approved.alone_exceeds
        assert "$100,000.00 to Recipient of d-crossing" in first[0].summary and "limit $250,000.00" in first[0].summary
        samples = await scrape(alerter)
        assert sample(samples, m.DISBURSEMENTS_TOTAL, segment="4d2", outcome="within_limit") == 1
        assert sample(samples, m.DISBURSEMENTS_TOTAL, segment="4d2", outcome="needs_approval") == 2
        assert sample(samples, m.DISBURSEMENTS_TOTAL, segment="4d2", outcome="customer_benefit") == 1
        assert sample(samples, m.ALERTS_TOTAL, rule="disbursement_25pct", severity="critical", state="notice") == 1

    # Restart in the same group: the replays are duplicates, and the window (600,000 since v1) survived.
    async with running(kafka_settings, topics.config()) as again:
        assert again.disbursements.calculations["4d2"].version == 1  # the latest figures, from the topic
        await publish(kafka_settings, topics.disbursements, [within, crossing, approved, payout("d-cent", "0.01")])
        await until(lambda: duplicates(again) == 3 and count(again, "needs_approval") == 1, "the replay to be read")
        after = await alerts_on(kafka_settings, topics.alerts, expect=3)
        assert notices(after) == [("d-crossing", "critical"), ("d-approved", "warning"), ("d-cent", "critical")]
        assert after[2].disbursement is not None and after[2].disbursement.prior == Decimal("600000.00")

    # A new group reads every disbursement and figure from the beginning: nothing is counted or noticed again.
    async with running(kafka_settings, topics.config(group_id=unique_name("alerter-group"))) as fresh:
        await until(lambda: duplicates(fresh) == 9, "every disbursement to be re-read")
        assert sum(count(fresh, outcome) for outcome in ("within_limit", "needs_approval", "unchecked")) == 0
    assert notices(await alerts_on(kafka_settings, topics.alerts, expect=3)) == notices(after)


async def test_without_figures_a_warning_says_the_check_could_not_be_made(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    async with running(kafka_settings, topics.config()) as alerter:
        await produce(kafka_settings, topics.disbursements, [
            b"not json",
            b'{"type": "fx_rate", "event_id": "fx-1", "source": "fx", "as_of": "2026-11-20T21:00:00Z", '
            b'"currency": "EUR", "usd_per_unit": "1.08"}',
            payout("d-blind", "5.00", segment="30.7").model_dump_json().encode(),
        ])
        [notice] = await alerts_on(kafka_settings, topics.alerts, expect=1)
        letters = [DeadLetter.model_validate_json(r.value)
                   for r in await read_all(kafka_settings, topics.deadletter, expect=2, settle=0.2)]
        assert alerter.alive and count(alerter, "unchecked", "30.7") == 1
    assert (notice.state, notice.severity, notice.segment, notice.figures) == ("notice", "warning", "30.7", None)
    assert "could NOT be checked" in notice.summary and notice.correlation_id == "d-blind"
    assert [letter.stage for letter in letters] == ["alerter", "alerter"]
    assert "JSON" in letters[0].reason
    assert letters[1].field == "type" and "a fx_rate event does not belong on" in letters[1].reason
