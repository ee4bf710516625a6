"""From running sums and settings to a segment's figures: currency by currency, then in US dollars."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from schemas.records import Figures, HoldingsFigures
from segwatch.core.catalogue import SEGMENTS, ZERO
from segwatch.core.money import to_usd
from segwatch.core.settings import Settings
from segwatch.core.statement import Lines, compute

CurrencyTotals = Mapping[str, Mapping[str, Decimal]]


@dataclass(frozen=True, slots=True)
class Consolidated:
    segment: str
    lines: Lines  # every line, US dollars (no target lines when no target is set)
    by_currency: dict[str, Lines]  # Reg. 1.32(a): the computation in each currency
    missing_fx: tuple[str, ...]  # currencies with balances but no FX rate ever; left out of `lines`
    stale_fx: tuple[str, ...] = ()  # currencies held whose last rate is older than the settings' fx_max_age
    fx_as_of: Mapping[str, datetime] = field(default_factory=dict)  # each held currency's last rate's as-of
    holdings: HoldingsFigures | None = None  # where and in what (segwatch.core.holdings_figures); None: none held

    @property
    def incomplete(self) -> bool:
        """The USD figures leave a currency out: they cannot show that the segment is compliant."""
        return bool(self.missing_fx)

    @property
    def requirement(self) -> Decimal:
        return self.lines[SEGMENTS[self.segment].requirement]

    @property
    def funds(self) -> Decimal:
        return self.lines[SEGMENTS[self.segment].funds]

    @property
    def excess(self) -> Decimal:
        return self.lines[SEGMENTS[self.segment].excess]

    @property
    def target(self) -> Decimal | None:
        return self.lines.get(SEGMENTS[self.segment].target)

    @property
    def excess_over_target(self) -> Decimal | None:
        return self.lines.get(SEGMENTS[self.segment].over_target)

    @property
    def excess_by_currency(self) -> dict[str, Decimal]:
        """Per currency, in that currency: funds held in it less the requirement in it (Reg. 1.32(a), 1.49)."""
        excess = SEGMENTS[self.segment].excess
        return {currency: lines[excess] for currency, lines in self.by_currency.items()}


def combine(parts: Iterable[CurrencyTotals]) -> dict[str, dict[str, Decimal]]:
    """Add partial sums (one per partition) into one segment's sums."""
    out: dict[str, dict[str, Decimal]] = {}
    for part in parts:
        for currency, per_line in part.items():
            into = out.setdefault(currency, {})
            for code, amount in per_line.items():
                into[code] = into.get(code, ZERO) + amount
    return out


def consolidate(
    segment_id: str, totals: CurrencyTotals, settings: Settings, newest: datetime | None = None
) -> Consolidated:
    """The segment's statement: currency by currency, then in US dollars at each currency's last rate.

    `newest` is the newest as-of among the segment's balances: a held currency whose last rate is older than
    that by more than `settings.fx_max_age` is named in `stale_fx`.
    """
    seg = SEGMENTS[segment_id]
    usd: dict[str, Decimal] = {}
    missing: list[str] = []
    stale: list[str] = []
    fx_as_of: dict[str, datetime] = {}
    by_currency: dict[str, Lines] = {}
    for currency in sorted(totals):
        per_line = totals[currency]
        if not any(per_line.values()):
            continue
        by_currency[currency] = compute(segment_id, per_line)  # no target: targets are set in dollars
        rate = settings.rate(currency)
        if rate is None:
            missing.append(currency)
            continue
        rate_as_of = settings.rate_as_of(currency)
        if rate_as_of is not None:
            fx_as_of[currency] = rate_as_of
            if newest is not None and newest - rate_as_of > settings.fx_max_age:
                stale.append(currency)
        for code, amount in per_line.items():
            usd[code] = usd.get(code, ZERO) + (amount if currency == "USD" else to_usd(amount, rate))
    if segment_id == "30.7":
        usd["7305"] = settings.foreign()
    lines = compute(segment_id, usd)
    target = settings.target(segment_id, lines[seg.requirement])
    if target is not None:  # no target set: no target lines
        usd[seg.target] = target
        lines = compute(segment_id, usd)
    return Consolidated(segment_id, lines, by_currency, tuple(missing), tuple(stale), fx_as_of)


def figures_record(
    c: Consolidated,
    *,
    version: int,
    as_of: datetime | None,
    computed_at: datetime,
    accounts: int,
    depositories: int,
    last_event_id: str | None,
    ingested_at: datetime | None = None,
    sources: Mapping[str, datetime] | None = None,
) -> Figures:
    return Figures(
        segment=c.segment,  # type: ignore[arg-type]
        version=version,
        as_of=as_of,
        computed_at=computed_at,
        lines=c.lines,
        by_currency=c.by_currency,
        excess_by_currency=c.excess_by_currency,
        requirement=c.requirement,
        funds=c.funds,
        excess=c.excess,
        target=c.target,
        excess_over_target=c.excess_over_target,
        missing_fx=list(c.missing_fx),
        incomplete=c.incomplete,
        stale_fx=list(c.stale_fx),
        fx_as_of=dict(c.fx_as_of),
        accounts=accounts,
        depositories=depositories,
        last_event_id=last_event_id,
        ingested_at=ingested_at,
        sources=dict(sources or {}),
        holdings=c.holdings,
    )


def stalest_as_of(sources: Mapping[str, datetime]) -> datetime | None:
    """The figures' as-of: the oldest of the sources' newest as-of (a figure is only as current as its
    stalest source)."""
    return min(sources.values(), default=None)
