"""The close of a business day: per key, the latest balance as of the day's cut-off, whatever arrives later.

A calculator keeps the live balances (segwatch/core/aggregate.py); beside them a `DayCloser` keeps the
*view at the open day's cut-off*: per key, the latest balance with as-of at or before that cut-off, and its
sums. Both are O(1) per balance. A balance after the cut-off (the next day's) moves the live figures only;
the closer parks it (`later`) until the open day closes, then moves it into the view of the next day.

Closing day D (at its cut-off by the clock, in a replay at the first event after it, or at a
`business_day_close` event) snapshots the view's sums: D's closing sums, fixed. A balance that arrives
afterwards with as-of at or before D's cut-off is *late*: it amends D's sums (and those of the later closed
days in which it was still the latest balance) when it is newer than the balance that was in force at
their cut-offs; the sums of a day change only when its contribution differs, so an unchanged late balance
changes nothing. The closed days kept for amendments are the last `retain`; a late balance for an older
day cannot be checked and is reported (`Put.unchecked`), never dropped quietly.

To know the balance that was in force at a closed day's cut-off without a copy of every key per day, each
closed day keeps `before`: for the keys the view changed while it was the latest closed day, the balance in
force at its cut-off (None: the key had no balance then). The balance in force at closed day X's cut-off
is then X.before[key], else that of the next closed day, …, else the view's: a chain of at most `retain`.

Partitions: a closer per partition; a close is the sum of the partitions' closing sums (`combine_sums`),
exactly as the live figures are. Everything serializes to JSON (`to_state` / `from_state`) for a changelog.
Settings (targets, FX rates, the 30.7 foreign requirement, the depository reference data) are few:
`SettingsHistory` keeps them all and builds the settings and the references in force at any cut-off.

Funds at each depository (issue #14: those at a depository whose acknowledgment letter is missing are taken out
of the funds lines): a closed day also keeps `depositories`, the depository balances in force at its cut-off
per depository and line (segment -> currency -> "<depository>|<line>" -> cents), read at the close from the
view's depository keys (a handful: `Aggregate.depository_keys`) and amended by late balances like the sums.
The combiner applies the references in force at the cut-off to them (business_day.ClosingBook).
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from schemas.events import (
    AccountBalance,
    DepositoryBalance,
    DepositoryReference,
    ForeignMarginRequirement,
    ForeignRequirement,
    FxRate,
    ManagementTarget,
)
from segwatch.core.aggregate import Aggregate
from segwatch.core.book import Book
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.holdings import References
from segwatch.core.ledger import ACCOUNT_CODES, Held, held_of, line_codes
from segwatch.core.money import from_cents, to_cents
from segwatch.core.settings import Settings

# segment -> currency -> line code -> integer cents
Sums = dict[str, dict[str, dict[str, int]]]
SettingEvent = ManagementTarget | ForeignRequirement | FxRate | DepositoryReference

DEFAULT_RETAIN = 5  # closed days kept for amendments: a week of business days


def _order(h: Held) -> tuple[datetime, str]:
    return (h.as_of, h.event_id)


def _newer(new: Held, old: Held | None) -> bool:
    """The ordering rule of balances (aggregate.py): a newer as-of wins, at the same as-of the greater id."""
    return old is None or _order(new) > _order(old)


def _same_contribution(a: Held | None, b: Held | None) -> bool:
    if a is None or b is None:
        return a is b or not any((a or b).amounts)  # type: ignore[union-attr]  # one of them is not None
    return (a.segment, a.currency, a.codes, a.amounts) == (b.segment, b.currency, b.codes, b.amounts)


def _add(sums: Sums, h: Held, sign: int) -> None:
    per_line = sums.setdefault(h.segment, {}).setdefault(h.currency, {})
    for code, cents in zip(h.codes, h.amounts, strict=True):
        per_line[code] = per_line.get(code, 0) + sign * cents


def depository_code(key: str) -> str | None:
    """A depository balance's key (ledger.depository_key: "depo|<segment>|<depository>|<line>|<currency>";
    identifiers hold no "|") as its code in `ClosedDay.depositories`: "<depository>|<line>". None: an account."""
    if not key.startswith("depo|"):
        return None
    _, _, depository, line, _ = key.split("|")
    return f"{depository}|{line}"


def _add_depository(sums: Sums, key: str, h: Held, sign: int) -> None:
    code = depository_code(key)
    if code is not None:
        per = sums.setdefault(h.segment, {}).setdefault(h.currency, {})
        per[code] = per.get(code, 0) + sign * h.amounts[0]


def depository_sums(view: Aggregate) -> Sums:
    """The funds at each depository the view holds: segment -> currency -> "<depository>|<line>" -> cents.
    O(depository keys)."""
    out: Sums = {}
    held = view.held
    for key in view.depository_keys:
        h = held[key]
        if h.amounts[0]:
            _add_depository(out, key, h, +1)
    return out


@dataclass(slots=True)
class ClosedDay:
    """One closed business day of one partition (or of a whole book): its closing sums, and what it needs to
    recognise a late balance."""

    day: date
    cutoff: datetime
    sums: Sums  # the closing sums, amended in place by late balances
    version: int = 1  # grows by one with every amendment that changed the sums
    before: dict[str, Held | None] = field(default_factory=dict)
    depositories: Sums = field(default_factory=dict)  # funds per depository and line (`depository_sums`)

    def totals(self, segment_id: str) -> dict[str, dict[str, Decimal]]:
        """One segment's closing sums as Decimal amounts, per currency."""
        return {
            cur: {code: from_cents(c) for code, c in per_line.items()}
            for cur, per_line in self.sums.get(segment_id, {}).items()
        }


