"""The calculator's business day (issue #12): each partition closes its days, the combiner publishes statements.

The pure parts are segwatch/core/close.py (`DayCloser`) and segwatch/core/business_day.py (`put_balance`,
`PartView`, `ClosingBook`); the twin runs the same code (segwatch/core/twin_day.py). This module wires them:

Partition side (`PartitionDay`, one per balances partition, `PartitionState.closing`): a `DayCloser` beside
the live aggregate, fed every balance in the `aggregate` stage (`PartitionDay.put` replaces the aggregate's
`put`). A balance never waits in the closer (a balance after the open day's cut-off closes that day first,
business_day.roll), so the closer's view at the open day's cut-off IS the live aggregate: the closer shares it
instead of keeping a copy (no second copy of the balances, no second `put`). The fast path (a balance of the
open day) costs one dict lookup more than the aggregate's own put; closing a day and a late balance take the
pure code's path. The closer's state goes to the `closing` table's changelog, written in the same step as the
balances' (`ApplyBalances._write`, then `ApplyBalances.checkpoint`: nothing is committed before both are
acknowledged), as two kinds of rows, so that a fetch writes O(its balances), never the whole closer:
- `meta|<partition>`: the open day, its cut-off, the closed days kept, their closing sums and their funds per
  depository and line (`ClosedDay.depositories`: issue #14's unacknowledged funds) (small);
- `before|<balance key>`: for one key, the balance in force at the cut-off of each closed day that needed
  it (`ClosedDay.before`), or null. A row names the days it holds; rows of days no longer kept are ignored.
Loading (`ClosingStore`) rebuilds the closer over the partition's reloaded aggregate. The partial carries the
partition's `PartView` (`Partial.day`: its open day and the closing sums of the days it closed); the live funds
per depository of its open day are those of the partial's holdings sums (`live_depositories`).

Combiner side (`StatementDesk`): a `ClosingBook` fed the partitions' views, the settings (kept as a history,
since a closed day is computed with the settings in force at its cut-off), `business_day_close` events and
the clock (`tick`). `flush` returns the `StatementRecord`s to publish on segwatch.statements, keyed by
`rec.key` ("<day>|<segment>|v<version>": compaction keeps every version): INITIAL at a day's close, an
AMENDMENT with the next version when a late
balance or setting changes it, nothing when it does not. The owner of the combiner restores it from the
combiner table (views, settings history, `closed|through`) and from the statements topic (`ClosingBook.restore`:
what was really published), so a restart republishes nothing and loses nothing.

`business_day_close` is on the settings topic (one partition, read by the combiner's owner only): the book
closes the day at once. A partition still open at that day contributes its live sums to it, which are then
exactly its view at the day's close (business_day.PartView.contribution), and it closes the day itself at
its next balance after the cut-off; a balance of the day that reaches it in between amends the day, as it
would have had the partition closed it at the event (the same statement either way).

The clock: `Clock` reads `SEGWATCH_NOW` (an ISO instant with its offset, e.g. a test clock) when set, else the
wall clock. The combiner's owner checks it every `CLOCK_TICK` seconds (`ClosingBook.close_at`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import orjson

from schemas.events import BusinessDayClose, DepositoryReference, ForeignRequirement, FxRate, ManagementTarget
from schemas.statements import StatementRecord
from segwatch.core.aggregate import Aggregate
from segwatch.core.business_day import ClosingBook, PartView, depositories_of_holdings, new_closer, roll
from segwatch.core.calendar import BusinessCalendar
from segwatch.core.close import (
    DEFAULT_RETAIN,
    ClosedDay,
    DayCloser,
    SettingEvent,
    held_from_json,
    held_to_json,
    sums_from_json,
)
from segwatch.core.ledger import Held
from segwatch.core.money import to_cents
from segwatch.logs import configure
from services.calculator.store import ChangelogStore, PartitionStates

log = configure("calculator")

CLOCK_TICK = 1.0  # seconds between two looks at the clock by the combiner's owner
STATEMENTS_INTERVAL = 0.25  # seconds: statements are recomputed and published at most this often
PREFIX = "clos|"  # the `closing` table in ApplyBalances' changes (its rows' keys are META and BEFORE ones)
META = "meta|"
BEFORE = "before|"
HISTORY = "history|"  # combiner table: a setting event of the book's history, by event id
CLOSED_THROUGH = "closed|through"  # combiner table: the latest day a business_day_close event closed
BOOK_SETTINGS = (ManagementTarget, ForeignRequirement, FxRate, DepositoryReference)


# -- the clock -------------------------------------------------------------------------------------------------


def parse_now(text: str) -> datetime:
    """`SEGWATCH_NOW`: an ISO instant with its UTC offset."""
    try:
        now = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"SEGWATCH_NOW: {text!r} is not an ISO 8601 instant") from None
    if now.tzinfo is None:
        raise ValueError(f"SEGWATCH_NOW: {text!r} has no UTC offset")
    return now


def clock_from(now: str) -> Callable[[], datetime]:
    """The calculator's clock: fixed at `now` (CalculatorConfig.now, from SEGWATCH_NOW) when set, else UTC now."""
    if now.strip():
        fixed = parse_now(now)
        return lambda: fixed
    return lambda: datetime.now(UTC)


