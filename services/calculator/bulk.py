"""Faust's consumer, with each fetch of chosen topics handed whole to one coroutine.

Faust delivers every record as its own event: from the consumer thread through `wait_first`, the conductor, a
channel queue and the stream's processors. On a 2-core machine that path tops out near 6,000 records a
second whatever the agent does (even `stream.take_events` with an agent that does nothing), well short of
the balances' volume. For the topics in `bulk`, `BulkConsumer` gives the records of each fetch to the topic's
handler in one call instead, and takes over the offsets of those partitions: a handler reports, with
`processed(tp, offset)`, the offset up to which its work is durable, and Faust's own commit (every
`broker_commit_interval`, and on stop) commits that. Everything else about the consumer is Faust's:
group membership and assignment (so tables stay co-partitioned with the topic), pausing partitions during
recovery, flow control around rebalances, seeking, the other topics' events.

What it relies on in faust-streaming 0.15.3 (pinned in pyproject.toml): `Consumer._wait_next_records`
(returns a fetch: records per partition and the active partitions), `Consumer._new_offset` (the offset the
next commit takes for a partition, considered for the partitions in `_acked`), `_read_offset`,
`_buffered_partitions`, `flow_active` and `Consumer.on_partitions_revoked`; and `TableManager._update_channels`
(below, `TableManager`). `check_faust` fails the worker at start if any is missing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import faust
from faust.tables.manager import TableManager as FaustTableManager
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

# Records of one fetch, per partition (aiokafka ConsumerRecords).
BulkHandler = Callable[[Mapping[TP, Sequence[Any]]], Awaitable[None]]

FETCH_MAX_WAIT_MS = 20
_REQUIRED = ("_wait_next_records", "_new_offset", "on_partitions_revoked", "on_stop")
_REQUIRED_TABLES = ("_update_channels",)
_REQUIRED_STATE = ("_read_offset", "_buffered_partitions", "_acked", "flow_active")


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
        if (not records or not self.flow_active or self.should_stop
                or self.app.consumer_generation_id != generation):
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


def check_faust() -> None:
    """Fail fast (at start) when the Faust consumer lacks what BulkConsumer builds on."""
    base = faust_aiokafka.Consumer
    missing = [name for name in _REQUIRED if not callable(getattr(base, name, None))]
    if missing:
        raise RuntimeError(f"faust {faust.__version__}: Consumer lacks {', '.join(missing)}; BulkConsumer needs "
                           "faust-streaming 0.15.x")
    missing = [name for name in _REQUIRED_TABLES if not callable(getattr(FaustTableManager, name, None))]
    if missing:
        raise RuntimeError(f"faust {faust.__version__}: TableManager lacks {', '.join(missing)}; the calculator's "
                           "TableManager needs faust-streaming 0.15.x")


class TableManager(FaustTableManager):
    """Faust's table manager without its one-second wait at start.

    Faust sleeps a second before it registers the tables' changelogs, for tables an app defines late; the
    calculator defines all of its tables in `create_app`, so the wait only delays every start and every
    recovery by a second.
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
        state = [name for name in _REQUIRED_STATE if not hasattr(consumer, name)]
        if state:
            raise RuntimeError(f"faust {faust.__version__}: the consumer lacks {', '.join(state)}")
        return consumer
