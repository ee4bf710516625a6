"""Running sums of the leaf lines, per segment and currency, kept current one balance at a time in O(1)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from schemas.events import AccountBalance, DepositoryBalance
from segwatch.core.catalogue import SEGMENT_IDS, ZERO
from segwatch.core.ledger import Held, held_of

# currency -> line code -> amount
CurrencyTotals = Mapping[str, Mapping[str, Decimal]]

@dataclass(slots=True)
class SegmentState:
    """One segment's running sums, counts and latest input, as one partition (or one book) sees it."""

    totals: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    accounts: int = 0
    depositories: int = 0
    as_of: datetime | None = None
    last_event_id: str | None = None
    sources: dict[str, datetime] = field(default_factory=dict)  # source -> newest as-of it has sent

    def add(self, held: Held, sign: int) -> None:
        per_line = self.totals.get(held.currency)
        if per_line is None:
            per_line = self.totals[held.currency] = {}
        get = per_line.get
        if sign > 0:
            for code, amount in zip(held.codes, held.amounts, strict=False):  # same lengths
                per_line[code] = get(code, ZERO) + amount
        else:
            for code, amount in zip(held.codes, held.amounts, strict=False):
                per_line[code] = get(code, ZERO) - amount


class Aggregate:
    """The latest balance per key and the sums they make. Older balances and duplicates change nothing."""

    def __init__(self) -> None:
        self.held: dict[str, Held] = {}
        self.segments: dict[str, SegmentState] = {sid: SegmentState() for sid in SEGMENT_IDS}

    def apply(self, ev: AccountBalance | DepositoryBalance) -> bool:
        """Apply one balance; True when it changed a figure-bearing state."""
        key, new = held_of(ev)
        return self.put(key, new)

    def put(self, key: str, new: Held) -> bool:
        old = self.held.get(key)
        # Held.supersedes, spelled out (this runs once per balance): newer as-of, or the same and a greater
        # event id; otherwise it is older or the same event again and changes nothing.
        if old is not None and (new.as_of < old.as_of or (new.as_of == old.as_of and new.event_id <= old.event_id)):
            return False
        self.held[key] = new
        state = self.segments[new.segment]
        if old is None:
            if key.startswith("acct|"):
                state.accounts += 1
            else:
                state.depositories += 1
            state.add(new, +1)
        elif old.codes is new.codes and old.segment == new.segment and old.currency == new.currency:
            # The same lines of the same sums: per line, take the old amount off and put the new one on (the
            # same two operations, in the same order, as the general case below). A line whose old and new
            # amount are the same object (the shared zeros) is left as it is: the sum took that amount in
            # before, so its exponent is already at most the amount's, and t - a + a is exactly t.
            per_line = state.totals[new.currency]
            if len(new.codes) == 7:  # a customer account (ACCOUNT_CODES): the same, unrolled, as this runs most
                c0, c1, c2, c3, c4, c5, c6 = new.codes
                b0, b1, b2, b3, b4, b5, b6 = old.amounts
                a0, a1, a2, a3, a4, a5, a6 = new.amounts
                if b0 is not a0:
                    per_line[c0] = per_line[c0] - b0 + a0
                if b1 is not a1:
                    per_line[c1] = per_line[c1] - b1 + a1
                if b2 is not a2:
                    per_line[c2] = per_line[c2] - b2 + a2
                if b3 is not a3:
                    per_line[c3] = per_line[c3] - b3 + a3
                if b4 is not a4:
                    per_line[c4] = per_line[c4] - b4 + a4
                if b5 is not a5:
                    per_line[c5] = per_line[c5] - b5 + a5
                if b6 is not a6:
                    per_line[c6] = per_line[c6] - b6 + a6
            else:
                for code, before, after in zip(new.codes, old.amounts, new.amounts, strict=False):  # same lengths
                    if before is not after:
                        per_line[code] = per_line[code] - before + after
        else:
            self.segments[old.segment].add(old, -1)
            state.add(new, +1)
        as_of = new.as_of
        if state.as_of is None or as_of >= state.as_of:
            state.as_of, state.last_event_id = as_of, new.event_id
        sources = state.sources
        seen = sources.get(new.source)
        if seen is None or as_of > seen:
            sources[new.source] = as_of
        return True

    def load(self, items: Iterable[tuple[str, Held]]) -> None:
        """Rebuild from recovered state (a changelog-backed table)."""
        for key, held in items:
            self.put(key, held)

    def totals(self, segment_id: str) -> CurrencyTotals:
        return self.segments[segment_id].totals
