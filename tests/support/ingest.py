"""The ingest HTTP app served in-process with a fake publisher, and the event lines its tests post."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from schemas.events import EventBase
from schemas.records import DeadLetter
from services.ingest.api import create_app, runner_options
from services.ingest.config import IngestConfig

TOKEN = "s3cret-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**AUTH, "Content-Type": "application/json"}
NDJSON = {**AUTH, "Content-Type": "application/x-ndjson"}


def account(event_id: str, account: str = "C-1", cash: str = '"100.00"', **extra: str) -> str:
    fields = {
        "type": '"account_balance"',
        "event_id": f'"{event_id}"',
        "source": '"ledger"',
        "as_of": '"2026-11-20T22:00:00Z"',
        "segment": '"4d2"',
        "account": f'"{account}"',
        "currency": '"USD"',
        "cash": cash,
        "securities": '"0"',
        "unrealized": '"0"',
        "long_options": '"0"',
        "short_options": '"0"',
        **extra,
    }
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"


def fx(event_id: str, rate: str = '"1.0842"') -> str:
    return (
        f'{{"type": "fx_rate", "event_id": "{event_id}", "source": "fx", "as_of": "2026-11-20T21:00:00Z", '
        f'"currency": "EUR", "usd_per_unit": {rate}}}'
    )


class FakePublisher:
    """Records what would go to Kafka; `fail` decides per event whether Kafka 'refuses' it."""

    def __init__(
        self,
        fail: Callable[[EventBase], str | None] = lambda event: None,
        dead_letter_error: str | None = None,
        broker_up: bool = True,
    ) -> None:
        self._started = False
        self.stopped = False
        self.fail = fail
        self.dead_letter_error = dead_letter_error
        self.broker_up = broker_up
        self.published: list[EventBase] = []
        self.letters: list[DeadLetter] = []
        self.batches: list[int] = []

    @property
    def started(self) -> bool:
        return self._started

    async def start(self) -> None:
        self._started = True

    async def stop(self) -> None:
        self._started = False
        self.stopped = True

    async def reachable(self) -> bool:
        return self._started and self.broker_up

    async def publish(self, events: Sequence[EventBase]) -> list[str | None]:
        self.batches.append(len(events))
        outcomes = [self.fail(event) for event in events]
        self.published += [e for e, error in zip(events, outcomes, strict=True) if error is None]
        return outcomes

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> list[str | None]:
        if self.dead_letter_error:
            return [self.dead_letter_error] * len(letters)
        self.letters += letters
        return [None] * len(letters)


@contextlib.asynccontextmanager
async def serving(
    publisher: FakePublisher | None = None, config: IngestConfig | None = None
) -> AsyncIterator[tuple[TestClient[Any, Any], FakePublisher]]:
    publisher = publisher if publisher is not None else FakePublisher()
    config = config if config is not None else IngestConfig(tokens=(TOKEN.encode(),))
    server = TestServer(create_app(config, publisher))
    await server.start_server(**runner_options(config))  # as `serve` runs it
    client = TestClient(server)
    await client.start_server()
    try:
        yield client, publisher
    finally:
        await client.close()
