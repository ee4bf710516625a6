"""Publishing validated events (and dead letters) to Kafka.

`KafkaPublisher` wraps one idempotent aiokafka producer (acks=all, enable_idempotence=True): a batch is
published by sending every record first and then awaiting all their futures, so one batch costs about
one broker round trip (large batches are packed into one closed record batch per partition, which skips
the per-record overhead of `send()`). Every event reports its own outcome: None when Kafka acknowledged
it, else the reason it was not published. A record Kafka has neither acknowledged nor refused when the ack
timeout ends is not "not published": the client may still deliver it (and does, retrying). Its outcome is an
`InFlight` reason whose `settled` future gives the final outcome, so a dead letter is only ever written for a
record Kafka refused or that expired unsent.

Routing: account and depository balances → segwatch.balances, settings (management targets, FX rates,
the 30.7 foreign requirement) → segwatch.settings, disbursements, disbursement approvals and undermargined
amounts → segwatch.disbursements (read by the alerter: the 25% control and Reg. 1.22(c); the calculator never
sees them). The record key is the event's `key` (UTF-8), so every
event of one account or one depository account lands in one partition, with the same murmur2 partitioner
the Java clients and Faust use. The value is the event's JSON (`model_dump_json()`): amounts are decimal
strings. Dead letters go to segwatch.deadletter keyed by stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from aiokafka.partitioner import murmur2

from schemas.events import (
    AccountBalance,
    BusinessDayClose,
    DepositoryBalance,
    DepositoryReference,
    Disbursement,
    DisbursementApproval,
    EventBase,
    ForeignMarginRequirement,
    ForeignRequirement,
    FxRate,
    InvestmentReportSubmitted,
    ManagementTarget,
    StatementApproval,
    StatementFiling,
    UndermarginedAmounts,
)
from schemas.records import DeadLetter
from segwatch.config import KafkaSettings
from segwatch.kafka.topics import BALANCES, DEADLETTER, DISBURSEMENTS, SETTINGS, STATEMENTS

TOPIC_OF: dict[type[EventBase], str] = {
    AccountBalance: BALANCES,
    DepositoryBalance: BALANCES,
    ManagementTarget: SETTINGS,
    ForeignRequirement: SETTINGS,
    FxRate: SETTINGS,
    Disbursement: DISBURSEMENTS,
    ForeignMarginRequirement: SETTINGS,
    DepositoryReference: SETTINGS,
    # Controls before the money moves (#13): read by the alerter with the disbursements they concern.
    DisbursementApproval: DISBURSEMENTS,
    UndermarginedAmounts: DISBURSEMENTS,
    # The business day (issue #12): the close goes to the calculator's combiner, in order with the partials;
    # sign-off and filing are part of the day's record, beside its statements (kept five years), where the
    # alerter reads them (services/alerter/business_day.py).
    BusinessDayClose: SETTINGS,
    StatementApproval: STATEMENTS,
    StatementFiling: STATEMENTS,
    # The report of investments marked submitted (issue #14, CBOT Rule 971.D): the alerter's deadline.
    InvestmentReportSubmitted: STATEMENTS,
}
REQUIRED_TOPICS = (BALANCES, SETTINGS, DISBURSEMENTS, STATEMENTS, DEADLETTER)

# Throughput tuning: wait a few ms to fill batches, let a batch grow large, keep the request bounded.
DEFAULT_LINGER_MS = 2  # single events: concurrent requests share a batch; p50 ~4 ms with acks=all
DEFAULT_MAX_BATCH_SIZE = 512 * 1024
DEFAULT_REQUEST_TIMEOUT_MS = 15_000
SMALL_REQUEST = 16  # up to this many records per call: send() (shares lingering batches); more: own batches
HASH_CACHE_SIZE = 200_000
DEAD_LETTER_TIMEOUT = 5.0  # seconds (plus 1 ms per letter)


class InFlight(str):
    """The reason of a record still in flight after the ack timeout: it may yet be published. `settled`
    resolves to its final outcome (None: Kafka acknowledged it after all; else why it was not published)."""

    settled: asyncio.Future[str | None]

    def __new__(cls, reason: str, settled: asyncio.Future[str | None]) -> InFlight:
        self = super().__new__(cls, reason)
        self.settled = settled
        return self


async def final_outcome(outcome: str | None) -> str | None:
    """The outcome once settled: an `InFlight` waits for Kafka's final answer; anything else is final."""
    return await asyncio.shield(outcome.settled) if isinstance(outcome, InFlight) else outcome