# -- partition side --------------------------------------------------------------------------------------------


class PartitionDay:
    """One balances partition's closer, whose view is the partition's live aggregate."""

    __slots__ = ("aggregate", "calendar", "closer", "hi", "latest", "lo", "meta", "retain", "rows")

    def __init__(self, calendar: BusinessCalendar, aggregate: Aggregate, retain: int = DEFAULT_RETAIN) -> None:
        self.calendar = calendar
        self.aggregate = aggregate
        self.retain = retain
        self.closer: DayCloser | None = None  # made at the partition's first balance
        self.latest: ClosedDay | None = None  # the latest closed day
        # The fast path's bounds in UTC (the cut-offs are Chicago time; comparing instants of the same tzinfo
        # object skips the time zone lookup): the open day's cut-off, the latest closed day's.
        self.hi: datetime | None = None
        self.lo: datetime | None = None
        self.rows: set[str] = set()  # balance keys whose `before` row changed since `take_rows`
        self.meta = False  # the meta row changed since `take_rows`

    def put(self, key: str, held: Held) -> bool:
        """One balance into the live aggregate and the closer; True when the live aggregate changed (the
        aggregate's own answer). Rows to write are collected for `take_rows`."""
        as_of = held.as_of
        hi = self.hi
        if hi is not None and as_of <= hi:
            lo = self.lo
            if lo is None:
                return self.aggregate.put(key, held)
            if as_of > lo:  # the open day's: the view moves, the closed days do not
                old = self.aggregate.held.get(key)
                if not self.aggregate.put(key, held):
                    return False
                before = self.latest.before  # type: ignore[union-attr]  # lo is set with it
                if key not in before:
                    before[key] = old  # what was in force at the latest closed day's cut-off
                    self.rows.add(key)
                return True
        return self._put_slow(key, held)

    def _bounds(self) -> None:
        closer = self.closer
        self.latest = next(reversed(closer.closed.values())) if closer is not None and closer.closed else None
        self.hi = None if closer is None else closer.cutoff.astimezone(UTC)
        self.lo = None if self.latest is None else self.latest.cutoff.astimezone(UTC)

    def _put_slow(self, key: str, held: Held) -> bool:
        """The first balance, a balance that closes days, or a late balance of a closed day."""
        if self.closer is None:
            self.closer = self._open(held.as_of)
            self.meta = True
        closer = self.closer
        closed = roll(closer, self.calendar, held.as_of)
        old = self.aggregate.held.get(key)
        put = closer.put(key, held)  # its view is self.aggregate
        if closed or put.amended:
            self.meta = True
        if closed:
            log.info("day_closed", partition_days=[c.day.isoformat() for c in closed], by=held.event_id)
        if put.unchecked:
            log.warning(
                "late_balance_unchecked",
                event_id=held.event_id,
                as_of=held.as_of.isoformat(),
                forgotten_through=str(closer.forgotten_through),
                reason="older than the closed days kept for amendments",
            )
        if any(key in c.before for c in closer.closed.values()):
            self.rows.add(key)
        self._bounds()
        return self.aggregate.held.get(key) is not old

    def _newest(self) -> datetime | None:
        return max((s.as_of for s in self.aggregate.segments.values() if s.as_of is not None), default=None)

    def _open(self, as_of: datetime) -> DayCloser:
        """The closer, opened at the statement day of the newest balance the partition already holds (one
        loaded from before the closer existed), else of this first balance: the days between then and this
        balance close with what the partition held, as its partials said (`wire`)."""
        newest = self._newest()
        closer = new_closer(self.calendar, as_of if newest is None else newest, self.retain)
        closer.view = self.aggregate
        return closer

    # -- the changelog rows ------------------------------------------------------------------------------------

    def take_rows(self, partition: int) -> dict[str, bytes]:
        """The `closing` table rows changed since the last call (key -> JSON value)."""
        closer = self.closer
        out: dict[str, bytes] = {}
        if closer is None:
            return out
        if self.meta:
            out[f"{META}{partition}"] = orjson.dumps(meta_of(closer))
            self.meta = False
        if self.rows:
            for key in self.rows:
                out[f"{BEFORE}{key}"] = orjson.dumps(before_of(closer, key))
            self.rows = set()
        return out

    def load(self, meta: Mapping[str, Any] | None, befores: Mapping[str, Mapping[str, Any]]) -> None:
        """Rebuild the closer from its rows (the aggregate is this partition's, loaded or being loaded)."""
        if meta is None:
            return
        closer = DayCloser(
            date.fromisoformat(meta["open_day"]), datetime.fromisoformat(meta["cutoff"]), retain=int(meta["retain"])
        )
        ft = meta.get("forgotten_through")
        closer.forgotten_through = datetime.fromisoformat(ft) if ft else None
        closer.view = self.aggregate
        closer.later = {k: [held_from_json(v) for v in vs] for k, vs in (meta.get("later") or {}).items()}
        for c in meta["closed"]:
            d = ClosedDay(
                date.fromisoformat(c["day"]),
                datetime.fromisoformat(c["cutoff"]),
                sums_from_json(c["sums"]),
                int(c["version"]),
                depositories=sums_from_json(c.get("depositories") or {}),
            )
            closer.closed[d.day] = d
        self.closer = closer
        self._bounds()
        for key, row in befores.items():
            self.load_before(key, row)

    def load_before(self, key: str, row: Mapping[str, Any] | None) -> None:
        if self.closer is None:
            return
        for day_text, value in (row or {}).items():
            closed = self.closer.closed.get(date.fromisoformat(day_text))
            if closed is not None:  # a day no longer kept: its entries are forgotten
                closed.before[key] = None if value is None else held_from_json(value)

    def wire(self) -> dict[str, Any] | None:
        """The partition's `PartView` for its partial (its live sums travel in the partial already)."""
        if self.closer is None:
            newest = self._newest()  # balances loaded from before the closer existed: open at the newest's day
            return (
                None
                if newest is None
                else {"open_day": self.calendar.statement_day_of(newest).isoformat(), "closed": {}}
            )
        return PartView.of(self.closer, {}).to_json()


