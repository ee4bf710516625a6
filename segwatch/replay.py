"""Replay a business day into a running system, and watch the figures and alerts it produces."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial

import aiohttp

from schemas.alerts import Alert
from schemas.records import Figures
from schemas.statements import StatementRecord
from segwatch.core.book import Book
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.money import fmt_form
from segwatch.kafka import topics
from segwatch.sample import Day
from segwatch.system import LocalSystem, parse_output


def describe_figures(f: Figures) -> str:
    state = "DEFICIENCY" if f.excess < 0 else "under target" if f.target is not None and f.excess < f.target else "ok"
    if f.incomplete:
        state += f" INCOMPLETE (no rate: {', '.join(f.missing_fx)})"
    target = fmt_form(f.target) if f.target is not None else "none"
    return (
        f"figures {f.segment:>4} v{f.version:<4} required {fmt_form(f.requirement):>17}  held {fmt_form(f.funds):>17}"
        f"  excess {fmt_form(f.excess):>15}  target {target:>13}  {state}"
    )


def describe_statement(s: StatementRecord) -> str:
    excess = next((s.lines[c] for c in ("7190", "7380", "8730") if c in s.lines), None)
    moved = f"  moved {', '.join(sorted(s.moved))}" if s.moved else ""
    return (
        f"STATEMENT {s.business_day} {s.segment:>4} {s.kind:<9} v{s.version:<3}"
        f"  excess {fmt_form(excess) if excess is not None else '?':>15}{moved}"
    )


def describe_record(raw: Mapping[str, object]) -> str:
    """Another record of the statements topic: a day's status, a sign-off, a filing."""
    return f"RECORD    {raw.get('business_day')} {raw.get('type')} {raw.get('status') or ''}".rstrip()


def describe_alert(a: Alert) -> str:
    return f"ALERT   {a.segment:>4} {a.rule:<13} {a.state.upper():<8} {a.severity:<8} {a.summary}"


@dataclass
class Watcher:
    """Follows the figures and alert topics of a system; `wait_for` blocks until a condition holds."""

    system: LocalSystem
    out: Callable[[str], None] | None = print
    figures: dict[str, Figures] = field(default_factory=dict)
    figures_seen: list[Figures] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    statements: list[StatementRecord] = field(default_factory=list)  # in the order published (issue #12)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._follow(ready))
        await asyncio.wait_for(ready.wait(), 30)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _follow(self, ready: asyncio.Event) -> None:
        statements = self.system.topic(topics.STATEMENTS)
        async with self.system.consume(topics.FIGURES, topics.ALERTS, topics.STATEMENTS) as consumer:
            ready.set()
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        if record.topic == statements:
                            line = self._statement(record.value)
                            if self.out and line:
                                self.out(f"{time.strftime('%H:%M:%S')} {line}")
                            continue
                        item = parse_output(record.topic, record.value)
                        if isinstance(item, Figures):
                            self.figures[item.segment] = item
                            self.figures_seen.append(item)
                            line = describe_figures(item)
                        else:
                            self.alerts.append(item)
                            line = describe_alert(item)
                        if self.out:
                            self.out(f"{time.strftime('%H:%M:%S')} {line}")
                if batch:
                    async with self._changed:
                        self._changed.notify_all()

    def has_statements(self, count: int) -> bool:
        return len(self.statements) >= count

    def _statement(self, value: bytes | None) -> str | None:
        raw = json.loads(value) if value else None
        if not isinstance(raw, dict):
            return None
        if raw.get("type") == "statement":
            rec = StatementRecord.model_validate(raw)
            self.statements.append(rec)
            return describe_statement(rec)
        return describe_record(raw)

    async def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        async def waiter() -> None:
            async with self._changed:
                await self._changed.wait_for(condition)

        try:
            await asyncio.wait_for(waiter(), timeout)
        except TimeoutError:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}") from None

    def figures_equal(
        self, expected: Mapping[str, Mapping[str, Decimal]], missing_fx: Mapping[str, Sequence[str]] | None = None
    ) -> bool:
        """The latest figures have these lines (and, when given, leave out exactly these currencies: lines alone
        cannot tell incomplete figures from the complete ones before a currency without a rate arrived)."""
        return all(
            sid in self.figures
            and self.figures[sid].lines == lines
            and (missing_fx is None or list(self.figures[sid].missing_fx) == list(missing_fx.get(sid, ())))
            for sid, lines in expected.items()
        )


async def replay(
    system: LocalSystem,
    day: Day,
    watcher: Watcher,
    *,
    pause: float = 0.0,
    timeout: float = 60.0,
    out: Callable[[str], None] | None = print,
) -> Book:
    """Post the day phase by phase; after each, wait until the published figures equal the core's, and the
    statements published number at least the twin's (segwatch/core/twin_day.py), so that a day's close is
    out before the late balance that amends it is posted."""
    from segwatch.core.twin import Twin
    from segwatch.core.twin_day import STATEMENTS_TOPIC

    book = Book()
    twin = Twin()
    statements = 0
    async with aiohttp.ClientSession() as http:
        for name, events in day.phases():
            if out:
                out(f"-- {name}: {len(events)} events")
            await system.post(http, events)
            book.apply_all(events)
            # A segment has figures once it holds a balance (its settings alone publish none).
            expected = {sid: book.consolidated(sid).lines for sid in SEGMENT_IDS if book.holds(sid)}
            missing = {sid: book.consolidated(sid).missing_fx for sid in expected}
            await watcher.wait_for(
                partial(watcher.figures_equal, expected, missing), timeout, f"the figures after {name}"
            )
            statements += sum(1 for r in twin.feed_batch(events) if r.topic == STATEMENTS_TOPIC)
            if statements:
                await watcher.wait_for(
                    partial(watcher.has_statements, statements), timeout, f"the statements after {name}"
                )
            if pause:
                await asyncio.sleep(pause)
    return book
