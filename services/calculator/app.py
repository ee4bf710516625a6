"""The calculator: a faust-streaming app wiring the statement core to Kafka.

Two stages:
- `aggregate` takes each fetch of balances whole (services/calculator/bulk.py: Faust's per-event path is far
  too slow for the balances' volume), keeps the latest balance per key in the changelog-backed tables
  `accounts` and `depositories` (services/calculator/store.py: rows held in the partition states, changelog
  written a record batch per partition, loaded in bulk on assignment), and publishes a partial per balances
  partition, at most every half coalescing interval;
- `consolidate` takes each fetch of partials and settings the same way, keeps them in the changelog-backed
  `combiner` table, and publishes a figures record per segment whenever a figure changes, at most every half
  coalescing interval. (Not a Faust agent: besides the cost per event, Faust's agent path can drop a record
  that arrives while the worker recovers, faust-streaming/faust#596, and a setting is not sent twice.)
A change waits for at most the coalescing interval in all, and not at all when none was published just
before it. Records it cannot process go to the dead-letter topic with the reason; the streams go on.

What was applied is always published, across any kill (docs/OPERATIONS.md, "Delivery guarantees"):
- `ApplyBalances.checkpoint`: a fetch's balances offsets are committed only once its changelog records AND a
  partial carrying its changes are acknowledged by Kafka (flush the outputs, flush the changelogs, commit);
- `Calculator.recover` (after every rebalance, before the streams resume): the worker publishes a partial
  for every partition whose state it loaded, so a change whose changelog record was written but whose
  partial never went out is published now (a loaded state's partials carry a higher epoch: partials.py);
  the owner of the combiner restores it from its table and from the last record of each segment actually
  on the figures topic, and flushes figures at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import faust
import orjson
from faust.types import TP
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.aiohttp import make_aiohttp_handler
from pydantic import ValidationError

from schemas.errors import first_error
from schemas.events import (
    EVENT_ADAPTER,
    BusinessDayClose,
    ForeignRequirement,
    FxRate,
    ManagementTarget,
    parse_event_json,
)
from schemas.records import Figures
from segwatch.config import KafkaSettings
from segwatch.core.calendar import BusinessCalendar, CalendarConfig
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.close import DEFAULT_RETAIN
from segwatch.deadletter import dead_letter
from segwatch.kafka import topics
from segwatch.logs import configure
from services.calculator import closing
from services.calculator.closing import ClosingStore, StatementDesk
from services.calculator.combiner import Combiner
from services.calculator.defaults import BATCH_MAX, COALESCE_MS, FETCH_BYTES
from services.calculator.fastparse import read_balance
from services.calculator.faust_adapter import CalculatorApp, StoreTable, store_factory
from services.calculator.holdings_stage import HOLDINGS_SETTING_TYPES, note_depository
from services.calculator.partials import Partial, PartitionState
from services.calculator.settings import DEFAULT_HOST, DEFAULT_PORT, config_fields
from services.calculator.store import (
    ChangelogStore,
    ChangelogWriter,
    HeldStore,
    PartitionStates,
    read_changelog,
    read_last_per_key,
)

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
    batch_max: int = BATCH_MAX  # balance records per fetch handed to `aggregate`
    fetch_bytes: int = FETCH_BYTES  # per balances partition per fetch
    # No change waits longer than the coalescing interval: half of it for partials, half for figures. Shorter
    # means fresher figures and more records (at most 1000/coalesce_ms a second per segment); see
    # docs/PERFORMANCE.md for the latency it gives.
    coalesce_ms: int = COALESCE_MS
    web_host: str = DEFAULT_HOST
    web_port: int = DEFAULT_PORT
    datadir: str = ""
    # Static group membership (KIP-345): a worker restarted with the same id takes its partitions back at once
    # instead of waiting for the broker to expire the old member's session. Stable per worker (a StatefulSet
    # pod name); unset: dynamic membership.
    instance_id: str = ""
    # The business day (issue #12, closing.py): the statements topic, the closed days kept for amendments
    # (SEGWATCH_CLOSE_RETAIN), and a fixed clock for tests and demonstrations (SEGWATCH_NOW, an ISO instant
    # with its offset; unset: the wall clock).
    statements: str = topics.STATEMENTS
    close_retain: int = DEFAULT_RETAIN
    now: str = ""

    def home(self, event_type: str) -> str:
        """The topic an event of this type belongs on."""
        if event_type in ("account_balance", "depository_balance"):
            return self.balances
        if event_type in ("statement_approval", "statement_filing"):
            return self.statements  # the day's record (issue #12), where the alerter reads them
        return topics.DISBURSEMENTS if event_type == "disbursement" else self.settings

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CalculatorConfig:
        """From the environment, through the calculator's settings model (services/calculator/settings.py)."""
        return cls(**config_fields(env))


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
            "segwatch_calculator_batch_seconds",
            "Time to apply one batch of balances",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.lag = Gauge(
            "segwatch_calculator_consumer_lag",
            "Balance records not yet applied, per partition",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "segwatch_calculator_batch_events",
            "Balance events per batch",
            registry=self.registry,
            buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 20000, 50000),
        )


