"""The business day in motion: partitions close their days, the combiner turns closed days into statements.

Pure: no Kafka, no clock (callers pass `now`). The calculator (services/calculator/closing.py) and the twin
(`BusinessDay` stage in segwatch/core/twin.py) run the same code.

Partition side (`roll`): each balances partition keeps a `DayCloser` (segwatch/core/close.py) beside its
live aggregate, created at its first balance with that balance's statement day open. A balance after the
open day's cut-off first closes the open day (and every statement day up to the balance's own): "the first
event after the cut-off" closes a day. So a partition never parks a balance, and its view at the open day's
cut-off is its live aggregate. Its share of business day D (`contribution`) is then: D's closing sums when
it closed D; its live sums when D is its open day or later (nothing it holds is after D's cut-off); nothing
when D is before its first balance.

Combiner side (`ClosingBook`): day D is closed when a partition closed it (it saw a balance after D's
cut-off), at a `business_day_close` event for D or later, or when the clock passes D's cut-off (`close_at`).
Each closed day kept (the last `retain`) has a `DayRecord` (segwatch/core/deadlines.py); `statements`
recomputes them from the partitions' contributions and the settings in force at the cut-off
(`SettingsHistory.at`) and returns a `StatementRecord` for each segment whose lines changed: INITIAL at the
close, then an AMENDMENT (with the lines that moved) when a late balance or setting changed it. A balance
that reaches a partition still open at D after D closed (it saw nothing later) is an amendment as well.

Funds at a depository whose reference data (in force at D's cut-off) says its acknowledgment letter is missing
are taken out of D's funds lines unless SEGWATCH_COUNT_UNACKNOWLEDGED=yes, as the live figures do
(holdings_figures.counted_totals, one code path): each partition's share of D also carries the funds at each
depository (`ClosedDay.depositories`; for an open day, the live holdings sums of its partial). A reference as of
D's cut-off or earlier that arrives after D closed amends D (like a late FX rate); one as of later does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from schemas.statements import StatementRecord
from segwatch.core.calendar import BusinessCalendar
from segwatch.core.close import (
    DEFAULT_RETAIN,
    ClosedDay,
    DayCloser,
    SettingEvent,
    SettingsHistory,
    Sums,
    combine_sums,
    sums_from_json,
    sums_totals,
)
from segwatch.core.deadlines import DayRecord
from segwatch.core.figures import consolidate
from segwatch.core.holdings import HoldingsSettings
from segwatch.core.holdings import Sums as HoldingsSums
from segwatch.core.holdings_figures import counted_totals, holdings_settings
from segwatch.core.ledger import Held

# -- partition side ------------------------------------------------------------------------------------------


def new_closer(calendar: BusinessCalendar, as_of: datetime, retain: int = DEFAULT_RETAIN) -> DayCloser:
    """A partition's closer, opened at the statement day of its first balance."""
    day = calendar.statement_day_of(as_of)
    return DayCloser(day, calendar.cutoff(day), retain=retain)


def roll(closer: DayCloser, calendar: BusinessCalendar, through: datetime) -> list[ClosedDay]:
    """Close every open day whose cut-off is before `through` (a balance's as-of, or the clock)."""
    closed = []
    while closer.cutoff < through:
        nxt = calendar.next_statement_day(closer.open_day)
        closed.append(closer.close(nxt, calendar.cutoff(nxt)))
    return closed


def close_through(closer: DayCloser, calendar: BusinessCalendar, day: date) -> list[ClosedDay]:
    """Close every open day up to `day` inclusive (a `business_day_close` event)."""
    closed = []
    while closer.open_day <= day:
        nxt = calendar.next_statement_day(closer.open_day)
        closed.append(closer.close(nxt, calendar.cutoff(nxt)))
    return closed


def put_balance(
    closer: DayCloser | None, calendar: BusinessCalendar, key: str, held: Held, retain: int = DEFAULT_RETAIN
) -> tuple[DayCloser, list[ClosedDay], tuple[date, ...]]:
    """One balance into a partition's closer (made at the first): the days it closed, the days it amended."""
    if closer is None:
        closer = new_closer(calendar, held.as_of, retain)
    closed = roll(closer, calendar, held.as_of)
    put = closer.put(key, held)
    return closer, closed, put.amended


