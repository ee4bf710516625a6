"""Every private member of faust-streaming and aiokafka the calculator relies on, in one place.

The calculator needs more than Faust's public API gives (docs/PERFORMANCE.md says why): whole fetches of a
topic handed to one coroutine, offsets it commits itself, changelogs loaded and written in bulk. Each private
member it touches is used here and nowhere else, listed in `PRIVATE_MEMBERS`, checked at start by
`check_faust`, and has a contract test of its behaviour in tests/unit/test_faust_adapter.py (and
tests/integration/test_faust_adapter_kafka.py for the fetch path), so an upgrade of either library fails in
CI, not in production. faust-streaming is pinned (pyproject.toml) for this reason.

What lives here:
- `BulkConsumer`: Faust's aiokafka consumer, but for the topics in `bulk` each fetch goes whole to one handler
  (Faust's per-event path tops out near 6,000 records a second on 2 cores whatever the agent does), and the
  handler reports with `processed(tp, offset)` the offset up to which its work is durable; Faust's own
  commit (every `broker_commit_interval`, and on stop) commits that. Group membership, assignment (so tables
  stay co-partitioned with the topic), pausing during recovery, flow control and seeking stay Faust's.
- `TableManager`: without Faust's one-second wait at start.
- `CalculatorApp`: the Faust app with that consumer and table manager, `bulk_topic`, and the few questions
  the calculator asks of Faust's state (`recovery_completed`, `highwater`).
- `BulkLoadedStore`, `StoreTable`, `store_factory`: a memory store whose changelog partitions its subclass
  loads itself (`load_partitions`), and whose rows its subclass may keep elsewhere (services/calculator/
  store.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import faust
from faust.stores import memory
from faust.tables.manager import TableManager as FaustTableManager
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

# Records of one fetch, per partition (aiokafka ConsumerRecords).
BulkHandler = Callable[[Mapping[TP, Sequence[Any]]], Awaitable[None]]

FETCH_MAX_WAIT_MS = 20

# (owner, member): what the calculator relies on. check_faust() checks them; each has a contract test.
PRIVATE_MEMBERS: tuple[tuple[str, str], ...] = (
    ("faust Consumer", "_wait_next_records"),  # -> (records per TP, active TPs)
    ("faust Consumer", "_new_offset"),  # the offset Faust's commit takes for a TP in _acked
    ("faust Consumer", "_acked"),  # defaultdict: a TP in it is considered by the commit
    ("faust Consumer", "_read_offset"),  # last offset read per TP (stalled-stream checks, perform_seek)
    ("faust Consumer", "_buffered_partitions"),  # TPs with fetched records not yet consumed
    ("faust Consumer", "flow_active"),  # False while a rebalance suspends the flow
    ("faust Consumer", "_new_consumer_thread"),  # makes the thread that owns the aiokafka consumer
    ("faust AIOKafkaConsumerThread", "_create_worker_consumer"),  # makes the aiokafka consumer
    ("aiokafka AIOKafkaConsumer", "_fetch_max_wait_ms"),  # read by start() to make its fetcher
    ("faust App", "_new_consumer"),  # makes app.consumer
    ("faust App", "_on_partitions_revoked"),  # the app's rebalance callbacks the consumer is given
    ("faust App", "_on_partitions_assigned"),
    ("faust App", "consumer_generation_id"),  # changes with every rebalance
    ("faust Monitor", "stream_inbound_time"),  # per TP, read by Faust's stalled-stream warnings
    ("faust TableManager", "_update_channels"),  # registers the tables' changelog topics
    ("faust Recovery", "completed"),  # an Event set when table recovery is complete
    ("faust Table", "_new_store"),  # makes the table's store
    ("faust memory Store", "_key_partition"),  # key -> partition, for Faust's revocation of a partition
    ("faust memory Store", "_clear"),  # called by Faust to empty the store
)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, with a short fetch long-poll (Faust hard-codes fetch_max_wait_ms=1500).

    aiokafka keeps one fetch in flight per broker, and asks only for partitions whose fetched records are all
    consumed. While the balances partitions still hold records, the request is for the quiet ones (partials,
    settings), which the broker holds for fetch_max_wait_ms; a balances partition drained meanwhile waits
    for it before its next fetch goes out. 1.5 s of that per drained partition made a small fetch size ten
    times slower than a large one; at FETCH_MAX_WAIT_MS, small fetches keep the memory down at full speed.
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        if hasattr(consumer, "_fetch_max_wait_ms"):  # read by AIOKafkaConsumer.start() to make its fetcher
            consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class BulkConsumer(faust_aiokafka.Consumer):
    """A Faust aiokafka consumer that hands whole fetches of the topics in `bulk` to their handlers."""

    def __init__(self, *args: Any, bulk: Mapping[str, BulkHandler], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bulk: dict[str, BulkHandler] = dict(bulk)
        self._processed: dict[TP, int] = {}  # the next offset to commit, per bulk partition
        # Awaited before the consumer's last commit on stop: the handlers' work in flight becomes durable.
        self.before_stop: list[Callable[[], Awaitable[None]]] = []

    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        generation = self.app.consumer_generation_id
        records, active = await super()._wait_next_records(timeout)
        if not records or not self.flow_active or self.should_stop or self.app.consumer_generation_id != generation:
            return records, active  # Faust's getmany discards or re-seeks as it does for any record
        buffered = self._buffered_partitions
        mine: dict[str, dict[TP, Sequence[Any]]] = {}
        rest = {}
        for tp, batch in records.items():
            if tp.topic not in self.bulk:
                rest[tp] = batch
            elif active is None or tp in active or tp in buffered:
                mine.setdefault(tp.topic, {})[tp] = batch
        now = time.monotonic()
        inbound = getattr(self.app.monitor, "stream_inbound_time", None)
        for topic, fetch in mine.items():
            await self.bulk[topic](fetch)
            for tp, fetched in fetch.items():
                if fetched:
                    self._read_offset[tp] = fetched[-1].offset
                    if inbound is not None:  # Faust's stalled-stream warnings look at this
                        inbound[tp] = now
        return rest, active

    def processed(self, tp: TP, offset: int) -> None:
        """Everything of `tp` before `offset` is processed and durable: the next commit may take `offset`."""
        if tp in self.assignment() and offset > self._processed.get(tp, -1):
            self._processed[tp] = offset
            self._acked[tp]  # (a defaultdict) so that Faust's commit considers the partition

    def _new_offset(self, tp: TP) -> int | None:
        if tp.topic in self.bulk:
            return self._processed.get(tp)
        offset: int | None = super()._new_offset(tp)
        return offset

    async def on_stop(self) -> None:
        for flush in self.before_stop:
            await flush()
        await super().on_stop()

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._processed.pop(tp, None)
        await super().on_partitions_revoked(revoked)


def _missing(owner: Any, names: Iterable[str], instance: Any = None) -> list[str]:
    where = instance if instance is not None else owner
    return [name for name in names if not hasattr(where, name)]


def check_faust() -> None:
    """Fail fast (at start) when Faust or aiokafka lacks a member the calculator builds on."""
    from aiokafka import AIOKafkaConsumer
    from faust.tables.recovery import Recovery

    checks = {
        "Consumer": _missing(
            faust_aiokafka.Consumer,
            ("_wait_next_records", "_new_offset", "_new_consumer_thread", "on_partitions_revoked", "on_stop"),
        ),
        "AIOKafkaConsumerThread": _missing(faust_aiokafka.AIOKafkaConsumerThread, ("_create_worker_consumer",)),
        "App": _missing(
            faust.App, ("_new_consumer", "_on_partitions_revoked", "_on_partitions_assigned", "consumer_generation_id")
        ),
        "TableManager": _missing(FaustTableManager, ("_update_channels",)),
        "Table": _missing(faust.Table, ("_new_store",)),
        "memory Store": _missing(
            memory.Store,
            (
                "_clear",
                "apply_changelog_batch",
                "on_rebalance",
                "on_recovery_completed",
                "persisted_offset",
                "set_persisted_offset",
            ),
        ),
        "Recovery": [] if "completed" in Recovery.__annotations__ else ["completed"],
        "AIOKafkaConsumer": []
        if "fetch_max_wait_ms" in AIOKafkaConsumer.__init__.__code__.co_varnames
        else ["fetch_max_wait_ms"],
    }
    missing = [f"{owner}.{name}" for owner, names in checks.items() for name in names]
    if missing:
        raise RuntimeError(
            f"faust {faust.__version__}: lacks {', '.join(missing)}; the calculator needs "
            "faust-streaming 0.15.x (services/calculator/faust_adapter.py)"
        )


def check_consumer(consumer: Any) -> None:
    """The consumer's state the calculator reads (instance attributes: checked once the consumer exists)."""
    state = [
        name
        for name in ("_read_offset", "_buffered_partitions", "_acked", "flow_active")
        if not hasattr(consumer, name)
    ]
    if state:
        raise RuntimeError(f"faust {faust.__version__}: the consumer lacks {', '.join(state)}")