def _ack_outcome(future: asyncio.Future[Any]) -> str | None:
    if future.cancelled():
        return "not acknowledged by Kafka: cancelled"
    failure = future.exception()
    return None if failure is None else f"not acknowledged by Kafka: {_reason(failure)}"


def _settle(settled: asyncio.Future[str | None], future: asyncio.Future[Any]) -> None:
    if not settled.done():
        settled.set_result(_ack_outcome(future))


class _Sent:
    """One `_send_all` call's bookkeeping: each record's outcome so far, and the acknowledgements awaited
    (each future with the indexes of the records it carries)."""

    def __init__(self, count: int) -> None:
        self.outcomes: list[str | None] = [None] * count
        self.pending: dict[asyncio.Future[Any], list[int]] = {}

    async def await_acks(self, timeout: float) -> None:
        """Wait up to `timeout` for the acknowledgements: a refusal becomes its records' reason; a record
        still unanswered becomes `InFlight`, whose `settled` follows Kafka's final answer."""
        pending = self.pending
        if not pending:
            return
        done, not_done = await asyncio.wait(pending, timeout=timeout)
        for future in done:
            error = _ack_outcome(future)
            if error is not None:
                for i in pending[future]:
                    self.outcomes[i] = error
        loop = asyncio.get_running_loop()
        for future in not_done:
            # Still in the producer: cancelling the future would not stop a batch already on the wire, so
            # the final answer is followed instead of guessed.
            settled: asyncio.Future[str | None] = loop.create_future()
            future.add_done_callback(functools.partial(_settle, settled))
            late = InFlight(
                f"not acknowledged by Kafka within {timeout:g}s (still in flight: it may yet be published)", settled
            )
            for i in pending[future]:
                self.outcomes[i] = late


async def _submit_batch(
    producer: Any, topic: str, partition: int, builder: Any, members: list[int], sent: _Sent
) -> None:
    """Close `builder` and send it; when the producer refuses it, every member record gets the reason."""
    builder.close()
    try:
        future = await producer.send_batch(builder, topic, partition=partition)
    except Exception as exc:
        for i in members:
            sent.outcomes[i] = f"not published: {_reason(exc)}"
    else:
        sent.pending[future] = members


class PublisherError(Exception):
    """Kafka cannot be used: unreachable, refused, or the topics are missing."""


def topic_for(event: EventBase) -> str:
    return TOPIC_OF[type(event)]


def event_key(event: EventBase) -> bytes:
    key: str = event.key  # type: ignore[attr-defined]  # every event model defines `key`
    return key.encode()


def event_value(event: EventBase) -> bytes:
    """The event as JSON bytes: the same bytes as `event.model_dump_json().encode()`, without the copy."""
    return event.__pydantic_serializer__.to_json(event)


def dead_letter_value(letter: DeadLetter) -> bytes:
    return letter.__pydantic_serializer__.to_json(letter)


