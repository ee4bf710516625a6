"""Changelog-backed Faust tables whose state is loaded from the changelog in bulk, and written to it in bulk.

Faust recovers a table by handing every changelog record through its consumer one message at a time; on a
small machine that is a few thousand records a second, so a restart with 100,000 accounts took minutes. The
Store is Faust's extension point for this (its RocksDB store uses it to skip what it already has on disk):

- when a changelog partition is assigned, `ChangelogStore.on_rebalance` reads it itself (`read_changelog`:
  a plain aiokafka consumer, large fetches, the latest record of each key kept) and reports the offset it
  read up to as `persisted_offset`, so Faust's recovery only reads what was written after that, if anything;
- `HeldStore` (the `accounts` and `depositories` tables) keeps its rows in the calculator's partition
  states: the `Held` balance of each key, inside the `Aggregate` of its partition, so the table holds each
  balance once, and loading a partition rebuilds its sums;
- `ChangelogWriter` writes the changelog records of a whole batch of balances as one record batch per
  partition (aiokafka's `send_batch`) with its own idempotent producer, instead of one Faust `send_soon` per
  key; the offsets it gets back advance `persisted_offset`.

The changelog records are what Faust would write for these tables (a JSON key, a JSON value): for a balance,
the key of the balance held ("acct|4d2|C-1|USD") and the balance event itself (the bytes it arrived as),
in the partition of the event's balances partition (so a worker's partitions and its tables' partitions are
the same numbers, as Faust assigns them). Standby replicas are not used: loading is fast enough to fail over.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.stores import memory
from faust.types import TP
from pydantic import ValidationError

from segwatch.config import KafkaSettings
from segwatch.core.ledger import Held
from segwatch.logs import configure
from services.calculator.fastparse import read_balance
from services.calculator.partials import PartitionState

log = configure("calculator")

LOAD_FETCH_BYTES = 2 * 1024 * 1024
LOAD_POLL_RECORDS = 20_000
LOAD_TIMEOUT = 600.0  # seconds for loading the changelog partitions of one rebalance
CHANGELOG_BATCH_BYTES = 1024 * 1024


class PartitionStates(dict[int, PartitionState]):
    """The state of each balances partition this worker owns, shared by the two balance tables."""

    def ensure(self, partition: int) -> PartitionState:
        state = self.get(partition)
        if state is None:
            state = self[partition] = PartitionState(partition)
        return state


# -- reading a changelog in bulk -----------------------------------------------------------------------


async def read_changelog(
    kafka: KafkaSettings, tps: Sequence[TP], timeout: float = LOAD_TIMEOUT
) -> AsyncIterator[tuple[TP, dict[bytes, bytes | None], int | None, int]]:
    """Per partition, one after the other (so that one partition's records are in memory at a time): every
    key's latest value from the first offset to the end offset when it started, the offset of the last record
    read (None: nothing there), and how many records were read."""
    consumer = AIOKafkaConsumer(
        **kafka.aiokafka_kwargs(), enable_auto_commit=False, auto_offset_reset="earliest",
        client_id="segwatch-calculator-changelog-loader", max_partition_fetch_bytes=LOAD_FETCH_BYTES,
        max_poll_records=LOAD_POLL_RECORDS,
    )
    deadline = time.monotonic() + timeout
    await asyncio.wait_for(consumer.start(), timeout)
    try:
        assigned = [TopicPartition(tp.topic, tp.partition) for tp in tps]
        consumer.assign(assigned)
        ends = await asyncio.wait_for(consumer.end_offsets(assigned), timeout)
        for atp in assigned:
            latest: dict[bytes, bytes | None] = {}
            last: int | None = None
            count = 0
            end = ends[atp]
            if end > 0:
                await consumer.seek_to_beginning(atp)
                while await consumer.position(atp) < end:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"changelog {atp.topic}[{atp.partition}] not read in {timeout:.0f}s")
                    batch = await consumer.getmany(atp, timeout_ms=500)
                    for record in batch.get(atp, ()):
                        if record.offset < end:
                            latest[record.key] = record.value
                            last = record.offset
                            count += 1
            yield TP(atp.topic, atp.partition), latest, last, count
    finally:
        await consumer.stop()


# -- the stores ------------------------------------------------------------------------------------------


class ChangelogStore(memory.Store[Any, Any]):
    """Faust's memory store, but it loads its changelog partitions itself and knows how far it has read."""

    def __init__(self, *args: Any, kafka: KafkaSettings, on_loaded: Callable[[], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kafka = kafka
        self.on_loaded = on_loaded  # called after partitions were loaded
        self._offsets: dict[TP, int] = {}

    @property
    def topic(self) -> str:
        name: str = self.table.changelog_topic.get_topic_name()
        return name

    def persisted_offset(self, tp: TP) -> int | None:
        return self._offsets.get(TP(tp.topic, tp.partition))

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        tp = TP(tp.topic, tp.partition)
        if offset > self._offsets.get(tp, -1):
            self._offsets[tp] = offset

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP], generation_id: int = 0
    ) -> None:
        mine = self.topic
        for tp in revoked:
            if tp.topic == mine:
                self._offsets.pop(TP(tp.topic, tp.partition), None)
                self.drop(tp.partition)
        actives = self.app.assignor.assigned_actives()
        load = sorted((tp for tp in newly_assigned if tp.topic == mine and tp in actives), key=lambda t: t.partition)
        if not load:
            return
        started = time.monotonic()
        keys = count = 0
        async for tp, latest, last, read in read_changelog(self.kafka, load):
            keys += self.load(tp.partition, latest)
            count += read
            if last is not None:
                self.set_persisted_offset(tp, last)
        log.info("changelog_loaded", table=self.table.name, partitions=[tp.partition for tp in load],
                 records=count, keys=keys, seconds=round(time.monotonic() - started, 3))
        if self.on_loaded is not None:
            self.on_loaded()

    def load(self, partition: int, latest: Mapping[bytes, bytes | None]) -> int:
        """Take the latest value of each key of one changelog partition; returns how many keys are held."""
        data, where = self.data, self._key_partition
        for raw_key, raw_value in latest.items():
            key = orjson.loads(raw_key)
            if raw_value is None:
                data.pop(key, None)
                where.pop(key, None)
            else:
                data[key] = orjson.loads(raw_value)
                where[key] = partition
        return sum(1 for p in where.values() if p == partition)

    def drop(self, partition: int) -> None:
        for key in [k for k, p in self._key_partition.items() if p == partition]:
            self.data.pop(key, None)
            self._key_partition.pop(key, None)


class HeldStore(ChangelogStore):
    """The rows of a balance table (`accounts`: keys "acct|…", `depositories`: "depo|…") are the `Held`
    balances of the partition states' aggregates; the store reads them from there and loads them into them."""

    def __init__(self, *args: Any, states: PartitionStates, prefix: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.states = states
        self.prefix = prefix

    def load(self, partition: int, latest: Mapping[bytes, bytes | None]) -> int:
        state = self.states.ensure(partition)
        keys = 0
        for raw_key, raw_value in latest.items():
            if raw_value is None:
                continue  # balances are never deleted
            key = orjson.loads(raw_key)
            held = self._held(key, raw_value)
            if held is not None:
                state.load_one(key, held)
                keys += 1
        log.info("partition_state_loaded", table=self.table.name, partition=partition, keys=keys,
                 held=len(state.aggregate.held))
        return keys

    def _held(self, key: str, raw: bytes) -> Held | None:
        try:
            balance = read_balance(raw)
        except ValidationError:
            balance = None
        if isinstance(balance, tuple) and balance[1] == key:
            return balance[2]
        log.error("changelog_record_unreadable", table=self.table.name, key=key,
                  value=raw[:200].decode(errors="replace"))
        return None

    def drop(self, partition: int) -> None:
        self.states.pop(partition, None)

    def apply_changelog_batch(self, batch: Iterable[Any], to_key: Callable[[Any], Any],
                              to_value: Callable[[Any], Any]) -> None:
        """Records Faust's recovery read after the bulk load (the table's JSON values, decoded)."""
        for event in batch:
            value = event.message.value
            if value is None:
                continue
            key = to_key(event.key)
            held = self._held(key, value)
            if held is not None:
                self.states.ensure(event.message.partition).load_one(key, held)

    # The mapping Faust's table API reads: every balance held, over the partition states.
    def _rows(self) -> Iterator[tuple[str, Held]]:
        for state in list(self.states.values()):
            for key, held in state.aggregate.held.items():
                if key.startswith(self.prefix):
                    yield key, held

    def __getitem__(self, key: Any) -> Any:
        for state in self.states.values():
            held = state.aggregate.held.get(key)
            if held is not None and key.startswith(self.prefix):
                return held
        raise KeyError(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError(f"{self.table.name} is written by the calculator's batches (ChangelogWriter)")

    def __delitem__(self, key: Any) -> None:
        raise TypeError(f"{self.table.name}: balances are never deleted")

    def __iter__(self) -> Iterator[Any]:
        return (key for key, _ in self._rows())

    def __len__(self) -> int:
        return sum(1 for _ in self._rows())

    def __contains__(self, key: object) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def items(self) -> Any:
        return list(self._rows())

    def keys(self) -> Any:
        return [key for key, _ in self._rows()]

    def values(self) -> Any:
        return [held for _, held in self._rows()]

    def _clear(self) -> None:
        self.states.clear()

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        return None  # the states hold only partitions this worker owns (drop() on revocation)


class StoreTable(faust.Table[Any, Any]):
    """A Faust table whose store is made by `make_store` (a ChangelogStore or HeldStore)."""

    def __init__(self, app: faust.App, *, make_store: Callable[[StoreTable], Any], **kwargs: Any) -> None:
        self._make_store = make_store
        super().__init__(app, **kwargs)

    def _new_store(self) -> Any:
        return self._make_store(self)


def store_factory(cls: type[ChangelogStore], **extra: Any) -> Callable[[StoreTable], Any]:
    def make(table: StoreTable) -> Any:
        return cls(
            "memory://", table.app, table, table_name=table.name, key_type=table.key_type,
            value_type=table.value_type, key_serializer=table.key_serializer,
            value_serializer=table.value_serializer, options=table.options, loop=table.loop, **extra,
        )
    return make


# -- writing a changelog in bulk -----------------------------------------------------------------------


class ChangelogWriter:
    """One idempotent producer (acks=all) for the balance tables' changelogs: a record batch per partition."""

    def __init__(self, kafka: KafkaSettings, client_id: str) -> None:
        self.kafka = kafka
        self.client_id = client_id
        self._producer: Any = None

    async def start(self) -> None:
        if self._producer is None:
            producer = AIOKafkaProducer(
                **self.kafka.aiokafka_kwargs(), acks="all", enable_idempotence=True, linger_ms=0,
                max_batch_size=CHANGELOG_BATCH_BYTES, max_request_size=4 * CHANGELOG_BATCH_BYTES,
                client_id=self.client_id,
            )
            await asyncio.wait_for(producer.start(), 30)
            self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 30)

    async def write(
        self, topic: str, partition: int, records: Iterable[tuple[bytes, bytes]]
    ) -> list[tuple[asyncio.Future[Any], int]]:
        """Queue the (key, value) records for `topic`[`partition`]; returns (future, record count) per record
        batch: the future resolves to the batch's RecordMetadata (its first offset)."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("the changelog writer is not started")
        out: list[tuple[asyncio.Future[Any], int]] = []
        builder = producer.create_batch()
        count = 0
        for key, value in records:
            if builder.append(key=key, value=value, timestamp=None) is None:
                builder.close()
                out.append((await producer.send_batch(builder, topic, partition=partition), count))
                builder, count = producer.create_batch(), 0
                if builder.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"a changelog record larger than {CHANGELOG_BATCH_BYTES} bytes: {key!r}")
            count += 1
        if count:
            builder.close()
            out.append((await producer.send_batch(builder, topic, partition=partition), count))
        return out
