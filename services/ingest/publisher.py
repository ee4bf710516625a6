"""Publishing validated events (and dead letters) to Kafka.

`KafkaPublisher` wraps one idempotent aiokafka producer (acks=all, enable_idempotence=True): a batch is
published by sending every record first and then awaiting all their futures, so one batch costs about
one broker round trip. Every event reports its own outcome: None when Kafka acknowledged it, else the
reason it was not published.

Routing: account and depository balances → segwatch.balances, settings (management targets, FX rates,
the 30.7 foreign requirement) → segwatch.settings. The record key is the event's `key` (UTF-8), so every
event of one account or one depository account lands in one partition, with the same murmur2 partitioner
the Java clients and Faust use. The value is the event's JSON (`model_dump_json()`): amounts are decimal
strings. Dead letters go to segwatch.deadletter keyed by stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any, Protocol

from schemas.events import (
    AccountBalance,
    DepositoryBalance,
    EventBase,
    ForeignRequirement,
    FxRate,
    ManagementTarget,
)
from schemas.records import DeadLetter
from segwatch.config import KafkaSettings
from segwatch.kafka.topics import BALANCES, DEADLETTER, SETTINGS

TOPIC_OF: dict[type[EventBase], str] = {
    AccountBalance: BALANCES,
    DepositoryBalance: BALANCES,
    ManagementTarget: SETTINGS,
    ForeignRequirement: SETTINGS,
    FxRate: SETTINGS,
}
REQUIRED_TOPICS = (BALANCES, SETTINGS, DEADLETTER)

# Throughput tuning: wait a few ms to fill batches, let a batch grow large, keep the request bounded.
DEFAULT_LINGER_MS = 5
DEFAULT_MAX_BATCH_SIZE = 512 * 1024
DEFAULT_REQUEST_TIMEOUT_MS = 15_000


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
    return f"{name}: {text}" if text and text != name else name


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
    ) -> None:
        self.settings = settings if settings is not None else KafkaSettings.from_env()
        self._client_id = client_id
        self._linger_ms = linger_ms
        self._max_batch_size = max_batch_size
        self._request_timeout_ms = request_timeout_ms
        # How long one publish() waits for acknowledgements before reporting the rest as not published.
        self.ack_timeout = ack_timeout if ack_timeout is not None else request_timeout_ms / 1000 + 5
        self._producer: Any = None
        self._reachable_at = 0.0
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

    @staticmethod
    async def _missing_topics(producer: Any) -> list[str]:
        # An all-topics metadata request: it never auto-creates a topic (a per-topic one might).
        cluster = await producer.client.fetch_all_metadata()
        present = cluster.topics()
        return [topic for topic in REQUIRED_TOPICS if topic not in present]

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

    async def _send_all(self, records: Sequence[tuple[str, bytes, bytes]]) -> list[str | None]:
        producer = self._producer
        if producer is None:
            return ["Kafka producer is not started (broker unreachable?)"] * len(records)
        outcomes: list[str | None] = [None] * len(records)
        pending: dict[asyncio.Future[Any], int] = {}
        for i, (topic, key, value) in enumerate(records):
            try:
                future = await producer.send(topic, value, key=key)
            except Exception as exc:
                outcomes[i] = f"not published: {_reason(exc)}"
            else:
                pending[future] = i
        if pending:
            done, not_done = await asyncio.wait(pending, timeout=self.ack_timeout)
            for future in done:
                if future.cancelled():
                    outcomes[pending[future]] = "not acknowledged by Kafka: cancelled"
                elif (failure := future.exception()) is not None:
                    outcomes[pending[future]] = f"not acknowledged by Kafka: {_reason(failure)}"
            for future in not_done:
                outcomes[pending[future]] = f"not acknowledged by Kafka within {self.ack_timeout:g}s"
        return outcomes

    async def publish(self, events: Sequence[EventBase]) -> list[str | None]:
        return await self._send_all([(TOPIC_OF[type(ev)], event_key(ev), event_value(ev)) for ev in events])

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> list[str | None]:
        return await self._send_all(
            [(DEADLETTER, letter.stage.encode(), dead_letter_value(letter)) for letter in letters]
        )