@dataclass(frozen=True, slots=True)
class Put:
    """What one balance did to the closed days: the days whose closing sums it amended, and the days too old
    to check (`unchecked`: it is at or before the cut-off of a day no longer kept)."""

    amended: tuple[date, ...] = ()
    unchecked: bool = False
    parked: bool = False  # after the open day's cut-off: waits for the next day's view


NOTHING = Put()


class DayCloser:
    """The view at the open business day's cut-off, the closed days kept for amendments, and the balances
    that arrived ahead of the open day's cut-off."""

    def __init__(self, open_day: date, cutoff: datetime, *, retain: int = DEFAULT_RETAIN) -> None:
        if retain < 1:
            raise ValueError("retain: keep at least the last closed day")
        self.open_day = open_day
        self.cutoff = cutoff
        self.retain = retain
        self.view = Aggregate()
        self.later: dict[str, list[Held]] = {}  # key -> balances after the open cut-off, oldest first
        self.closed: dict[date, ClosedDay] = {}  # oldest first
        self.forgotten_through: datetime | None = None  # the cut-off of the newest closed day no longer kept

    # -- balances ------------------------------------------------------------------------------------------------

    def apply(self, ev: AccountBalance | DepositoryBalance) -> Put:
        key, held = held_of(ev)
        return self.put(key, held)

    def put(self, key: str, new: Held) -> Put:
        """Apply one balance (the same key and Held the live aggregate takes). O(1), or O(retain) when late."""
        if new.as_of > self.cutoff:
            self._park(key, new)
            return Put(parked=True)
        amended: tuple[date, ...] = ()
        unchecked = self.forgotten_through is not None and new.as_of <= self.forgotten_through
        if self.closed and new.as_of <= next(reversed(self.closed.values())).cutoff:
            amended = self._amend(key, new)
        self._view_put(key, new)
        return Put(amended, unchecked) if amended or unchecked else NOTHING

    def _park(self, key: str, new: Held) -> None:
        entries = self.later.get(key)
        if entries is None:
            self.later[key] = [new]
        elif all(_order(e) != _order(new) for e in entries):  # the same event again changes nothing
            insort(entries, new, key=_order)

    def _view_put(self, key: str, new: Held) -> None:
        old = self.view.held.get(key)
        if self.view.put(key, new) and self.closed:
            latest = next(reversed(self.closed.values()))
            if key not in latest.before:
                latest.before[key] = old

    def in_force(self, day: date, key: str) -> Held | None:
        """The balance of `key` in force at closed `day`'s cut-off (as amended so far)."""
        days = list(self.closed)
        for d in days[days.index(day) :]:
            before = self.closed[d].before
            if key in before:
                return before[key]
        return self.view.held.get(key)

    def _amend(self, key: str, new: Held) -> tuple[date, ...]:
        days = [d for d, c in self.closed.items() if new.as_of <= c.cutoff]
        if not days:
            return ()
        old_values = {d: self.in_force(d, key) for d in days}
        first = list(self.closed).index(days[0])
        if first > 0:  # pin the day before, whose chain would otherwise read the new balance
            previous = self.closed[list(self.closed)[first - 1]]
            if key not in previous.before:
                previous.before[key] = self.in_force(previous.day, key)
        amended: list[date] = []
        for d in days:
            old = old_values[d]
            if not _newer(new, old):
                break  # a newer balance was in force at this cut-off, and so at every later one
            closed = self.closed[d]
            closed.before[key] = new
            if not _same_contribution(old, new):
                if old is not None:
                    _add(closed.sums, old, -1)
                    _add_depository(closed.depositories, key, old, -1)
                _add(closed.sums, new, +1)
                _add_depository(closed.depositories, key, new, +1)
                closed.version += 1
                amended.append(d)
        return tuple(amended)

    # -- closing -------------------------------------------------------------------------------------------------

    def close(self, next_day: date, next_cutoff: datetime) -> ClosedDay:
        """Close the open day: its closing sums are fixed from now on (late balances amend them). The next
        day opens with the balances that arrived ahead of its cut-off."""
        if next_cutoff <= self.cutoff:
            raise ValueError(f"next_cutoff: {next_cutoff} is not after the open day's cut-off {self.cutoff}")
        sums: Sums = {}
        for sid in SEGMENT_IDS:
            for cur, per_line in self.view.totals(sid).items():
                sums.setdefault(sid, {})[cur] = {code: to_cents(amount) for code, amount in per_line.items()}
        closed = ClosedDay(self.open_day, self.cutoff, sums, depositories=depository_sums(self.view))
        self.closed[self.open_day] = closed
        while len(self.closed) > self.retain:
            oldest = next(iter(self.closed))
            self.forgotten_through = self.closed.pop(oldest).cutoff
        self.open_day, self.cutoff = next_day, next_cutoff
        for key in list(self.later):
            entries = self.later[key]
            n = bisect_right(entries, next_cutoff, key=lambda h: h.as_of)
            if n:
                self._view_put(key, entries[n - 1])
                if n == len(entries):
                    del self.later[key]
                else:
                    self.later[key] = entries[n:]
        return closed

    # -- state for a changelog ------------------------------------------------------------------------------------

    def to_state(self, *, include_view: bool = True) -> dict[str, Any]:
        """JSON-able state. Without the view, `from_state` rebuilds it from the live balances: only the view's
        balances of the keys parked in `later` are kept (the live balance of those is after the cut-off)."""
        view = self.view.held if include_view else {k: self.view.held[k] for k in self.later if k in self.view.held}
        return {
            "open_day": self.open_day.isoformat(),
            "cutoff": self.cutoff.isoformat(),
            "retain": self.retain,
            "forgotten_through": self.forgotten_through.isoformat() if self.forgotten_through else None,
            "view": {k: held_to_json(h) for k, h in view.items()},
            "view_complete": include_view,
            "later": {k: [held_to_json(h) for h in hs] for k, hs in self.later.items()},
            "closed": [
                {
                    "day": c.day.isoformat(),
                    "cutoff": c.cutoff.isoformat(),
                    "version": c.version,
                    "sums": c.sums,
                    "depositories": c.depositories,
                    "before": {k: None if h is None else held_to_json(h) for k, h in c.before.items()},
                }
                for c in self.closed.values()
            ],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], live: Iterable[tuple[str, Held]] | None = None) -> DayCloser:
        """Restore. `live` (key, Held) pairs are required when the state was saved without its view."""
        closer = cls(
            date.fromisoformat(state["open_day"]), datetime.fromisoformat(state["cutoff"]), retain=int(state["retain"])
        )
        ft = state.get("forgotten_through")
        closer.forgotten_through = datetime.fromisoformat(ft) if ft else None
        closer.view.load((k, held_from_json(v)) for k, v in state["view"].items())
        if not state.get("view_complete", True):
            if live is None:
                raise ValueError("live: the state was saved without its view; pass the live balances")
            closer.view.load((k, h) for k, h in live if h.as_of <= closer.cutoff)
        closer.later = {k: [held_from_json(v) for v in vs] for k, vs in state["later"].items()}
        for c in state["closed"]:
            day = ClosedDay(
                date.fromisoformat(c["day"]),
                datetime.fromisoformat(c["cutoff"]),
                sums_from_json(c["sums"]),
                int(c["version"]),
                {k: None if v is None else held_from_json(v) for k, v in c["before"].items()},
                sums_from_json(c.get("depositories") or {}),
            )
            closer.closed[day.day] = day
        return closer


