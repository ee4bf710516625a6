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
        per_line = self.totals.setdefault(held.currency, {})
        for code, amount in held.contribution:
            per_line[code] = per_line.get(code, ZERO) + amount if sign > 0 else per_line.get(code, ZERO) - amount


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
        if not new.supersedes(old):
            return False
        self.held[key] = new
        state = self.segments[new.segment]
        if old is not None:
            self.segments[old.segment].add(old, -1)
        elif key.startswith("acct|"):
            state.accounts += 1
        else:
            state.depositories += 1
        state.add(new, +1)
        if state.as_of is None or new.as_of >= state.as_of:
            state.as_of, state.last_event_id = new.as_of, new.event_id
        seen = state.sources.get(new.source)
        if seen is None or new.as_of > seen:
            state.sources[new.source] = new.as_of
        return True

    def load(self, items: Iterable[tuple[str, Held]]) -> None:
        """Rebuild from recovered state (a changelog-backed table)."""
        for key, held in items:
            self.put(key, held)

    def totals(self, segment_id: str) -> CurrencyTotals:
        return self.segments[segment_id].totals
