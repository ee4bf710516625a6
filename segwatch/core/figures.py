"""From running sums and settings to a segment's figures: currency by currency, then in US dollars."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from schemas.records import Figures
from segwatch.core.catalogue import SEGMENTS, ZERO
from segwatch.core.money import to_usd
from segwatch.core.settings import Settings
from segwatch.core.statement import Lines, compute

CurrencyTotals = Mapping[str, Mapping[str, Decimal]]


@dataclass(frozen=True, slots=True)
class Consolidated:
    segment: str
    lines: Lines  # every line, US dollars
    by_currency: dict[str, Lines]  # Reg. 1.32(a): the computation in each currency
    missing_fx: tuple[str, ...]  # currencies with balances but no FX rate; left out of `lines`

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
    def target(self) -> Decimal:
        return self.lines[SEGMENTS[self.segment].target]

    @property
    def excess_over_target(self) -> Decimal:
        return self.lines[SEGMENTS[self.segment].over_target]


def combine(parts: Iterable[CurrencyTotals]) -> dict[str, dict[str, Decimal]]:
    """Add partial sums (one per partition) into one segment's sums."""
    out: dict[str, dict[str, Decimal]] = {}
    for part in parts:
        for currency, per_line in part.items():
            into = out.setdefault(currency, {})
            for code, amount in per_line.items():
                into[code] = into.get(code, ZERO) + amount
    return out


def consolidate(segment_id: str, totals: CurrencyTotals, settings: Settings) -> Consolidated:
    seg = SEGMENTS[segment_id]
    usd: dict[str, Decimal] = {}
    missing: list[str] = []
    by_currency: dict[str, Lines] = {}
    per_currency_hidden = {seg.target, seg.over_target}
    for currency in sorted(totals):
        per_line = totals[currency]
        if not any(per_line.values()):
            continue
        lines = compute(segment_id, per_line)
        by_currency[currency] = {c: a for c, a in lines.items() if c not in per_currency_hidden}
        rate = settings.rate(currency)
        if rate is None:
            missing.append(currency)
            continue
        for code, amount in per_line.items():
            usd[code] = usd.get(code, ZERO) + (amount if currency == "USD" else to_usd(amount, rate))
    usd[seg.target] = settings.target(segment_id)
    if segment_id == "30.7":
        usd["7305"] = settings.foreign()
    return Consolidated(segment_id, compute(segment_id, usd), by_currency, tuple(missing))


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
        requirement=c.requirement,
        funds=c.funds,
        excess=c.excess,
        target=c.target,
        excess_over_target=c.excess_over_target,
        missing_fx=list(c.missing_fx),
        accounts=accounts,
        depositories=depositories,
        last_event_id=last_event_id,
        ingested_at=ingested_at,
        sources=dict(sources or {}),
    )