def held_to_json(h: Held) -> list[Any]:
    return [h.as_of.isoformat(), h.event_id, h.segment, h.currency, list(h.codes), list(h.amounts), h.source]


def held_from_json(v: list[Any]) -> Held:
    as_of, event_id, segment, currency, codes, amounts, source = v
    codes_t = tuple(codes)
    # The shared tuples the aggregate keeps (and compares by identity on its fast path).
    if codes_t == ACCOUNT_CODES.get(segment):
        codes_t = ACCOUNT_CODES[segment]
    elif len(codes_t) == 1:
        codes_t = line_codes(codes_t[0])
    return Held(
        datetime.fromisoformat(as_of), event_id, segment, currency, codes_t, tuple(int(a) for a in amounts), source
    )


def sums_from_json(data: Mapping[str, Any]) -> Sums:
    return {
        sid: {cur: {code: int(v) for code, v in lines.items()} for cur, lines in curs.items()}
        for sid, curs in data.items()
    }


def combine_sums(parts: Iterable[Sums]) -> Sums:
    """The closing sums of a whole book from those of its partitions."""
    out: Sums = {}
    for part in parts:
        for sid, curs in part.items():
            for cur, per_line in curs.items():
                into = out.setdefault(sid, {}).setdefault(cur, {})
                for code, cents in per_line.items():
                    into[code] = into.get(code, 0) + cents
    return out


