"""Holdings in the figures (issue #14): the one place where the statement meets where and in what the money is
held, for the calculator's combiner and the offline book alike.

- `HoldingsInputs`: what the holdings need besides the balances: the depository reference data, the foreign
  margin requirements (settings topic: `depository_reference`, `foreign_margin_requirement`) and the setting
  whether funds at a depository without its acknowledgment letter count (SEGWATCH_COUNT_UNACKNOWLEDGED, default
  no: Reg. 1.20(d), 30.7(d), 22.5).
- `consolidate_held`: the segment's statement with those funds taken out of the leaf lines (when they do not
  count: `counted_totals`, which the close of a business day applies too, segwatch/core/business_day.py), and
  `Consolidated.holdings` (the `holdings` of the figures record) from the holdings sums.
- `pool_of`: a figures record's holdings back as a `PoolHoldings`, which the alerter checks with
  segwatch.core.holding_rules (the alerter sees only the figures).

A segment without any depository balance (and, for 30.7, without a foreign margin requirement) has no
holdings: its figures are what they were before issue #14. Events alone (no reference data) give the same
lines as before; reference data saying a letter is missing takes those funds out of the lines by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from schemas.events import DepositoryReference, ForeignMarginRequirement
from schemas.records import DepositoryHoldingFigures, Figures, HoldingsFigures, IssuerHoldingFigures
from segwatch.core.catalogue import ZERO
from segwatch.core.figures import Consolidated, CurrencyTotals, consolidate
from segwatch.core.holdings import (
    DepositoryHolding,
    ForeignMargins,
    HoldingsSettings,
    PoolHoldings,
    References,
    Sums,
    pool_holdings,
    unacknowledged_adjustment,
)
from segwatch.core.settings import Settings
from segwatch.environment import FiguresPart, load

CHICAGO = ZoneInfo("America/Chicago")


def holdings_settings(env: Mapping[str, str] | None = None) -> HoldingsSettings:
    """SEGWATCH_COUNT_UNACKNOWLEDGED (segwatch/environment.py, FiguresPart): yes to count funds at a depository
    without its acknowledgment letter in the funds lines (default no)."""
    return HoldingsSettings(count_unacknowledged=load(FiguresPart, env).count_unacknowledged)


HoldingsEvent = DepositoryReference | ForeignMarginRequirement


@dataclass(slots=True)
class HoldingsInputs:
    references: References = field(default_factory=References)
    margins: ForeignMargins = field(default_factory=ForeignMargins)
    settings: HoldingsSettings = field(default_factory=holdings_settings)

    def apply(self, ev: HoldingsEvent) -> frozenset[str]:
        """Apply one reference or requirement event; the segments whose figures it changes (none: stale)."""
        if isinstance(ev, DepositoryReference):
            return frozenset({ev.segment}) if self.references.apply(ev) else frozenset()
        return frozenset({"30.7"}) if self.margins.apply(ev) else frozenset()


def day_of(newest: datetime | None) -> date:
    """The day the holdings are measured on: the newest balance's date in Chicago (the exchange's day)."""
    return (newest or datetime(2000, 1, 1, tzinfo=UTC)).astimezone(CHICAGO).date()


def _less(totals: CurrencyTotals, adjustment: Mapping[str, Mapping[str, Decimal]]) -> dict[str, dict[str, Decimal]]:
    out = {currency: dict(per_line) for currency, per_line in totals.items()}
    for currency, per_line in adjustment.items():
        into = out.setdefault(currency, {})
        for code, amount in per_line.items():
            into[code] = into.get(code, ZERO) - amount
    return out


def _held_in(sums: Sums, segment: str) -> bool:
    return any(key[1] == segment for key in sums)


def counted_totals(
    segment_id: str,
    totals: CurrencyTotals,
    sums: Sums,
    references: References,
    settings: HoldingsSettings,
) -> CurrencyTotals:
    """The leaf line totals that count: less the funds at depositories whose reference data says the
    acknowledgment letter is missing (unless the setting counts them). `sums` needs only the "depository" sums."""
    if _held_in(sums, segment_id):
        adjustment = unacknowledged_adjustment(sums, segment_id, references, settings)
        if adjustment:
            return _less(totals, adjustment)
    return totals


def consolidate_held(
    segment_id: str,
    totals: CurrencyTotals,
    settings: Settings,
    newest: datetime | None,
    sums: Sums,
    inputs: HoldingsInputs,
) -> Consolidated:
    """`figures.consolidate` with the holdings: funds at an unacknowledged depository out of the leaf lines
    (unless they count), and the pool's holdings attached."""
    held = _held_in(sums, segment_id)
    totals = counted_totals(segment_id, totals, sums, inputs.references, inputs.settings)
    c = consolidate(segment_id, totals, settings, newest)
    if not held and not (segment_id == "30.7" and inputs.margins.latest):
        return c
    pool = pool_holdings(
        sums,
        segment_id,
        references=inputs.references,
        margins=inputs.margins,
        rate=settings.rate,
        on=day_of(newest),
        settings=inputs.settings,
    )
    return replace(c, holdings=holdings_figures(pool))


