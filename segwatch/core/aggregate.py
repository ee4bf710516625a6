"""Running sums of the leaf lines, per segment and currency, kept current one balance at a time in O(1)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from schemas.events import AccountBalance, DepositoryBalance
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.ledger import Held, held_of
from segwatch.core.money import from_cents

# currency -> line code -> amount
CurrencyTotals = Mapping[str, Mapping[str, Decimal]]
# the same, in integer cents (how the aggregate keeps them: see segwatch/core/ledger.py)
CentTotals = dict[str, dict[str, int]]


@dataclass(slots=True)
class SegmentState:
    """One segment's running sums, counts and latest input, as one partition (or one book) sees it."""

    cents: CentTotals = field(default_factory=dict)
    accounts: int = 0
    depositories: int = 0
    as_of: datetime | None = None
    last_event_id: str | None = None
    sources: dict[str, datetime] = field(default_factory=dict)  # source -> newest as-of of any balance it sent

    @property
    def totals(self) -> dict[str, dict[str, Decimal]]:
        """The sums as Decimal amounts."""
        return {
            currency: {code: from_cents(c) for code, c in per_line.items()} for currency, per_line in self.cents.items()
        }

    def add(self, held: Held, sign: int) -> None:
        per_line = self.cents.get(held.currency)
        if per_line is None:
            per_line = self.cents[held.currency] = {}
        get = per_line.get
        for code, amount in zip(held.codes, held.amounts, strict=False):  # same lengths
            per_line[code] = get(code, 0) + sign * amount


class Aggregate:
    """The latest balance per key and the sums they make. Older balances and duplicates change nothing."""

    def __init__(self) -> None:
        self.held: dict[str, Held] = {}
        # The depository balances' keys (few; added once per key, off the restatement path): what the close
        # reads for the funds held at each depository at a cut-off (segwatch/core/close.py).
        self.depository_keys: list[str] = []
        self.segments: dict[str, SegmentState] = {sid: SegmentState() for sid in SEGMENT_IDS}

    def apply(self, ev: AccountBalance | DepositoryBalance) -> bool:
        """Apply one balance; True when it changed a figure-bearing state."""
        key, new = held_of(ev)
        return self.put(key, new)

    # C901 justified: the per-balance hot path, one frame on purpose (a helper per restatement timed ~20% slower).
    def put(self, key: str, new: Held) -> bool:  # noqa: C901, RUF100
        as_of = new.as_of
        # Each source's newest as-of, over every balance it sent (superseded or not: the max of all, so the
        # same whatever the arrival order). The figures' as-of is the oldest of these.
        sources = self.segments[new.segment].sources
        seen = sources.get(new.source)
        if seen is None or as_of > seen:
            sources[new.source] = as_of
        old = self.held.get(key)
        # The ordering rule for balances: a newer as-of wins, and at the same as-of the greater event id, so
        # arrival order never matters; an older balance or the same event again changes nothing.
        if old is not None and (new.as_of < old.as_of or (new.as_of == old.as_of and new.event_id <= old.event_id)):
            return False
        self.held[key] = new
        state = self.segments[new.segment]
        if old is None:
            if key.startswith("acct|"):
                state.accounts += 1
            else:
                state.depositories += 1
                self.depository_keys.append(key)
            state.add(new, +1)
        elif old.codes is new.codes and old.segment == new.segment and old.currency == new.currency:
            # The same lines of the same sums: per line, the difference.
            per_line = state.cents[new.currency]
            if len(new.codes) == 7:  # a customer account (ACCOUNT_CODES): the same, unrolled, as this runs most
                c0, c1, c2, c3, c4, c5, c6 = new.codes
                b0, b1, b2, b3, b4, b5, b6 = old.amounts
                a0, a1, a2, a3, a4, a5, a6 = new.amounts
                if b0 != a0:
                    per_line[c0] += a0 - b0
                if b1 != a1:
                    per_line[c1] += a1 - b1
                if b2 != a2:
                    per_line[c2] += a2 - b2
                if b3 != a3:
                    per_line[c3] += a3 - b3
                if b4 != a4:
                    per_line[c4] += a4 - b4
                if b5 != a5:
                    per_line[c5] += a5 - b5
                if b6 != a6:
                    per_line[c6] += a6 - b6
            else:
                for code, before, after in zip(new.codes, old.amounts, new.amounts, strict=False):  # same lengths
                    if before != after:
                        per_line[code] += after - before
        else:
            self.segments[old.segment].add(old, -1)
            state.add(new, +1)
        if state.as_of is None or as_of >= state.as_of:
            state.as_of, state.last_event_id = as_of, new.event_id
        return True

    def load(self, items: Iterable[tuple[str, Held]]) -> None:
        """Rebuild from recovered state (a changelog-backed table)."""
        for key, held in items:
            self.put(key, held)

    def totals(self, segment_id: str) -> CurrencyTotals:
        return self.segments[segment_id].totals
