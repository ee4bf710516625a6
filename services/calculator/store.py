"""Changelog-backed Faust tables whose state is loaded from the changelog in bulk, and written to it in bulk.

Faust recovers a table by handing every changelog record through its consumer one message at a time; on a
small machine that is a few thousand records a second, so a restart with 100,000 accounts took minutes. The
Store is Faust's extension point for this (its RocksDB store uses it to skip what it already has on disk);
the Faust side of it is `BulkLoadedStore` (services/calculator/faust_adapter.py):

- when a changelog partition is assigned, `ChangelogStore.load_partitions` reads it itself (`read_changelog`:
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

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.types import TP
from pydantic import ValidationError

from segwatch.config import KafkaSettings
from segwatch.core.ledger import Held
from segwatch.logs import configure
from services.calculator.fastparse import read_balance
from services.calculator.faust_adapter import BulkLoadedStore
from services.calculator.holdings_stage import note_depository
from services.calculator.partials import PartitionState

log = configure("calculator")

LOAD_FETCH_BYTES = 2 * 1024 * 1024
LOAD_POLL_RECORDS = 20_000
LOAD_TIMEOUT = 600.0  # seconds for loading the changelog partitions of one rebalance
CHANGELOG_BATCH_BYTES = 1024 * 1024


class PartitionStates(dict[int, PartitionState]):
    """The state of each balances partition this worker owns, shared by the two balance tables."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: set[int] = set()  # partitions loaded since their partials were last republished

    def ensure(self, partition: int) -> PartitionState:
        state = self.get(partition)
        if state is None:
            state = self[partition] = PartitionState(partition)
        return state


# -- reading a changelog in bulk -----------------------------------------------------------------------


