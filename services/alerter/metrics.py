"""The alerter's Prometheus metrics: every name declared here, once, for the service and the dashboard.

Each `AlerterMetrics` has its own CollectorRegistry. Dollar amounts become floats here and only here, at
the Prometheus boundary; the compliance decisions (segwatch.core.rules) use the exact Decimal figures.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Final, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from schemas.alerts import Alert
from schemas.controls import DecisionOutcome, Verdict
from schemas.records import Figures
from segwatch.core.catalogue import SEGMENT_IDS, SEGMENTS
from segwatch.core.rules import RULE_NAMES, RULES
from services.alerter.day_metrics import DayGauges
from services.alerter.holdings import HoldingsGauges, zero_alert_firing

if TYPE_CHECKING:
    from segwatch.core.controls import WindowStatus

# Per segment, from each figures record (label: segment).
REQUIREMENT: Final = "segwatch_requirement_dollars"
FUNDS: Final = "segwatch_funds_dollars"
EXCESS: Final = "segwatch_excess_dollars"
TARGET: Final = "segwatch_target_dollars"
EXCESS_OVER_TARGET: Final = "segwatch_excess_over_target_dollars"
STATEMENT_LINE: Final = "segwatch_statement_line_dollars"  # labels: segment, line (the line code)
FIGURES_VERSION: Final = "segwatch_figures_version"
MISSING_FX: Final = "segwatch_missing_fx_currencies"
STALE_FX: Final = "segwatch_stale_fx_currencies"
INCOMPLETE: Final = "segwatch_figures_incomplete"  # 1 while the USD figures leave a currency out
# Reg. 1.32(a): per currency, in that currency's units (labels: segment, currency).
EXCESS_BY_CURRENCY: Final = "segwatch_excess_by_currency"
# Counters (prometheus_client exposes them with a _total suffix; these are the names as scraped).
FIGURES_TOTAL: Final = "segwatch_figures_total"  # label: segment
ALERTS_TOTAL: Final = "segwatch_alerts_total"  # labels: rule, severity, state
STALE_FIGURES_TOTAL: Final = "segwatch_alerter_stale_figures_total"  # label: segment
DEAD_LETTERS_TOTAL: Final = "segwatch_alerter_dead_letters_total"
# The 25% control (issue #13; labels: segment, outcome = within_limit / needs_approval / approved / violation).
DISBURSEMENTS_TOTAL: Final = "segwatch_disbursements_total"
DISBURSEMENT_OUTCOMES: Final[tuple[str, ...]] = get_args(DecisionOutcome)
# The 25% window of each segment (label: segment): the last daily computation's excess, the disbursements not
# for customers since it, and the headroom to 25% (labels: segment, basis = daily / live; negative: over it).
WINDOW_BASELINE_EXCESS: Final = "segwatch_disbursement_window_baseline_excess_dollars"
WINDOW_AGGREGATE: Final = "segwatch_disbursement_window_aggregate_dollars"
WINDOW_LIMIT: Final = "segwatch_disbursement_window_limit_dollars"
WINDOW_HEADROOM: Final = "segwatch_disbursement_window_headroom_dollars"
# POST /v1/what-if answers (label: verdict = allowed / needs_approval / refused).
WHAT_IF_TOTAL: Final = "segwatch_what_if_total"
WHAT_IF_VERDICTS: Final[tuple[str, ...]] = get_args(Verdict)
DUPLICATE_DISBURSEMENTS_TOTAL: Final = "segwatch_alerter_duplicate_disbursements_total"  # label: segment
# Alert state (labels: segment, rule): 1 firing, 0 not.
ALERT_FIRING: Final = "segwatch_alert_firing"
# Latency, from the newest input's Kafka timestamp (figures.ingested_at).
EVENT_TO_FIGURES: Final = "segwatch_event_to_figures_seconds"
EVENT_TO_ALERT: Final = "segwatch_event_to_alert_seconds"
# Freshness (label: source): the newest as-of each input source has sent, as a Unix time.
SOURCE_LAST_UPDATE: Final = "segwatch_source_last_update_timestamp_seconds"
# The service itself.
READY: Final = "segwatch_alerter_ready"

METRIC_NAMES: Final[tuple[str, ...]] = (
    REQUIREMENT, FUNDS, EXCESS, TARGET, EXCESS_OVER_TARGET, STATEMENT_LINE, FIGURES_VERSION, MISSING_FX,
    STALE_FX, INCOMPLETE, EXCESS_BY_CURRENCY,
    FIGURES_TOTAL, ALERTS_TOTAL, STALE_FIGURES_TOTAL, DEAD_LETTERS_TOTAL, DISBURSEMENTS_TOTAL,
    DUPLICATE_DISBURSEMENTS_TOTAL, WINDOW_BASELINE_EXCESS, WINDOW_AGGREGATE, WINDOW_LIMIT, WINDOW_HEADROOM,
    WHAT_IF_TOTAL, ALERT_FIRING, EVENT_TO_FIGURES, EVENT_TO_ALERT, SOURCE_LAST_UPDATE, READY,
)  # fmt: skip

LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def dollars(amount: Decimal) -> float:
    """The Prometheus boundary: an exact amount becomes a float sample, nowhere else."""
    return float(amount)


def _counter_base(name: str) -> str:
    return name.removesuffix("_total")


class AlerterMetrics:
    """The alerter's metrics in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requirement = Gauge(
            REQUIREMENT, "Amount required to be segregated / set aside (USD)", ["segment"], registry=r
        )
        self.funds = Gauge(FUNDS, "Funds held in segregation / separate accounts (USD)", ["segment"], registry=r)
        self.excess = Gauge(
            EXCESS, "Excess (deficiency) funds (USD); negative is a deficiency", ["segment"], registry=r
        )
        self.target = Gauge(TARGET, "Management target amount for excess funds (USD)", ["segment"], registry=r)
        self.excess_over_target = Gauge(
            EXCESS_OVER_TARGET, "Excess over (under) the management target (USD)", ["segment"], registry=r
        )
        self.statement_line = Gauge(
            STATEMENT_LINE, "Every line of the segment's statement (USD), by line code", ["segment", "line"], registry=r
        )
        self.figures_version = Gauge(
            FIGURES_VERSION, "Version of the latest figures record shown", ["segment"], registry=r
        )
        self.missing_fx = Gauge(
            MISSING_FX, "Currencies held without an FX rate (left out of the USD figures)", ["segment"], registry=r
        )
        self.stale_fx = Gauge(
            STALE_FX, "Currencies held whose FX rate is older than the configured age", ["segment"], registry=r
        )
        self.incomplete = Gauge(
            INCOMPLETE, "1 while the segment's USD figures leave out a currency without a rate", ["segment"], registry=r
        )
        self.excess_by_currency = Gauge(
            EXCESS_BY_CURRENCY,
            "Funds held in a currency less the requirement in it, in that currency (Reg. 1.32(a))",
            ["segment", "currency"],
            registry=r,
        )
        self._currencies: dict[str, set[str]] = {}
        self.figures_total = Counter(_counter_base(FIGURES_TOTAL), "Figures records evaluated", ["segment"], registry=r)
        self.alerts_total = Counter(
            _counter_base(ALERTS_TOTAL), "Alert state changes published", ["rule", "severity", "state"], registry=r
        )
        self.stale_figures_total = Counter(
            _counter_base(STALE_FIGURES_TOTAL),
            "Figures records ignored as replays (version not above the last seen)",
            ["segment"],
            registry=r,
        )
        self.dead_letters_total = Counter(
            _counter_base(DEAD_LETTERS_TOTAL),
            "Figures and disbursement records sent to the dead-letter topic",
            registry=r,
        )
        self.disbursements_total = Counter(
            _counter_base(DISBURSEMENTS_TOTAL),
            "Disbursements decided (25% control: Reg. 1.23(c), CBOT Rule 971.E), by outcome",
            ["segment", "outcome"],
            registry=r,
        )
        self.duplicate_disbursements_total = Counter(
            _counter_base(DUPLICATE_DISBURSEMENTS_TOTAL),
            "Disbursements ignored as duplicates (event id seen before)",
            ["segment"],
            registry=r,
        )
        self.window_baseline_excess = Gauge(
            WINDOW_BASELINE_EXCESS,
            "Excess of the last daily computation (USD): the 25% window's baseline",
            ["segment"],
            registry=r,
        )
        self.window_aggregate = Gauge(
            WINDOW_AGGREGATE,
            "Disbursements not for customers since the last daily computation (USD)",
            ["segment"],
            registry=r,
        )
        self.window_limit = Gauge(
            WINDOW_LIMIT,
            "25% of the excess (USD), of the daily computation or the live figures",
            ["segment", "basis"],
            registry=r,
        )
        self.window_headroom = Gauge(
            WINDOW_HEADROOM,
            "25% limit less the window's aggregate (USD); negative: over it",
            ["segment", "basis"],
            registry=r,
        )
        self.what_if_total = Counter(
            _counter_base(WHAT_IF_TOTAL), "POST /v1/what-if answers, by verdict", ["verdict"], registry=r
        )
        for verdict in WHAT_IF_VERDICTS:
            self.what_if_total.labels(verdict=verdict)
        self.alert_firing = Gauge(ALERT_FIRING, "1 while the alert is firing, else 0", ["segment", "rule"], registry=r)
        self.event_to_figures = Histogram(
            EVENT_TO_FIGURES,
            "Figures record's Kafka timestamp minus its newest input's (seconds)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.event_to_alert = Histogram(
            EVENT_TO_ALERT,
            "Alert acknowledged by Kafka minus the newest input's Kafka timestamp (seconds)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.source_last_update = Gauge(
            SOURCE_LAST_UPDATE, "Newest as-of an input source has sent (Unix time)", ["source"], registry=r
        )
        self.ready = Gauge(READY, "1 once alert state is recovered and the figures partition assigned", registry=r)
        self._shown: dict[str, int] = {}
        self._sources: dict[str, float] = {}
        for segment in SEGMENT_IDS:
            for rule in RULE_NAMES:
                self.alert_firing.labels(segment=segment, rule=rule).set(0)
            for outcome in DISBURSEMENT_OUTCOMES:
                self.disbursements_total.labels(segment=segment, outcome=outcome)  # 0, not absent
            self.duplicate_disbursements_total.labels(segment=segment)
        self.holdings = HoldingsGauges(r, dollars)  # issue #14: services/alerter/holdings.py
        zero_alert_firing(self.alert_firing)
        self.day = DayGauges(r, dollars)  # issue #12: the business day's record (services/alerter/day_metrics.py)

    def show_figures(self, figures: Figures) -> bool:
        """Set the gauges from `figures` unless a newer version is already shown; True if it was shown."""
        shown = self._shown.get(figures.segment)
        if shown is not None and figures.version < shown:
            return False
        self._shown[figures.segment] = figures.version
        seg = figures.segment
        self.requirement.labels(segment=seg).set(dollars(figures.requirement))
        self.funds.labels(segment=seg).set(dollars(figures.funds))
        self.excess.labels(segment=seg).set(dollars(figures.excess))
        if figures.target is not None and figures.excess_over_target is not None:
            self.target.labels(segment=seg).set(dollars(figures.target))
            self.excess_over_target.labels(segment=seg).set(dollars(figures.excess_over_target))
        else:  # no target set: no target series (not a target of zero)
            _remove(self.target, seg)
            _remove(self.excess_over_target, seg)
        for currency, in_currency in figures.excess_by_currency.items():
            self.excess_by_currency.labels(segment=seg, currency=currency).set(dollars(in_currency))
        for currency in self._currencies.get(seg, set()) - set(figures.excess_by_currency):
            _remove(self.excess_by_currency, seg, currency)
        self._currencies[seg] = set(figures.excess_by_currency)
        for line in SEGMENTS[seg].lines:
            amount = figures.lines.get(line.code)
            if amount is not None:
                self.statement_line.labels(segment=seg, line=line.code).set(dollars(amount))
            else:
                _remove(self.statement_line, seg, line.code)
        self.figures_version.labels(segment=seg).set(figures.version)
        self.missing_fx.labels(segment=seg).set(len(figures.missing_fx))
        self.stale_fx.labels(segment=seg).set(len(figures.stale_fx))
        self.incomplete.labels(segment=seg).set(1 if figures.incomplete else 0)
        self.show_sources(figures.sources)
        self.holdings.show(figures)
        return True

    def show_sources(self, sources: Mapping[str, datetime]) -> None:
        for source, as_of in sources.items():
            stamp = as_of.timestamp()
            if stamp > self._sources.get(source, float("-inf")):
                self._sources[source] = stamp
                self.source_last_update.labels(source=source).set(stamp)

    def figures_evaluated(self, figures: Figures, kafka_timestamp: datetime | None) -> None:
        """A figures record went through the rules (not a replay)."""
        self.figures_total.labels(segment=figures.segment).inc()
        if kafka_timestamp is not None and figures.ingested_at is not None:
            self.event_to_figures.observe(max(0.0, (kafka_timestamp - figures.ingested_at).total_seconds()))

    def stale_figures(self, figures: Figures) -> None:
        self.stale_figures_total.labels(segment=figures.segment).inc()

    def alert_published(self, alert: Alert, acknowledged_at: datetime, ingested_at: datetime | None) -> None:
        self.alerts_total.labels(rule=alert.rule, severity=alert.severity, state=alert.state).inc()
        if not alert.is_notice:  # a notice is a one-off record: it never "fires"
            self.alert_firing.labels(segment=alert.segment, rule=alert.rule).set(1 if alert.state == "firing" else 0)
        if ingested_at is not None:
            self.event_to_alert.observe(max(0.0, (acknowledged_at - ingested_at).total_seconds()))

    def show_alert_states(self, alerts: Iterable[Alert]) -> None:
        """Set `segwatch_alert_firing` from recovered state (no counter moves: nothing was published)."""
        for segment in SEGMENT_IDS:
            for rule in RULES:
                self.alert_firing.labels(segment=segment, rule=rule).set(0)
        for alert in alerts:
            if not alert.is_notice:
                self.alert_firing.labels(segment=alert.segment, rule=alert.rule).set(
                    1 if alert.state == "firing" else 0
                )

    def disbursement(self, segment: str, outcome: str) -> None:
        """A disbursement decided: within_limit, needs_approval, approved or violation."""
        self.disbursements_total.labels(segment=segment, outcome=outcome).inc()

    def show_window(self, status: WindowStatus) -> None:
        """A segment's 25% window; a value not known (no baseline, no live figures) has no series."""
        seg = status.segment
        self.window_aggregate.labels(segment=seg).set(dollars(status.aggregate))
        if status.baseline is not None:
            self.window_baseline_excess.labels(segment=seg).set(dollars(status.baseline.excess))
        else:
            _remove(self.window_baseline_excess, seg)
        for basis, limit, headroom in (
            ("daily", status.daily_limit, status.daily_headroom),
            ("live", status.live_limit, status.live_headroom),
        ):
            if limit is not None and headroom is not None:
                self.window_limit.labels(segment=seg, basis=basis).set(dollars(limit))
                self.window_headroom.labels(segment=seg, basis=basis).set(dollars(headroom))
            else:
                _remove(self.window_limit, seg, basis)
                _remove(self.window_headroom, seg, basis)

    def what_if(self, verdict: str) -> None:
        self.what_if_total.labels(verdict=verdict).inc()

    def duplicate_disbursement(self, segment: str) -> None:
        self.duplicate_disbursements_total.labels(segment=segment).inc()

    def dead_letter(self) -> None:
        self.dead_letters_total.inc()

    def set_ready(self, ready: bool) -> None:
        self.ready.set(1 if ready else 0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _remove(gauge: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)
