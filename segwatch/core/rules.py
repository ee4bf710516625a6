"""The alert rules: from the previous alert states and a new figures record to the alert state changes.

Pure Python: no Kafka, no clock (the caller passes `now`), no I/O. The alerter service feeds it one
figures record at a time; the state it returns is what the alert topic holds, so a restarted alerter
rebuilds it from that topic (`AlertStates.from_alerts`) and never fires the same incident twice.

Rules (each evaluated on the exact Decimal figures of one segment; segments never net):

    deficiency     excess < 0                 critical, pages   CFTC Reg. 1.12(h) immediate notice
    under_target   excess < management target warning           Reg. 1.11 target, Reg. 1.12(j) notice
    missing_fx     figures.missing_fx given   warning           the USD figures leave those currencies out

An alert fires when its condition becomes true and resolves when it becomes false: one record per state
change, never one per figures update. Within one update, resolutions come first (deficiency, then
under_target, then missing_fx), then firings (under_target, then deficiency, then missing_fx), so a
segment sliding into deficiency reads "under target, deficiency" and its recovery "deficiency resolved,
under target resolved". A figures record whose version is not above the last one seen for its segment is
a replay or duplicate and changes nothing.

Also here: the CBOT Rule 971.E 25% disbursement check (`check_disbursement`, `DisbursementWindow`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, get_args

from schemas.alerts import Alert, AlertFigures, RuleName, Severity
from schemas.records import Figures
from segwatch.core.catalogue import SEGMENT_IDS, ZERO
from segwatch.errors import InputError

RUNBOOK = "docs/RUNBOOK.md"

# How each segment is named in a summary, and the regulations that govern it.
SEGMENT_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "4d2": "4d(2) customer segregation",
        "30.7": "30.7 secured amount",
        "4df": "4d(f) cleared swaps segregation",
    }
)

_DEFICIENCY_REGULATION: Final[Mapping[str, str]] = MappingProxyType(
    {
        "4d2": "CEA 4d(2), CFTC Reg. 1.20 and 1.12(h): futures customer funds under-segregated"
        " — immediate notice to the CFTC and the DSRO",
        "30.7": "CFTC Reg. 30.7 and 1.12(h): foreign futures and options customer funds under-secured"
        " — immediate notice to the CFTC and the DSRO",
        "4df": "CEA 4d(f), CFTC Reg. 22.2 and 1.12(h): cleared swaps customer collateral under-segregated"
        " — immediate notice to the CFTC and the DSRO",
    }
)

_UNDER_TARGET_REGULATION: Final[Mapping[str, str]] = MappingProxyType(
    {
        "4d2": "CFTC Reg. 1.11 residual-interest target (4d(2) customer segregated funds);"
        " notice duty under Reg. 1.12(j)",
        "30.7": "CFTC Reg. 1.11 residual-interest target (30.7 secured amount); notice duty under Reg. 1.12(j)",
        "4df": "CFTC Reg. 1.11 residual-interest target (4d(f) cleared swaps customer collateral);"
        " notice duty under Reg. 1.12(j)",
    }
)

_MISSING_FX_REGULATION: Final = (
    "CFTC Reg. 1.32(a): the computation is made currency by currency; a currency without an FX rate is left"
    " out of the US-dollar figures, so the dollar excess is not the whole picture"
)


def usd(amount: Decimal) -> str:
    """An exact dollar amount for a human: $1,234,567.89 or -$1,234.56."""
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule: its condition on the figures and how its records read."""

    name: RuleName
    severity: Severity
    page: bool
    anchor: str  # the runbook section
    condition: Callable[[Figures], bool]
    regulation: Callable[[str], str]
    firing_summary: Callable[[Figures], str]
    resolved_summary: Callable[[Figures], str]

    @property
    def runbook(self) -> str:
        return f"{RUNBOOK}#{self.anchor}"


def _amounts(f: Figures) -> str:
    return f"funds {usd(f.funds)}, requirement {usd(f.requirement)}"


DEFICIENCY = Rule(
    name="deficiency",
    severity="critical",
    page=True,
    anchor="deficiency",
    condition=lambda f: f.excess < ZERO,
    regulation=lambda segment: _DEFICIENCY_REGULATION[segment],
    firing_summary=lambda f: (
        f"{SEGMENT_NAMES[f.segment]} DEFICIENCY of {usd(-f.excess)}: {_amounts(f)}"
        " — notify the CFTC and the DSRO immediately"
    ),
    resolved_summary=lambda f: (
        f"{SEGMENT_NAMES[f.segment]} deficiency cured: excess {usd(f.excess)} ({_amounts(f)})"
    ),
)

