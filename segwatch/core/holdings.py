"""Where and in what each pool's money is held: running sums over the latest depository balances (issue #14).

Pure Python, no Kafka. `Holdings` keeps the latest balance per depository key (the ordering rule of
segwatch/core/aggregate.py: a newer as-of wins, at the same as-of the greater event id) and, per balance, adds a
fixed handful of integer-cent sums (O(1) per event):

    ("instrument", segment, currency, instrument)         what the pool holds, by instrument
    ("depository", segment, depository, currency, line)   what each depository account holds, by line
    ("location", segment, currency, location)             inside / outside the US
    ("issuer", segment, currency, instrument, issuer)     investments by issuer ("" when the event names none)
    ("maturity", segment, currency) / ("cent_days", ...)  investments with a maturity date: cents, cents x date
    ("mmf", segment, currency)                            money market funds (one day to maturity)
    ("no_maturity", segment, currency)                    other investments without a maturity date

The sums of partitions add up (`Holdings.merged`, `partial` / `from_partial`): a calculator partition keeps its
own and the combiner adds them. `pool_holdings` turns the sums, the depository reference data
(`References`), the foreign margin requirements (`ForeignMargins`) and the FX rates into one pool's US-dollar
picture, which segwatch.core.holding_rules checks and segwatch.core.investments reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from schemas.events import (
    NOT_INVESTMENTS,
    DepositoryBalance,
    DepositoryReference,
    EventBase,
    ForeignMarginRequirement,
    FxRate,
)
from segwatch.core.catalogue import SEGMENT_IDS, ZERO
from segwatch.core.ledger import depository_key
from segwatch.core.money import WIDE, from_cents, to_usd
from segwatch.core.settings import Settings

SumKey = tuple[str, ...]
Sums = dict[SumKey, int]
Rate = Callable[[str], Decimal | None]  # US dollars per unit of a currency; None when unknown

OFFSHORE_FACTOR = Decimal("1.20")  # Reg. 30.7: the margin requirements plus 20%
MMF_DAYS = 1  # a money market fund counts as one day to maturity (Reg. 1.25(b)(5))


@dataclass(frozen=True, slots=True)
class Position:
    """What one depository balance holds, as the holdings need it."""

    as_of: datetime
    event_id: str
    segment: str
    depository: str
    currency: str
    line: str
    location: str
    instrument: str
    issuer: str | None
    maturity: date | None
    cents: int

    @classmethod
    def of(cls, ev: DepositoryBalance) -> Position:
        return cls(
            ev.as_of,
            ev.event_id,
            ev.segment,
            ev.depository,
            ev.currency,
            ev.line,
            ev.location,
            ev.instrument,
            ev.issuer,
            ev.maturity,
            int(ev.amount.scaleb(2)),
        )

    def contributions(self) -> tuple[tuple[SumKey, int], ...]:
        seg, cur, c = self.segment, self.currency, self.cents
        out: list[tuple[SumKey, int]] = [
            (("instrument", seg, cur, self.instrument), c),
            (("depository", seg, self.depository, cur, self.line), c),
            (("location", seg, cur, self.location), c),
        ]
        if self.instrument not in NOT_INVESTMENTS:
            out.append((("issuer", seg, cur, self.instrument, self.issuer or ""), c))
            if self.instrument == "money_market_fund":
                out.append((("mmf", seg, cur), c))
            elif self.maturity is None:
                out.append((("no_maturity", seg, cur), c))
            else:
                out.append((("maturity", seg, cur), c))
                out.append((("cent_days", seg, cur), c * self.maturity.toordinal()))
        return tuple(out)


def _add(sums: Sums, items: Iterable[tuple[SumKey, int]], sign: int) -> None:
    for key, value in items:
        total = sums.get(key, 0) + sign * value
        if total:
            sums[key] = total
        else:
            sums.pop(key, None)  # a sum back at zero is dropped, so equal holdings have equal sums


@dataclass(slots=True)
class Holdings:
    """The latest depository balance per key and the sums they make. Older balances and duplicates change
    nothing; replaying, duplicating or reordering the balances gives the same sums."""

    positions: dict[str, Position] = field(default_factory=dict)
    sums: Sums = field(default_factory=dict)

    def apply(self, ev: DepositoryBalance) -> bool:
        """Apply one balance; True when it changed the holdings."""
        return self.put(depository_key(ev), Position.of(ev))

    def put(self, key: str, new: Position) -> bool:
        old = self.positions.get(key)
        if old is not None and (new.as_of, new.event_id) <= (old.as_of, old.event_id):
            return False
        self.positions[key] = new
        if old is not None:
            _add(self.sums, old.contributions(), -1)
        _add(self.sums, new.contributions(), +1)
        return True

    def partial(self) -> list[tuple[list[str], int]]:
        """The sums as JSON-ready pairs (what a partition publishes)."""
        return [(list(key), value) for key, value in sorted(self.sums.items())]

    @staticmethod
    def from_partial(pairs: Iterable[tuple[Iterable[str], int]]) -> Sums:
        return {tuple(key): int(value) for key, value in pairs}

    @staticmethod
    def merged(parts: Iterable[Mapping[SumKey, int]]) -> Sums:
        """The sums of several partitions (disjoint keys of balances) added up."""
        out: Sums = {}
        for part in parts:
            _add(out, part.items(), +1)
        return out


# --- reference data and settings ------------------------------------------------------------------------------


def _newer(
    ev: DepositoryReference | ForeignMarginRequirement, held: DepositoryReference | ForeignMarginRequirement | None
) -> bool:
    return held is None or (ev.as_of, ev.event_id) > (held.as_of, held.event_id)


@dataclass(slots=True)
class References:
    """The latest reference data per depository account (segment, depository)."""

    refs: dict[tuple[str, str], DepositoryReference] = field(default_factory=dict)

    def apply(self, ev: DepositoryReference) -> bool:
        key = (ev.segment, ev.depository)
        if not _newer(ev, self.refs.get(key)):
            return False
        self.refs[key] = ev
        return True

    def get(self, segment: str, depository: str) -> DepositoryReference | None:
        return self.refs.get((segment, depository))


@dataclass(slots=True)
class ForeignMargins:
    """The latest foreign margin requirement per (board, broker); the requirement is their sum."""

    latest: dict[str, ForeignMarginRequirement] = field(default_factory=dict)

    def apply(self, ev: ForeignMarginRequirement) -> bool:
        if not _newer(ev, self.latest.get(ev.key)):
            return False
        self.latest[ev.key] = ev
        return True

    def total(self) -> Decimal | None:
        """The requirement in USD; None when none was ever received (not zero: unknown)."""
        if not self.latest:
            return None
        return sum((ev.amount for ev in self.latest.values()), ZERO)


@dataclass(frozen=True, slots=True)
class HoldingsSettings:
    """count_unacknowledged: whether funds at a depository whose acknowledgment letter is missing still count in
    the funds lines (default no: Reg. 1.20(d), 30.7(d), 22.5 make the letter a condition of segregation)."""

    count_unacknowledged: bool = False


# --- one pool in US dollars ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DepositoryHolding:
    depository: str
    amount: Decimal  # USD, every line and currency with a rate
    reference: DepositoryReference | None

    @property
    def classified(self) -> bool:
        return self.reference is not None

    @property
    def acknowledged(self) -> bool:
        """No reference data counts as before (acknowledged); reference data saying no letter does not."""
        return self.reference is None or self.reference.acknowledgment_letter

    @property
    def qualified(self) -> bool:
        """False for a bank outside the US holding 30.7 funds without over $1 billion of regulatory capital."""
        ref = self.reference
        return not (
            ref is not None
            and ref.segment == "30.7"
            and ref.kind == "bank"
            and ref.country != "US"
            and ref.regulatory_capital_over_1bn is False
        )


@dataclass(frozen=True, slots=True)
class PoolHoldings:
    """One pool's holdings in US dollars, as of `on` (the date the average maturity is measured from)."""

    segment: str
    on: date
    total: Decimal  # every depository balance of the pool
    by_instrument: Mapping[str, Decimal]
    depositories: tuple[DepositoryHolding, ...]  # sorted by depository id
    by_issuer: Mapping[tuple[str, str], Decimal]  # (instrument, issuer or "") -> USD
    customer_securities: Decimal
    outside_us: Decimal
    inside_us: Decimal
    foreign_margin_requirement: Decimal | None  # 30.7 only; None: none received
    average_maturity_days: Decimal | None  # dollar-weighted, investments with a known maturity and MMFs
    without_maturity: Decimal  # investments (not MMFs) without a maturity date: left out of the average
    missing_fx: tuple[str, ...]  # currencies held without a rate: left out of every amount above
    count_unacknowledged: bool = False

    @property
    def by_depository(self) -> dict[str, Decimal]:
        return {d.depository: d.amount for d in self.depositories}

    @property
    def unclassified(self) -> tuple[str, ...]:
        return tuple(d.depository for d in self.depositories if not d.classified)

    @property
    def unacknowledged(self) -> dict[str, Decimal]:
        return {d.depository: d.amount for d in self.depositories if not d.acknowledged}

    @property
    def not_qualified(self) -> dict[str, Decimal]:
        return {d.depository: d.amount for d in self.depositories if not d.qualified}

    @property
    def offshore_limit(self) -> Decimal | None:
        req = self.foreign_margin_requirement
        return None if req is None else (req * OFFSHORE_FACTOR).quantize(Decimal("0.01"), context=WIDE)

    @property
    def offshore_headroom(self) -> Decimal | None:
        """The limit less the funds outside the US (negative: over the limit)."""
        limit = self.offshore_limit
        return None if limit is None else limit - self.outside_us

    @property
    def concentration_base(self) -> Decimal:
        """Total assets held in segregation for the Reg. 1.25(b)(3) percentages: customer-owned securities are
        not the FCM's investments; funds at an unacknowledged depository only when they count."""
        base = self.total - self.customer_securities
        if not self.count_unacknowledged:
            base -= sum(self.unacknowledged.values(), ZERO)
        return base


