"""The alert rules: from the previous alert states and a new figures record to the alert state changes.

Pure Python: no Kafka, no clock (the caller passes `now`), no I/O. The alerter service feeds it one
figures record at a time; the state it returns is what the alert topic holds, so a restarted alerter
rebuilds it from that topic (`AlertStates.from_alerts`) and never fires the same incident twice.

Rules (each evaluated on the exact Decimal figures of one segment; segments never net):

    deficiency     excess < 0                   critical, pages   CFTC Reg. 1.12(h) immediate notice
    under_target   excess < management target   warning           Reg. 1.11 target, Reg. 1.12(j) notice
                   (only when a target is set)
    missing_fx     figures incomplete: a        critical, pages   Reg. 1.32(a): the USD figures leave those
                   currency held never had a                      currencies out, so they cannot show that
                   rate (figures.missing_fx)                      the segment is compliant
    stale_fx       figures.stale_fx given: a    warning           Reg. 1.32(a): converted at an old rate
                   rate older than the
                   configured age
    no_target      no management target set     warning           Reg. 1.11(e)(3)(i), NFA Financial
                   for the segment                                Requirements 16(a): a target is required

Rules of the business day (segwatch/core/deadlines.py, alerts by segwatch/core/day_alerts.py: one per
business day and rule, on the segment of the day's first statement due; driven by the statements, the
sign-off and filing events and the clock, not by figures):

    statement_not_filed   not filed by 10:00 Chicago,   warning           CBOT Rule 971.B; CFTC Reg. 1.32
                          next business day
                          not filed by noon             critical, pages   CBOT Rule 971.B
    statement_filed_late  filed after the noon deadline warning           CBOT Rule 971.B
    amendment_needed      a late balance or setting     warning           Reg. 1.32: file the AMENDMENT
                          changed a statement already                     (the alert names the lines that
                          signed off or filed                             move)

Where and in what the money is held (issue #14), on each new figures record's `holdings`, in the same alert
state (segwatch.core.holding_alerts; conditions and limits in segwatch.core.holding_rules):

    offshore_funds               30.7 funds outside the US > 120% of   warning           Reg. 30.7
                                 the foreign margin requirement
    depository_not_acknowledged  funds at a depository without its     warning           Reg. 1.20(d), 30.7(d),
                                 acknowledgment letter                                   22.5
    depository_not_qualified     30.7 funds at a non-US bank without   warning           Reg. 30.7
                                 over $1 billion of capital
    investment_not_permitted     customer funds in an instrument       critical, pages   Reg. 1.25(a)
                                 Reg. 1.25 does not permit (`other`)
    asset_concentration          an instrument over its share          warning           Reg. 1.25(b)(3)(i)
    issuer_concentration         one issuer over its share             warning           Reg. 1.25(b)(3)(ii)
    average_maturity             average time to maturity > 730 days   warning           Reg. 1.25(b)(5)
    investment_report_overdue    the report of investments of a report warning           CBOT Rule 971.D
                                 date not marked submitted by the close
                                 of the next business day (one per pool
                                 and date; segwatch.core.report_deadlines,
                                 on the closes and the clock)

An alert fires when its condition becomes true and resolves when it becomes false: one record per state
change, never one per figures update. Incomplete figures (a currency held without a rate, left out of the
dollars) never resolve a deficiency or an under-target alert: they cannot show that it is cured. Within one
update, resolutions come first (deficiency, under_target, missing_fx, stale_fx, no_target), then firings
(under_target, deficiency, missing_fx, stale_fx, no_target), so a segment sliding into deficiency reads
"under target, deficiency" and its recovery "deficiency resolved, under target resolved". A figures record
whose version is not above the last one seen for its segment is a replay or duplicate and changes nothing.

Rules kept in modules of their own (each evaluated by the alerter, each in `segwatch replay`):

    disbursement_25pct      notice, warning/info    a disbursement not for customers over 25% of the excess
                                                    (alone or with the others since the last DAILY
                                                    computation, or of the live excess): CEO/CFO written
                                                    pre-approval, then notices — Reg. 1.23(c), 30.7(g),
                                                    22.17; NFA 16(b); CBOT Rule 971.E (segwatch/core/controls.py)
    disbursement_violation  notice, critical, pages such a disbursement executed without that pre-approval
                                                    (segwatch/core/controls.py)
    residual_interest_      critical                residual interest below the customers' undermargined
    undermargined                                   amounts of the prior close after 6 pm Eastern the next
                                                    business day — Reg. 1.22(c), 30.7(f), 22.2(f)
                                                    (segwatch/core/residual.py)

Notices (`state="notice"`) are not alert state: `AlertStates` ignores them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, get_args

from schemas.alerts import (
    Alert,
    AlertFigures,
    Severity,
    StateRuleName,
)
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
    " out of the US-dollar figures, so they cannot show that the segment is compliant"
)

_STALE_FX_REGULATION: Final = (
    "CFTC Reg. 1.32(a): the US-dollar figures convert a currency at a rate older than the configured age"
)

_NO_TARGET_REGULATION: Final = (
    "CFTC Reg. 1.11(e)(3)(i) and NFA Financial Requirements Section 16(a): the FCM's residual-interest policy"
    " sets a management target for each segment (a dollar amount or a percentage); none is set here"
)


def usd(amount: Decimal) -> str:
    """An exact dollar amount for a human: $1,234,567.89 or -$1,234.56."""
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule: its condition on the figures and how its records read."""

    name: StateRuleName
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
    resolved_summary=lambda f: f"{SEGMENT_NAMES[f.segment]} deficiency cured: excess {usd(f.excess)} ({_amounts(f)})",
)