@dataclass(slots=True)
class PartView:
    """What the combiner knows of one partition's days: its open day, its live (= open-day) sums and the
    closing sums of the days it closed and keeps; beside each, the funds per depository and line
    (close.depository_sums)."""

    open_day: date | None = None
    open_sums: Sums = field(default_factory=dict)
    closed: dict[date, Sums] = field(default_factory=dict)
    open_depositories: Sums = field(default_factory=dict)
    closed_depositories: dict[date, Sums] = field(default_factory=dict)

    def contribution(self, day: date) -> Sums:
        if day in self.closed:
            return self.closed[day]
        if self.open_day is not None and day >= self.open_day:
            return self.open_sums
        return {}

    def depositories(self, day: date) -> Sums:
        """The funds per depository and line in this partition's share of `day` (as `contribution`)."""
        if day in self.closed:
            return self.closed_depositories.get(day, {})
        if self.open_day is not None and day >= self.open_day:
            return self.open_depositories
        return {}

    @classmethod
    def of(cls, closer: DayCloser | None, live: Sums, live_depositories: Sums | None = None) -> PartView:
        deps = live_depositories or {}
        if closer is None:
            return cls(None, live, {}, deps)
        return cls(
            closer.open_day,
            live,
            {d: c.sums for d, c in closer.closed.items()},
            deps,
            {d: c.depositories for d, c in closer.closed.items()},
        )

    def to_json(self) -> dict[str, Any]:
        """The wire form on a partial (beside its live sums and holdings): `open_day`, `closed` {day: sums} and
        `depositories` {day: funds per depository and line}."""
        return {
            "open_day": self.open_day.isoformat() if self.open_day else None,
            "closed": {d.isoformat(): s for d, s in self.closed.items()},
            "depositories": {d.isoformat(): s for d, s in self.closed_depositories.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None, live: Sums, live_depositories: Sums | None = None) -> PartView:
        deps = live_depositories or {}
        if not data:
            return cls(None, live, {}, deps)
        open_day = data.get("open_day")
        return cls(
            date.fromisoformat(open_day) if open_day else None,
            live,
            {date.fromisoformat(d): sums_from_json(sums) for d, sums in (data.get("closed") or {}).items()},
            deps,
            {date.fromisoformat(d): sums_from_json(sums) for d, sums in (data.get("depositories") or {}).items()},
        )


def depositories_of_holdings(holdings: Mapping[tuple[str, ...], int]) -> Sums:
    """A partition's live holdings sums (segwatch/core/holdings.py, what its partial carries) as the funds per
    depository and line (segment -> currency -> "<depository>|<line>" -> cents), as close.depository_sums."""
    out: Sums = {}
    for key, cents in holdings.items():
        if key[0] == "depository" and cents:
            _, segment, depository, currency, line = key
            per = out.setdefault(segment, {}).setdefault(currency, {})
            per[f"{depository}|{line}"] = per.get(f"{depository}|{line}", 0) + cents
    return out


def holdings_of_depositories(depositories: Sums) -> HoldingsSums:
    """The reverse: the "depository" holdings sums that holdings.unacknowledged_adjustment reads."""
    out: HoldingsSums = {}
    for segment, curs in depositories.items():
        for currency, per in curs.items():
            for code, cents in per.items():
                if cents:
                    depository, _, line = code.rpartition("|")
                    out[("depository", segment, depository, currency, line)] = cents
    return out


def sums_of_live(totals: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Sums:
    """Live per-segment totals (segment -> currency -> code -> Decimal) as integer-cent sums."""
    from segwatch.core.money import to_cents

    return {
        sid: {cur: {code: to_cents(v) for code, v in lines.items()} for cur, lines in curs.items()}
        for sid, curs in totals.items()
    }


# -- combiner side -------------------------------------------------------------------------------------------


class ClosingBook:
    """The closed business days of a whole book, their statements and their records."""

    def __init__(
        self,
        calendar: BusinessCalendar,
        *,
        retain: int = DEFAULT_RETAIN,
        summary_307: bool = False,
        holdings: HoldingsSettings | None = None,
    ) -> None:
        self.calendar = calendar
        self.retain = retain
        self.summary_307 = summary_307
        # Whether funds at a depository without its acknowledgment letter count (SEGWATCH_COUNT_UNACKNOWLEDGED),
        # as for the live figures.
        self.holdings = holdings if holdings is not None else holdings_settings()
        self.settings = SettingsHistory()
        self.closed_through: date | None = None  # the latest business day closed
        self.records: dict[date, DayRecord] = {}  # the closed days kept, oldest first

    def on_setting(self, ev: SettingEvent) -> None:
        self.settings.apply(ev)

    def close(self, day: date) -> None:
        """Day `day` (and every day before it) is closed."""
        if self.closed_through is None or day > self.closed_through:
            self.closed_through = day

    def close_at(self, now: datetime) -> None:
        """The clock: every statement day whose cut-off is before `now` is closed."""
        day: date | None = self.calendar.statement_day_of(now)
        if day is not None and self.calendar.cutoff(day) >= now:
            day = self._previous(day)
        if day is not None:
            self.close(day)

    def _previous(self, day: date) -> date | None:
        try:
            return self.calendar._step(day, -1, self.calendar.has_statement)
        except Exception:  # no statement day within a month: nothing to close
            return None

    def observe(self, parts: Iterable[PartView]) -> None:
        """A partition that closed a day closes it for the book."""
        for part in parts:
            if part.closed:
                self.close(max(part.closed))

    def days_to_compute(self, parts: Iterable[PartView]) -> list[date]:
        """The closed statement days kept: from the first day any partition held (or the oldest record
        kept) through `closed_through`, the last `retain` of them."""
        if self.closed_through is None:
            return []
        parts = list(parts)
        firsts = [min([*p.closed, p.open_day]) for p in parts if p.open_day is not None]
        if not firsts:
            return []
        start = min(firsts)
        if start > self.closed_through:
            return []
        days = self.calendar.statement_days(start, self.closed_through)
        return days[-self.retain :]

    def statements(self, parts: Mapping[int, PartView] | Iterable[PartView], now: datetime) -> list[StatementRecord]:
        """The records to publish: each closed day's statements whose lines changed (INITIAL, AMENDMENT)."""
        views = list(parts.values()) if isinstance(parts, Mapping) else list(parts)
        self.observe(views)
        out: list[StatementRecord] = []
        for day in self.days_to_compute(views):
            record = self.records.get(day)
            if record is None:
                cutoff = self.calendar.cutoff(day)
                record = self.records[day] = DayRecord(
                    day, cutoff, self.calendar.deadlines(day), self.calendar.segments_due(day)
                )
            combined = combine_sums(v.contribution(day) for v in views)
            depositories = holdings_of_depositories(combine_sums(v.depositories(day) for v in views))
            settings = self.settings.at(record.cutoff)
            references = self.settings.references_at(record.cutoff)
            for sid in record.segments:
                totals = counted_totals(sid, sums_totals(combined, sid), depositories, references, self.holdings)
                c = consolidate(sid, totals, settings)
                published = record.publish(sid, c, now, summary_form=self.summary_307 and sid == "30.7")
                if published is not None:
                    out.append(published)
        while len(self.records) > self.retain:
            self.records.pop(next(iter(self.records)))
        return out

    def restore(self, published: Iterable[StatementRecord]) -> None:
        """After a restart: the latest published version of each (day, segment), so that a recomputation that
        changes nothing publishes nothing and an amendment gets the next version."""
        for rec in sorted(published, key=lambda r: (r.business_day, r.version)):
            record = self.records.get(rec.business_day)
            if record is None:
                record = self.records[rec.business_day] = DayRecord(
                    rec.business_day,
                    rec.cutoff,
                    self.calendar.deadlines(rec.business_day),
                    self.calendar.segments_due(rec.business_day),
                )
            record.statements[rec.segment] = rec
            self.close(rec.business_day)
        self.records = dict(sorted(self.records.items()))