def _usd(cents: int, currency: str, rate: Rate) -> Decimal | None:
    r = rate(currency)
    return None if r is None else to_usd(from_cents(cents), r)


@dataclass
class _PoolTally:
    """One pool's sums in USD as `pool_holdings` adds them up, one sum at a time."""

    on: date
    by_instrument: dict[str, Decimal] = field(default_factory=dict)
    per_depository: dict[str, Decimal] = field(default_factory=dict)
    by_issuer: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    location: dict[str, Decimal] = field(default_factory=lambda: {"us": ZERO, "non_us": ZERO})
    maturity_weight: Decimal = ZERO
    weighted_ordinal: Decimal = ZERO
    no_maturity: Decimal = ZERO

    def add(self, key: SumKey, cents: int, r: Decimal) -> None:
        """Add one sum, `r` being its currency's USD rate."""
        kind = key[0]
        if kind == "cent_days":  # cents x date ordinal: to USD exactly, unrounded (only an average is taken)
            self.weighted_ordinal += WIDE.multiply(from_cents(cents), r)
            return
        usd = to_usd(from_cents(cents), r)
        if kind == "instrument":
            self.by_instrument[key[3]] = self.by_instrument.get(key[3], ZERO) + usd
        elif kind == "depository":
            self.per_depository[key[2]] = self.per_depository.get(key[2], ZERO) + usd
        elif kind == "location":
            self.location[key[3]] += usd
        elif kind == "issuer":
            self.by_issuer[(key[3], key[4])] = self.by_issuer.get((key[3], key[4]), ZERO) + usd
        elif kind == "maturity":
            self.maturity_weight += WIDE.multiply(from_cents(cents), r)
        elif kind == "mmf":
            weight = WIDE.multiply(from_cents(cents), r)
            self.maturity_weight += weight
            self.weighted_ordinal += WIDE.multiply(weight, Decimal(self.on.toordinal() + MMF_DAYS))
        elif kind == "no_maturity":
            self.no_maturity += usd

    def average_maturity_days(self) -> Decimal | None:
        """The amount-weighted average days to maturity; None when nothing held has a maturity."""
        if not self.maturity_weight:
            return None
        return (WIDE.divide(self.weighted_ordinal, self.maturity_weight) - self.on.toordinal()).quantize(
            Decimal("0.01"), context=WIDE
        )


