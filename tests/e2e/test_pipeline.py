"""The whole pipeline on the real broker: HTTP ingest → Kafka → calculator → alerter → alerts and /metrics.

Each test runs its own system (its own topic namespace) with the three services as real processes.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from functools import partial

import aiohttp
import pytest
from aiokafka import TopicPartition

from schemas.events import DepositoryBalance
from schemas.records import Figures
from segwatch.cli.dayclose import statement_at_close
from segwatch.core import statement
from segwatch.core.book import Book
from segwatch.core.calendar import BusinessCalendar
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.forms.parse import parse_filing
from segwatch.kafka import topics
from segwatch.replay import Watcher, replay
from segwatch.sample import Day
from segwatch.system import LocalSystem
from segwatch.waiting import wait_until
from tests.conftest import REFERENCE
from tests.support.alerter import alerter_metrics
from tests.support.sample_day import EXPECTED_ALERTS, EXPECTED_STATEMENTS

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


async def alerts_end_offset(system: LocalSystem) -> int:
    """How many alert records the alerts topic holds (one partition; the watcher reads it from the start)."""
    name = system.topic(topics.ALERTS)
    async with system.consume(topics.ALERTS) as consumer:
        partitions = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]
        ends = await consumer.end_offsets(partitions)
    assert len(ends) == 1, ends
    end: int = next(iter(ends.values()))
    return end


async def assert_alerts_exactly_once(system: LocalSystem, watcher: Watcher) -> None:
    """The expected transitions and nothing after them, shown by a fence rather than by a pause: one more
    harmless event (a cent more at a new 4d(f) bank: no rule can fire on more funds) after the last transition;
    once the alerter has evaluated its figures, every alert that earlier figures caused is already in the
    alerts topic (one partition, figures evaluated in order, each alert acknowledged before the next record),
    so the watcher, read to that topic's end, has them all."""
    await watcher.wait_for(lambda: len(watcher.alerts) >= len(EXPECTED_ALERTS), 30, "the alert transitions")
    last = max((f.as_of for f in watcher.figures_seen if f.as_of is not None), default=None)
    assert last is not None
    marker = DepositoryBalance(
        event_id=f"marker-{uuid.uuid4().hex}",
        source="bank",
        as_of=last,
        segment="4df",
        depository="MARKER-BANK",
        line="8600",
        currency="USD",
        location="us",
        instrument="cash",
        amount=Decimal("0.01"),
    )
    async with aiohttp.ClientSession() as http:
        await system.post(http, [marker])
    await watcher.wait_for(
        lambda: any(f.last_event_id == marker.event_id for f in watcher.figures_seen), 60, "the marker's figures"
    )
    [version] = [f.version for f in watcher.figures_seen if f.last_event_id == marker.event_id]
    key = ("segwatch_figures_version", (("segment", "4df"),))

    async def evaluated() -> bool:
        return (await alerter_metrics(system)).get(key, -1) >= version

    await wait_until(evaluated, what="the alerter to evaluate the marker's figures", timeout=60, interval=0.2)
    end = await alerts_end_offset(system)
    await watcher.wait_for(lambda: len(watcher.alerts) >= end, 30, "the alerts topic read to its end")
    assert [(a.segment, a.rule, a.state) for a in watcher.alerts] == EXPECTED_ALERTS, [
        (a.segment, a.rule, a.state, str(a.at)) for a in watcher.alerts
    ]
    by_rule: dict[str, set[str]] = {}
    for a in watcher.alerts:
        by_rule.setdefault(a.rule, set()).add(a.alert_id)
    assert all(len(ids) == 1 for ids in by_rule.values()), by_rule  # firing and resolution share the id


