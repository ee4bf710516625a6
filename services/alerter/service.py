"""The alerter: figures and disbursements in, alert state changes and notices out (segwatch.alerts), metrics.

For each figures record, in order: parse it (a record that is not a valid `Figures` goes to the dead-letter
topic with the reason), evaluate the rules (segwatch.core.rules), publish each alert state change keyed by
"segment|rule" with an idempotent producer, wait for Kafka to acknowledge, and only then commit the figures
offset. Nothing is lost: a crash before the commit re-reads the figures, and the state rebuilt from the
alert topic makes the replay change nothing, so an incident is never fired twice.

State recovery happens whenever the figures partition is assigned (at start and after every rebalance):
the alert topic is read from its beginning to its end offsets, plus the alerter's compacted state topic,
which keeps each alert's latest record after the alert topic's retention has dropped it. The newest record
of each (segment, rule) wins; the last figures version per segment is the newest version in those records.

Controls before the money moves (issue #13; services/alerter/controls.py): the statements and disbursements
topics, consumed by the same group (one partition each, so one member owns every input), feed
segwatch.core.controls (the 25% disbursement control: a decision record per disbursement on the state topic,
a notice on the alert topic when one is owed, a violation pages) and segwatch.core.residual (residual interest
vs undermargined amounts, also on a timer); the alerter serves `POST /v1/what-if` (JAC 18-04) from that state.
Within one poll, records of the topics are taken in Kafka-timestamp order (each partition's own order kept),
so a disbursement is compared with the figures published before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError
from pydantic import ValidationError

from schemas.alerts import Alert
from schemas.errors import first_error
from schemas.records import Figures
from segwatch.config import KafkaSettings
from segwatch.core.rules import AlertStates, evaluate
from segwatch.deadletter import dead_letter
from segwatch.kafka.topics import (
    ALERTER_ALERTS_CHANGELOG,
    ALERTER_APP_ID,
    ALERTS,
    DEADLETTER,
    DISBURSEMENTS,
    FIGURES,
    STATEMENTS,
)
from services.alerter import holdings
from services.alerter.business_day import AlerterBusinessDay
from services.alerter.clock import shifted
from services.alerter.controls import AlerterControls
from services.alerter.http import HttpServer
from services.alerter.metrics import AlerterMetrics
from services.alerter.record_api import RecordApi
from services.alerter.recovery import RecoveryError, parse_alerts, partition_counts, read_to_end, recover_states

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8703
STAGE = "alerter"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AlerterConfig:
    """Topic names and group id (overridable, e.g. for isolated tests), the HTTP address and time limits."""

    figures_topic: str = FIGURES
    # Disbursements, their approvals, undermargined amounts (issue #13); None: do not consume them.
    disbursements_topic: str | None = DISBURSEMENTS
    # The daily computations (StatementRecord: the 25% baseline) and filings (DayStatus); None: none.
    statements_topic: str | None = STATEMENTS
    alerts_topic: str = ALERTS
    # Compacted copy of each alert's latest record (None: rebuild from the alert topic alone).
    state_topic: str | None = ALERTER_ALERTS_CHANGELOG
    deadletter_topic: str = DEADLETTER
    group_id: str = ALERTER_APP_ID
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0: any free port (see AlerterService.port)
    recovery_timeout: float = 60.0
    poll_timeout: float = 0.5
    max_batch: int = 500
    controls_interval: float = 30.0  # seconds between evaluations of the time-based rules (0: none)
    day_interval: float = 15.0  # seconds between evaluations of the filing deadlines (issue #12; 0: none)
    clock_offset: float = 0.0  # seconds added to the clock (tests and rehearsals: services/alerter/clock.py)
    firm_name: str = "segwatch FCM"  # the firm in a statement's text header (the read API)
    tokens: tuple[bytes, ...] | None = None  # the what-if's bearer tokens; None: SEGWATCH_INGEST_TOKENS(_FILE)

    @property
    def recovery_topics(self) -> tuple[str, ...]:
        return (self.alerts_topic,) if self.state_topic is None else (self.alerts_topic, self.state_topic)

    @property
    def input_topics(self) -> tuple[str, ...]:
        optional = (self.disbursements_topic, self.statements_topic)
        return (self.figures_topic, *(topic for topic in optional if topic is not None))


def _kafka_order(record: Any) -> int:
    timestamp = getattr(record, "timestamp", None)
    return timestamp if isinstance(timestamp, int) else 0


def _kafka_time(record: Any) -> datetime | None:
    timestamp = getattr(record, "timestamp", None)
    if timestamp is None or timestamp < 0:
        return None
    return datetime.fromtimestamp(timestamp / 1000, UTC)


class AlerterService:
    """One alerter instance. `await start()`, then `await wait()` (or `stop()`)."""

    def __init__(
        self,
        settings: KafkaSettings,
        config: AlerterConfig | None = None,
        *,
        metrics: AlerterMetrics | None = None,
        clock: Callable[[], datetime] = utcnow,
        logger: Any = None,
    ) -> None:
        self.settings = settings
        self.config = config or AlerterConfig()
        self.metrics = metrics or AlerterMetrics()
        self.clock = shifted(clock, self.config.clock_offset)
        self.log: Any = logger if logger is not None else structlog.get_logger().bind(service=STAGE)
        self.states = AlertStates()
        self.controls = AlerterControls(self)
        self.business_day = AlerterBusinessDay(self)  # issue #12: the filing deadlines and the day's record
        self.record_api = RecordApi(self)
        self.http = HttpServer(self, self.config.host, self.config.port)
        self._producer: Any = None
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._recovered = False
        self._recovery_error: BaseException | None = None
        self._start_offsets: dict[Any, int] = {}  # figures partitions started at the figures in force

    # --- life cycle -------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.http.port

    @property
    def ready(self) -> bool:
        """State recovered and the figures partition assigned: the alerts it publishes are right."""
        return self._recovered and self._consumer is not None and bool(self._consumer.assignment())

    @property
    def http_routes(self) -> tuple[Callable[[Any], None], ...]:
        """Endpoints beyond the probes: POST /v1/what-if."""
        return (self.controls.install, self.record_api.install)

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        cfg = self.config
        await self.http.start()
        self.log.info(
            "alerter starting",
            http=f"http://{cfg.host}:{self.port}",
            figures=cfg.figures_topic,
            disbursements=cfg.disbursements_topic,
            alerts=cfg.alerts_topic,
            state=cfg.state_topic,
            group=cfg.group_id,
        )
        try:
            # Fail fast, naming the topic, when the topics have not been applied.
            await partition_counts(
                self.settings,
                [*cfg.input_topics, *cfg.recovery_topics, cfg.deadletter_topic],
                timeout=cfg.recovery_timeout,
            )
            self._producer = AIOKafkaProducer(
                **self.settings.aiokafka_kwargs(),
                enable_idempotence=True,
                acks="all",
                client_id=f"{cfg.group_id}-producer",
            )
            await self._producer.start()
            await self._show_latest_figures()
            self._consumer = AIOKafkaConsumer(
                **self.settings.aiokafka_kwargs(),
                group_id=cfg.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                client_id=f"{cfg.group_id}-consumer",
            )
            self._consumer.subscribe(list(cfg.input_topics), listener=_Listener(self))
            await self._consumer.start()
        except BaseException:
            await self._close()
            raise
        self._task = asyncio.create_task(self._run(), name="alerter-consume")
        self.controls.start()
        self.business_day.start()

    async def wait(self) -> None:
        """Until the consumer stops: after `stop()`, or with the exception that ended it."""
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        """Finish the batch in hand (alerts acknowledged, offsets committed), then close everything."""
        self._stopping.set()
        await self.controls.stop()
        await self.business_day.stop()
        task = self._task
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=self.config.poll_timeout * 4 + 10)
            if not done:
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._close()
        self.log.info("alerter stopped")

    @property
    def healthy(self) -> bool:
        """Alive: not failed (recovering and not yet ready still counts as alive)."""
        if self._recovery_error is not None:
            return False
        task = self._task
        return task is None or not task.done() or self._stopping.is_set()

    async def _close(self) -> None:
        self.metrics.set_ready(False)
        self._recovered = False
        for client in (self._consumer, self._producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()
        self._consumer = self._producer = None
        await self.http.stop()

    # --- recovery ---------------------------------------------------------------------------------------

    async def recover(self) -> None:
        """Rebuild the alert state from the alert (and state) topic: the newest record per key wins. And the
        controls: the latest figures, the statements, approvals and amounts, the decisions and notices."""
        self._recovered = False
        self.metrics.set_ready(False)
        try:
            latest = await self._latest_figures()
            recovered = await recover_states(
                self.settings, self.config.recovery_topics, timeout=self.config.recovery_timeout
            )
            await self.controls.recover(latest, recovered.decisions, recovered.notices)
            await self.business_day.recover()
        except BaseException as exc:
            self._recovery_error = exc
            self.log.error("alert state recovery failed", error=str(exc) or type(exc).__name__)
            raise
        self.states = recovered.states
        self.metrics.show_alert_states(self.states.alerts.values())
        self.business_day.show_firing()
        await self.business_day.after_recovery()
        firing = sorted(a.alert_id for a in self.states.alerts.values() if a.state == "firing")
        self.log.info(
            "alert state recovered",
            records=recovered.records,
            unreadable=recovered.unreadable,
            firing=firing,
            versions=dict(self.states.versions),
            seconds=round(recovered.seconds, 3),
        )
        self._recovered = True
        self.metrics.set_ready(self.ready)

    async def _latest_figures(self) -> list[Figures]:
        """The newest figures record of each segment on the (compacted) figures topic."""
        latest, _ = await self._latest_figures_records()
        return [figures for figures, _ in latest]

    async def _latest_figures_records(self) -> tuple[list[tuple[Figures, Any]], dict[int, int]]:
        """The newest figures record of each segment (with its Kafka record), and per partition the offset
        after the last record read."""
        topic = self.config.figures_topic
        counts = await partition_counts(self.settings, [topic], timeout=self.config.recovery_timeout)
        records = await read_to_end(self.settings, topic, counts[topic], timeout=self.config.recovery_timeout)
        latest: dict[str, tuple[Figures, Any]] = {}
        ends: dict[int, int] = {}
        for record in records:
            ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
            if record.value is None:
                continue
            try:
                figures = Figures.model_validate_json(record.value)
            except ValidationError:
                continue  # the consumer dead-letters it when it gets there
            held = latest.get(figures.segment)
            if held is None or figures.version > held[0].version:
                latest[figures.segment] = (figures, record)
        return [latest[segment] for segment in sorted(latest)], ends

    async def _start_at_figures_in_force(self, assigned: Sequence[Any]) -> None:
        """A figures partition this group never committed (a new alerter, or its offsets expired) starts at the
        figures in force, the newest record of each segment, not at the topic's history: the compacted topic
        keeps arbitrary old figures (an opening's transient deficiency of hours ago) that would page now.
        A restarted alerter resumes from its committed offsets and so still sees every figures record."""
        consumer = self._consumer
        figures_tps = [tp for tp in assigned if tp.topic == self.config.figures_topic]
        fresh = [tp for tp in figures_tps if await consumer.committed(tp) is None]
        if not fresh:
            return
        latest, ends = await self._latest_figures_records()
        partitions = {tp.partition for tp in fresh}
        records = sorted((r for _, r in latest if r.partition in partitions), key=lambda r: (r.partition, r.offset))
        pending: list[asyncio.Future[Any]] = []
        for record in records:
            await self._handle_figures(record, pending)
        if pending:
            await asyncio.gather(*pending)
        start = {tp: ends[tp.partition] for tp in fresh if tp.partition in ends}
        for tp, offset in start.items():
            consumer.seek(tp, offset)
            self._start_offsets[tp] = offset
        if start:
            await consumer.commit(start)
        self.log.info(
            "first start: the figures in force evaluated, the history before them skipped",
            evaluated=[f"{r.partition}@{r.offset}" for r in records],
            skipped_to={f"{tp.topic}[{tp.partition}]": o for tp, o in start.items()},
        )

    async def _show_latest_figures(self) -> None:
        """Prime the gauges with the latest figures of each segment (the figures topic is compacted), so
        /metrics shows them right after a restart. The rules see figures only through the consumer group."""
        latest = await self._latest_figures()
        shown = sum(self.metrics.show_figures(figures) for figures in latest)
        self.log.info("latest figures shown", segments=len(latest), shown=shown)

    async def _on_revoked(self) -> None:
        async with self._lock:  # let the batch in hand finish (alerts acknowledged) first
            self._recovered = False
            self.metrics.set_ready(False)

    async def _on_assigned(self, assigned: Sequence[Any]) -> None:
        async with self._lock:
            self.log.info("partitions assigned", partitions=sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))
            if assigned:
                await self.recover()
                self._recovered = False  # ready only once a first start has judged the figures in force
                await self._start_at_figures_in_force(assigned)
                self._recovered = True
            self.metrics.set_ready(self.ready)

    # --- the consumer loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        consumer = self._consumer
        try:
            while not self._stopping.is_set():
                if self._recovery_error is not None:
                    raise RecoveryError(f"alert state recovery failed: {self._recovery_error}")
                batch = await consumer.getmany(
                    timeout_ms=int(self.config.poll_timeout * 1000), max_records=self.config.max_batch
                )
                if batch:
                    await self._commit(await self._apply(batch))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.log.error("alerter consumer failed", error=str(exc) or type(exc).__name__, exc_info=True)
            raise

    async def _apply(self, batch: dict[Any, list[Any]]) -> dict[Any, int]:
        """One fetch, evaluated with its alerts and dead letters acknowledged: the offsets to commit (none while
        a rebalance is under way: those records are read again after it)."""
        consumer = self._consumer
        async with self._lock:
            assignment = consumer.assignment()
            if not self._recovered:
                for tp, records in batch.items():
                    if tp in assignment:
                        consumer.seek(tp, records[0].offset)
                return {}
            pending: list[asyncio.Future[Any]] = []
            # A batch fetched before a first start skipped the history holds records below the start.
            mine = [
                [r for r in records if r.offset >= self._start_offsets.get(tp, 0)]
                for tp, records in batch.items()
                if tp in assignment
            ]
            # Figures and disbursements in the order Kafka stamped them, each partition's order kept.
            for record in heapq.merge(*mine, key=_kafka_order):
                await self._handle(record, pending)
            if pending:  # dead letters: acknowledged before the offsets move past them
                await asyncio.gather(*pending)
            return {tp: records[-1].offset + 1 for tp, records in batch.items() if tp in assignment}

    async def _commit(self, offsets: dict[Any, int]) -> None:
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # A rebalance took the partition: whoever has it re-reads from the last commit.
            self.log.warning("figures offsets not committed", error=str(exc))

    async def _handle(self, record: Any, pending: list[asyncio.Future[Any]]) -> None:
        if await self.business_day.handle(record, pending):
            return
        if self.controls.owns(record.topic):
            await self.controls.handle(record, pending)
        else:
            await self._handle_figures(record, pending)

    async def _dead_letter(self, record: Any, bad: _Unreadable, what: str, pending: list[asyncio.Future[Any]]) -> None:
        source = f"{record.topic}[{record.partition}]@{record.offset}"
        letter = dead_letter(STAGE, source, bad.reason, record.value or b"", field=bad.field)
        pending.append(
            await self._producer.send(self.config.deadletter_topic, letter.model_dump_json().encode(), key=record.key)
        )
        self.metrics.dead_letter()
        self.log.warning(f"{what} dead-lettered", source=source, field=bad.field, reason=bad.reason)

    async def _handle_figures(self, record: Any, pending: list[asyncio.Future[Any]]) -> None:
        source = f"{record.topic}[{record.partition}]@{record.offset}"
        try:
            if record.value is None:
                raise _Unreadable("(record)", "empty value (tombstone) where a figures record was expected")
            try:
                figures = Figures.model_validate_json(record.value)
            except ValidationError as exc:
                err = first_error(exc)
                raise _Unreadable(err.field, err.reason) from None
        except _Unreadable as bad:
            await self._dead_letter(record, bad, "figures record", pending)
            return

        with structlog.contextvars.bound_contextvars(correlation_id=figures.last_event_id):
            self.metrics.show_figures(figures)
            self.business_day.on_figures(figures, record.value)
            now = self.clock()
            result = holdings.extend(evaluate(self.states, figures, now=now), figures, now=now)  # + issue #14
            if result.stale:
                self.metrics.stale_figures(figures)
                self.log.debug(
                    "figures replay ignored",
                    segment=figures.segment,
                    version=figures.version,
                    last_version=self.states.version(figures.segment),
                    source=source,
                )
                return
            self.metrics.figures_evaluated(figures, _kafka_time(record))
            self.log.debug(
                "figures evaluated",
                segment=figures.segment,
                version=figures.version,
                excess=str(figures.excess),
                changes=len(result.changes),
                source=source,
            )
            if result.changes:
                await self._publish(result.changes, figures.ingested_at)
            self.states = result.states
            await self.controls.on_figures(figures)

    async def _publish(self, alerts: Sequence[Alert], ingested_at: datetime | None, *, mirror: bool = True) -> None:
        """Send the alert records in order and wait until Kafka has acknowledged every one; then (`mirror`)
        the same records to the state topic. Notices are not mirrored: the decision record stands for them."""
        cfg = self.config
        payloads = [(a.key.encode(), a.model_dump_json().encode()) for a in alerts]
        sent = [await self._producer.send(cfg.alerts_topic, value, key=key) for key, value in payloads]
        await asyncio.gather(*sent)
        acknowledged_at = self.clock()
        if mirror and cfg.state_topic is not None:  # only after the alert topic has them: the record of truth
            mirrored = [await self._producer.send(cfg.state_topic, value, key=key) for key, value in payloads]
            await asyncio.gather(*mirrored)
        for alert in alerts:
            self.metrics.alert_published(alert, acknowledged_at, ingested_at)
            if alert.is_notice:
                level = "error" if alert.severity == "critical" else "warning"
            else:
                level = (
                    "critical"
                    if alert.page and alert.state == "firing"
                    else ("warning" if alert.state == "firing" else "info")
                )
            f = alert.figures
            getattr(self.log, level)(
                f"alert {alert.state}",
                alert_id=alert.alert_id,
                rule=alert.rule,
                segment=alert.segment,
                severity=alert.severity,
                page=alert.page,
                summary=alert.summary,
                version=f.version if f is not None else None,
                excess=str(f.excess) if f is not None else None,
                target=str(f.target) if f is not None else None,
                runbook=alert.runbook,
            )


class _Unreadable(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Rebuild the state whenever the partitions are (re)assigned; stop processing when they are revoked."""

    def __init__(self, service: AlerterService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: Sequence[Any]) -> None:
        await self.service._on_revoked()

    async def on_partitions_assigned(self, assigned: Sequence[Any]) -> None:
        try:
            await self.service._on_assigned(assigned)
        except Exception as exc:  # aiokafka would only log it: the consumer loop raises it instead
            self.service._recovery_error = self.service._recovery_error or exc


__all__ = ["AlerterConfig", "AlerterService", "parse_alerts"]