def pool_holdings(
    sums: Mapping[SumKey, int],
    segment: str,
    *,
    references: References | None = None,
    margins: ForeignMargins | None = None,
    rate: Rate,
    on: date,
    settings: HoldingsSettings | None = None,
) -> PoolHoldings:
    """One pool's holdings in USD from the (merged) sums. O(number of sums of the pool)."""
    references = references or References()
    settings = settings or HoldingsSettings()
    missing: set[str] = set()
    tally = _PoolTally(on)
    for key, cents in sums.items():
        if key[1] != segment:
            continue
        currency = key[3] if key[0] == "depository" else key[2]
        r = rate(currency)
        if r is None:
            missing.add(currency)
            continue
        tally.add(key, cents, r)
    by_instrument = tally.by_instrument
    depositories = tuple(
        DepositoryHolding(dep, amount, references.get(segment, dep))
        for dep, amount in sorted(tally.per_depository.items())
    )
    return PoolHoldings(
        segment=segment,
        on=on,
        total=sum(by_instrument.values(), ZERO),
        by_instrument=dict(sorted(by_instrument.items())),
        depositories=depositories,
        by_issuer=dict(sorted(tally.by_issuer.items())),
        customer_securities=by_instrument.get("customer_securities", ZERO),
        outside_us=tally.location["non_us"],
        inside_us=tally.location["us"],
        foreign_margin_requirement=(margins or ForeignMargins()).total() if segment == "30.7" else None,
        average_maturity_days=tally.average_maturity_days(),
        without_maturity=tally.no_maturity,
        missing_fx=tuple(sorted(missing)),
        count_unacknowledged=settings.count_unacknowledged,
    )