def meta_of(closer: DayCloser) -> dict[str, Any]:
    return {
        "open_day": closer.open_day.isoformat(),
        "cutoff": closer.cutoff.isoformat(),
        "retain": closer.retain,
        "forgotten_through": closer.forgotten_through.isoformat() if closer.forgotten_through else None,
        "later": {k: [held_to_json(h) for h in hs] for k, hs in closer.later.items()},
        "closed": [
            {
                "day": c.day.isoformat(),
                "cutoff": c.cutoff.isoformat(),
                "version": c.version,
                "sums": c.sums,
                "depositories": c.depositories,
            }
            for c in closer.closed.values()
        ],
    }


def before_of(closer: DayCloser, key: str) -> dict[str, Any]:
    return {
        c.day.isoformat(): (None if (h := c.before[key]) is None else held_to_json(h))
        for c in closer.closed.values()
        if key in c.before
    }


def partition_day(state: Any, calendar: BusinessCalendar, retain: int = DEFAULT_RETAIN) -> PartitionDay:
    """The `PartitionDay` of a `PartitionState` (made on first use)."""
    day: PartitionDay | None = state.closing
    if day is None:
        day = state.closing = PartitionDay(calendar, state.aggregate, retain)
    return day


def load_rows(day: PartitionDay, rows: Mapping[str, Any]) -> None:
    """A partition's `closing` rows (key -> parsed JSON), as read from its changelog."""
    meta = next((v for k, v in rows.items() if k.startswith(META)), None)
    day.load(meta, {k.removeprefix(BEFORE): v for k, v in rows.items() if k.startswith(BEFORE)})