UNDER_TARGET = Rule(
    name="under_target",
    severity="warning",
    page=False,
    anchor="under-target",
    condition=lambda f: f.excess < f.target,
    regulation=lambda segment: _UNDER_TARGET_REGULATION[segment],
    firing_summary=lambda f: (
        f"{SEGMENT_NAMES[f.segment]} under its management target by {usd(-f.excess_over_target)}:"
        f" excess {usd(f.excess)}, target {usd(f.target)}"
    ),
    resolved_summary=lambda f: (
        f"{SEGMENT_NAMES[f.segment]} back at or above its management target: excess {usd(f.excess)},"
        f" target {usd(f.target)}"
    ),
)

MISSING_FX = Rule(
    name="missing_fx",
    severity="warning",
    page=False,
    anchor="missing-fx",
    condition=lambda f: bool(f.missing_fx),
    regulation=lambda segment: _MISSING_FX_REGULATION,
    firing_summary=lambda f: (
        f"{SEGMENT_NAMES[f.segment]}: no FX rate for {', '.join(sorted(f.missing_fx))}; those balances are"
        f" left out of the USD figures (excess shown {usd(f.excess)})"
    ),
    resolved_summary=lambda f: (
        f"{SEGMENT_NAMES[f.segment]}: every currency held has an FX rate again; excess {usd(f.excess)}"
    ),
)

RULES: Final[Mapping[str, Rule]] = MappingProxyType(
    {rule.name: rule for rule in (DEFICIENCY, UNDER_TARGET, MISSING_FX)}
)
RULE_NAMES: Final[tuple[str, ...]] = get_args(RuleName)
FIRING_ORDER: Final[tuple[Rule, ...]] = (UNDER_TARGET, DEFICIENCY, MISSING_FX)
RESOLVING_ORDER: Final[tuple[Rule, ...]] = (DEFICIENCY, UNDER_TARGET, MISSING_FX)
if set(RULES) != set(RULE_NAMES):  # pragma: no cover - a declaration error
    raise RuntimeError(f"rules {sorted(RULES)} do not match RuleName {sorted(RULE_NAMES)}")


def alert_key(segment: str, rule: str) -> str:
    return f"{segment}|{rule}"


def alert_id(segment: str, rule: str, version: int) -> str:
    """The id of the incident of `rule` in `segment` that began at figures `version`: deterministic."""
    return f"{segment}:{rule}:v{version}"


def alert_figures(f: Figures) -> AlertFigures:
    return AlertFigures(
        version=f.version,
        as_of=f.as_of,
        computed_at=f.computed_at,
        requirement=f.requirement,
        funds=f.funds,
        excess=f.excess,
        target=f.target,
        excess_over_target=f.excess_over_target,
        missing_fx=sorted(f.missing_fx),
    )


def _newer(alert: Alert, held: Alert | None) -> bool:
    """Whether `alert` supersedes `held` for its key: a later figures version (then a later time) wins."""
    return held is None or (alert.figures.version, alert.at) >= (held.figures.version, held.at)