def unacknowledged_adjustment(
    sums: Mapping[SumKey, int],
    segment: str,
    references: References,
    settings: HoldingsSettings | None = None,
) -> dict[str, dict[str, Decimal]]:
    """What to take out of the pool's funds lines, per currency and line code (positive amounts, in the
    currency), for the funds at depositories whose reference data says the acknowledgment letter is missing.
    Empty when the setting counts them (or there are none). The calculator subtracts these from its leaf
    line totals before converting to USD, so every derived line and the excess follow."""
    if (settings or HoldingsSettings()).count_unacknowledged:
        return {}
    out: dict[str, dict[str, Decimal]] = {}
    for key, cents in sums.items():
        if key[0] != "depository" or key[1] != segment:
            continue
        ref = references.get(segment, key[2])
        if ref is None or ref.acknowledgment_letter:
            continue
        per_line = out.setdefault(key[3], {})
        per_line[key[4]] = per_line.get(key[4], ZERO) + from_cents(cents)
    return out


@dataclass(slots=True)
class HoldingsBook:
    """Every event in one process (the offline tools, `segwatch replay` and tests): the holdings, the reference
    data, the foreign margin requirements and the FX rates. Other events are ignored."""

    holdings: Holdings = field(default_factory=Holdings)
    references: References = field(default_factory=References)
    margins: ForeignMargins = field(default_factory=ForeignMargins)
    fx: Settings = field(default_factory=Settings)
    settings: HoldingsSettings = field(default_factory=HoldingsSettings)

    def apply(self, ev: EventBase) -> bool:
        """Apply one event; True when it changed what the holdings rules see."""
        if isinstance(ev, DepositoryBalance):
            return self.holdings.apply(ev)
        if isinstance(ev, DepositoryReference):
            return self.references.apply(ev)
        if isinstance(ev, ForeignMarginRequirement):
            return self.margins.apply(ev)
        if isinstance(ev, FxRate):
            return bool(self.fx.apply(ev))
        return False

    def apply_all(self, events: Iterable[EventBase]) -> None:
        for ev in events:
            self.apply(ev)

    def pool(self, segment: str, on: date) -> PoolHoldings:
        return pool_holdings(
            self.holdings.sums,
            segment,
            references=self.references,
            margins=self.margins,
            rate=self.fx.rate,
            on=on,
            settings=self.settings,
        )

    def pools(self, on: date) -> list[PoolHoldings]:
        return [self.pool(sid, on) for sid in SEGMENT_IDS]
