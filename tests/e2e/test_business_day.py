"""The business day on the real pipeline (issue #12): Monday's balances, then Tuesday's, close Monday with the
statement `segwatch statement from-events --close` prints, while the live figures go on with Tuesday; a
calculator killed and restarted in between republishes nothing and loses nothing; a late Monday balance that
changes the statement publishes exactly one AMENDMENT (version 2), an unchanged one publishes nothing. One bank's
reference data says its acknowledgment letter is missing (issue #14): its funds are out of the close as they are
out of the live figures at the cut-off."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from schemas.events import (
    AccountBalance,
    BusinessDayClose,
    DepositoryBalance,
    DepositoryReference,
    EventBase,
    ManagementTarget,
)
from schemas.statements import StatementRecord
from schemas.types import SegmentId
from segwatch.core.book import Book
from segwatch.forms.render import to_json
from segwatch.kafka import topics
from segwatch.replay import Watcher
from segwatch.system import LocalSystem
from tests.e2e.faults import sigkill_and_restart

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

CHI = ZoneInfo("America/Chicago")
MON, TUE = date(2017, 11, 6), date(2017, 11, 7)
SEGMENTS = ("4d2", "30.7", "4df")


def at(day: date, hour: int, minute: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=CHI).isoformat()


def account(eid: str, acct: str, cash: str, when: str, segment: SegmentId = "4d2") -> AccountBalance:
    zero = Decimal(0)
    return AccountBalance(
        event_id=eid,
        source="ledger",
        as_of=datetime.fromisoformat(when),
        segment=segment,
        account=acct,
        currency="USD",
        cash=Decimal(cash),
        securities=zero,
        unrealized=zero,
        long_options=zero,
        short_options=zero,
    )


def bank(eid: str, amount: str, when: str, depository: str) -> DepositoryBalance:
    return DepositoryBalance(
        event_id=eid,
        source="bank",
        as_of=datetime.fromisoformat(when),
        segment="4d2",
        depository=depository,
        line="7070",
        location="us",
        currency="USD",
        amount=Decimal(amount),
    )


Sendable = AccountBalance | DepositoryBalance | ManagementTarget | BusinessDayClose | DepositoryReference


async def send(system: LocalSystem, producer: AIOKafkaProducer, *events: Sendable) -> None:
    """Straight to Kafka, each on its topic (as ingest publishes them)."""
    for ev in events:
        home = topics.BALANCES if isinstance(ev, AccountBalance | DepositoryBalance) else topics.SETTINGS
        await producer.send_and_wait(system.topic(home), ev.model_dump_json().encode(), key=ev.key.encode())


def monday() -> list[Sendable]:
    target = ManagementTarget(
        event_id="tgt", source="treasury", as_of=datetime.fromisoformat(at(MON, 7)), segment="4d2", amount=Decimal(100)
    )
    no_letter = DepositoryReference(
        event_id="ref-5",
        source="treasury",
        as_of=datetime.fromisoformat(at(MON, 7)),
        segment="4d2",
        depository="BANK-5",
        kind="bank",
        country="US",
        acknowledgment_letter=False,
    )
    evs: list[Sendable] = [target, no_letter]
    for i in range(8):  # over the four balances partitions
        evs.append(account(f"mon-a{i}", f"C-{i}", str(1000 + 10 * i), at(MON, 9 + i % 6)))
        evs.append(bank(f"mon-b{i}", str(1200 + 20 * i), at(MON, 10 + i % 5), f"BANK-{i}"))
    evs.append(account("mon-307", "F-1", "400", at(MON, 14), segment="30.7"))
    return evs


def tuesday() -> list[Sendable]:
    return [account(f"tue-a{i}", f"C-{i}", str(5000 + i), at(TUE, 9)) for i in range(0, 8, 2)]


def from_events(events: Sequence[EventBase], day: date, workdir: Path) -> dict[str, dict[str, str]]:
    """`segwatch statement from-events EVENTS --close DAY`, run as the CLI."""
    path = workdir / f"events-{len(events)}.ndjson"
    path.write_text("".join(ev.model_dump_json() + "\n" for ev in events))
    out = subprocess.run(
        [sys.executable, "-m", "segwatch.cli", "statement", "from-events", str(path), "--close", day.isoformat()],
        capture_output=True,
        text=True,
        check=True,
    )
    statements: dict[str, dict[str, str]] = json.loads(out.stdout)
    return statements


def live_lines(events: Sequence[EventBase]) -> dict[str, dict[str, Decimal]]:
    """The live figures' lines of the segments that hold a balance (the others have no figures)."""
    book = Book()
    for ev in events:
        book.apply(ev)
    held = {ev.segment for ev in events if isinstance(ev, AccountBalance | DepositoryBalance)}
    return {sid: lines for sid, lines in book.statement().items() if sid in held}


async def read_statements(system: LocalSystem) -> list[StatementRecord]:
    """Every record on the statements topic, in order, read to its end."""
    name = system.topic(topics.STATEMENTS)
    async with system.consume(topics.STATEMENTS) as consumer:
        tp = TopicPartition(name, 0)
        end = (await consumer.end_offsets([tp]))[tp]
        out: list[StatementRecord] = []
        position = 0
        while position < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for record in batch.get(tp, ()):
                position = record.offset + 1
                if record.offset < end and json.loads(record.value)["type"] == "statement":
                    out.append(StatementRecord.model_validate_json(record.value))
        return out


async def wait_statements(system: LocalSystem, count: int, what: str, timeout: float = 60.0) -> list[StatementRecord]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        records = await read_statements(system)
        if len(records) >= count:
            return records
        if loop.time() > deadline:
            raise TimeoutError(f"{what}: {len(records)} statement records of {count}: {records}")
        await asyncio.sleep(0.2)


