"""The alerter against the real broker: a scripted day of figures gives exactly four alert records, once;
a restart (same consumer group, or a new one that re-reads every figure) fires nothing again; a record it
cannot parse goes to the dead-letter topic and the consumer goes on; /metrics shows the latest figures.

Each test runs the alerter on throwaway topics and its own consumer group, so tests never share state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from schemas.alerts import Alert
from schemas.records import DeadLetter, Figures
from segwatch.config import KafkaSettings
from segwatch.waiting import wait_until
from services.alerter import metrics as m
from services.alerter.service import AlerterConfig, AlerterService
from tests.support.figures import real_figures, scripted
from tests.support.kafka import NewTopic, unique_name

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(60)]

WAIT = 15.0  # the longest any single wait in these tests may take


@dataclass
class Topics:
    figures: str
    alerts: str
    state: str
    deadletter: str
    group: str
    disbursements: str
    statements: str = ""  # "" (older callers): the default statements topic is not read (None)

    def config(self, **changes: Any) -> AlerterConfig:
        settings: dict[str, Any] = {
            "figures_topic": self.figures,
            "alerts_topic": self.alerts,
            "state_topic": self.state,
            "deadletter_topic": self.deadletter,
            "group_id": self.group,
            "host": "127.0.0.1",
            "port": 0,
            "recovery_timeout": WAIT,
            "poll_timeout": 0.2,
            "disbursements_topic": self.disbursements,
            "statements_topic": self.statements or None,
        }
        return AlerterConfig(**{**settings, **changes})


def new_topics(new_topic: NewTopic) -> Topics:
    """Throwaway topics for one alerter (figures and the state topic compacted, as declared)."""
    compact = {"cleanup.policy": "compact"}
    return Topics(
        figures=new_topic("figures", configs=compact),
        alerts=new_topic("alerts"),
        state=new_topic("alerter-state", configs=compact),
        deadletter=new_topic("deadletter"),
        group=unique_name("alerter-group"),
        disbursements=new_topic("disbursements"),
        statements=new_topic("statements", configs={"cleanup.policy": "compact"}),
    )


@pytest.fixture
def topics(kafka_topics: object, new_topic: NewTopic) -> Topics:
    return new_topics(new_topic)


@dataclass
class RecordingLogger:
    """A structlog-like logger that keeps every event with the bound context variables (correlation_id)."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def bind(self, **_: Any) -> RecordingLogger:
        return self

    def _log(self, level: str) -> Callable[..., None]:
        def log(event: str, **kw: Any) -> None:
            self.events.append({"event": event, "level": level, **structlog.contextvars.get_contextvars(), **kw})

        return log

    def __getattr__(self, level: str) -> Callable[..., None]:
        if level in ("debug", "info", "warning", "error", "critical"):
            return self._log(level)
        raise AttributeError(level)


@asynccontextmanager
async def running(settings: KafkaSettings, config: AlerterConfig, log: Any = None) -> AsyncIterator[AlerterService]:
    service = AlerterService(settings, config, logger=log or RecordingLogger())
    await asyncio.wait_for(service.start(), WAIT)
    try:
        await until(lambda: service.ready, "the alerter to become ready")
        yield service
    finally:
        await asyncio.wait_for(service.stop(), WAIT)


async def until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    await wait_until(condition, what=what, timeout=timeout, interval=0.05)