SETTING_TYPES = (ManagementTarget, ForeignRequirement, FxRate, *HOLDINGS_SETTING_TYPES)
MAX_IN_FLIGHT = 2  # fetches whose changelog writes may be unacknowledged while the next one is applied
ACK_TIMEOUT = 60.0  # seconds for Kafka to acknowledge a changelog write or a partial; then the worker stops
# Canonical balance events are a few hundred bytes; a larger one (valid JSON with padding, say) is kept in the
# changelog in its canonical form, so one record never approaches a producer's limit.
CANONICAL_MAX_BYTES = 4096


def _ts(record: Any) -> datetime | None:
    """The Kafka timestamp (milliseconds) of an aiokafka record."""
    ts = getattr(record, "timestamp", None)
    return datetime.fromtimestamp(ts / 1000, UTC) if ts else None


async def crash(app: faust.App, exc: BaseException) -> None:
    """Stop the worker: a stage failed in a way that must not be skipped (its offsets stay uncommitted)."""
    log.error("calculator_failed", error=str(exc) or type(exc).__name__)
    await app.crash(exc)


class Throttle:
    """Runs `action` at most once per `interval` seconds: at once when the last run is that old, else when it
    will be. A request while a run is scheduled joins it."""

    def __init__(
        self,
        interval: float,
        action: Callable[[], Awaitable[None]],
        on_error: Callable[[BaseException], Awaitable[None]],
    ) -> None:
        self.interval = interval
        self.action = action
        self.on_error = on_error
        self.last = float("-inf")
        self.timer: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()

    async def request(self) -> None:
        if self.timer is not None:
            return
        wait = self.last + self.interval - time.monotonic()
        if wait <= 0:
            await self.run()
        else:
            self.timer = asyncio.create_task(self._later(wait))

    async def _later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self.timer = None
        try:
            await self.run()
        except Exception as exc:
            await self.on_error(exc)

    async def run(self) -> None:
        async with self.lock:
            self.last = time.monotonic()
            await self.action()