def as_json(records: list[StatementRecord]) -> dict[str, dict[str, str]]:
    return to_json({r.segment: r.lines for r in records})


async def fence(
    system: LocalSystem, producer: AIOKafkaProducer, watcher: Watcher, sent: list[Sendable], ev: Sendable
) -> None:
    """A live change after what was sent before it; once its figures are out, so is whatever came before it
    (then a moment for the statements of the same flush)."""
    await send(system, producer, ev)
    sent.append(ev)
    expected = live_lines(sent)
    await watcher.wait_for(lambda: watcher.figures_equal(expected), 60, f"the figures after {ev.event_id}")
    await asyncio.sleep(1.0)


async def test_the_close_amendments_and_a_restart_on_the_real_pipeline(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
    # A test clock: Monday noon, so only balances (Tuesday's first) close Monday, never the wall clock.
    monkeypatch.setenv("SEGWATCH_NOW", at(MON, 12))
    monkeypatch.setenv("SEGWATCH_CALCULATOR_INSTANCE_ID", "calculator-0")
    async with LocalSystem(workdir=tmp_path, run=("calculator",), out=lambda _: None) as system:
        watcher = Watcher(system, out=None)
        await watcher.start()
        producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap, acks="all", linger_ms=0)
        await producer.start()
        try:
            sent = monday()
            await send(system, producer, *sent)
            closed_lines = live_lines(sent)
            await watcher.wait_for(lambda: watcher.figures_equal(closed_lines), 60, "Monday's figures")
            assert await read_statements(system) == []  # Monday is open

            await send(system, producer, *tuesday())
            sent += tuesday()
            initial = await wait_statements(system, len(SEGMENTS), "Monday's close")
            assert sorted((r.business_day, r.segment, r.kind, r.version) for r in initial) == sorted(
                (MON, sid, "INITIAL", 1) for sid in SEGMENTS
            )
            assert as_json(initial) == from_events(sent, MON, tmp_path)
            four = next(r for r in initial if r.segment == "4d2")
            assert four.lines == closed_lines["4d2"]  # the live figures at the cut-off: BANK-5's funds out of both
            # The live figures go on with Tuesday's balances; Monday's close stays.
            live = live_lines(sent)
            await watcher.wait_for(lambda: watcher.figures_equal(live), 60, "Tuesday's live figures")
            assert watcher.figures["4d2"].lines != four.lines

            await sigkill_and_restart(system, "calculator")
            await fence(system, producer, watcher, sent, account("tue-x1", "C-1", "6001", at(TUE, 10)))
            assert await read_statements(system) == initial  # nothing republished, nothing lost

            late = bank("late-1", "1999", at(MON, 16), "BANK-3")  # reaches a partition that closed Monday or not
            await send(system, producer, late)
            sent.append(late)
            after = await wait_statements(system, len(SEGMENTS) + 1, "the amendment")
            (amended,) = after[len(SEGMENTS) :]
            assert (amended.business_day, amended.segment, amended.kind, amended.version) == (
                MON,
                "4d2",
                "AMENDMENT",
                2,
            )
            assert set(amended.moved) and all(m.before != m.after for m in amended.moved.values())
            assert as_json([*[r for r in initial if r.segment != "4d2"], amended]) == from_events(sent, MON, tmp_path)

            same = bank("late-2", "1999", at(MON, 16, 30), "BANK-3")  # later, the same amount: no change
            await send(system, producer, same)
            sent.append(same)
            await sigkill_and_restart(system, "calculator")
            await fence(system, producer, watcher, sent, bank("tue-x2", "2500", at(TUE, 11), "BANK-3"))
            assert await read_statements(system) == after  # one amendment, nothing since
        finally:
            await producer.stop()
            await watcher.stop()


async def test_the_clock_and_the_ledgers_close_event_close_days_without_a_next_days_balance(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("SEGWATCH_CALCULATOR_INSTANCE_ID", "calculator-0")
    async with LocalSystem(workdir=tmp_path, run=("calculator",), out=lambda _: None, now=at(MON, 12)) as system:
        watcher = Watcher(system, out=None)
        await watcher.start()
        producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap, acks="all", linger_ms=0)
        await producer.start()
        try:
            sent = monday()
            await send(system, producer, *sent)
            lines = live_lines(sent)
            await watcher.wait_for(lambda: watcher.figures_equal(lines), 60, "Monday's figures")
            assert await read_statements(system) == []
            # Tuesday 08:00 in Chicago: Monday's cut-off has passed; no balance says so, the clock does.
            system.now = at(TUE, 8)
            await system.restart_service("calculator")
            monday_close = await wait_statements(system, len(SEGMENTS), "Monday closed by the clock")
            assert {(r.business_day, r.kind, r.version) for r in monday_close} == {(MON, "INITIAL", 1)}
            assert as_json(monday_close) == from_events(sent, MON, tmp_path)
            assert next(r for r in monday_close if r.segment == "4d2").lines == lines["4d2"]
            # The ledger closes Tuesday before its cut-off: its statement is out at once.
            close = BusinessDayClose(
                event_id="close-tue", source="ledger", as_of=datetime.fromisoformat(at(TUE, 17)), business_day=TUE
            )
            await send(system, producer, close)
            both = await wait_statements(system, 2 * len(SEGMENTS), "Tuesday closed by the ledger")
            tuesday_close = both[len(SEGMENTS) :]
            assert {(r.business_day, r.kind, r.version) for r in tuesday_close} == {(TUE, "INITIAL", 1)}
            assert as_json(tuesday_close) == from_events(sent, TUE, tmp_path)
        finally:
            await producer.stop()
            await watcher.stop()
