"""Alert records: one per state change of one (segment, rule), keyed by both on the alert topic.

The alert topic is also the alerter's memory: the latest record of each key says whether that alert is
firing, since which figures version, and under which id, so a restarted alerter never fires twice.

Besides the state changes (`firing`, `resolved`) the alert topic carries one-off compliance notices
(`state="notice"`): an event that owes a notice but has no condition that could "resolve" — a disbursement
that needs CEO/CFO pre-approval under CBOT Rule 971.E. A notice is not alert state: the state recovery skips
it, and its `alert_id` (one per disbursement) is how a restarted alerter knows it was already published.
The alerter's record of each disbursement it decided is `schemas.controls.DisbursementDecision` (state topic).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.types import Currency, SegmentId, Total

# An exact amount that is not a sum of cents (25% of an excess): any number of decimal places, finite.
ExactAmount = Annotated[Decimal, Field(allow_inf_nan=False)]

Severity = Literal["critical", "warning", "info"]
State = Literal["firing", "resolved", "notice"]
RuleName = Literal[
    "deficiency",
    "under_target",
    "missing_fx",
    "stale_fx",
    "no_target",
    "disbursement_25pct",
    "disbursement_violation",
    "residual_interest_undermargined",
    "offshore_funds",
    "depository_not_acknowledged",
    "depository_not_qualified",
    "investment_not_permitted",
    "asset_concentration",
    "issuer_concentration",
    "average_maturity",
    "investment_report_overdue",
    "statement_not_filed",
    "statement_filed_late",
    "amendment_needed",
]
# Rules of the business day's statement (segwatch.core.deadlines, segwatch.core.day_alerts): one alert per
# business day and rule, on the segment of the day's first statement due.
DayRuleName = Literal["statement_not_filed", "statement_filed_late", "amendment_needed"]
# Rules on where and in what the money is held (segwatch.core.holding_rules): firing/resolved alert state.
HoldingRuleName = Literal[
    "offshore_funds",
    "depository_not_acknowledged",
    "depository_not_qualified",
    "investment_not_permitted",
    "asset_concentration",
    "issuer_concentration",
    "average_maturity",
    "investment_report_overdue",
]
# Rules whose alerts fire and resolve with a condition on the figures (the alert state).
StateRuleName = Literal["deficiency", "under_target", "missing_fx", "stale_fx", "no_target"]
# Rules that publish one-off notices (state "notice"), never firing/resolved.
NoticeRuleName = Literal["disbursement_25pct", "disbursement_violation"]
NOTICE_RULES: frozenset[str] = frozenset(get_args(NoticeRuleName))


class AlertFigures(BaseModel):
    """The figures that caused the state change (US dollars, exact)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=0, description="The figures version that caused this state change.")
    as_of: datetime | None
    computed_at: datetime | None = None
    requirement: Total
    funds: Total
    excess: Total
    target: Total | None = Field(default=None, description="The management target; null when none is set.")
    excess_over_target: Total | None = None
    missing_fx: list[Currency] = Field(
        default_factory=list, description="Currencies held without an FX rate, left out of the USD figures."
    )
    incomplete: bool = Field(default=False, description="The USD figures leave a currency out (missing_fx).")
    stale_fx: list[Currency] = Field(default_factory=list, description="Currencies held with a stale FX rate.")


class AlertDisbursement(BaseModel):
    """The disbursement a notice is about, and the 25% test (US dollars, exact): what the notice to the
    exchange's Audit Department must contain (amounts, recipient, reason, approval)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str
    as_of: datetime
    amount: Total
    recipient: str
    purpose: str
    approval: str | None = Field(description="The written pre-approval's reference; null when there is none.")
    calculation: int | None = Field(
        description="The figures version (excess calculation) compared with; null when none was known."
    )
    excess: Total | None = Field(description="The segment's excess at that calculation; null when unknown.")
    limit: ExactAmount | None = Field(
        description="25% of that excess, exact (up to 4 decimal places; 0 when there is no excess); null when unknown."
    )
    prior: Total = Field(description="Disbursements not for customers since that calculation, before this one.")
    aggregate: Total = Field(description="prior + amount.")
    alone_exceeds: bool | None = None
    aggregate_exceeds: bool | None = None
    exceeds_excess: bool | None = Field(
        default=None, description="True when the disbursement(s) would leave the segment under-segregated."
    )


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    type: Literal["alert"] = "alert"
    alert_id: str = Field(
        description="Stable for one incident: the firing and its resolution share it. "
        "Deterministic: segment, rule and the figures version at which the incident began."
    )
    rule: RuleName = Field(
        description="deficiency, under_target, missing_fx, stale_fx, no_target, or disbursement_25pct (notices)"
    )
    segment: SegmentId
    state: State = Field(
        description="firing / resolved: a state change of the alert; notice: a one-off compliance notice "
        "(disbursement_25pct), not alert state"
    )
    severity: Severity
    page: bool = Field(default=False, description="True when the firing must page on-call (a deficiency).")
    summary: str = Field(description="One line for a human, with the dollar amounts.")
    regulation: str = Field(description="The rule of law or exchange rule the alert concerns.")
    figures: AlertFigures | None = Field(
        description="The figures behind the record; null only on a notice made without any (excess unknown)."
    )
    disbursement: AlertDisbursement | None = Field(
        default=None, description="On a disbursement_25pct notice: the disbursement and the 25% test."
    )
    started_at: datetime = Field(
        description="When the incident began (the figures' computation time); on a notice, the event's as-of."
    )
    at: datetime = Field(description="When this state change was observed.")
    correlation_id: str | None = Field(default=None, description="The input event that caused the change.")
    runbook: str | None = Field(default=None, description="Where the runbook section for this alert is.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        notice = self.rule in NOTICE_RULES
        if notice != (self.state == "notice"):
            raise ValueError(f"state: rule {self.rule} publishes {'notices' if notice else 'firing/resolved'} only")
        if self.figures is None and not notice:
            raise ValueError(f"figures: required on a {self.state} record")
        if notice and self.disbursement is None:
            raise ValueError(f"disbursement: required on a {self.rule} notice")
        return self

    @property
    def is_notice(self) -> bool:
        return self.state == "notice"

    @property
    def key(self) -> str:
        return f"{self.segment}|{self.rule}"