# -- combiner side ---------------------------------------------------------------------------------------------


def live_sums(partial: Any) -> dict[str, dict[str, dict[str, int]]]:
    """A partial's live sums in integer cents (segment -> currency -> code)."""
    return {
        sid: {cur: {code: to_cents(v) for code, v in lines.items()} for cur, lines in seg.totals.items()}
        for sid, seg in partial.segments.items()
    }


def live_depositories(partial: Any) -> dict[str, dict[str, dict[str, int]]]:
    """A partial's live funds per depository and line, from its holdings sums (business_day.PartView)."""
    return depositories_of_holdings(partial.holdings)


def view_of(partial: Any) -> PartView:
    return PartView.from_json(partial.day, live_sums(partial), live_depositories(partial))


class StatementDesk:
    """The combiner's closing book: which days are closed, and the statements to publish for them."""

    def __init__(self, calendar: BusinessCalendar, retain: int = DEFAULT_RETAIN) -> None:
        self.calendar = calendar
        self.book = ClosingBook(calendar, retain=retain)
        self.views: dict[int, PartView] = {}
        self.dirty = False  # something a closed day depends on changed since the last flush
        self.pruned_before: datetime | None = None

    def on_partial(self, partial: Any) -> None:
        new = view_of(partial)
        old = self.views.get(partial.partition)
        self.views[partial.partition] = new
        through = self.book.closed_through
        if (
            old is None
            or new.closed != old.closed
            or new.open_day != old.open_day
            or new.closed_depositories != old.closed_depositories
        ):
            self.dirty = True
        elif (
            through is not None
            and new.open_day is not None
            and new.open_day <= through
            and (new.open_sums != old.open_sums or new.open_depositories != old.open_depositories)
        ):
            self.dirty = True  # a partition still open at a closed day: a late balance of that day

    def on_setting(self, ev: SettingEvent) -> bool:
        """A setting into the history; True when it is new (to persist)."""
        if ev.event_id in self.book.settings.events:
            return False
        self.book.on_setting(ev)
        if self.book.closed_through is not None:
            self.dirty = True
        return True

    def on_close(self, ev: BusinessDayClose) -> bool:
        """A `business_day_close` event; True when it closed a day not closed before."""
        before = self.book.closed_through
        self.book.close(ev.business_day)
        if self.book.closed_through != before:
            self.dirty = True
            return True
        return False

    def tick(self, now: datetime) -> bool:
        """The clock; True when it closed a day."""
        before = self.book.closed_through
        self.book.close_at(now)
        if self.book.closed_through != before:
            self.dirty = True
            return True
        return False

    def flush(self, now: datetime) -> list[StatementRecord]:
        """The statements to publish: INITIAL for a newly closed day, AMENDMENT for one that changed."""
        if not self.dirty:
            return []
        self.dirty = False
        return self.book.statements(self.views, now)

    def book_published(self) -> list[StatementRecord]:
        """The latest statement of each (day, segment) the book holds."""
        return [rec for record in self.book.records.values() for rec in record.statements.values()]

    def prunable(self) -> list[str]:
        """Setting events no kept day needs any more (their ids: rows to delete); forgotten here."""
        if not self.book.records:
            return []
        oldest = next(iter(self.book.records.values())).cutoff
        if self.pruned_before is not None and oldest <= self.pruned_before:
            return []
        self.pruned_before = oldest
        before = set(self.book.settings.events)
        self.book.settings.prune(oldest)
        return sorted(before - set(self.book.settings.events))

    def restore(
        self,
        partials: Iterable[Any],
        settings: Iterable[SettingEvent],
        closed_through: date | None,
        published: Iterable[StatementRecord],
    ) -> None:
        """After the combiner's partition was (re)loaded: from its table and from the statements topic."""
        self.book = ClosingBook(self.calendar, retain=self.book.retain)
        self.views = {}
        for partial in partials:
            self.views[partial.partition] = view_of(partial)
        for ev in settings:
            self.book.on_setting(ev)
        kept = latest_days(published, self.book.retain)
        self.book.restore(kept)
        if closed_through is not None:
            self.book.close(closed_through)
        self.dirty = True  # flushed at once: what is missing goes out, what was published is not repeated