async def read_changelog(
    kafka: KafkaSettings, tps: Sequence[TP], timeout: float = LOAD_TIMEOUT
) -> AsyncIterator[tuple[TP, dict[bytes, bytes | None], int | None, int, int]]:
    """Per partition, one after the other (so that one partition's records are in memory at a time): every
    key's latest value from the first offset to the end offset when it started, the offset of the last record
    read (None: nothing there), how many records were read, and that end offset."""
    consumer = AIOKafkaConsumer(
        **kafka.aiokafka_kwargs(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="segwatch-calculator-changelog-loader",
        max_partition_fetch_bytes=LOAD_FETCH_BYTES,
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
            yield TP(atp.topic, atp.partition), latest, last, count, end
    finally:
        await consumer.stop()


async def read_last_per_key(
    kafka: KafkaSettings, topic: str, keys: Sequence[bytes], partition: int = 0, timeout: float = 60.0
) -> dict[bytes, bytes]:
    """The last record of each of `keys` on `topic`[`partition`], read backwards from the end in growing
    windows (a compacted topic's uncompacted tail can be long; the newest records are what matter). Keys
    never written are absent."""
    consumer = AIOKafkaConsumer(
        **kafka.aiokafka_kwargs(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="segwatch-calculator-figures-reader",
        max_partition_fetch_bytes=LOAD_FETCH_BYTES,
    )
    deadline = time.monotonic() + timeout
    await asyncio.wait_for(consumer.start(), timeout)
    try:
        atp = TopicPartition(topic, partition)
        consumer.assign([atp])
        begin = (await asyncio.wait_for(consumer.beginning_offsets([atp]), timeout))[atp]
        end = (await asyncio.wait_for(consumer.end_offsets([atp]), timeout))[atp]
        found: dict[bytes, bytes] = {}
        stop, window = end, 64
        while stop > begin and len(found) < len(keys):
            start = max(begin, stop - window)
            newest: dict[bytes, bytes] = {}
            consumer.seek(atp, start)
            while await consumer.position(atp) < stop:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{topic}[{partition}] not read in {timeout:.0f}s")
                batch = await consumer.getmany(atp, timeout_ms=500)
                for record in batch.get(atp, ()):
                    if record.offset < stop and record.key in keys and record.value is not None:
                        newest[record.key] = record.value
            for key, value in newest.items():
                found.setdefault(key, value)  # a later window is older: keep what was found first
            stop, window = start, window * 4
        return found
    finally:
        await consumer.stop()


# -- the stores ------------------------------------------------------------------------------------------


class ChangelogStore(BulkLoadedStore):
    """A memory store that loads its changelog partitions itself, in bulk (the combiner's table)."""

    def __init__(
        self, *args: Any, kafka: KafkaSettings, on_loaded: Callable[[], None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.kafka = kafka
        self.on_loaded = on_loaded  # called after partitions were loaded

    async def load_partitions(self, tps: Sequence[TP]) -> None:
        started = time.monotonic()
        keys = count = 0
        async for tp, latest, last, read, end in read_changelog(self.kafka, tps):
            keys += self.load(tp.partition, latest, end)
            count += read
            if last is not None:
                self.set_persisted_offset(tp, last)
        log.info(
            "changelog_loaded",
            table=self.table.name,
            partitions=[tp.partition for tp in tps],
            records=count,
            keys=keys,
            seconds=round(time.monotonic() - started, 3),
        )
        if self.on_loaded is not None:
            self.on_loaded()

    def load(self, partition: int, latest: Mapping[bytes, bytes | None], end: int = 0) -> int:
        """Take the latest value of each key of one changelog partition (read up to offset `end`); returns how
        many keys are held."""
        for raw_key, raw_value in latest.items():
            self.keep(orjson.loads(raw_key), None if raw_value is None else orjson.loads(raw_value), partition)
        return self.held_in(partition)

    def recovered(self, partition: int, key: Any, value: bytes | None) -> None:
        self.keep(key, None if value is None else orjson.loads(value), partition)


class HeldStore(ChangelogStore):
    """The rows of a balance table (`accounts`: keys "acct|…", `depositories`: "depo|…") are the `Held`
    balances of the partition states' aggregates; the store reads them from there and loads them into them."""

    def __init__(self, *args: Any, states: PartitionStates, prefix: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.states = states
        self.prefix = prefix

    def load(self, partition: int, latest: Mapping[bytes, bytes | None], end: int = 0) -> int:
        state = self.states.ensure(partition)
        state.loaded(self.table.name, end)
        self.states.loaded.add(partition)
        keys = 0
        for raw_key, raw_value in latest.items():
            if raw_value is None:
                continue  # balances are never deleted
            key = orjson.loads(raw_key)
            held = self._held(key, raw_value)
            if held is not None:
                state.load_one(key, held)
                if key.startswith("depo|"):
                    note_depository(state.holdings, key, raw_value)  # issue #14: holdings_stage.py
                keys += 1
        log.info(
            "partition_state_loaded",
            table=self.table.name,
            partition=partition,
            keys=keys,
            held=len(state.aggregate.held),
        )
        return keys

    def _held(self, key: str, raw: bytes) -> Held | None:
        try:
            balance = read_balance(raw)
        except ValidationError:
            balance = None
        if isinstance(balance, tuple) and balance[1] == key:
            return balance[2]
        log.error(
            "changelog_record_unreadable", table=self.table.name, key=key, value=raw[:200].decode(errors="replace")
        )
        return None

    def drop_partition(self, partition: int) -> None:
        self.states.pop(partition, None)

    def recovered(self, partition: int, key: Any, value: bytes | None) -> None:
        """A record Faust's recovery read after the bulk load."""
        if value is None:
            return
        held = self._held(key, value)
        if held is not None:
            state = self.states.ensure(partition)
            state.load_one(key, held)
            if key.startswith("depo|"):
                note_depository(state.holdings, key, value)  # issue #14: holdings_stage.py

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

    def clear_rows(self) -> None:
        self.states.clear()

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        return None  # the states hold only partitions this worker owns (drop() on revocation)


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
                **self.kafka.aiokafka_kwargs(),
                acks="all",
                enable_idempotence=True,
                linger_ms=0,
                max_batch_size=CHANGELOG_BATCH_BYTES,
                max_request_size=4 * CHANGELOG_BATCH_BYTES,
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
