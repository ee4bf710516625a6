"""What one balance contributes to its segment's leaf lines.

Amounts are held as integer cents: money has at most two decimal places (segwatch.core.money), so cents are
exact, and a calculator adds and holds millions of them: an int is about three times faster to add than a
Decimal and a third of its size. They become Decimal again where sums leave the aggregate.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from schemas.events import AccountBalance, DepositoryBalance
from segwatch.core.catalogue import LEDGER_FIELDS, SEGMENTS
from segwatch.core.money import from_cents, to_cents

# (line code, amount) pairs; only the lines a balance touches.
Contribution = tuple[tuple[str, Decimal], ...]

# An account's lines, in LEDGER_FIELDS order (cash, securities, unrealized, long and short options, deficit,
# offset), one shared tuple per segment; a depository balance's one line, one shared tuple per line code.
ACCOUNT_CODES: dict[str, tuple[str, ...]] = {
    sid: tuple(seg.ledger[f] for f in LEDGER_FIELDS) for sid, seg in SEGMENTS.items()
}
_LINE_CODES: dict[str, tuple[str]] = {}


def line_codes(code: str) -> tuple[str]:
    codes = _LINE_CODES.get(code)
    if codes is None:
        codes = _LINE_CODES[code] = (code,)
    return codes


class Held:
    """The balance held for one key: when it was true, which event said so, and what it adds to each line.

    Compact (a calculator holds one per account): the line codes are a tuple shared by every balance of the
    same kind, the amounts (integer cents) a tuple alongside them; `contribution` pairs them up as Decimals.
    """

    __slots__ = ("amounts", "as_of", "codes", "currency", "event_id", "segment", "source")

    def __init__(
        self,
        as_of: datetime,
        event_id: str,
        segment: str,
        currency: str,
        codes: tuple[str, ...],
        amounts: tuple[int, ...],
        source: str = "",
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
        return tuple((code, from_cents(cents)) for code, cents in zip(self.codes, self.amounts, strict=True))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Held):
            return NotImplemented
        return (self.as_of, self.event_id, self.segment, self.currency, self.codes, self.amounts, self.source) == (
            other.as_of,
            other.event_id,
            other.segment,
            other.currency,
            other.codes,
            other.amounts,
            other.source,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable slots: compared by value, never hashed

    def __repr__(self) -> str:
        return (
            f"Held(as_of={self.as_of!r}, event_id={self.event_id!r}, segment={self.segment!r}, "
            f"currency={self.currency!r}, contribution={self.contribution!r}, source={self.source!r})"
        )


def account_amounts(
    cash: int,
    securities: int,
    unrealized: int,
    long_options: int,
    short_options: int,
    offset_securities: int,
) -> tuple[int, int, int, int, int, int, int]:
    """Lines 1-3 take every account as it is. Line 5 (Reg. 1.32(b)): the debit is measured WITHOUT the
    customer's securities, debit = max(0, -(cash + unrealized + long + short)), because securities are not
    cash; the offset is the haircut value of those securities, at most the debit, so they secure the debit
    once and never count twice. The account then adds NLE + debit - min(debit, haircut) >= 0 to the
    requirement. Per (account, currency) row: a customer's securities in one currency never offset its debit
    in another (conservative: the requirement can only be higher than a cross-currency offset would make it).
    In cents, in ACCOUNT_CODES order."""
    debit = -(cash + unrealized + long_options + short_options)
    if debit <= 0:
        return (cash, securities, unrealized, long_options, short_options, 0, 0)
    return (
        cash,
        securities,
        unrealized,
        long_options,
        short_options,
        debit,
        -(debit if offset_securities > debit else offset_securities),
    )


def _cents_of(ev: AccountBalance) -> tuple[int, ...]:
    return account_amounts(
        to_cents(ev.cash),
        to_cents(ev.securities),
        to_cents(ev.unrealized),
        to_cents(ev.long_options),
        to_cents(ev.short_options),
        to_cents(ev.offset_securities),
    )


def account_key(ev: AccountBalance) -> str:
    return f"acct|{ev.segment}|{ev.account}|{ev.currency}"


def depository_key(ev: DepositoryBalance) -> str:
    """One depository account reports on several lines (a DCO: cash 7100, securities 7120, settlement 7130):
    each (line, currency) of it is a balance of its own. Moving money to another line is restated with a zero
    on the old line."""
    return f"depo|{ev.segment}|{ev.depository}|{ev.line}|{ev.currency}"


def held_of(ev: AccountBalance | DepositoryBalance) -> tuple[str, Held]:
    if isinstance(ev, AccountBalance):
        return account_key(ev), Held(
            ev.as_of, ev.event_id, ev.segment, ev.currency, ACCOUNT_CODES[ev.segment], _cents_of(ev), ev.source
        )
    return depository_key(ev), Held(
        ev.as_of, ev.event_id, ev.segment, ev.currency, line_codes(ev.line), (to_cents(ev.amount),), ev.source
    )