async def produce(settings: KafkaSettings, topic: str, records: Sequence[Figures | bytes]) -> None:
    producer = AIOKafkaProducer(**settings.aiokafka_kwargs(), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for record in records:
            if isinstance(record, Figures):
                await producer.send_and_wait(topic, record.model_dump_json().encode(), key=record.segment.encode())
            else:
                await producer.send_and_wait(topic, record, key=b"junk")
    finally:
        await producer.stop()


async def read_all(settings: KafkaSettings, topic: str, expect: int, settle: float = 1.0) -> list[Any]:
    """Every record on `topic`, waiting until at least `expect` are there, then `settle` seconds for more."""
    consumer = AIOKafkaConsumer(**settings.aiokafka_kwargs(), group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    records: list[Any] = []
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + WAIT
        quiet_until: float | None = None
        while True:
            now = time.monotonic()
            if len(records) >= expect:
                quiet_until = quiet_until or now + settle
                if now >= quiet_until:
                    break
            elif now > deadline:
                raise AssertionError(f"{topic}: {len(records)} records after {WAIT:g}s, expected {expect}")
            batch = await consumer.getmany(timeout_ms=200)
            for got in batch.values():
                records.extend(got)
    finally:
        await consumer.stop()
    return records


async def alerts_on(settings: KafkaSettings, topic: str, expect: int) -> list[Alert]:
    return [Alert.model_validate_json(r.value) for r in await read_all(settings, topic, expect)]


async def scrape(service: AlerterService) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{service.port}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


EXPECTED = [
    ("under_target", "firing"),
    ("deficiency", "firing"),
    ("deficiency", "resolved"),
    ("under_target", "resolved"),
]


async def test_a_scripted_day_alerts_once_and_restarts_fire_nothing_again(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    day = scripted("4d2")
    latest = day[-1]
    log = RecordingLogger()

    async with running(kafka_settings, topics.config(), log) as alerter:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{alerter.port}/readyz") as response:
            assert response.status == 200
        await produce(kafka_settings, topics.figures, day)
        alerts = await alerts_on(kafka_settings, topics.alerts, expect=4)
        assert [(a.rule, a.state) for a in alerts] == EXPECTED
        assert {a.segment for a in alerts} == {"4d2"}
        assert [a.alert_id for a in alerts] == [
            "4d2:under_target:v2",
            "4d2:deficiency:v3",
            "4d2:deficiency:v3",
            "4d2:under_target:v2",
        ]
        assert [a.correlation_id for a in alerts] == [day[i].last_event_id for i in (1, 2, 4, 5)]
        await until(
            lambda: alerter.metrics.registry.get_sample_value(m.FIGURES_TOTAL, {"segment": "4d2"}) == len(day),
            "every figures record to be counted",
        )
        samples = await scrape(alerter)
        assert sample(samples, m.EXCESS, segment="4d2") == float(latest.excess)
        assert sample(samples, m.FIGURES_VERSION, segment="4d2") == latest.version
        assert sample(samples, m.STATEMENT_LINE, segment="4d2", line="7070") == float(latest.lines["7070"])
        assert sample(samples, m.ALERTS_TOTAL, rule="deficiency", severity="critical", state="firing") == 1
        assert sample(samples, m.ALERT_FIRING, segment="4d2", rule="deficiency") == 0
        assert sample(samples, m.EVENT_TO_ALERT + "_count") == 4
        # Every log line about an alert carries the correlation id of the figures behind it.
        logged = [e for e in log.events if e["event"].startswith("alert ") and "alert_id" in e]
        assert [(e["rule"], e["correlation_id"]) for e in logged] == [(a.rule, a.correlation_id) for a in alerts]
    # The state topic keeps the latest record of each alert.
    mirrored = await alerts_on(kafka_settings, topics.state, expect=4)
    assert [(a.rule, a.state) for a in mirrored] == EXPECTED

    # Restart in the same group and replay the whole day: nothing new.
    async with running(kafka_settings, topics.config()) as again:
        samples = await scrape(again)  # primed from the compacted figures topic before any new record
        assert sample(samples, m.EXCESS, segment="4d2") == float(latest.excess)
        await produce(kafka_settings, topics.figures, day)
        await until(
            lambda: again.metrics.registry.get_sample_value(m.STALE_FIGURES_TOTAL, {"segment": "4d2"}) == len(day),
            "the replay to be read",
        )
        assert again.states.version("4d2") == latest.version
        samples = await scrape(again)
        assert sample(samples, m.FIGURES_VERSION, segment="4d2") == latest.version
        assert sample(samples, m.EXCESS, segment="4d2") == float(latest.excess)
        assert sample(samples, m.ALERTS_TOTAL, rule="deficiency", severity="critical", state="firing") is None

    # A new consumer group starts at the figures in force (already evaluated): still nothing new.
    fresh = topics.config(group_id=unique_name("alerter-group"))
    async with running(kafka_settings, fresh) as third:
        await until(
            lambda: third.metrics.registry.get_sample_value(m.STALE_FIGURES_TOTAL, {"segment": "4d2"}) == 1,
            "the figures in force to be read",
        )
        assert third.states.version("4d2") == latest.version
    assert [(a.rule, a.state) for a in await alerts_on(kafka_settings, topics.alerts, expect=4)] == EXPECTED


async def test_a_new_alerter_judges_the_figures_in_force_not_the_history_before_them(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """An opening's transient deficiency of long ago, kept by the compacted topic, must not page a new alerter;
    a deficiency in force must."""
    real = real_figures("4d2")
    history = [real_figures("4d2", 1, funds_delta=-real.excess - 1), real_figures("4d2", 2)]  # deficient, cured
    await produce(kafka_settings, topics.figures, history)
    async with running(kafka_settings, topics.config()) as alerter:
        await until(lambda: alerter.states.version("4d2") == 2, "the figures in force to be evaluated")
        await produce(kafka_settings, topics.figures, [real_figures("4d2", 3, funds_delta=-real.excess - 1)])
        alerts = await alerts_on(kafka_settings, topics.alerts, expect=2)
    assert [(a.rule, a.state, a.figures.version if a.figures else None) for a in alerts] == [
        ("under_target", "firing", 3),
        ("deficiency", "firing", 3),
    ]
    # A restart in the same group resumes from its offsets: the cure after it is evaluated, once.
    async with running(kafka_settings, topics.config()):
        await produce(kafka_settings, topics.figures, [real_figures("4d2", 4)])
        alerts = await alerts_on(kafka_settings, topics.alerts, expect=4)
    assert [(a.rule, a.state) for a in alerts[2:]] == [("deficiency", "resolved"), ("under_target", "resolved")]


async def test_an_incident_open_across_a_restart_resolves_under_its_own_id(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    real = real_figures("30.7")
    deficient = real_figures("30.7", 2, funds_delta=-real.excess - 1)
    async with running(kafka_settings, topics.config()) as alerter:
        await produce(kafka_settings, topics.figures, [real_figures("30.7", 1), deficient])
        fired = await alerts_on(kafka_settings, topics.alerts, expect=2)
        assert alerter.states.is_firing("30.7", "deficiency")
    async with running(kafka_settings, topics.config()) as restarted:
        assert restarted.states.is_firing("30.7", "deficiency")  # rebuilt from the alert topic
        samples = await scrape(restarted)
        assert sample(samples, m.ALERT_FIRING, segment="30.7", rule="deficiency") == 1
        await produce(kafka_settings, topics.figures, [real_figures("30.7", 3)])
        alerts = await alerts_on(kafka_settings, topics.alerts, expect=4)
    assert [(a.rule, a.state) for a in alerts] == EXPECTED
    assert alerts[2].alert_id == fired[1].alert_id == "30.7:deficiency:v2"
    assert alerts[2].started_at == fired[1].started_at


async def test_a_record_it_cannot_parse_is_dead_lettered_and_the_consumer_goes_on(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    real = real_figures("4df")
    bad_segment = real.model_dump_json().replace('"segment":"4df"', '"segment":"4d9"').encode()
    async with running(kafka_settings, topics.config()) as alerter:
        await produce(
            kafka_settings,
            topics.figures,
            [
                b"not json at all",
                bad_segment,
                b"\xff\xfe",
                real_figures("4df", 1, funds_delta=-real.excess - 1),
            ],
        )
        letters = [
            DeadLetter.model_validate_json(r.value) for r in await read_all(kafka_settings, topics.deadletter, expect=3)
        ]
        alerts = await alerts_on(kafka_settings, topics.alerts, expect=2)
        assert alerter.alive
    assert [letter.stage for letter in letters] == ["alerter"] * 3
    assert all(letter.source.startswith(f"{topics.figures}[0]@") for letter in letters)
    assert letters[0].payload == "not json at all" and "JSON" in letters[0].reason
    assert letters[1].field == "segment" and "'4d2', '30.7' or '4df'" in letters[1].reason
    assert letters[2].payload_encoding == "base64"
    assert [(a.segment, a.rule, a.state) for a in alerts] == [
        ("4df", "under_target", "firing"),
        ("4df", "deficiency", "firing"),
    ]


async def test_the_state_topic_remembers_what_the_alert_topic_no_longer_keeps(
    kafka_settings: KafkaSettings, topics: Topics, new_topic: NewTopic
) -> None:
    real = real_figures("4df")
    deficient = [real_figures("4df", v, funds_delta=-real.excess - v) for v in (1, 2)]
    async with running(kafka_settings, topics.config()):
        await produce(kafka_settings, topics.figures, deficient[:1])
        fired = await alerts_on(kafka_settings, topics.alerts, expect=2)
    # As if retention had dropped every record of the alert topic: only the compacted state topic has them.
    expired = new_topic("alerts-expired")
    async with running(kafka_settings, topics.config(alerts_topic=expired)) as restarted:
        assert restarted.states.is_firing("4df", "deficiency") and restarted.states.version("4df") == 1
        await produce(kafka_settings, topics.figures, [deficient[1], real_figures("4df", 3)])
        alerts = await alerts_on(kafka_settings, expired, expect=2)
    assert [(a.rule, a.state, a.alert_id) for a in alerts] == [
        ("deficiency", "resolved", fired[1].alert_id),
        ("under_target", "resolved", fired[0].alert_id),
    ]
