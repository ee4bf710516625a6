"""Kafka for the benchmark: preloading fast, following the figures and alert topics, and cleaning up."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2
from pydantic import ValidationError

from bench.workload import Record
from schemas.alerts import Alert
from schemas.records import DeadLetter, Figures
from segwatch.config import KafkaSettings

T = TypeVar("T")
MAX_BATCH_BYTES = 512 * 1024
IN_FLIGHT = 32  # record batches awaiting acknowledgement while preloading


def partition_of(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (the Java clients', aiokafka's and Faust's): murmur2 of the key."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


class Producer:
    """An aiokafka producer that sends many records as closed record batches, one per partition."""

    def __init__(self, settings: KafkaSettings, linger_ms: int = 5) -> None:
        self._producer = AIOKafkaProducer(
            **settings.aiokafka_kwargs(),
            acks="all",
            linger_ms=linger_ms,
            max_batch_size=MAX_BATCH_BYTES,
            max_request_size=4 * MAX_BATCH_BYTES,
            client_id="segwatch-bench",
        )
        self._partitions: dict[str, int] = {}
        self._pending: list[asyncio.Future[Any]] = []

    async def start(self) -> None:
        await asyncio.wait_for(self._producer.start(), 30)

    async def stop(self) -> None:
        await self._producer.stop()

    async def partitions(self, topic: str) -> int:
        if topic not in self._partitions:
            found = await asyncio.wait_for(self._producer.partitions_for(topic), 30)
            self._partitions[topic] = len(found)
        return self._partitions[topic]

    async def send_many(self, topic: str, records: Sequence[Record]) -> None:
        """Queue `records` in record batches; `flush` waits for the acknowledgements."""
        count = await self.partitions(topic)
        builders: dict[int, Any] = {}
        for record in records:
            p = partition_of(record.key, count)
            builder = builders.get(p)
            if builder is None:
                builder = builders[p] = self._producer.create_batch()
            if builder.append(key=record.key, value=record.value, timestamp=None) is None:
                await self._submit(builder, topic, p)
                builder = builders[p] = self._producer.create_batch()
                if builder.append(key=record.key, value=record.value, timestamp=None) is None:
                    raise ValueError(f"a record larger than {MAX_BATCH_BYTES} bytes: {record.key!r}")
        for p, builder in builders.items():
            await self._submit(builder, topic, p)

    async def _submit(self, builder: Any, topic: str, partition: int) -> None:
        builder.close()
        self._pending.append(await self._producer.send_batch(builder, topic, partition=partition))
        if len(self._pending) >= IN_FLIGHT:
            await self.flush(keep=IN_FLIGHT // 2)

    async def flush(self, keep: int = 0, timeout: float = 60.0) -> None:
        while len(self._pending) > keep:
            head, self._pending = self._pending[: len(self._pending) - keep], self._pending[len(self._pending) - keep :]
            await asyncio.wait_for(asyncio.gather(*head), timeout)

    async def send_at(self, topic: str, record: Record, timestamp_ms: int) -> asyncio.Future[Any]:
        """One record with an explicit timestamp (the latency phase knows when each event was produced)."""
        count = await self.partitions(topic)
        future: asyncio.Future[Any] = await self._producer.send(
            topic, record.value, key=record.key, partition=partition_of(record.key, count), timestamp_ms=timestamp_ms
        )
        return future


@dataclass(frozen=True, slots=True)
class Seen(Generic[T]):
    """A record read back: its Kafka timestamp (when its producer made it) and when this process got it."""

    item: T
    kafka_ms: int
    received: float

    @property
    def at(self) -> float:
        return self.kafka_ms / 1000


@dataclass
class Follower:
    """Reads the figures, alert and dead-letter topics from their beginnings while the benchmark runs."""

    settings: KafkaSettings
    figures_topic: str
    alerts_topic: str
    deadletter_topic: str
    figures: list[Seen[Figures]] = field(default_factory=list)
    alerts: list[Seen[Alert]] = field(default_factory=list)
    dead_letters: list[Seen[DeadLetter]] = field(default_factory=list)
    unreadable: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **self.settings.aiokafka_kwargs(),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="segwatch-bench-follower",
            fetch_max_wait_ms=20,
        )
        await asyncio.wait_for(consumer.start(), 30)
        tps = [TopicPartition(t, 0) for t in (self.figures_topic, self.alerts_topic, self.deadletter_topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._follow(consumer))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                now = time.time()
                for records in batch.values():
                    for r in records:
                        self._keep(r, now)
                if batch:
                    async with self._changed:
                        self._changed.notify_all()
        finally:
            await consumer.stop()

    def _keep(self, r: Any, now: float) -> None:
        try:
            if r.topic == self.figures_topic:
                self.figures.append(Seen(Figures.model_validate_json(r.value), r.timestamp, now))
            elif r.topic == self.alerts_topic:
                self.alerts.append(Seen(Alert.model_validate_json(r.value), r.timestamp, now))
            else:
                self.dead_letters.append(Seen(DeadLetter.model_validate_json(r.value), r.timestamp, now))
        except ValidationError:
            self.unreadable += 1

    async def wait_for(self, condition: Callable[[], T | None], timeout: float, what: str) -> T:
        """Until `condition()` returns something (not None); TimeoutError naming `what` after `timeout` s."""
        found: list[T] = []

        def check() -> bool:
            result = condition()
            if result is not None:
                found.append(result)
            return bool(found)

        async def waiter() -> None:
            async with self._changed:
                await self._changed.wait_for(check)

        try:
            await asyncio.wait_for(waiter(), timeout)
        except TimeoutError:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}") from None
        return found[0]


def first_match(
    seen: Sequence[Seen[Figures]],
    expected: dict[str, dict[str, Any]],
    accounts: dict[str, int] | None = None,
    since: int = 0,
) -> Seen[Figures] | None:
    """The first figures record (from index `since`) at which every segment's latest figures equal `expected`;
    its Kafka timestamp is when the calculator published the last missing piece."""
    latest: dict[str, Figures] = {}
    for item in seen[:since]:
        latest[item.item.segment] = item.item
    for item in seen[since:]:
        latest[item.item.segment] = item.item
        if all(sid in latest and latest[sid].lines == lines for sid, lines in expected.items()) and (
            accounts is None or all(latest[sid].accounts == n for sid, n in accounts.items())
        ):
            return item
    return None


async def delete_namespace(settings: KafkaSettings, namespace: str, extra_groups: Iterable[str] = ()) -> list[str]:
    """Delete every topic and consumer group whose name starts with `namespace` (Faust's internal topics
    included), and the groups named in `extra_groups`. Returns the topics deleted."""
    from segwatch.kafka.admin import admin_client

    async with admin_client(settings) as client:
        doomed = sorted(t for t in await client.list_topics() if t.startswith(namespace))
        if doomed:
            await client.delete_topics(doomed)
        groups = [str(g[0]) for g in await client.list_consumer_groups() if str(g[0]).startswith(namespace)]
        groups += list(extra_groups)
        if groups:
            from aiokafka.protocol.admin import DeleteGroupsRequest

            with contextlib.suppress(Exception):  # aiokafka's admin client has no public call for this
                node = await client.find_coordinator(groups[0])  # one broker here; else best effort
                await client._send_request_to_node(node, DeleteGroupsRequest(groups))
    return doomed