class ApplyBalances:
    """The `aggregate` stage: each fetch of balances → partition states, changelog writes, partials."""

    def __init__(
        self,
        app: CalculatorApp,
        cfg: CalculatorConfig,
        metrics: Metrics,
        states: PartitionStates,
        writer: ChangelogWriter,
        tables: Mapping[str, StoreTable],
        partials: faust.TopicT,
        to_dlq: Callable[..., Awaitable[None]],
        combine_here: Callable[[Sequence[bytes]], Awaitable[None]] | None = None,
        calendar: BusinessCalendar | None = None,
    ) -> None:
        self.app, self.cfg, self.metrics, self.states, self.writer = app, cfg, metrics, states, writer
        self.calendar = calendar or BusinessCalendar(CalendarConfig.from_env())  # the partitions' days (#12)
        self.combine_here = combine_here
        self.partials = partials
        self.to_dlq = to_dlq
        # the changelog topic and store of each kind of balance ("acct|" and "depo|" keys)
        self.changelogs: dict[str, tuple[str, ChangelogStore]] = {
            prefix: (t.changelog_topic.get_topic_name(), t.data)  # type: ignore[misc]
            for prefix, t in tables.items()
        }
        self.in_flight: deque[asyncio.Task[None]] = deque()
        self.checkpoints: set[asyncio.Task[None]] = set()
        self.dirty: set[int] = set()
        self.publish = Throttle(cfg.coalesce_ms / 2000, self._publish_partials, self._crash)
        self._acked = asyncio.Event()  # set (and replaced) whenever Kafka acknowledges a partial

    # The per-record loop is the calculator's hot path: one function, no call per record (see aggregate.put).
    async def __call__(self, batch: Mapping[TP, Sequence[Any]]) -> None:  # noqa: C901
        started = time.perf_counter()
        await self._wait_in_flight(MAX_IN_FLIGHT - 1)  # the changelog is the bottleneck: wait for it
        changes: dict[tuple[int, str], dict[str, bytes]] = {}  # (partition, "acct|" or "depo|") -> rows
        applied = unchanged = dead = events = 0
        for tp, records in batch.items():
            partition = tp.partition
            state = self.states.get(partition)
            if state is None:
                raise RuntimeError(f"balances partition {partition} is assigned but its tables were not loaded")
            day = state.closing or closing.partition_day(state, self.calendar, self.cfg.close_retain)
            put = day.put  # the live aggregate's put, and the partition's closer beside it (closing.py)
            last_event = state.batch_last_event
            accounts = changes.setdefault((partition, "acct|"), {})
            depositories = changes.setdefault((partition, "depo|"), {})
            newest = -1
            events += len(records)
            for r in records:
                raw = r.value if r.value is not None else b""
                try:
                    balance = read_balance(raw)
                except ValidationError as exc:
                    err = first_error(exc)
                    dead += 1
                    await self.to_dlq(r, err.reason, raw, err.field)
                    continue
                if not isinstance(balance, tuple):
                    dead += 1
                    await self.to_dlq(
                        r, f"a {balance.type} event belongs on {self.cfg.home(balance.type)}", raw, "type"
                    )
                    continue
                key, held_key, held = balance
                if r.key != key.encode():
                    # Partitioning by another key would split one account's state across partitions.
                    dead += 1
                    await self.to_dlq(r, f"record key {r.key!r} is not the event's key {key!r}", raw, "key")
                    continue
                if r.timestamp > newest:
                    newest = r.timestamp
                if put(held_key, held):
                    last_event[held.segment] = held.event_id
                    if len(raw) > CANONICAL_MAX_BYTES:
                        raw = parse_event_json(raw).model_dump_json().encode()
                    if held_key[0] == "a":
                        accounts[held_key] = raw
                    else:
                        depositories[held_key] = raw
                        note_depository(state.holdings, held_key, raw)  # issue #14: holdings_stage.py
                    applied += 1
                else:
                    unchanged += 1
            if records:
                state.advance(records[-1].offset, newest if newest >= 0 else None)
            changes[(partition, closing.PREFIX)] = day.take_rows(partition)  # same write, same checkpoint
        touched = {p: self.states[p] for (p, _), rows in changes.items() if rows}
        await self._write(changes, {tp: records[-1].offset + 1 for tp, records in batch.items() if records}, touched)
        if touched:
            self.dirty |= touched.keys()
            await self.publish.request()
        m = self.metrics
        m.balances.labels("applied").inc(applied)
        m.balances.labels("unchanged").inc(unchanged)
        if dead:
            m.balances.labels("dead_lettered").inc(dead)
        m.batch.observe(time.perf_counter() - started)
        m.batch_size.observe(events)
        for tp, records in batch.items():
            if records:
                high = self.app.highwater(tp)  # unknown until the first fetch completes
                if high is not None:
                    m.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - records[-1].offset - 1))

    async def _write(
        self,
        changes: Mapping[tuple[int, str], Mapping[str, bytes]],
        offsets: Mapping[TP, int],
        touched: Mapping[int, PartitionState],
    ) -> None:
        """Queue the changelog records, and the checkpoint that commits the offsets once they are durable."""
        await self.writer.start()
        pending: list[tuple[asyncio.Future[Any], int, ChangelogStore]] = []
        dumps = orjson.dumps
        for (partition, prefix), rows in changes.items():
            if rows:
                topic, store = self.changelogs[prefix]
                records = [(dumps(k), v) for k, v in rows.items()]
                for future, count in await self.writer.write(topic, partition, records):
                    pending.append((future, count, store))
        previous = self.in_flight[-1] if self.in_flight else None
        durable = asyncio.create_task(self._durable(previous, pending))
        self.in_flight.append(durable)
        # Not part of the back-pressure above: waiting for the partial (up to half the coalescing interval)
        # must not hold up the next fetch.
        targets = {p: (state, max(state.offset, 0)) for p, state in touched.items()}
        task = asyncio.create_task(self.checkpoint(durable, offsets, targets))
        self.checkpoints.add(task)
        task.add_done_callback(self.checkpoints.discard)

    async def _wait_in_flight(self, most: int) -> None:
        """Until at most `most` batches' changelog writes are unacknowledged. (Awaiting a finished task does
        not yield to the loop, so finished ones are taken off here, not by a done-callback.)"""
        in_flight = self.in_flight
        while in_flight and in_flight[0].done():
            in_flight.popleft().result()
        while len(in_flight) > most:
            await in_flight[0]
            in_flight.popleft().result()

    async def _durable(
        self, previous: asyncio.Task[None] | None, pending: Sequence[tuple[asyncio.Future[Any], int, ChangelogStore]]
    ) -> None:
        """The changelog records of one fetch are acknowledged (in order with the fetches before it)."""
        try:
            if previous is not None:
                await previous
            results = await asyncio.wait_for(asyncio.gather(*(f for f, _, _ in pending)), ACK_TIMEOUT)
            for (_, count, store), meta in zip(pending, results, strict=True):
                store.set_persisted_offset(TP(meta.topic, meta.partition), meta.offset + count - 1)
        except Exception as exc:
            # Not durable: never commit past it. A restarted worker reads these balances again.
            log.error("changelog_write_failed", error=str(exc) or type(exc).__name__)
            await self._crash(exc)
            raise

    async def checkpoint(
        self, durable: asyncio.Task[None], offsets: Mapping[TP, int], targets: Mapping[int, tuple[PartitionState, int]]
    ) -> None:
        """The one step that lets a fetch's offsets be committed: its changelog records are acknowledged, and
        so is a partial of every partition it changed that carries the change (published at most half the
        coalescing interval later). Faust's next commit then takes the offsets (BulkConsumer.processed).
        A worker killed before this reads the fetch again, and `Calculator.recover` republishes whatever its
        loaded state holds, so nothing applied stays unpublished."""
        try:
            await durable
        except Exception:
            return  # _durable stopped the worker
        deadline = time.monotonic() + ACK_TIMEOUT
        for partition, (state, offset) in targets.items():
            while state.published < offset:
                if self.states.get(partition) is not state:
                    return  # revoked or reloaded meanwhile: its new owner republishes it; commit nothing
                acked = self._acked
                remaining = deadline - time.monotonic()
                try:
                    await asyncio.wait_for(acked.wait(), max(remaining, 0))
                except TimeoutError:
                    exc = TimeoutError(
                        f"no partial of balances partition {partition} acknowledged in {ACK_TIMEOUT:.0f}s"
                    )
                    log.error("partial_not_published", partition=partition, error=str(exc))
                    await self._crash(exc)
                    return
        for tp, offset in offsets.items():
            self.app.processed(tp, offset)

    async def _publish_partials(self) -> None:
        dirty, self.dirty = self.dirty, set()
        assigned = {tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.cfg.balances}
        local: list[bytes] = []
        for partition in sorted(dirty):
            state = self.states.get(partition)
            if state is not None and partition in assigned:
                partial = state.partial()
                value = partial.to_json()
                future = await self.partials.send(key=str(partition).encode(), value=value)
                ack = asyncio.ensure_future(self._partial_acked(state, partial.offset, future))
                self.checkpoints.add(ack)
                ack.add_done_callback(self.checkpoints.discard)
                local.append(value)
        if local and self.combine_here is not None:
            # Every partition of the fetch before one flush: a flush after the first partition's partial alone
            # would publish figures that mix this fetch with older states (a false under-target or deficiency).
            await self.combine_here(local)

    async def _partial_acked(self, state: PartitionState, offset: int, future: Awaitable[Any]) -> None:
        try:
            await asyncio.wait_for(future, ACK_TIMEOUT)
        except Exception as exc:
            log.error("partial_not_published", partition=state.partition, error=str(exc) or type(exc).__name__)
            await self._crash(exc)
            return
        if offset > state.published:
            state.published = offset
        acked, self._acked = self._acked, asyncio.Event()
        acked.set()

    async def republish(self, partitions: Iterable[int]) -> None:
        """Publish a partial of each of these partitions now (after their state was loaded)."""
        self.dirty |= set(partitions)
        await self.publish.run()

    async def close(self) -> None:
        """Before the consumer's last commit: publish what is pending and let the changelog writes land."""
        with contextlib.suppress(Exception):
            if self.dirty:
                await self.publish.run()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._wait_in_flight(0), 30)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*self.checkpoints, return_exceptions=True), 30)
        await self.writer.stop()

    async def _crash(self, exc: BaseException) -> None:
        await crash(self.app, exc)


