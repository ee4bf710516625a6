"""KafkaPublisher's batching and acknowledgement bookkeeping against a fake producer (no broker): a full batch
is sent and a new one begun, a record too large for any batch is refused alone, a refused send or ack is the
reason of exactly the records it carried, and an unanswered record is in flight, not failed."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.partitioner import murmur2

from services.ingest.publisher import SMALL_REQUEST, InFlight, KafkaPublisher, final_outcome

PARTITIONS = 3


class FakeBatch:
    """A batch builder holding up to `capacity` records; a value larger than `too_large` never fits."""

    def __init__(self, capacity: int, too_large: int) -> None:
        self.capacity, self.too_large = capacity, too_large
        self.records: list[tuple[bytes, bytes]] = []
        self.closed = False

    def append(self, *, key: bytes, value: bytes, timestamp: None) -> object | None:
        if len(self.records) >= self.capacity or len(value) > self.too_large:
            return None
        self.records.append((key, value))
        return object()

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    def __init__(
        self, *, capacity: int = 4, too_large: int = 100, refuse: set[bytes] | None = None, hold: bool = False
    ) -> None:
        self.capacity, self.too_large = capacity, too_large
        self.refuse: set[bytes] = refuse or set()  # values whose batch (or send) the producer refuses at once
        self.hold = hold  # leave acknowledgements unanswered
        self.sent: list[tuple[str, int, list[bytes]]] = []
        self.futures: list[asyncio.Future[Any]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity, self.too_large)

    def _ack(self) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self.hold:
            future.set_result(None)
        self.futures.append(future)
        return future

    async def send_batch(self, builder: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        assert builder.closed
        values = [value for _, value in builder.records]
        if self.refuse & set(values):
            raise RuntimeError("refused")
        self.sent.append((topic, partition, values))
        return self._ack()

    async def send(self, topic: str, value: bytes, *, key: bytes, partition: int) -> asyncio.Future[Any]:
        if value in self.refuse:
            raise RuntimeError("refused")
        self.sent.append((topic, partition, [value]))
        return self._ack()


def publisher_with(producer: FakeProducer) -> KafkaPublisher:
    publisher = KafkaPublisher(ack_timeout=5)
    publisher._producer = producer  # the started state, without a broker
    return publisher


def records(count: int) -> list[tuple[str, bytes, bytes]]:
    return [("t", f"k{i % 5}".encode(), f"v{i}".encode()) for i in range(count)]


def partition_of(key: bytes) -> int:
    return int(murmur2(key) & 0x7FFFFFFF) % PARTITIONS


async def test_a_large_request_is_packed_per_partition_and_a_full_batch_starts_a_new_one() -> None:
    producer = FakeProducer(capacity=4)
    batch = records(SMALL_REQUEST + 9)
    outcomes = await publisher_with(producer)._send_all(batch)
    assert outcomes == [None] * len(batch)
    assert all(len(values) <= 4 for _, _, values in producer.sent)
    sent_in = {value: partition for _, partition, values in producer.sent for value in values}
    assert sent_in == {value: partition_of(key) for _, key, value in batch}  # murmur2, like Java and Faust
    for partition in range(PARTITIONS):  # each partition keeps the request's order
        in_order = [value for _, p, values in producer.sent if p == partition for value in values]
        assert in_order == [value for _, key, value in batch if partition_of(key) == partition]


async def test_a_record_larger_than_a_whole_batch_is_refused_alone() -> None:
    producer = FakeProducer(too_large=10)
    batch = records(SMALL_REQUEST + 1)
    batch[3] = ("t", b"k3", b"x" * 11)
    outcomes = await publisher_with(producer)._send_all(batch)
    assert outcomes[3] is not None and "larger than a whole batch" in outcomes[3]
    assert outcomes[:3] + outcomes[4:] == [None] * (len(batch) - 1)


async def test_a_refused_batch_is_the_reason_of_exactly_its_records() -> None:
    producer = FakeProducer(capacity=100, refuse={b"v0"})
    batch = records(SMALL_REQUEST + 1)
    outcomes = await publisher_with(producer)._send_all(batch)
    refused = {i for i, (_, key, _) in enumerate(batch) if partition_of(key) == partition_of(batch[0][1])}
    assert {i for i, outcome in enumerate(outcomes) if outcome is not None} == refused
    assert all(outcomes[i] == "not published: RuntimeError: refused" for i in refused)


async def test_a_small_request_sends_each_record_and_a_refusal_is_that_records_alone() -> None:
    producer = FakeProducer(refuse={b"v1"})
    outcomes = await publisher_with(producer)._send_all(records(3))
    assert outcomes == [None, "not published: RuntimeError: refused", None]
    assert [values for _, _, values in producer.sent] == [[b"v0"], [b"v2"]]


async def test_an_unanswered_record_is_in_flight_and_follows_kafkas_final_answer() -> None:
    producer = FakeProducer(hold=True)
    outcomes = await publisher_with(producer)._send_all(records(2), timeout=0.01)
    assert all(isinstance(outcome, InFlight) for outcome in outcomes)
    producer.futures[0].set_result(None)
    producer.futures[1].set_exception(RuntimeError("expired"))
    assert await final_outcome(outcomes[0]) is None
    assert await final_outcome(outcomes[1]) == "not acknowledged by Kafka: RuntimeError: expired"