UNDER_TARGET = Rule(
    name="under_target",
    severity="warning",
    page=False,
    anchor="under-target",
    condition=lambda f: f.target is not None and f.excess < f.target,
    regulation=lambda segment: _UNDER_TARGET_REGULATION[segment],
    firing_summary=lambda f: (
        f"{SEGMENT_NAMES[f.segment]} under its management target by {usd((f.target or ZERO) - f.excess)}:"
        f" excess {usd(f.excess)}, target {_target(f)}"
    ),
    resolved_summary=lambda f: (
        f"{SEGMENT_NAMES[f.segment]} back at or above its management target: excess {usd(f.excess)},"
        f" target {_target(f)}"
    ),
)

MISSING_FX = Rule(
    name="missing_fx",
    severity="critical",
    page=True,
    anchor="missing-fx",
    condition=lambda f: f.incomplete or bool(f.missing_fx),
    regulation=lambda segment: _MISSING_FX_REGULATION,
    firing_summary=lambda f: (
        f"{SEGMENT_NAMES[f.segment]} figures INCOMPLETE: no FX rate for {', '.join(sorted(f.missing_fx))};"
        f" those balances are left out of the USD figures (excess shown {usd(f.excess)}), which cannot show"
        " that the segment is compliant — publish the rate, judge the segment currency by currency meanwhile"
    ),
    resolved_summary=lambda f: (
        f"{SEGMENT_NAMES[f.segment]}: every currency held has an FX rate again; excess {usd(f.excess)}"
    ),
)

STALE_FX = Rule(
    name="stale_fx",
    severity="warning",
    page=False,
    anchor="stale-fx",
    condition=lambda f: bool(f.stale_fx),
    regulation=lambda segment: _STALE_FX_REGULATION,
    firing_summary=lambda f: (
        f"{SEGMENT_NAMES[f.segment]}: the FX rate of {', '.join(sorted(f.stale_fx))} is stale"
        f" ({_rate_dates(f)}); the USD figures convert at it (excess shown {usd(f.excess)})"
    ),
    resolved_summary=lambda f: f"{SEGMENT_NAMES[f.segment]}: every FX rate used is current again",
)

