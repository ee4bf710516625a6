"""Contract tests: each private faust-streaming / aiokafka member the calculator relies on
(services/calculator/faust_adapter.py, PRIVATE_MEMBERS) still behaves as the adapter expects. An upgrade that
changes one fails here, in CI, not in a running calculator. Real Faust objects, no broker: nothing is
started or connected."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, TypeVar, cast

import pytest
from aiokafka import AIOKafkaConsumer
from faust.stores import memory
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.types import TP, EventT

from services.calculator import faust_adapter
from services.calculator.faust_adapter import (
    FETCH_MAX_WAIT_MS,
    PRIVATE_MEMBERS,
    BulkConsumer,
    BulkLoadedStore,
    CalculatorApp,
    StoreTable,
    check_faust,
    store_factory,
)

BULK = TP("contract.bulk", 0)
OTHER = TP("contract.other", 0)
CONTRACTS: set[str] = set()  # the members a test below covers


Test = TypeVar("Test", bound=Callable[..., Any])


def covers(*members: str) -> Callable[[Test], Test]:
    CONTRACTS.update(members)
    return lambda fn: fn


class _Recorder:
    def __init__(self) -> None:
        self.fetches: list[dict[TP, list[Any]]] = []

    async def __call__(self, fetch: Any) -> None:
        self.fetches.append({tp: list(records) for tp, records in fetch.items()})


@pytest.fixture
def app() -> Iterator[CalculatorApp]:
    a = CalculatorApp("contract-test", broker="kafka://127.0.0.1:1", store="memory://", web_enabled=False)
    yield a


@pytest.fixture
def recorder(app: CalculatorApp) -> _Recorder:
    handler = _Recorder()
    app.bulk_topic(app.topic(BULK.topic, key_serializer="raw", value_serializer="raw"), handler)
    return handler


def consumer_of(app: CalculatorApp, monkeypatch: pytest.MonkeyPatch, assigned: set[TP]) -> BulkConsumer:
    consumer = app.consumer
    assert isinstance(consumer, BulkConsumer)
    monkeypatch.setattr(consumer, "assignment", lambda: set(assigned))
    consumer._set_active_tps(assigned)  # what Faust does on assignment
    return consumer


def record(tp: TP, offset: int) -> Any:
    return SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=offset, key=b"k", value=b"v", timestamp=0)


def test_every_private_member_is_checked_at_start_and_has_a_contract_test() -> None:
    check_faust()
    assert {name for _, name in PRIVATE_MEMBERS} <= CONTRACTS


@covers("_new_consumer", "_on_partitions_revoked", "_on_partitions_assigned", "_new_consumer_thread")
def test_the_app_makes_its_consumer_with_the_bulk_handlers_and_our_consumer_thread(
    app: CalculatorApp,
    recorder: _Recorder,
) -> None:
    consumer = app.consumer
    assert isinstance(consumer, BulkConsumer)
    assert consumer.bulk == {BULK.topic: recorder}
    assert consumer.before_stop is app.before_stop
    assert consumer._on_partitions_revoked == app._on_partitions_revoked
    assert consumer._on_partitions_assigned == app._on_partitions_assigned
    assert isinstance(consumer._new_consumer_thread(), faust_adapter._ConsumerThread)


@covers("_create_worker_consumer", "_fetch_max_wait_ms")
async def test_the_consumer_thread_makes_an_aiokafka_consumer_with_the_short_long_poll(app: CalculatorApp) -> None:
    consumer = app.consumer
    assert isinstance(consumer, BulkConsumer)
    thread = consumer._new_consumer_thread()
    worker = thread._create_worker_consumer(app.transport)
    assert isinstance(worker, AIOKafkaConsumer)
    assert worker._fetch_max_wait_ms == FETCH_MAX_WAIT_MS  # AIOKafkaConsumer.start() hands it to the fetcher


@covers("_acked", "_new_offset")
def test_processed_offsets_are_what_fausts_commit_takes(
    app: CalculatorApp,
    recorder: _Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = consumer_of(app, monkeypatch, {BULK, OTHER})
    consumer.processed(BULK, 42)
    consumer.processed(BULK, 40)  # never backwards
    consumer.processed(TP("not.assigned", 0), 7)  # ignored
    pending = set(consumer._filter_tps_with_pending_acks())
    assert BULK in pending and TP("not.assigned", 0) not in pending
    assert consumer._filter_committable_offsets([BULK]) == {BULK: 42}
    # Faust's own offsets for the other topics: acked offsets up to the first gap, plus one.
    consumer._acked[OTHER].extend([0, 1, 2, 5])
    assert consumer._new_offset(OTHER) == 3


@covers(
    "_wait_next_records",
    "_read_offset",
    "_buffered_partitions",
    "flow_active",
    "consumer_generation_id",
    "stream_inbound_time",
)
async def test_a_fetch_of_a_bulk_topic_goes_whole_to_its_handler_and_the_rest_to_faust(
    app: CalculatorApp,
    recorder: _Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = consumer_of(app, monkeypatch, {BULK, OTHER})
    fetched = {BULK: [record(BULK, 5), record(BULK, 6)], OTHER: [record(OTHER, 1)]}

    async def getmany(active_partitions: set[TP], timeout: float) -> dict[TP, list[Any]]:
        assert active_partitions == {BULK, OTHER}  # Faust fetches the assigned, unpaused partitions
        return fetched

    monkeypatch.setattr(consumer, "_getmany", getmany)
    assert consumer.flow_active and isinstance(app.consumer_generation_id, int)
    assert isinstance(consumer._buffered_partitions, set)
    rest, active = await consumer._wait_next_records(1.0)
    assert rest == {OTHER: fetched[OTHER]} and active == {BULK, OTHER}
    assert recorder.fetches == [{BULK: fetched[BULK]}]
    assert consumer._read_offset[BULK] == 6
    assert BULK in app.monitor.stream_inbound_time
    # While a rebalance suspends the flow, Faust's getmany discards: nothing goes to the handler.
    consumer.stop_flow()
    assert not consumer.flow_active
    consumer.resume_flow()
    app.consumer_generation_id += 1  # a rebalance during the fetch: the records are Faust's to discard

    async def getmany_rebalanced(active_partitions: set[TP], timeout: float) -> dict[TP, list[Any]]:
        app.consumer_generation_id += 1
        return fetched

    monkeypatch.setattr(consumer, "_getmany", getmany_rebalanced)
    rest, _ = await consumer._wait_next_records(1.0)
    assert rest == fetched and len(recorder.fetches) == 1


@covers("_update_channels", "completed")
async def test_the_table_manager_registers_changelogs_at_once_and_recovery_has_a_completed_event(
    app: CalculatorApp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = app.Table("contract", default=None, partitions=1)
    monkeypatch.setattr(app.consumer, "assignment", lambda: set())
    monkeypatch.setattr(type(table), "maybe_start", lambda self: asyncio.sleep(0))
    tables = app.tables
    assert isinstance(tables, TableManager)
    await tables._update_channels()
    assert table.changelog_topic.get_topic_name() in tables.changelog_topics
    assert isinstance(tables.recovery, Recovery)
    assert isinstance(tables.recovery.completed, asyncio.Event)
    assert not app.recovery_completed()
    tables.recovery.completed.set()
    assert app.recovery_completed()


class _Store(BulkLoadedStore):
    loaded: list[TP]

    async def load_partitions(self, tps: Any) -> None:
        self.loaded = list(tps)
        for tp in tps:
            self.keep(f"k{tp.partition}", {"v": tp.partition}, tp.partition)

    def recovered(self, partition: int, key: Any, value: bytes | None) -> None:
        self.keep(key, None if value is None else value.decode(), partition)


@covers("_new_store", "_key_partition", "_clear")
async def test_the_store_is_ours_and_faust_revokes_and_clears_through_it(
    app: CalculatorApp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = StoreTable(app, name="contract", partitions=2, make_store=store_factory(_Store), default=None)
    store = table.data
    assert isinstance(store, _Store) and isinstance(store, memory.Store)
    tps = {TP(store.topic, 0), TP(store.topic, 1)}
    monkeypatch.setattr(app.assignor, "assigned_actives", lambda: tps)
    await store.on_rebalance(tps, set(), tps)
    assert sorted(store.loaded) == sorted(tps) and dict(store.data) == {"k0": {"v": 0}, "k1": {"v": 1}}
    assert store._key_partition == {"k0": 0, "k1": 1}
    await store.on_rebalance(set(), {TP(store.topic, 1)}, set())
    assert dict(store.data) == {"k0": {"v": 0}}
    # Faust's recovery of records written after the bulk load
    event = SimpleNamespace(key=b'"k2"', message=SimpleNamespace(partition=0, value=b"x"))
    store.apply_changelog_batch([event], to_key=lambda k: k.decode().strip('"'), to_value=lambda v: v)
    assert store["k2"] == "x"
    store.set_persisted_offset(TP(store.topic, 0), 9)
    store.set_persisted_offset(TP(store.topic, 0), 3)
    assert store.persisted_offset(TP(store.topic, 0)) == 9
    # Faust's memory store keeps _key_partition itself for what it applies, and empties it through _clear.
    plain: memory.Store[str, int] = memory.Store("memory://", app, table)
    # A stand-in for Faust's changelog event: only the fields the store reads.
    changelog = SimpleNamespace(key="a", value=1, message=SimpleNamespace(partition=1, value=b"1"))
    plain.apply_changelog_batch([cast(EventT[Any], changelog)], to_key=lambda k: k, to_value=lambda v: v)
    assert plain._key_partition == {"a": 1}
    plain._clear()  # Faust's memory store empties its rows in _clear; ours empties the partitions' too
    assert len(plain.data) == 0
    store._clear()
    assert len(store.data) == 0 and store._key_partition == {}