class Publisher(Protocol):
    """What the HTTP API and the file sources need from Kafka (tests substitute a fake)."""

    @property
    def started(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def reachable(self) -> bool:
        """True when the broker answers and segwatch's topics exist."""
        ...

    async def publish(self, events: Sequence[EventBase]) -> list[str | None]:
        """Publish `events`; for each, None once Kafka acknowledged it, else why it was not published."""
        ...

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> list[str | None]:
        """Publish dead letters to segwatch.deadletter; same outcome convention as `publish`."""
        ...


def _reason(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    if not text or text == name:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


class KafkaPublisher:
    """The real publisher: one aiokafka producer, idempotent, acks=all."""

    def __init__(
        self,
        settings: KafkaSettings | None = None,
        *,
        client_id: str = "segwatch-ingest",
        linger_ms: int = DEFAULT_LINGER_MS,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        request_timeout_ms: int = DEFAULT_REQUEST_TIMEOUT_MS,
        ack_timeout: float | None = None,
        topic_map: Mapping[str, str] | None = None,
    ) -> None:
        """`topic_map` renames topics (e.g. {"segwatch.balances": "bench.balances"}) for benchmarks and tests."""
        self._topic = {name: name for name in REQUIRED_TOPICS} | dict(topic_map or {})
        self._route = {model: self._topic[topic] for model, topic in TOPIC_OF.items()}
        self.settings = settings if settings is not None else KafkaSettings.from_env()
        self._client_id = client_id
        self._linger_ms = linger_ms
        self._max_batch_size = max_batch_size
        self._request_timeout_ms = request_timeout_ms
        # How long one publish() waits for acknowledgements before reporting the rest as not published.
        self.ack_timeout = ack_timeout if ack_timeout is not None else request_timeout_ms / 1000 + 5
        self._producer: Any = None
        self._reachable_at = 0.0
        self._hashes: dict[bytes, int] = {}
        self._lock = asyncio.Lock()

    @property
    def started(self) -> bool:
        return self._producer is not None

    def _new_producer(self) -> Any:
        from aiokafka import AIOKafkaProducer

        return AIOKafkaProducer(
            **self.settings.aiokafka_kwargs(),
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=self._linger_ms,
            max_batch_size=self._max_batch_size,
            request_timeout_ms=self._request_timeout_ms,
        )

    async def start(self, timeout: float = 15.0) -> None:
        """Connect, and check that segwatch's topics exist (they are created by `segwatch topics apply`)."""
        async with self._lock:
            if self._producer is not None:
                return
            producer = self._new_producer()
            try:
                await asyncio.wait_for(producer.start(), timeout)
                missing = await asyncio.wait_for(self._missing_topics(producer), timeout)
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise PublisherError(
                    f"cannot reach Kafka at {self.settings.bootstrap_servers}: {_reason(exc)}"
                ) from exc
            if missing:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise PublisherError(
                    f"Kafka at {self.settings.bootstrap_servers} lacks the topic(s) {', '.join(missing)}; "
                    "run `segwatch topics apply`"
                )
            self._producer = producer
            self._reachable_at = time.monotonic()

    async def stop(self) -> None:
        """Flush what is pending and close."""
        async with self._lock:
            producer, self._producer = self._producer, None
            if producer is not None:
                await producer.stop()

    async def _missing_topics(self, producer: Any) -> list[str]:
        # An all-topics metadata request: it never auto-creates a topic (a per-topic one might).
        cluster = await producer.client.fetch_all_metadata()
        present = cluster.topics()
        return [self._topic[topic] for topic in REQUIRED_TOPICS if self._topic[topic] not in present]

    async def reachable(self, timeout: float = 3.0, cache_seconds: float = 1.0) -> bool:
        producer = self._producer
        if producer is None:
            return False
        if time.monotonic() - self._reachable_at < cache_seconds:
            return True
        try:
            missing = await asyncio.wait_for(self._missing_topics(producer), timeout)
        except Exception:
            return False
        if missing:
            return False
        self._reachable_at = time.monotonic()
        return True

    async def _partitioner(self, producer: Any, topics: set[str]) -> dict[str, list[int]]:
        """Each topic's partitions, sorted (from the producer's metadata; fetched once when unknown)."""
        return {topic: sorted(await producer.partitions_for(topic)) for topic in topics}

    def _hash(self, key: bytes) -> int:
        """murmur2 of the key, as Kafka's default partitioner (Java, aiokafka, Faust) computes it; cached."""
        cache = self._hashes
        h = cache.get(key)
        if h is None:
            if len(cache) >= HASH_CACHE_SIZE:
                cache.clear()
            h = cache[key] = murmur2(key) & 0x7FFFFFFF
        return h

    async def _send_all(
        self, records: Sequence[tuple[str, bytes, bytes]], timeout: float | None = None
    ) -> list[str | None]:
        """Send every record, then await every acknowledgement; one outcome per record.

        The partition is the default partitioner's (murmur2 of the key modulo the partition count), computed
        here. A few records go through `send()`, where concurrent requests share lingering batches; larger
        requests are packed into closed record batches per partition (`send_batch`), which go out at once.
        """
        producer = self._producer
        if producer is None:
            return ["Kafka producer is not started (broker unreachable?)"] * len(records)
        try:
            partitions = await self._partitioner(producer, {topic for topic, _, _ in records})
        except Exception as exc:
            return [f"not published: {_reason(exc)}"] * len(records)
        sent = _Sent(len(records))
        if len(records) <= SMALL_REQUEST:
            await self._send_each(producer, records, partitions, sent)
        else:
            await self._send_batches(producer, records, partitions, sent)
        await sent.await_acks(self.ack_timeout if timeout is None else timeout)
        return sent.outcomes

    def _partition(self, partitions: Mapping[str, list[int]], topic: str, key: bytes) -> int:
        parts = partitions[topic]
        return parts[self._hash(key) % len(parts)]

    async def _send_each(
        self,
        producer: Any,
        records: Sequence[tuple[str, bytes, bytes]],
        partitions: Mapping[str, list[int]],
        sent: _Sent,
    ) -> None:
        """One `send()` per record: a small request joins the batches other requests are lingering on."""
        for i, (topic, key, value) in enumerate(records):
            try:
                future = await producer.send(topic, value, key=key, partition=self._partition(partitions, topic, key))
            except Exception as exc:
                sent.outcomes[i] = f"not published: {_reason(exc)}"
            else:
                sent.pending[future] = [i]

    async def _send_batches(
        self,
        producer: Any,
        records: Sequence[tuple[str, bytes, bytes]],
        partitions: Mapping[str, list[int]],
        sent: _Sent,
    ) -> None:
        """Pack the records into closed record batches per partition; a full batch is sent and a new one begun."""
        builders: dict[tuple[str, int], tuple[Any, list[int]]] = {}
        for i, (topic, key, value) in enumerate(records):
            tp = (topic, self._partition(partitions, topic, key))
            entry = builders.get(tp)
            if entry is None:
                entry = builders[tp] = (producer.create_batch(), [])
            if entry[0].append(key=key, value=value, timestamp=None) is None:  # the batch is full
                await _submit_batch(producer, *tp, *entry, sent)
                entry = builders[tp] = (producer.create_batch(), [])
                if entry[0].append(key=key, value=value, timestamp=None) is None:
                    sent.outcomes[i] = "not published: the record is larger than a whole batch (max_batch_size)"
                    continue
            entry[1].append(i)
        for tp, (builder, members) in builders.items():
            if members:
                await _submit_batch(producer, *tp, builder, members, sent)

    async def publish(self, events: Sequence[EventBase]) -> list[str | None]:
        route = self._route
        return await self._send_all([(route[type(ev)], event_key(ev), event_value(ev)) for ev in events])

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> list[str | None]:
        # Usually called because publishing just failed: when Kafka is down, do not keep the client waiting
        # a second full timeout.
        return await self._send_all(
            [(self._topic[DEADLETTER], letter.stage.encode(), dead_letter_value(letter)) for letter in letters],
            timeout=min(self.ack_timeout, DEAD_LETTER_TIMEOUT + len(letters) / 1000),
        )