NO_TARGET = Rule(
    name="no_target",
    severity="warning",
    page=False,
    anchor="no-target",
    condition=lambda f: f.target is None,
    regulation=lambda segment: _NO_TARGET_REGULATION,
    firing_summary=lambda f: (
        f"{SEGMENT_NAMES[f.segment]}: no management target set, so nothing warns before a deficiency"
        f" (excess {usd(f.excess)}) — set one (a dollar amount or a percentage of the requirement)"
    ),
    resolved_summary=lambda f: f"{SEGMENT_NAMES[f.segment]}: management target set: {_target(f)}",
)


def _target(f: Figures) -> str:
    return usd(f.target) if f.target is not None else "none set"


def _rate_dates(f: Figures) -> str:
    return ", ".join(
        f"{ccy} as of {f.fx_as_of[ccy].isoformat()}" if ccy in f.fx_as_of else ccy for ccy in sorted(f.stale_fx)
    )


RULES: Final[Mapping[str, Rule]] = MappingProxyType(
    {rule.name: rule for rule in (DEFICIENCY, UNDER_TARGET, MISSING_FX, STALE_FX, NO_TARGET)}
)
RULE_NAMES: Final[tuple[str, ...]] = get_args(StateRuleName)  # the rules with alert state (not notices)
FIRING_ORDER: Final[tuple[Rule, ...]] = (UNDER_TARGET, DEFICIENCY, MISSING_FX, STALE_FX, NO_TARGET)
RESOLVING_ORDER: Final[tuple[Rule, ...]] = (DEFICIENCY, UNDER_TARGET, MISSING_FX, STALE_FX, NO_TARGET)
# Incomplete figures leave a currency out: they can show neither that a deficiency is cured nor that the
# excess is back above target, so these stay firing until complete figures say so.
HELD_ON_INCOMPLETE: Final = frozenset({"deficiency", "under_target"})
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
        incomplete=f.incomplete,
        stale_fx=sorted(f.stale_fx),
    )


def _version(alert: Alert) -> int:
    """The figures version of a firing/resolved record (those always carry figures)."""
    return alert.figures.version if alert.figures is not None else -1


def _newer(alert: Alert, held: Alert | None) -> bool:
    """Whether `alert` supersedes `held` for its key: a later figures version (then a later time) wins."""
    return held is None or (_version(alert), alert.at) >= (_version(held), held.at)


@dataclass(frozen=True, slots=True)
class AlertStates:
    """What the alerter knows: the latest record of each alert, and the last figures version per segment.

    Immutable: `evaluate` returns a new one. Serializable (`to_json` / `from_json`), and rebuilt from the
    alert topic itself with `from_alerts`. Notices (`state="notice"`, disbursements) are not alert state: they
    are skipped here, so they never move a segment's figures version nor touch deficiency/under_target.
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
        """Fold one alert record in (a record older than the one held for its key, or a notice, changes
        nothing)."""
        if alert.is_notice:
            return self
        alerts = dict(self.alerts)
        if _newer(alert, alerts.get(alert.key)):
            alerts[alert.key] = alert
        versions = dict(self.versions)
        versions[alert.segment] = max(versions.get(alert.segment, -1), _version(alert))
        return AlertStates(MappingProxyType(alerts), MappingProxyType(versions))

    @classmethod
    def from_alerts(cls, records: Iterable[Alert]) -> AlertStates:
        """The state the alert records describe: per key the newest record (by figures version) wins.
        Notices are skipped: they are one-off records, not the state of an alert."""
        alerts: dict[str, Alert] = {}
        versions: dict[str, int] = {}
        for alert in records:
            if alert.is_notice:
                continue
            if _newer(alert, alerts.get(alert.key)):
                alerts[alert.key] = alert
            versions[alert.segment] = max(versions.get(alert.segment, -1), _version(alert))
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
            if alert.is_notice:
                raise InputError(f"alerts.{key}", "a notice is not alert state")
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
        if (
            current is not None
            and not conditions[rule.name]
            and not (figures.incomplete and rule.name in HELD_ON_INCOMPLETE)
        ):
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


def _record(rule: Rule, f: Figures, state: str, incident: str, started_at: datetime, now: datetime) -> Alert:
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
