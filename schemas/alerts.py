"""Alert records: one per state change of one (segment, rule), keyed by both on the alert topic.

The alert topic is also the alerter's memory: the latest record of each key says whether that alert is
firing, since which figures version, and under which id, so a restarted alerter never fires twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.types import Currency, SegmentId, Total

Severity = Literal["critical", "warning", "info"]
State = Literal["firing", "resolved"]
RuleName = Literal["deficiency", "under_target", "missing_fx"]


class AlertFigures(BaseModel):
    """The figures that caused the state change (US dollars, exact)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=0, description="The figures version that caused this state change.")
    as_of: datetime | None
    computed_at: datetime | None = None
    requirement: Total
    funds: Total
    excess: Total
    target: Total
    excess_over_target: Total
    missing_fx: list[Currency] = Field(
        default_factory=list, description="Currencies held without an FX rate, left out of the USD figures."
    )


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    type: Literal["alert"] = "alert"
    alert_id: str = Field(
        description="Stable for one incident: the firing and its resolution share it. "
        "Deterministic: segment, rule and the figures version at which the incident began."
    )
    rule: RuleName = Field(description="deficiency, under_target or missing_fx")
    segment: SegmentId
    state: State
    severity: Severity
    page: bool = Field(default=False, description="True when the firing must page on-call (a deficiency).")
    summary: str = Field(description="One line for a human, with the dollar amounts.")
    regulation: str = Field(description="The rule of law or exchange rule the alert concerns.")
    figures: AlertFigures
    started_at: datetime = Field(description="When the incident began (the figures' computation time).")
    at: datetime = Field(description="When this state change was observed.")
    correlation_id: str | None = Field(default=None, description="The input event that caused the change.")
    runbook: str | None = Field(default=None, description="Where the runbook section for this alert is.")

    @property
    def key(self) -> str:
        return f"{self.segment}|{self.rule}"
