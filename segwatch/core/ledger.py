"""What one balance contributes to its segment's leaf lines, and the ordering rule for balances."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from schemas.events import AccountBalance, DepositoryBalance
from segwatch.core.catalogue import LEDGER_FIELDS, SEGMENTS, ZERO

# (line code, amount) pairs; only the lines a balance touches.
Contribution = tuple[tuple[str, Decimal], ...]

# An account's lines, in LEDGER_FIELDS order (cash, securities, unrealized, long and short options, deficit,
# offset), one shared tuple per segment; a depository balance's one line, one shared tuple per line code.
ACCOUNT_CODES: dict[str, tuple[str, ...]] = {
    sid: tuple(seg.ledger[f] for f in LEDGER_FIELDS) for sid, seg in SEGMENTS.items()
}
_LINE_CODES: dict[str, tuple[str]] = {}
_NEGATIVE_ZERO = -ZERO  # what `-offset` gives when the offset is the shared ZERO


def line_codes(code: str) -> tuple[str]:
    codes = _LINE_CODES.get(code)
    if codes is None:
        codes = _LINE_CODES[code] = (code,)
    return codes


class Held:
    """The balance held for one key: when it was true, which event said so, and what it adds to each line.

    Compact (a calculator holds one per account): the line codes are a tuple shared by every balance of the
    same kind, the amounts a tuple alongside them; `contribution` pairs them up.
    """

    __slots__ = ("amounts", "as_of", "codes", "currency", "event_id", "segment", "source")

    def __init__(
        self, as_of: datetime, event_id: str, segment: str, currency: str, codes: tuple[str, ...],
        amounts: tuple[Decimal, ...], source: str = "",
    ) -> None:
        self.as_of = as_of
        self.event_id = event_id
        self.segment = segment
        self.currency = currency
        self.codes = codes
        self.amounts = amounts
        self.source = source

    @property
    def contribution(self) -> Contribution:
        return tuple(zip(self.codes, self.amounts, strict=True))

    def supersedes(self, other: Held | None) -> bool:
        """Newer as-of wins; at equal as-of the greater event id wins, so arrival order never matters."""
        return other is None or (self.as_of, self.event_id) > (other.as_of, other.event_id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Held):
            return NotImplemented
        return (self.as_of, self.event_id, self.segment, self.currency, self.contribution, self.source) == (
            other.as_of, other.event_id, other.segment, other.currency, other.contribution, other.source)

    __hash__ = None  # type: ignore[assignment]  # mutable slots: compared by value, never hashed

    def __repr__(self) -> str:
        return (f"Held(as_of={self.as_of!r}, event_id={self.event_id!r}, segment={self.segment!r}, "
                f"currency={self.currency!r}, contribution={self.contribution!r}, source={self.source!r})")

    def to_wire(self) -> list[object]:
        return [
            self.as_of.isoformat(), self.event_id, self.segment, self.currency,
            [[code, str(amount)] for code, amount in self.contribution],
            self.source,
        ]

    @classmethod
    def from_wire(cls, data: list[Any]) -> Held:
        as_of, event_id, segment, currency, contribution, source = data
        codes = tuple(str(c) for c, _ in contribution)
        if codes == ACCOUNT_CODES.get(str(segment)):
            codes = ACCOUNT_CODES[str(segment)]
        elif len(codes) == 1:
            codes = line_codes(codes[0])
        return cls(
            datetime.fromisoformat(str(as_of)), str(event_id), str(segment), str(currency), codes,
            tuple(Decimal(str(a)) for _, a in contribution), str(source),
        )


def net_liquidating_equity(ev: AccountBalance) -> Decimal:
    return ev.cash + ev.securities + ev.unrealized + ev.long_options + ev.short_options


def account_amounts(
    cash: Decimal, securities: Decimal, unrealized: Decimal, long_options: Decimal, short_options: Decimal,
    offset_securities: Decimal,
) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]:
    """Lines 1-3 take every account as it is; line 5 adds back its deficit less the 1.32(b) offset,
    which uses only this customer's own securities and never exceeds the deficit. In ACCOUNT_CODES order."""
    nle = cash + securities + unrealized + long_options + short_options
    deficit = -nle if nle < ZERO else ZERO
    offset = min(deficit, offset_securities)
    return (cash, securities, unrealized, long_options, short_options, deficit,
            _NEGATIVE_ZERO if offset is ZERO else -offset)


def account_contribution(ev: AccountBalance) -> Contribution:
    amounts = account_amounts(ev.cash, ev.securities, ev.unrealized, ev.long_options, ev.short_options,
                              ev.offset_securities)
    return tuple(zip(ACCOUNT_CODES[ev.segment], amounts, strict=True))


def account_key(ev: AccountBalance) -> str:
    return f"acct|{ev.segment}|{ev.account}|{ev.currency}"


def depository_key(ev: DepositoryBalance) -> str:
    return f"depo|{ev.segment}|{ev.depository}|{ev.currency}"


def held_of(ev: AccountBalance | DepositoryBalance) -> tuple[str, Held]:
    if isinstance(ev, AccountBalance):
        amounts = account_amounts(ev.cash, ev.securities, ev.unrealized, ev.long_options, ev.short_options,
                                  ev.offset_securities)
        return account_key(ev), Held(
            ev.as_of, ev.event_id, ev.segment, ev.currency, ACCOUNT_CODES[ev.segment], amounts, ev.source
        )
    return depository_key(ev), Held(
        ev.as_of, ev.event_id, ev.segment, ev.currency, line_codes(ev.line), (ev.amount,), ev.source
    )
