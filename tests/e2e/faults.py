"""Shared parts of the fault tests: a small 4d(2) book whose one account flips the segment in and out of a
deficiency, and the alert transitions each flip must cause (once each)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiokafka import AIOKafkaProducer

from schemas.events import AccountBalance, Balance, DepositoryBalance, ManagementTarget, Setting
from segwatch.core.book import Book
from segwatch.kafka import topics
from segwatch.replay import Watcher
from segwatch.system import LocalSystem

T0 = datetime(2026, 11, 20, 15, tzinfo=UTC)
FUNDS = Decimal("10000.00")
TARGET = Decimal("100.00")
OK_CASH = Decimal("9000.00")  # excess 1,000: over target
DEFICIENT_CASH = Decimal("10500.00")  # excess -500: a deficiency, and under target

Transition = tuple[str, str, str]  # (segment, rule, state)


class FlipBook:
    """Events with growing as-of times; `book` is the core's answer for everything sent so far."""

    def __init__(self) -> None:
        self.book = Book()
        self.n = 0
        self.deficient = False

    def _next(self) -> tuple[str, datetime]:
        self.n += 1
        return f"fault-{self.n}", T0 + timedelta(seconds=self.n)

    def opening(self) -> list[Balance | Setting]:
        eid, at = self._next()
        target = ManagementTarget(event_id=eid, source="treasury", as_of=at, segment="4d2", amount=TARGET)
        eid, at = self._next()
        bank = DepositoryBalance(
            event_id=eid,
            source="bank",
            as_of=at,
            segment="4d2",
            depository="BANK-1",
            line="7070",
            currency="USD",
            location="us",
            amount=FUNDS,
        )
        return [target, bank, self.account("C-1", OK_CASH)]

    def account(self, account: str, cash: Decimal) -> AccountBalance:
        eid, at = self._next()
        return AccountBalance(
            event_id=eid,
            source="ledger",
            as_of=at,
            segment="4d2",
            account=account,
            currency="USD",
            cash=cash,
            securities=Decimal(0),
            unrealized=Decimal(0),
            long_options=Decimal(0),
            short_options=Decimal(0),
        )

    def flip(self) -> tuple[AccountBalance, list[Transition]]:
        """The balance that takes 4d(2) into a deficiency (or out of it), and the transitions it causes."""
        self.deficient = not self.deficient
        state = "firing" if self.deficient else "resolved"
        ev = self.account("C-1", DEFICIENT_CASH if self.deficient else OK_CASH)
        return ev, [("4d2", "deficiency", state), ("4d2", "under_target", state)]

    def noise(self) -> AccountBalance:
        """A change that moves a figure but no alert (a one-cent account)."""
        return self.account("C-2", Decimal(self.n) / 100)

    def sent(self, *events: Balance | Setting) -> None:
        self.book.apply_all(events)

    def expected_lines(self) -> dict[str, dict[str, Decimal]]:
        return {"4d2": self.book.consolidated("4d2").lines}


async def produce(system: LocalSystem, producer: AIOKafkaProducer, *events: Balance | Setting) -> None:
    """Straight to Kafka, as ingest publishes them (acknowledged by all replicas)."""
    for ev in events:
        home = topics.BALANCES if ev.type in ("account_balance", "depository_balance") else topics.SETTINGS
        await producer.send_and_wait(system.topic(home), ev.model_dump_json().encode(), key=ev.key.encode())


async def sigkill_and_restart(system: LocalSystem, name: str) -> None:
    svc = system.services[name]
    assert svc.process is not None
    svc.process.send_signal(signal.SIGKILL)
    await asyncio.to_thread(svc.process.wait, 10)
    system.launch(svc)
    await system.wait_ready([name], timeout=120)


async def wait_transitions(
    watcher: Watcher, expected: list[Transition], what: str, timeout: float = 60.0, baseline: int = 0
) -> float:
    """Until as many alerts as `expected` followed the first `baseline` ones; seconds waited."""
    started = time.monotonic()
    await watcher.wait_for(lambda: len(watcher.alerts) - baseline >= len(expected), timeout, what)
    return time.monotonic() - started


def assert_each_transition_once(watcher: Watcher, expected: list[Transition], baseline: int = 0) -> None:
    """The alerts after the first `baseline` are `expected`, each once (firing and resolved alternate)."""
    seen = [(a.segment, a.rule, a.state) for a in watcher.alerts[baseline:]]
    assert Counter(seen) == Counter(expected), seen
    # The order per rule: firing, resolved, firing, ...
    for rule in {r for _, r, _ in expected}:
        states = [s for _, r, s in seen if r == rule]
        assert states == [("firing", "resolved")[i % 2] for i in range(len(states))], (rule, states)
