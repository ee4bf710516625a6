"""What one balance contributes to its segment's leaf lines, and the ordering rule for balances."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from schemas.events import AccountBalance, DepositoryBalance
from segwatch.core.catalogue import SEGMENTS, ZERO

# (line code, amount) pairs; only the lines a balance touches.
Contribution = tuple[tuple[str, Decimal], ...]


class Held(NamedTuple):
    """The balance held for one key: when it was true, which event said so, and what it adds to each line."""

    as_of: datetime
    event_id: str
    segment: str
    currency: str
    contribution: Contribution
    source: str = ""

    def supersedes(self, other: Held | None) -> bool:
        """Newer as-of wins; at equal as-of the greater event id wins, so arrival order never matters."""
        return other is None or (self.as_of, self.event_id) > (other.as_of, other.event_id)

    def to_wire(self) -> list[object]:
        return [
            self.as_of.isoformat(), self.event_id, self.segment, self.currency,
            [[code, str(amount)] for code, amount in self.contribution],
            self.source,
        ]

    @classmethod
    def from_wire(cls, data: list[object]) -> Held:
        as_of, event_id, segment, currency, contribution, source = data
        return cls(
            datetime.fromisoformat(str(as_of)), str(event_id), str(segment), str(currency),
            tuple((str(c), Decimal(str(a))) for c, a in contribution),  # type: ignore[attr-defined]
            str(source),
        )


def net_liquidating_equity(ev: AccountBalance) -> Decimal:
    return ev.cash + ev.securities + ev.unrealized + ev.long_options + ev.short_options


def account_contribution(ev: AccountBalance) -> Contribution:
    """Lines 1-3 take every account as it is; line 5 adds back its deficit less the 1.32(b) offset,
    which uses only this customer's own securities and never exceeds the deficit."""
    codes = SEGMENTS[ev.segment].ledger
    nle = net_liquidating_equity(ev)
    deficit = -nle if nle < ZERO else ZERO
    offset = min(deficit, ev.offset_securities)
    return (
        (codes["cash"], ev.cash),
        (codes["securities"], ev.securities),
        (codes["unrealized"], ev.unrealized),
        (codes["long_options"], ev.long_options),
        (codes["short_options"], ev.short_options),
        (codes["deficit"], deficit),
        (codes["offset"], -offset),
    )


def account_key(ev: AccountBalance) -> str:
    return f"acct|{ev.segment}|{ev.account}|{ev.currency}"


def depository_key(ev: DepositoryBalance) -> str:
    return f"depo|{ev.segment}|{ev.depository}|{ev.currency}"


def held_of(ev: AccountBalance | DepositoryBalance) -> tuple[str, Held]:
    if isinstance(ev, AccountBalance):
        contribution = account_contribution(ev)
        return account_key(ev), Held(ev.as_of, ev.event_id, ev.segment, ev.currency, contribution, ev.source)
    return depository_key(ev), Held(
        ev.as_of, ev.event_id, ev.segment, ev.currency, ((ev.line, ev.amount),), ev.source
    )