def latest_days(published: Iterable[StatementRecord], retain: int) -> list[StatementRecord]:
    """The records of the last `retain` business days published (the book keeps no more)."""
    records = list(published)
    days = sorted({r.business_day for r in records})[-retain:]
    keep = set(days)
    return [r for r in records if r.business_day in keep]


def statement_of(value: bytes | None) -> StatementRecord | None:
    """A statements-topic record, when it is a statement (the topic also holds each day's status)."""
    if not value:
        return None
    data = orjson.loads(value)
    if not isinstance(data, dict) or data.get("type") != "statement":
        return None
    return StatementRecord.model_validate(data)


class ClosingStore(ChangelogStore):
    """The `closing` table: the partitions' closers (rows above), loaded into their `PartitionState`s."""

    def __init__(
        self, *args: Any, states: PartitionStates, calendar: BusinessCalendar, retain: int, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.states = states
        self.calendar = calendar
        self.retain = retain

    def load(self, partition: int, latest: Mapping[bytes, bytes | None], end: int = 0) -> int:
        state = self.states.ensure(partition)
        state.loaded(self.table.name, end)
        self.states.loaded.add(partition)
        rows = {orjson.loads(k): orjson.loads(v) for k, v in latest.items() if v is not None}
        day = partition_day(state, self.calendar, self.retain)
        load_rows(day, rows)
        closer = day.closer
        log.info(
            "partition_days_loaded",
            partition=partition,
            rows=len(rows),
            open_day=None if closer is None else closer.open_day.isoformat(),
            closed=[] if closer is None else [d.isoformat() for d in closer.closed],
        )
        return len(rows)

    def recovered(self, partition: int, key: Any, value: bytes | None) -> None:
        """A row Faust's recovery read after the bulk load."""
        if value is None:
            return
        day = partition_day(self.states.ensure(partition), self.calendar, self.retain)
        row = orjson.loads(value)
        if key.startswith(META):
            old = day.closer
            befores = {} if old is None else {k: before_of(old, k) for c in old.closed.values() for k in c.before}
            day.load(row, befores)
        elif key.startswith(BEFORE):
            day.load_before(key.removeprefix(BEFORE), row)

    def drop_partition(self, partition: int) -> None:
        self.states.pop(partition, None)

    def clear_rows(self) -> None:
        self.states.clear()

    async def on_recovery_completed(self, active_tps: set[Any], standby_tps: set[Any]) -> None:
        return None  # the states hold only partitions this worker owns
