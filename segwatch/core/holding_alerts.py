"""The holdings rules (segwatch.core.holding_rules, issue #14) as alert records, from each figures record.

Pure: no Kafka, no clock. The alerter and the offline twin both call `evaluate_holdings` with a figures record
that `segwatch.core.rules.evaluate` found new (its version above the last one seen): the pool's holdings are
read back from the record (`figures.holdings`, segwatch.core.holdings_figures.pool_of), every holdings rule is
evaluated, and each state change of a (segment, rule) is one `Alert` record, keyed "segment|rule" on the
alert topic like the figures rules, so the alert state (`AlertStates`) holds them too and a restarted alerter
rebuilds them from the alert topic with the rest: never fired twice.

    offshore_funds               warning             Reg. 30.7 (30.7 only)
    depository_not_acknowledged  warning             Reg. 1.20(d), 30.7(d), 22.5
    depository_not_qualified     warning             Reg. 30.7 (30.7 only)
    investment_not_permitted     critical, pages     Reg. 1.25(a)
    asset_concentration          warning             Reg. 1.25(b)(3)(i)
    issuer_concentration         warning             Reg. 1.25(b)(3)(ii)
    average_maturity             warning             Reg. 1.25(b)(5)

(Conditions and limits: segwatch.core.holding_rules.) A record without holdings (no depository balance in the
segment) resolves what was firing. Holdings that leave a currency out (no FX rate) never resolve an alert:
they cannot show it is cured (as the figures rules do on incomplete figures).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Final

from schemas.alerts import Alert
from schemas.records import Figures
from segwatch.core.holding_rules import (
    ASSET_CONCENTRATION,
    AVERAGE_MATURITY,
    DEPOSITORY_NOT_ACKNOWLEDGED,
    DEPOSITORY_NOT_QUALIFIED,
    INVESTMENT_NOT_PERMITTED,
    ISSUER_CONCENTRATION,
    OFFSHORE_FUNDS,
    Finding,
    Limits,
    evaluate,
)
from segwatch.core.holdings_figures import pool_of
from segwatch.core.rules import RUNBOOK, AlertStates, alert_figures, alert_id

# The rules evaluated on each figures record, in the order their records are published (resolutions first).
FIGURES_HOLDING_RULES: Final[tuple[str, ...]] = (
    OFFSHORE_FUNDS,
    DEPOSITORY_NOT_ACKNOWLEDGED,
    DEPOSITORY_NOT_QUALIFIED,
    INVESTMENT_NOT_PERMITTED,
    ASSET_CONCENTRATION,
    ISSUER_CONCENTRATION,
    AVERAGE_MATURITY,
)
PAGING: Final = frozenset({INVESTMENT_NOT_PERMITTED})
# The runbook section of each (docs/RUNBOOK.md).
ANCHORS: Final[Mapping[str, str]] = MappingProxyType({rule: rule.replace("_", "-") for rule in FIGURES_HOLDING_RULES})


def _record(f: Finding, figures: Figures, state: str, incident: str, started_at: datetime, now: datetime) -> Alert:
    firing = state == "firing"
    return Alert(
        alert_id=incident,
        rule=f.rule,  # type: ignore[arg-type]  # a HoldingRuleName
        segment=figures.segment,
        state="firing" if firing else "resolved",
        severity=f.severity,
        page=firing and f.rule in PAGING,
        summary=f.summary,
        regulation=f.regulation,
        figures=alert_figures(figures),
        started_at=started_at,
        at=now,
        correlation_id=figures.last_event_id,
        runbook=f"{RUNBOOK}#{ANCHORS[f.rule]}",
    )


def evaluate_holdings(
    states: AlertStates,
    figures: Figures,
    *,
    now: datetime,
    limits: Limits | None = None,
) -> tuple[AlertStates, tuple[Alert, ...]]:
    """The holdings alerts of one (new) figures record: the states with them folded in, and the records."""
    pool = pool_of(figures)
    seg = figures.segment
    found = {f.rule: f for f in evaluate(pool, limits or Limits())} if pool is not None else {}
    incomplete = pool is not None and bool(pool.missing_fx)
    resolved: list[Alert] = []
    fired: list[Alert] = []
    for rule in FIGURES_HOLDING_RULES:
        finding = found.get(rule)
        current = states.firing(seg, rule)
        if current is not None and (finding is None or not finding.active) and not incomplete:
            gone = finding or Finding(
                seg,
                rule,
                False,
                current.severity,
                f"{seg}: no holdings in the figures any more (no depository balance)",
                current.regulation,
            )
            resolved.append(_record(gone, figures, "resolved", current.alert_id, current.started_at, now))
        elif current is None and finding is not None and finding.active:
            fired.append(
                _record(finding, figures, "firing", alert_id(seg, rule, figures.version), figures.computed_at, now)
            )
    changes = (*resolved, *fired)
    for alert in changes:
        states = states.with_alert(alert)
    return states, changes