def sums_totals(sums: Sums, segment_id: str) -> dict[str, dict[str, Decimal]]:
    """One segment's sums as Decimal amounts per currency: what `consolidate` takes."""
    return {
        cur: {code: from_cents(c) for code, c in per_line.items()} for cur, per_line in sums.get(segment_id, {}).items()
    }


class SettingsHistory:
    """Every setting event (targets, FX rates, the 30.7 foreign requirement, the depository reference data: a
    handful a day), so that the settings and references in force at any cut-off can be built, and a late rate
    or reference (as of the cut-off or earlier) can amend a closed day."""

    def __init__(self) -> None:
        self.events: dict[str, SettingEvent] = {}  # event id -> event

    def apply(self, ev: SettingEvent) -> None:
        self.events[ev.event_id] = ev

    def at(self, cutoff: datetime) -> Settings:
        """The settings in force at `cutoff`: every setting as of then or earlier, each key's latest winning."""
        settings = Settings()
        for ev in sorted(self.events.values(), key=lambda e: (e.as_of, e.event_id)):
            if ev.as_of <= cutoff and not isinstance(ev, DepositoryReference):
                settings.apply(ev)
        return settings

    def references_at(self, cutoff: datetime) -> References:
        """The depository reference data in force at `cutoff`: per depository, the latest as of then or earlier."""
        references = References()
        for ev in self.events.values():
            if isinstance(ev, DepositoryReference) and ev.as_of <= cutoff:
                references.apply(ev)  # the latest (as-of, event id) wins, whatever the order
        return references

    def prune(self, before: datetime) -> None:
        """Forget what no kept cut-off needs: per key, events superseded by another as of `before` or earlier."""
        latest: dict[str, SettingEvent] = {}
        for ev in self.events.values():
            if ev.as_of <= before:
                cur = latest.get(ev.key)
                if cur is None or (ev.as_of, ev.event_id) > (cur.as_of, cur.event_id):
                    latest[ev.key] = ev
        self.events = {i: e for i, e in self.events.items() if e.as_of > before or latest.get(e.key) is e}

    def to_state(self) -> list[Any]:
        return [ev.model_dump(mode="json") for ev in self.events.values()]

    @classmethod
    def from_state(cls, state: Iterable[Mapping[str, Any]]) -> SettingsHistory:
        from schemas.events import EVENT_ADAPTER

        history = cls()
        for raw in state:
            ev = EVENT_ADAPTER.validate_python(raw)
            if not isinstance(ev, ManagementTarget | ForeignRequirement | FxRate | DepositoryReference):
                raise ValueError(f"settings history: {type(ev).__name__} is not a setting")
            history.apply(ev)
        return history


def book_at(events: Iterable[object], cutoff: datetime) -> Book:
    """Offline: a Book of every balance and setting (reference data included) as of `cutoff` or earlier,
    whatever order they come in (the close of a day with every late balance applied: the latest version of its
    statement)."""
    book = Book()
    for ev in events:
        if (
            isinstance(
                ev,
                AccountBalance
                | DepositoryBalance
                | ManagementTarget
                | ForeignRequirement
                | FxRate
                | DepositoryReference
                | ForeignMarginRequirement,
            )
            and ev.as_of <= cutoff
        ):
            book.apply(ev)
    return book