def holdings_figures(pool: PoolHoldings) -> HoldingsFigures:
    deps = []
    for d in pool.depositories:
        ref = d.reference
        deps.append(
            DepositoryHoldingFigures(
                depository=d.depository,
                amount=d.amount,
                kind=ref.kind if ref else None,
                country=ref.country if ref else None,
                acknowledgment_letter=ref.acknowledgment_letter if ref else None,
                regulatory_capital_over_1bn=ref.regulatory_capital_over_1bn if ref else None,
            )
        )
    return HoldingsFigures(
        on=pool.on,
        total=pool.total,
        by_instrument=dict(pool.by_instrument),
        by_issuer=[IssuerHoldingFigures(instrument=i, issuer=s, amount=a) for (i, s), a in pool.by_issuer.items()],
        depositories=deps,
        customer_securities=pool.customer_securities,
        outside_us=pool.outside_us,
        inside_us=pool.inside_us,
        foreign_margin_requirement=pool.foreign_margin_requirement,
        offshore_limit=pool.offshore_limit,
        offshore_headroom=pool.offshore_headroom,
        average_maturity_days=pool.average_maturity_days,
        without_maturity=pool.without_maturity,
        unacknowledged=pool.unacknowledged,
        counts_unacknowledged=pool.count_unacknowledged,
        unclassified=list(pool.unclassified),
        not_qualified=pool.not_qualified,
        missing_fx=list(pool.missing_fx),
    )


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def pool_of(figures: Figures) -> PoolHoldings | None:
    """The pool's holdings as the figures record states them (None: the record has none)."""
    h = figures.holdings
    if h is None:
        return None
    deps = []
    for d in h.depositories:
        ref = None
        if d.kind is not None:
            # The reference data as the record states it (not re-validated: it was valid when it came in).
            ref = DepositoryReference.model_construct(
                event_id="figures",
                source="figures",
                as_of=_EPOCH,
                type="depository_reference",
                segment=figures.segment,
                depository=d.depository,
                kind=d.kind,
                country=d.country or "",
                acknowledgment_letter=bool(d.acknowledgment_letter),
                regulatory_capital_over_1bn=d.regulatory_capital_over_1bn,
                name=None,
            )
        deps.append(DepositoryHolding(d.depository, d.amount, ref))
    return PoolHoldings(
        segment=figures.segment,
        on=h.on,
        total=h.total,
        by_instrument=dict(h.by_instrument),
        depositories=tuple(deps),
        by_issuer={(i.instrument, i.issuer): i.amount for i in h.by_issuer},
        customer_securities=h.customer_securities,
        outside_us=h.outside_us,
        inside_us=h.inside_us,
        foreign_margin_requirement=h.foreign_margin_requirement,
        average_maturity_days=h.average_maturity_days,
        without_maturity=h.without_maturity,
        missing_fx=tuple(h.missing_fx),
        count_unacknowledged=h.counts_unacknowledged,
    )
