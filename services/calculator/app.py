"""The calculator: a faust-streaming app wiring the statement core to Kafka.

Two agents:
- `aggregate` reads balances in batches, keeps the latest balance per key in changelog-backed tables
  (`accounts`, `depositories`), and publishes one partial per balances partition per batch;
- `consolidate` reads partials and settings, keeps them in the changelog-backed `combiner` table, and
  publishes a figures record per segment whenever a figure changes.
Records it cannot process go to the dead-letter topic with the reason; the streams go on.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from faust.types import TP
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import ValidationError

from schemas.errors import first_error
from schemas.events import (
    EVENT_ADAPTER,
    AccountBalance,
    DepositoryBalance,
    ForeignRequirement,
    FxRate,
    ManagementTarget,
)
from segwatch.config import KafkaSettings
from segwatch.core.ledger import Held
from segwatch.deadletter import dead_letter
from segwatch.kafka import topics
from segwatch.logs import configure
from services.calculator.combiner import Combiner
from services.calculator.partials import Partial, PartitionState

log = configure("calculator")


@dataclass(frozen=True, slots=True)
class CalculatorConfig:
    app_id: str = topics.CALCULATOR_APP_ID
    balances: str = topics.BALANCES
    settings: str = topics.SETTINGS
    partials: str = topics.PARTIALS
    figures: str = topics.FIGURES
    deadletter: str = topics.DEADLETTER
    partitions: int = topics.DEFAULT_BALANCE_PARTITIONS
    batch_max: int = 5000
    # No change waits longer than the coalescing interval: half of it batching balances, half combining.
    coalesce_ms: int = 50
    web_host: str = "127.0.0.1"
    web_port: int = 8702
    datadir: str = ""

    @classmethod
    def from_env(cls) -> CalculatorConfig:
        env = os.environ
        spec = topics.by_name()
        return cls(
            partitions=spec[topics.BALANCES].partitions,
            coalesce_ms=int(env.get("SEGWATCH_COALESCE_MS", "50")),
            batch_max=int(env.get("SEGWATCH_CALCULATOR_BATCH", "5000")),
            web_host=env.get("SEGWATCH_BIND", "127.0.0.1"),
            web_port=int(env.get("SEGWATCH_CALCULATOR_PORT", "8702")),
            datadir=env.get("SEGWATCH_CALCULATOR_DATADIR", ""),
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.balances = Counter(
            "segwatch_calculator_balances", "Balance events by outcome", ["outcome"], registry=self.registry
        )
        self.settings = Counter(
            "segwatch_calculator_settings", "Setting events by outcome", ["outcome"], registry=self.registry
        )
        self.figures = Counter(
            "segwatch_calculator_figures", "Figures records published", ["segment"], registry=self.registry
        )
        self.batch = Histogram(
            "segwatch_calculator_batch_seconds", "Time to apply one batch of balances", registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.lag = Gauge(
            "segwatch_calculator_consumer_lag", "Balance records not yet applied, per partition",
            ["topic", "partition"], registry=self.registry,
        )
        self.batch_size = Histogram(
            "segwatch_calculator_batch_events", "Balance events per batch", registry=self.registry,
            buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000),
        )


BALANCE_TYPES = (AccountBalance, DepositoryBalance)
SETTING_TYPES = (ManagementTarget, ForeignRequirement, FxRate)


def _ts(message: Any) -> datetime | None:
    ts = getattr(message, "timestamp", None)
    return datetime.fromtimestamp(ts, UTC) if ts else None


def create_app(cfg: CalculatorConfig | None = None, kafka: KafkaSettings | None = None) -> faust.App:
    cfg = cfg or CalculatorConfig.from_env()
    kafka = kafka or KafkaSettings.from_env()
    app = faust.App(
        cfg.app_id,
        **kafka.faust_kwargs(),
        store="memory://",
        datadir=cfg.datadir or f"/tmp/{cfg.app_id}-data",
        topic_partitions=cfg.partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=0.002,
        stream_buffer_maxsize=max(4096, cfg.batch_max * 2),
        broker_max_poll_records=max(500, cfg.batch_max),
        web_enabled=True,
        web_host=cfg.web_host,
        web_port=cfg.web_port,
        web_in_thread=False,
    )
    metrics = Metrics()
    app.segwatch_metrics = metrics  # type: ignore[attr-defined]

    def raw(name: str, partitions: int | None = None) -> faust.TopicT:
        return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=partitions)

    balances_topic = raw(cfg.balances, cfg.partitions)
    inputs_topic = app.topic(cfg.partials, cfg.settings, key_serializer="raw", value_serializer="raw")
    partials_topic = raw(cfg.partials, 1)
    figures_topic = raw(cfg.figures, 1)
    dlq_topic = raw(cfg.deadletter, 1)

    # Keyed by the balance's Kafka key, so with the producer's partitioner each entry's changelog partition
    # is its balances partition. The value records the partition and the balance per currency.
    table_kwargs: dict[str, Any] = {
        "default": None,
        "schema": faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
        "use_partitioner": True,
    }
    accounts = app.Table("accounts", partitions=cfg.partitions, **table_kwargs)
    depositories = app.Table("depositories", partitions=cfg.partitions, **table_kwargs)
    store = app.Table("combiner", partitions=1, **table_kwargs)

    states: dict[int, PartitionState] = {}
    combiner = Combiner()
    restored = False

    async def to_dlq(source: str, reason: str, payload: bytes, field: str | None = None) -> None:
        record = dead_letter("calculator", source, reason, payload, field=field)
        await dlq_topic.send(key=b"calculator", value=record.model_dump_json().encode())
        log.warning("dead_lettered", source=source, reason=reason, field=field)

    def partition_state(partition: int) -> PartitionState:
        state = states.get(partition)
        if state is None:
            state = PartitionState(partition)
            for table in (accounts, depositories):
                for key, value in table.items():
                    if value and value.get("p") == partition:
                        state.load((f"{key}|{ccy}", Held.from_wire(wire)) for ccy, wire in value["h"].items())
            states[partition] = state
            log.info("partition_state_loaded", partition=partition, keys=len(state.aggregate.held))
        return state

    async def on_revoked(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Another worker owns these partitions now; it rebuilds their state from the changelog.
        revoked = args[0] if args else kwargs.get("revoked", ())
        for tp in revoked:
            if tp.topic == cfg.balances:
                states.pop(tp.partition, None)

    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]  # mode's stub rejects any coroutine

    @app.agent(balances_topic, name="aggregate")
    async def aggregate(stream: AsyncIterable[Any]) -> None:
        async for events in stream.take_events(cfg.batch_max, within=cfg.coalesce_ms / 2000):  # type: ignore[attr-defined]
            await apply_balances(events)

    async def apply_balances(events: Sequence[Any]) -> None:
        started = time.perf_counter()
        touched: dict[tuple[int, str, str], AccountBalance | DepositoryBalance] = {}
        for event in events:
            message = event.message
            where = f"{message.topic}[{message.partition}]@{message.offset}"
            try:
                ev = EVENT_ADAPTER.validate_json(event.value)
            except ValidationError as exc:
                err = first_error(exc)
                metrics.balances.labels("dead_lettered").inc()
                await to_dlq(where, err.reason, event.value, err.field)
                continue
            if not isinstance(ev, BALANCE_TYPES):
                metrics.balances.labels("dead_lettered").inc()
                await to_dlq(where, f"a {ev.type} event belongs on {cfg.settings}", event.value, "type")
                continue
            if event.key != ev.key.encode():
                # Partitioning by another key would split one account's state across partitions.
                metrics.balances.labels("dead_lettered").inc()
                await to_dlq(where, f"record key {event.key!r} is not the event's key {ev.key!r}", event.value, "key")
                continue
            state = partition_state(message.partition)
            if state.apply(ev, message.offset, _ts(message)):
                touched[(message.partition, ev.key, ev.currency)] = ev
                metrics.balances.labels("applied").inc()
            else:
                metrics.balances.labels("unchanged").inc()
        # One table write per key touched in this batch (coalesced), then one partial per partition.
        for (partition, key, currency), ev in touched.items():
            table = accounts if isinstance(ev, AccountBalance) else depositories
            held = states[partition].aggregate.held[f"{key}|{currency}"]
            current = table.get(key) or {"p": partition, "h": {}}
            table[key] = {"p": partition, "h": {**current["h"], currency: held.to_wire()}}
        for partition in {p for p, _, _ in touched}:
            await partials_topic.send(key=str(partition).encode(), value=states[partition].partial().to_json())
        metrics.batch.observe(time.perf_counter() - started)
        metrics.batch_size.observe(len(events))
        last: dict[int, int] = {}
        for event in events:
            last[event.message.partition] = max(last.get(event.message.partition, -1), event.message.offset)
        for partition, offset in last.items():
            with contextlib.suppress(Exception):  # highwater is unknown until the first fetch completes
                highwater = app.consumer.highwater(TP(cfg.balances, partition))
                metrics.lag.labels(cfg.balances, str(partition)).set(max(0, highwater - offset - 1))

    def restore() -> None:
        partials: dict[int, Partial] = {}
        settings = []
        emitted: dict[str, Any] = {}
        for key, value in store.items():
            kind, _, name = key.partition("|")
            if kind == "partial":
                partials[int(name)] = Partial.from_json(value)
            elif kind == "setting":
                settings.append(EVENT_ADAPTER.validate_python(value))
            elif kind == "emitted":
                emitted[name] = value
        combiner.restore(partials, settings, emitted)  # type: ignore[arg-type]
        log.info("combiner_restored", partitions=len(partials), settings=len(settings), emitted=emitted)

    @app.agent(inputs_topic, name="consolidate")
    async def consolidate(stream: AsyncIterable[Any]) -> None:
        nonlocal restored
        async for events in stream.take_events(1000, within=cfg.coalesce_ms / 2000):  # type: ignore[attr-defined]
            if not restored:
                restore()
                restored = True
            await combine_inputs(events)

    async def combine_inputs(events: Sequence[Any]) -> None:
        for event in events:
            message = event.message
            where = f"{message.topic}[{message.partition}]@{message.offset}"
            if message.topic == cfg.partials:
                try:
                    partial = Partial.from_json(event.value)
                except (ValueError, KeyError, TypeError) as exc:
                    await to_dlq(where, f"unreadable partial: {exc}", event.value)
                    continue
                if combiner.on_partial(partial):
                    store[f"partial|{partial.partition}"] = orjson.loads(event.value)
                continue
            try:
                ev = EVENT_ADAPTER.validate_json(event.value)
            except ValidationError as exc:
                err = first_error(exc)
                metrics.settings.labels("dead_lettered").inc()
                await to_dlq(where, err.reason, event.value, err.field)
                continue
            if not isinstance(ev, SETTING_TYPES):
                metrics.settings.labels("dead_lettered").inc()
                await to_dlq(where, f"a {ev.type} event belongs on {cfg.balances}", event.value, "type")
                continue
            if combiner.on_setting(ev, _ts(message)):
                store[f"setting|{ev.key}"] = orjson.loads(ev.model_dump_json())
                metrics.settings.labels("applied").inc()
            else:
                metrics.settings.labels("unchanged").inc()
        for figures in combiner.flush(datetime.now(UTC)):
            await figures_topic.send(key=figures.segment.encode(), value=figures.model_dump_json().encode())
            store[f"emitted|{figures.segment}"] = combiner.emitted[figures.segment].to_json()
            metrics.figures.labels(figures.segment).inc()
            log.info(
                "figures", correlation_id=figures.last_event_id, segment=figures.segment, version=figures.version,
                requirement=str(figures.requirement), funds=str(figures.funds), excess=str(figures.excess),
                excess_over_target=str(figures.excess_over_target),
            )

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        recovery = getattr(app.tables, "recovery", None)
        recovered = bool(recovery and recovery.completed.is_set())
        ready = recovered and not app.rebalancing
        return web.json({"ready": ready, "recovered": recovered}, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(metrics.registry), content_type="text/plain; version=0.0.4")

    return app


def run_worker(app: faust.App, loglevel: str = "warning") -> None:
    """Run the worker in this process until SIGTERM/SIGINT."""
    from faust.worker import Worker

    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