def _return_large_buffers(threshold: int = 256 * 1024) -> None:
    """glibc keeps freed large blocks (fetch responses, produce requests: megabytes each, several a second)
    in its heap and raises its mmap threshold past them, so the worker's RSS creeps up with fragmentation.
    A fixed threshold maps such blocks and gives them back on free. No-op where there is no glibc."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        m_mmap_threshold = -3  # <malloc.h>
        ctypes.CDLL("libc.so.6").mallopt(m_mmap_threshold, threshold)


class Calculator:
    """The calculator worker: its Faust app, tables and stages, and the named steps of recovery and flush.

    Recovery, after every rebalance (`recover`, before Faust resumes the streams): `restore_combiner` when
    this worker was given the combiner's partition, `republish_loaded` for every balances partition whose
    state it loaded, then `flush_figures` at once. Flush: `ApplyBalances.checkpoint` commits a fetch once its
    changelog and its partial are acknowledged; `flush_figures` publishes each segment whose figures differ
    from the last record on the figures topic.
    """

    def __init__(self, cfg: CalculatorConfig | None = None, kafka: KafkaSettings | None = None) -> None:
        self.cfg = cfg = cfg or CalculatorConfig.from_env()
        self.kafka = kafka = kafka or KafkaSettings.from_env()
        self.app = app = CalculatorApp(
            cfg.app_id,
            **kafka.faust_kwargs(),
            store="memory://",
            datadir=cfg.datadir or f"/tmp/{cfg.app_id}-data",
            topic_partitions=cfg.partitions,
            topic_allow_declare=True,
            consumer_auto_offset_reset="earliest",
            consumer_group_instance_id=cfg.instance_id or None,
            consumer_max_fetch_size=cfg.fetch_bytes,
            broker_max_poll_records=cfg.batch_max,
            # Standbys would tail the other workers' changelogs through Faust's slow path; a partition that
            # moves is loaded in bulk instead (store.py).
            table_standby_replicas=0,
            producer_acks=-1,
            producer_linger=0.002,
            web_enabled=True,
            web_host=cfg.web_host,
            web_port=cfg.web_port,
            web_in_thread=False,
            # Only /healthz, /readyz and /metrics: Faust's own pages (/router/, /table/…: segregated totals,
            # FX rates and targets, unauthenticated; statistics, the graph) are off.
            web_router_enabled=False,
            web_tables_enabled=False,
            web_stats_enabled=False,
            web_graph_enabled=False,
            web_metrics_enabled=False,
        )
        self.metrics = metrics = Metrics()
        app.segwatch_metrics = metrics  # type: ignore[attr-defined]
        # A balance per account stays for the worker's life: collect young garbage less often, so the collector
        # does not walk them all several times a second.
        gc.set_threshold(50_000, 20, 100)
        _return_large_buffers()

        self.balances_topic = self._raw(cfg.balances, cfg.partitions)
        self.inputs_topic = app.topic(cfg.partials, cfg.settings, key_serializer="raw", value_serializer="raw")
        self.partials_topic = self._raw(cfg.partials, 1)
        self.figures_topic = self._raw(cfg.figures, 1)
        self.dlq_topic = self._raw(cfg.deadletter, 1)
        self.partials_tp = TP(cfg.partials, 0)

        # The two balance tables: keyed by the key of the balance held ("acct|4d2|C-1|USD"), each record in the
        # changelog partition of its balances partition, so their partitions are the balances' partitions.
        self.states = PartitionStates()
        self.accounts = self._table(
            "accounts", cfg.partitions, store_factory(HeldStore, kafka=kafka, states=self.states, prefix="acct|")
        )
        self.depositories = self._table(
            "depositories", cfg.partitions, store_factory(HeldStore, kafka=kafka, states=self.states, prefix="depo|")
        )
        self.combiner = Combiner()
        self.calendar = BusinessCalendar(CalendarConfig.from_env())
        self.clock = closing.clock_from(cfg.now)
        self.desk = StatementDesk(self.calendar, cfg.close_retain)  # the closed days' statements (#12)
        self.closing = self._table(
            "closing",
            cfg.partitions,
            store_factory(
                ClosingStore, kafka=kafka, states=self.states, calendar=self.calendar, retain=cfg.close_retain
            ),
        )
        self.statements_topic = self._raw(cfg.statements, 1)
        self.restored = False  # the combiner was rebuilt from its table since its partition was (re)loaded
        self._restoring = asyncio.Lock()
        self.store = self._table(
            "combiner", 1, store_factory(ChangelogStore, kafka=kafka, on_loaded=self._combiner_loaded)
        )
        self.writer = ChangelogWriter(kafka, client_id=f"{cfg.app_id}-changelog")
        self.apply = ApplyBalances(
            app,
            cfg,
            metrics,
            self.states,
            self.writer,
            {"acct|": self.accounts, "depo|": self.depositories, closing.PREFIX: self.closing},
            self.partials_topic,
            self.to_dlq,
            self.combine_here,
            self.calendar,
        )
        self.figures_throttle = Throttle(cfg.coalesce_ms / 2000, self.flush_figures, lambda exc: crash(app, exc))
        # Statements are recomputed at most every STATEMENTS_INTERVAL: a closed day's statement is not
        # latency-bound, and its recomputation (the closed days kept x the segments) stays off the figures' path.
        self.statements_throttle = Throttle(
            max(cfg.coalesce_ms / 2000, closing.STATEMENTS_INTERVAL), self.flush_statements, lambda exc: crash(app, exc)
        )
        app.bulk_topic(self.balances_topic, self.apply)
        app.bulk_topic(self.inputs_topic, self.consolidate)
        # A partition given to another worker is dropped by the stores (faust_adapter.BulkLoadedStore).
        app.before_stop.append(self.apply.close)
        app.after_rebalance(self._on_rebalance_complete)
        app.timer(closing.CLOCK_TICK)(self.tick)
        self._pages()

    def _raw(self, name: str, partitions: int | None = None) -> faust.TopicT:
        return self.app.topic(name, key_serializer="raw", value_serializer="raw", partitions=partitions)

    def _table(self, name: str, partitions: int, make_store: Callable[[StoreTable], Any]) -> StoreTable:
        t = StoreTable(
            self.app,
            name=name,
            partitions=partitions,
            beacon=self.app.tables.beacon,
            make_store=make_store,
            default=None,
            use_partitioner=True,
            key_type=str,
        )
        self.app.tables.add(t)
        return t

    # -- recovery ----------------------------------------------------------------------------------------------

    def _combiner_loaded(self) -> None:
        # The combiner's partition was (re)assigned and its table loaded: rebuild from it before its next use.
        self.restored = False

    async def _on_rebalance_complete(self) -> None:
        try:
            await self.recover()
        except Exception as exc:
            log.error("recovery_failed", error=str(exc) or type(exc).__name__)
            await crash(self.app, exc)
            raise

    async def recover(self) -> None:
        """After a rebalance, before the streams resume: publish everything the loaded state holds."""
        if self.partials_tp in self.app.consumer.assignment():
            await self.ensure_restored()
        loaded = sorted(self.states.loaded)
        self.states.loaded.clear()
        if loaded:
            await self.republish_loaded(loaded)
        if self.restored and self.combiner.dirty:
            await self.figures_throttle.run()

    async def republish_loaded(self, partitions: Sequence[int]) -> None:
        """A partial of every balances partition whose state was loaded: a change made durable by the previous
        owner whose partial never went out reads as unchanged when its balance is read again, so it is
        published here or not at all."""
        await self.apply.republish(partitions)
        log.info(
            "partials_republished",
            partitions=list(partitions),
            epochs={p: self.states[p].epoch for p in partitions if p in self.states},
        )

    async def ensure_restored(self) -> None:
        if not self.restored:
            async with self._restoring:
                if not self.restored:
                    await self.restore_combiner()
                    self.restored = True

    async def restore_combiner(self) -> None:
        """The combiner from its table (partials, settings) and from the last figures record of each segment
        on the figures topic: what was really published, not what the previous owner believed it sent."""
        partials: dict[int, Partial] = {}
        settings = []
        for key, value in self.store.items():
            kind, _, name = key.partition("|")
            if kind == "partial":
                partials[int(name)] = Partial.from_json(value)
            elif kind == "setting":
                settings.append(EVENT_ADAPTER.validate_python(value))
        last = await read_last_per_key(self.kafka, self.cfg.figures, [sid.encode() for sid in SEGMENT_IDS])
        published = {key.decode(): Figures.model_validate_json(value) for key, value in last.items()}
        self.combiner = Combiner()
        self.combiner.restore(partials, settings, published)  # type: ignore[arg-type]
        await self.restore_desk(partials.values())
        log.info(
            "combiner_restored",
            partitions=len(partials),
            settings=len(settings),
            published={sid: f.version for sid, f in published.items()},
        )

    async def restore_desk(self, partials: Iterable[Partial]) -> None:
        """The closing book (issue #12) from the combiner's table (the partitions' views, the settings history,
        the day closed through) and from the statements topic: what was really published."""
        history = []
        through = None
        for key, value in self.store.items():
            if key.startswith(closing.HISTORY):
                ev = EVENT_ADAPTER.validate_python(value)
                if isinstance(ev, closing.BOOK_SETTINGS):
                    history.append(ev)
            elif key == closing.CLOSED_THROUGH:
                through = date.fromisoformat(value)
        topic = self.cfg.statements
        published = []
        async for _, latest, _, _, _ in read_changelog(self.kafka, [TP(topic, 0)]):
            for value in latest.values():
                rec = closing.statement_of(value)
                if rec is not None:
                    published.append(rec)
        self.desk.restore(partials, history, through, published)
        self.desk.tick(self.clock())
        log.info(
            "closing_restored",
            settings=len(history),
            closed_through=str(self.desk.book.closed_through),
            published={r.key: r.version for r in self.desk.book_published()},
        )

    async def flush_statements(self) -> None:
        """Publish the closed days' statements that are new or changed (the owner of the combiner only: a
        flush after its partition was given to another worker would repeat a version)."""
        if self.partials_tp not in self.app.consumer.assignment():
            return
        for rec in self.desk.flush(self.clock()):
            await self.statements_topic.send(key=rec.key.encode(), value=rec.model_dump_json().encode())
            log.info(
                "statement",
                business_day=rec.business_day.isoformat(),
                segment=rec.segment,
                kind=rec.kind,
                version=rec.version,
                moved=sorted(rec.moved),
            )
        for event_id in self.desk.prunable():
            with contextlib.suppress(KeyError):
                del self.store[f"{closing.HISTORY}{event_id}"]

    def take_close(self, ev: BusinessDayClose) -> bool:
        """`business_day_close` closes the day in the book (the partitions close it at their next balance
        after its cut-off: closing.py); True when statements may be due."""
        if self.desk.on_close(ev):
            self.store[closing.CLOSED_THROUGH] = str(self.desk.book.closed_through)
            log.info("business_day_close", business_day=ev.business_day.isoformat(), event_id=ev.event_id)
            self.metrics.settings.labels("applied").inc()
        else:
            self.metrics.settings.labels("unchanged").inc()
        return self.desk.dirty

    async def tick(self) -> None:
        """The clock closes the days whose cut-off passed (the owner of the combiner, once restored)."""
        if self.partials_tp not in self.app.consumer.assignment() or not self.restored:
            return
        if self.desk.tick(self.clock()):
            log.info("day_closed_by_clock", closed_through=str(self.desk.book.closed_through))
            await self.statements_throttle.request()

    # -- the combiner's stage and flush ------------------------------------------------------------------------

    async def flush_figures(self) -> None:
        """Publish a figures record for each segment whose figures changed (at most every half coalescing
        interval, through `figures_throttle`). Only the owner of the combiner's partition publishes: a flush
        that fires after it was given to another worker would repeat a version."""
        if self.partials_tp not in self.app.consumer.assignment():
            self.combiner.dirty.clear()
            return
        for figures in self.combiner.flush(datetime.now(UTC)):
            await self.figures_topic.send(key=figures.segment.encode(), value=figures.model_dump_json().encode())
            self.metrics.figures.labels(figures.segment).inc()
            log.info(
                "figures",
                correlation_id=figures.last_event_id,
                segment=figures.segment,
                version=figures.version,
                requirement=str(figures.requirement),
                funds=str(figures.funds),
                excess=str(figures.excess),
                excess_over_target=str(figures.excess_over_target),
            )
        if self.desk.dirty:
            await self.statements_throttle.request()

    async def consolidate(self, fetch: Mapping[TP, Sequence[Any]]) -> None:
        """Each fetch of partials and settings, in Kafka's order per partition. (Their offsets may be committed
        before the figures go out: the combiner's table is flushed before Faust commits, and a restarted
        combiner compares with the figures topic and publishes what is missing at once.)"""
        changed = False
        for tp, records in fetch.items():
            for record in records:
                changed = await self.combine_input(record) or changed
            if records:
                # Faust flushes its producer (the combiner's changelog, dead letters) before it commits this.
                self.app.processed(tp, records[-1].offset + 1)
        if changed:
            await self.figures_throttle.request()

    async def combine_here(self, values: Sequence[bytes]) -> None:
        """The worker that owns the combiner takes its own partials at once rather than a Kafka round trip and
        Faust's per-event path later (about 15 ms of event → figures): all of one fetch's, then one flush. The
        copy from Kafka then changes nothing: Combiner.on_partial keeps the newest partial per partition."""
        if self.partials_tp not in self.app.consumer.assignment():
            return
        changed = False
        for value in values:
            changed = await self.take_partial(value, "local") or changed
        if changed:
            await self.figures_throttle.request()

    async def take_partial(self, value: bytes, where: Any) -> bool:
        """Take one partial (from Kafka, or from this worker's own aggregate); True when a figure may have
        changed."""
        await self.ensure_restored()
        try:
            partial = Partial.from_json(value)
        except (ValueError, KeyError, TypeError) as exc:
            await self.to_dlq(where, f"unreadable partial: {exc}", value)
            return False
        if self.combiner.on_partial(partial):
            self.store[f"partial|{partial.partition}"] = orjson.loads(value)
            self.desk.on_partial(partial)
        return bool(self.combiner.dirty) or self.desk.dirty

    async def combine_input(self, record: Any) -> bool:
        """Take one partial or setting (an aiokafka record); True when a figure may have changed."""
        value = record.value if record.value is not None else b""
        if record.topic == self.cfg.partials:
            return await self.take_partial(value, record)
        await self.ensure_restored()
        metrics = self.metrics
        try:
            ev = parse_event_json(value)
        except ValidationError as exc:
            err = first_error(exc)
            metrics.settings.labels("dead_lettered").inc()
            await self.to_dlq(record, err.reason, value, err.field)
            return False
        if isinstance(ev, BusinessDayClose):
            return self.take_close(ev)
        if isinstance(ev, closing.BOOK_SETTINGS) and self.desk.on_setting(ev):
            self.store[f"{closing.HISTORY}{ev.event_id}"] = orjson.loads(ev.model_dump_json())
        if not isinstance(ev, SETTING_TYPES):
            metrics.settings.labels("dead_lettered").inc()
            await self.to_dlq(record, f"a {ev.type} event belongs on {self.cfg.home(ev.type)}", value, "type")
            return False
        if self.combiner.on_setting(ev, _ts(record)):
            self.store[f"setting|{ev.key}"] = orjson.loads(ev.model_dump_json())
            metrics.settings.labels("applied").inc()
            return True
        metrics.settings.labels("unchanged").inc()
        return self.desk.dirty

    async def to_dlq(self, where: Any, reason: str, payload: bytes, field: str | None = None) -> None:
        """Dead-letter a record (`where`: the aiokafka record, or a description of where it came from)."""
        if isinstance(where, str):
            record = dead_letter("calculator", where, reason, payload, field=field)
        else:
            record = dead_letter(
                "calculator",
                f"{where.topic}[{where.partition}]@{where.offset}",
                reason,
                payload,
                field=field,
                topic=where.topic,
                partition=where.partition,
                offset=where.offset,
            )
        await self.dlq_topic.send(key=b"calculator", value=record.model_dump_json().encode())
        log.warning(
            "dead_lettered",
            source=record.source,
            reason=record.reason,
            field=record.field,
            payload_bytes=record.payload_bytes,
        )

    # -- web ---------------------------------------------------------------------------------------------------

    def _pages(self) -> None:
        app, metrics = self.app, self.metrics

        @app.page("/healthz")
        async def healthz(web: Any, request: Any) -> Any:
            return web.json({"status": "ok"})

        @app.page("/readyz")
        async def readyz(web: Any, request: Any) -> Any:
            recovered = app.recovery_completed()
            ready = recovered and not app.rebalancing
            return web.json({"ready": ready, "recovered": recovered}, status=200 if ready else 503)

        # prometheus_client's own aiohttp handler (Prometheus text or OpenMetrics, gzip when accepted). Faust
        # routes a page through its View, but its aiohttp driver hands the view aiohttp's request and sends
        # back the aiohttp response the view returns: so the page only forwards the request to the handler.
        scrape = make_aiohttp_handler(metrics.registry)

        @app.page("/metrics")
        async def metrics_page(web: Any, request: Any) -> Any:
            return await scrape(request)


def create_app(cfg: CalculatorConfig | None = None, kafka: KafkaSettings | None = None) -> faust.App:
    """The calculator's Faust app (`Calculator(cfg, kafka).app`)."""
    return Calculator(cfg, kafka).app


def run_worker(app: faust.App, loglevel: str = "warning") -> None:
    """Run the worker in this process until SIGTERM/SIGINT."""
    from faust.worker import Worker

    # Faust's consumer runs in a thread of its own. A thread waiting for the GIL gets it after the switch
    # interval at the latest (5 ms by default); each record crosses threads twice on its way to figures,
    # so 1 ms takes several milliseconds off event → figures (docs/PERFORMANCE.md) at no measurable cost.
    sys.setswitchinterval(0.001)

    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