async def assert_metrics_show(system: LocalSystem, figures: dict[str, Figures]) -> None:
    """The alerter's gauges show `figures`, once it has evaluated them (it reads them after the watcher may)."""

    async def shown() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        m = await alerter_metrics(system)
        versions = {sid: m.get(("segwatch_figures_version", (("segment", sid),))) for sid in figures}
        return m if all(versions[sid] == f.version for sid, f in figures.items()) else None

    m = await wait_until(shown, what="the alerter to show the latest figures", timeout=60, interval=0.2)
    assert m is not None  # wait_until returns a truthy result only
    for sid, f in figures.items():
        seg = (("segment", sid),)
        assert m[("segwatch_excess_dollars", seg)] == float(f.excess)
        assert m[("segwatch_requirement_dollars", seg)] == float(f.requirement)
        assert m[("segwatch_funds_dollars", seg)] == float(f.funds)
        for code, amount in f.lines.items():
            assert m[("segwatch_statement_line_dollars", (("line", code), ("segment", sid)))] == float(amount)


def assert_closing_equals_the_2017_filing(figures: dict[str, Figures]) -> None:
    filed = parse_filing((REFERENCE / "000_a00a1cb97de91a10.txt").read_text())
    for sid in SEGMENT_IDS:
        assert figures[sid].lines == statement.complete(sid, filed[sid]), sid


async def test_sample_day_through_the_pipeline(system: LocalSystem, watcher: Watcher) -> None:
    book = await replay(system, Day(accounts=300, events=200, seed=11), watcher, out=None)
    # After every phase replay() waited until the published figures equalled the core's for the same events.
    for sid in SEGMENT_IDS:
        assert watcher.figures[sid].lines == book.consolidated(sid).lines
    await assert_metrics_show(system, watcher.figures)
    assert_closing_equals_the_2017_filing(watcher.figures)
    # The business day: closed by the ledger, amended by the late balance to the filing (issue #12).
    assert [(s.segment, s.kind, s.version) for s in watcher.statements] == EXPECTED_STATEMENTS
    events = [ev for _, evs in Day(accounts=300, events=200, seed=11).phases() for ev in evs]
    day = watcher.statements[0].business_day
    closes = {s.segment: s.lines for s in watcher.statements}
    assert closes == statement_at_close(events, day, BusinessCalendar())
    # The close equals the live figures at its cut-off, the bank without its acknowledgment letter out of both.
    assert closes == {sid: f.lines for sid, f in watcher.figures.items()}
    await assert_alerts_exactly_once(system, watcher)  # last: its marker adds a cent to 4d(f)
    versions = [f.version for f in watcher.figures_seen if f.segment == "4d2"]
    assert versions == sorted(set(versions))  # one record per change, versions only grow
    # One correlation id from the ingested event to the figures and the alert it caused.
    [dip] = dict(Day(accounts=300, events=200, seed=11).phases())["4d2 margin: deficiency"]
    [firing] = [a for a in watcher.alerts if (a.rule, a.state) == ("deficiency", "firing")]
    assert firing.correlation_id == dip.event_id
    assert any(f.last_event_id == dip.event_id and f.excess < 0 for f in watcher.figures_seen)


async def test_calculator_and_alerter_restart_mid_stream(system: LocalSystem, watcher: Watcher) -> None:
    day = Day(accounts=300, events=200, seed=12)
    book = Book()
    phases = day.phases()
    async with aiohttp.ClientSession() as http:
        for name, events in phases:
            await system.post(http, events)
            book.apply_all(events)
            if name == "4d2 margin: under target":
                await watcher.wait_for(
                    lambda: any((a.rule, a.state) == ("under_target", "firing") for a in watcher.alerts),
                    60,
                    "under-target firing",
                )
                # Both stop; the day goes on into the deficiency while they are down.
                await system.stop_service("calculator")
                await system.stop_service("alerter")
            elif name == "4d2 margin: deficiency":
                await system.restart_service("calculator")
                await system.restart_service("alerter")
            calculator = system.services["calculator"].process
            assert calculator is not None
            if calculator.poll() is None:
                expected = {sid: book.consolidated(sid).lines for sid in SEGMENT_IDS if book.holds(sid)}
                missing = {sid: book.consolidated(sid).missing_fx for sid in expected}
                await watcher.wait_for(partial(watcher.figures_equal, expected, missing), 60, f"figures after {name}")
    await assert_metrics_show(system, watcher.figures)
    assert_closing_equals_the_2017_filing(watcher.figures)
    assert watcher.figures["4d2"].excess == Decimal("444221938")
    await assert_alerts_exactly_once(system, watcher)  # last: its marker adds a cent to 4d(f)