class TableManager(FaustTableManager):
    """Faust's table manager without its one-second wait at start.

    Faust sleeps a second before it registers the tables' changelogs, for tables an app defines late; the
    calculator defines all of its tables up front, so the wait only delays every start and every recovery
    by a second.
    """

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class CalculatorApp(faust.App):
    """A Faust app whose consumer is a BulkConsumer for the topics registered with `bulk_topic`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_faust()
        kwargs.setdefault("TableManager", TableManager)
        self.bulk_handlers: dict[str, BulkHandler] = {}
        self.before_stop: list[Callable[[], Awaitable[None]]] = []  # see BulkConsumer.before_stop
        super().__init__(*args, **kwargs)

    def bulk_topic(self, topic: faust.TopicT, handler: BulkHandler) -> None:
        """Subscribe to `topic` (so the group assigns its partitions and co-partitioned tables follow them) and
        give each fetch of it to `handler`. Register before the worker starts."""
        self.topics.add(topic)
        for name in topic.topics:
            self.bulk_handlers[name] = handler

    def _new_consumer(self) -> Any:
        consumer = BulkConsumer(
            self.transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=self.transport.loop,
            bulk=self.bulk_handlers,
        )
        consumer.before_stop = self.before_stop
        check_consumer(consumer)
        return consumer

    def after_rebalance(self, handler: Callable[[], Awaitable[None]]) -> None:
        """Await `handler` after every rebalance, once the tables are recovered and before the streams resume
        (Faust's `on_rebalance_complete` signal)."""

        async def receiver(sender: Any, *args: Any, **kwargs: Any) -> None:
            await handler()

        self.on_rebalance_complete.connect(receiver)  # type: ignore[arg-type]

    def processed(self, tp: TP, offset: int) -> None:
        """See BulkConsumer.processed."""
        consumer = self.consumer
        if isinstance(consumer, BulkConsumer):
            consumer.processed(tp, offset)

    def recovery_completed(self) -> bool:
        """Table recovery of the current assignment is complete."""
        recovery = getattr(self.tables, "recovery", None)
        return bool(recovery is not None and recovery.completed.is_set())

    def highwater(self, tp: TP) -> int | None:
        """The partition's end offset as of the last fetch (None before the first)."""
        try:
            value: int = self.consumer.highwater(tp)
        except Exception:
            return None
        return value


class BulkLoadedStore(memory.Store[Any, Any]):
    """Faust's memory store whose changelog partitions a subclass loads itself, in bulk, on assignment.

    Faust recovers a table by handing every changelog record through its consumer one at a time; this store
    reports, from `persisted_offset`, how far `load_partitions` read, so Faust's recovery only reads what was
    written after that, if anything. Subclasses implement `load_partitions` (and may keep their rows
    elsewhere: `drop_partition`, `clear_rows`, `recovered`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._offsets: dict[TP, int] = {}

    @property
    def topic(self) -> str:
        name: str = self.table.changelog_topic.get_topic_name()
        return name

    # -- what subclasses provide ---------------------------------------------------------------------------
    async def load_partitions(self, tps: Sequence[TP]) -> None:
        raise NotImplementedError

    def drop_partition(self, partition: int) -> None:
        """Forget a partition given to another worker."""
        for key in [k for k, p in self._key_partition.items() if p == partition]:
            self.data.pop(key, None)
            self._key_partition.pop(key, None)

    def keep(self, key: Any, value: Any, partition: int) -> None:
        """Hold `key` (of changelog `partition`); None deletes it."""
        if value is None:
            self.data.pop(key, None)
            self._key_partition.pop(key, None)
        else:
            self.data[key] = value
            self._key_partition[key] = partition

    def held_in(self, partition: int) -> int:
        return sum(1 for p in self._key_partition.values() if p == partition)

    def recovered(self, partition: int, key: Any, value: bytes | None) -> None:
        """A changelog record Faust's recovery read after the bulk load (`value`: the raw JSON)."""
        raise NotImplementedError

    def clear_rows(self) -> None:
        self.data.clear()
        self._key_partition.clear()

    # -- Faust's side ----------------------------------------------------------------------------------------
    def persisted_offset(self, tp: TP) -> int | None:
        return self._offsets.get(TP(tp.topic, tp.partition))

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        tp = TP(tp.topic, tp.partition)
        if offset > self._offsets.get(tp, -1):
            self._offsets[tp] = offset

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP], generation_id: int = 0
    ) -> None:
        # What a rebalance really revoked (Faust's revoked signal lists every partition, kept ones too).
        mine = self.topic
        for tp in revoked:
            if tp.topic == mine:
                self._offsets.pop(TP(tp.topic, tp.partition), None)
                self.drop_partition(tp.partition)
        actives = self.app.assignor.assigned_actives()
        load = sorted((tp for tp in newly_assigned if tp.topic == mine and tp in actives), key=lambda t: t.partition)
        if load:
            await self.load_partitions(load)

    def apply_changelog_batch(
        self, batch: Iterable[Any], to_key: Callable[[Any], Any], to_value: Callable[[Any], Any]
    ) -> None:
        for event in batch:
            self.recovered(event.message.partition, to_key(event.key), event.message.value)

    def _clear(self) -> None:
        self.clear_rows()


class StoreTable(faust.Table[Any, Any]):
    """A Faust table whose store is made by `make_store` (a BulkLoadedStore)."""

    def __init__(self, app: faust.App, *, make_store: Callable[[StoreTable], Any], **kwargs: Any) -> None:
        self._make_store = make_store
        super().__init__(app, **kwargs)

    def _new_store(self) -> Any:
        return self._make_store(self)


def store_factory(cls: type[BulkLoadedStore], **extra: Any) -> Callable[[StoreTable], Any]:
    def make(table: StoreTable) -> Any:
        return cls(
            "memory://",
            table.app,
            table,
            table_name=table.name,
            key_type=table.key_type,
            value_type=table.value_type,
            key_serializer=table.key_serializer,
            value_serializer=table.value_serializer,
            options=table.options,
            loop=table.loop,
            **extra,
        )

    return make