@dataclass(frozen=True, slots=True)
class AlertStates:
    """What the alerter knows: the latest record of each alert, and the last figures version per segment.

    Immutable: `evaluate` returns a new one. Serializable (`to_json` / `from_json`), and rebuilt from the
    alert topic itself with `from_alerts`.
    """

    alerts: Mapping[str, Alert] = field(default_factory=lambda: MappingProxyType({}))
    versions: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def latest(self, segment: str, rule: str) -> Alert | None:
        return self.alerts.get(alert_key(segment, rule))

    def firing(self, segment: str, rule: str) -> Alert | None:
        """The firing record of this alert, or None when it is not firing."""
        alert = self.latest(segment, rule)
        return alert if alert is not None and alert.state == "firing" else None

    def is_firing(self, segment: str, rule: str) -> bool:
        return self.firing(segment, rule) is not None

    def version(self, segment: str) -> int | None:
        return self.versions.get(segment)

    def with_alert(self, alert: Alert) -> AlertStates:
        """Fold one alert record in (a record older than the one held for its key changes nothing)."""
        alerts = dict(self.alerts)
        if _newer(alert, alerts.get(alert.key)):
            alerts[alert.key] = alert
        versions = dict(self.versions)
        versions[alert.segment] = max(versions.get(alert.segment, -1), alert.figures.version)
        return AlertStates(MappingProxyType(alerts), MappingProxyType(versions))

    @classmethod
    def from_alerts(cls, records: Iterable[Alert]) -> AlertStates:
        """The state the alert records describe: per key the newest record (by figures version) wins."""
        alerts: dict[str, Alert] = {}
        versions: dict[str, int] = {}
        for alert in records:
            if _newer(alert, alerts.get(alert.key)):
                alerts[alert.key] = alert
            versions[alert.segment] = max(versions.get(alert.segment, -1), alert.figures.version)
        return cls(MappingProxyType(alerts), MappingProxyType(versions))

    def to_dict(self) -> dict[str, Any]:
        return {
            "alerts": {key: alert.model_dump(mode="json") for key, alert in sorted(self.alerts.items())},
            "versions": dict(sorted(self.versions.items())),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertStates:
        alerts = {key: Alert.model_validate(raw) for key, raw in dict(data.get("alerts", {})).items()}
        for key, alert in alerts.items():
            if alert.key != key:
                raise InputError(f"alerts.{key}", f"holds the alert of {alert.key}")
        versions: dict[str, int] = {}
        for segment, version in dict(data.get("versions", {})).items():
            if segment not in SEGMENT_IDS:
                raise InputError(f"versions.{segment}", "unknown segment")
            if isinstance(version, bool) or not isinstance(version, int) or version < 0:
                raise InputError(f"versions.{segment}", f"expected a figures version, got {version!r}")
            versions[segment] = version
        return cls(MappingProxyType(alerts), MappingProxyType(versions))

    @classmethod
    def from_json(cls, text: str | bytes) -> AlertStates:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome of one figures record: the new states and the alert records to publish, in order."""

    states: AlertStates
    changes: tuple[Alert, ...]
    stale: bool = False  # the record's version was not above the last one seen; nothing was evaluated


def evaluate(states: AlertStates, figures: Figures, *, now: datetime) -> Evaluation:
    """Apply one figures record to `states`: the new states and one Alert per state change."""
    last = states.version(figures.segment)
    if last is not None and figures.version <= last:
        return Evaluation(states, (), stale=True)

    conditions = {name: rule.condition(figures) for name, rule in RULES.items()}
    changes: list[Alert] = []
    for rule in RESOLVING_ORDER:
        current = states.firing(figures.segment, rule.name)
        if current is not None and not conditions[rule.name]:
            changes.append(_record(rule, figures, "resolved", current.alert_id, current.started_at, now))
    for rule in FIRING_ORDER:
        if conditions[rule.name] and not states.is_firing(figures.segment, rule.name):
            incident = alert_id(figures.segment, rule.name, figures.version)
            changes.append(_record(rule, figures, "firing", incident, figures.computed_at, now))

    alerts = dict(states.alerts)
    for alert in changes:
        alerts[alert.key] = alert
    versions = {**states.versions, figures.segment: figures.version}
    return Evaluation(AlertStates(MappingProxyType(alerts), MappingProxyType(versions)), tuple(changes))


def _record(
    rule: Rule, f: Figures, state: str, incident: str, started_at: datetime, now: datetime
) -> Alert:
    firing = state == "firing"
    return Alert(
        alert_id=incident,
        rule=rule.name,
        segment=f.segment,
        state="firing" if firing else "resolved",
        severity=rule.severity,
        page=rule.page and firing,
        summary=rule.firing_summary(f) if firing else rule.resolved_summary(f),
        regulation=rule.regulation(f.segment),
        figures=alert_figures(f),
        started_at=started_at,
        at=now,
        correlation_id=f.last_event_id,
        runbook=rule.runbook,
    )


def evaluate_all(
    states: AlertStates, records: Iterable[Figures], *, now: Callable[[], datetime]
) -> tuple[AlertStates, list[Alert]]:
    """Fold a sequence of figures records; every state change in order (for replays and tests)."""
    out: list[Alert] = []
    for figures in records:
        result = evaluate(states, figures, now=now())
        states = result.states
        out.extend(result.changes)
    return states, out


# --- CBOT Rule 971.E: disbursements not for the benefit of customers --------------------------------

DISBURSEMENT_LIMIT: Final = Decimal("0.25")

RULE_971E = (
    "CBOT Rule 971.E: a disbursement not for the benefit of customers that, alone or added to every such"
    " disbursement since the last excess calculation, exceeds 25% of the segment's excess needs written"
    " pre-approval by the CEO or CFO and immediate notice to the exchange's Audit Department"
)


@dataclass(frozen=True, slots=True)
class DisbursementCheck:
    """The 25% test of one proposed disbursement from one segment (exact Decimal arithmetic)."""

    segment: str
    amount: Decimal
    prior: Decimal  # every such disbursement since the last excess calculation, before this one
    excess: Decimal  # the segment's excess at its most recent calculation
    limit: Decimal  # 25% of the excess (0 when there is no excess)
    alone_exceeds: bool
    aggregate_exceeds: bool
    exceeds_excess: bool  # the disbursement(s) would leave the segment under-segregated

    @property
    def aggregate(self) -> Decimal:
        return self.prior + self.amount

    @property
    def needs_approval(self) -> bool:
        """Written CEO/CFO pre-approval and immediate notice to the exchange's Audit Department."""
        return self.alone_exceeds or self.aggregate_exceeds

    @property
    def summary(self) -> str:
        name = SEGMENT_NAMES.get(self.segment, self.segment)
        if not self.needs_approval:
            return (
                f"{name}: disbursement {usd(self.amount)} (aggregate {usd(self.aggregate)}) is within 25% of"
                f" excess {usd(self.excess)} (limit {usd(self.limit)})"
            )
        which = "alone" if self.alone_exceeds else f"with prior disbursements ({usd(self.aggregate)})"
        text = (
            f"{name}: disbursement {usd(self.amount)} {which} exceeds 25% of excess {usd(self.excess)}"
            f" (limit {usd(self.limit)}) — CEO/CFO written pre-approval and immediate notice required"
        )
        if self.exceeds_excess:
            text += "; it would also leave the segment under-segregated"
        return text


def check_disbursement(
    segment: str, amount: Decimal, excess: Decimal, prior: Sequence[Decimal] = ()
) -> DisbursementCheck:
    """CBOT Rule 971.E.1: compare a disbursement, alone and aggregated with `prior` (every disbursement not
    for the benefit of customers from this segment since the last excess calculation), with 25% of the
    segment's most recent excess. "Exceeds" is strict: exactly 25% needs no approval.

    With no excess (zero or a deficiency) the limit is 0, so any disbursement needs approval — and it
    also deepens the deficiency (`exceeds_excess`).
    """
    if segment not in SEGMENT_IDS:
        raise InputError("segment", f"unknown segment {segment!r}; expected one of {', '.join(SEGMENT_IDS)}")
    for name, value in (("amount", amount), ("excess", excess), *((f"prior[{i}]", p) for i, p in enumerate(prior))):
        if not isinstance(value, Decimal) or not value.is_finite():
            raise InputError(name, f"expected a finite Decimal amount, got {value!r}")
    if amount <= ZERO:
        raise InputError("amount", f"a disbursement is a positive amount, got {amount}")
    for i, p in enumerate(prior):
        if p <= ZERO:
            raise InputError(f"prior[{i}]", f"a disbursement is a positive amount, got {p}")
    prior_total = sum(prior, ZERO)
    limit = excess * DISBURSEMENT_LIMIT if excess > ZERO else ZERO
    aggregate = prior_total + amount
    return DisbursementCheck(
        segment=segment,
        amount=amount,
        prior=prior_total,
        excess=excess,
        limit=limit,
        alone_exceeds=amount > limit,
        aggregate_exceeds=aggregate > limit,
        exceeds_excess=aggregate > excess,
    )


@dataclass(slots=True)
class DisbursementWindow:
    """The disbursements not for the benefit of customers since the last excess calculation, per segment.

    `calculation` identifies an excess calculation (a figures version, or the daily computation's date —
    the caller decides which calculation Rule 971.E refers to); a new one starts a new aggregation window.
    Not wired to an input topic yet: there is no disbursement event.
    """

    _windows: dict[str, tuple[Hashable, list[Decimal]]] = field(default_factory=dict)

    def check(self, segment: str, amount: Decimal, excess: Decimal, calculation: Hashable) -> DisbursementCheck:
        """The 25% test of `amount`, aggregated with this window's earlier disbursements; then records it."""
        held = self._windows.get(segment)
        prior = held[1] if held is not None and held[0] == calculation else []
        result = check_disbursement(segment, amount, excess, prior)
        self._windows[segment] = (calculation, [*prior, amount])
        return result

    def total(self, segment: str, calculation: Hashable) -> Decimal:
        held = self._windows.get(segment)
        return sum(held[1], ZERO) if held is not None and held[0] == calculation else ZERO
