"""The alerter's part of issue #14 (where and in what the money is held): the holdings rules on each figures
record, and the holdings gauges.

`extend` runs after `segwatch.core.rules.evaluate` on a new figures record: the holdings alerts
(segwatch.core.holding_alerts) join the figures rules' changes and the same alert state, so they are published,
mirrored to the state topic and recovered after a restart exactly as the others (never fired twice).

`HoldingsGauges` shows the figures' holdings (US dollars, floats only here at the Prometheus boundary):

    segwatch_offshore_funds_dollars{segment}              30.7 funds held outside the US
    segwatch_foreign_margin_requirement_dollars{segment}  the foreign margin requirement (absent: none known)
    segwatch_offshore_limit_dollars{segment}              120% of it (Reg. 30.7)
    segwatch_offshore_headroom_dollars{segment}           the limit less the funds outside the US
    segwatch_holdings_dollars{segment,instrument}         what the pool holds, by instrument type
    segwatch_unacknowledged_dollars{segment}              funds at depositories without an acknowledgment letter
    segwatch_unclassified_depositories{segment}           depositories holding funds without reference data
    segwatch_average_maturity_days{segment}               dollar-weighted average days to maturity of investments
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Final

from prometheus_client import CollectorRegistry, Gauge

from schemas.records import Figures
from segwatch.core.catalogue import SEGMENT_IDS, ZERO
from segwatch.core.holding_alerts import FIGURES_HOLDING_RULES, evaluate_holdings
from segwatch.core.rules import Evaluation

OFFSHORE_FUNDS: Final = "segwatch_offshore_funds_dollars"
FOREIGN_MARGIN_REQUIREMENT: Final = "segwatch_foreign_margin_requirement_dollars"
OFFSHORE_LIMIT: Final = "segwatch_offshore_limit_dollars"
OFFSHORE_HEADROOM: Final = "segwatch_offshore_headroom_dollars"
HOLDINGS: Final = "segwatch_holdings_dollars"
UNACKNOWLEDGED: Final = "segwatch_unacknowledged_dollars"
UNCLASSIFIED: Final = "segwatch_unclassified_depositories"
AVERAGE_MATURITY: Final = "segwatch_average_maturity_days"
HOLDINGS_METRIC_NAMES: Final = (
    OFFSHORE_FUNDS,
    FOREIGN_MARGIN_REQUIREMENT,
    OFFSHORE_LIMIT,
    OFFSHORE_HEADROOM,
    HOLDINGS,
    UNACKNOWLEDGED,
    UNCLASSIFIED,
    AVERAGE_MATURITY,
)


def extend(result: Evaluation, figures: Figures, *, now: datetime) -> Evaluation:
    """`result` (rules.evaluate of a new figures record) with the holdings alerts added."""
    if result.stale:
        return result
    states, changes = evaluate_holdings(result.states, figures, now=now)
    return replace(result, states=states, changes=(*result.changes, *changes))


def _remove(gauge: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)


class HoldingsGauges:
    def __init__(self, registry: CollectorRegistry, dollars: Callable[[Decimal], float]) -> None:
        r = registry
        self.dollars = dollars  # the one conversion to a float (services/alerter/metrics.py)
        self.offshore = Gauge(OFFSHORE_FUNDS, "30.7 funds held outside the US (USD)", ["segment"], registry=r)
        self.requirement = Gauge(
            FOREIGN_MARGIN_REQUIREMENT, "Foreign margin requirement (USD; Reg. 30.7)", ["segment"], registry=r
        )
        self.limit = Gauge(
            OFFSHORE_LIMIT, "120% of the foreign margin requirement (USD; Reg. 30.7)", ["segment"], registry=r
        )
        self.headroom = Gauge(
            OFFSHORE_HEADROOM, "Offshore limit less the funds outside the US (USD)", ["segment"], registry=r
        )
        self.holdings = Gauge(
            HOLDINGS, "What the pool holds, by instrument type (USD)", ["segment", "instrument"], registry=r
        )
        self.unacknowledged = Gauge(
            UNACKNOWLEDGED, "Funds at depositories without an acknowledgment letter (USD)", ["segment"], registry=r
        )
        self.unclassified = Gauge(
            UNCLASSIFIED, "Depositories holding funds without reference data", ["segment"], registry=r
        )
        self.maturity = Gauge(
            AVERAGE_MATURITY, "Dollar-weighted average days to maturity of the investments", ["segment"], registry=r
        )
        self._instruments: dict[str, set[str]] = {}

    def show(self, figures: Figures) -> None:
        seg, h = figures.segment, figures.holdings
        if h is None:
            for gauge in (
                self.offshore,
                self.requirement,
                self.limit,
                self.headroom,
                self.unacknowledged,
                self.unclassified,
                self.maturity,
            ):
                _remove(gauge, seg)
            for inst in self._instruments.pop(seg, set()):
                _remove(self.holdings, seg, inst)
            return
        if seg == "30.7":
            self.offshore.labels(segment=seg).set(self.dollars(h.outside_us))
            for gauge, amount in (
                (self.requirement, h.foreign_margin_requirement),
                (self.limit, h.offshore_limit),
                (self.headroom, h.offshore_headroom),
            ):
                if amount is None:  # none known: no series (not a requirement of zero)
                    _remove(gauge, seg)
                else:
                    gauge.labels(segment=seg).set(self.dollars(amount))
        for inst, amount in h.by_instrument.items():
            self.holdings.labels(segment=seg, instrument=inst).set(self.dollars(amount))
        for inst in self._instruments.get(seg, set()) - set(h.by_instrument):
            _remove(self.holdings, seg, inst)
        self._instruments[seg] = set(h.by_instrument)
        self.unacknowledged.labels(segment=seg).set(self.dollars(sum(h.unacknowledged.values(), ZERO)))
        self.unclassified.labels(segment=seg).set(len(h.unclassified))
        if h.average_maturity_days is None:
            _remove(self.maturity, seg)
        else:
            self.maturity.labels(segment=seg).set(self.dollars(h.average_maturity_days))


def zero_alert_firing(alert_firing: Gauge) -> None:
    """segwatch_alert_firing of every holdings rule at 0 (not absent) until it fires."""
    for segment in SEGMENT_IDS:
        for rule in FIGURES_HOLDING_RULES:
            if segment != "30.7" and rule in ("offshore_funds", "depository_not_qualified"):
                continue
            alert_firing.labels(segment=segment, rule=rule).set(0)


__all__ = ["HOLDINGS_METRIC_NAMES", "HoldingsGauges", "extend", "zero_alert_firing"]
