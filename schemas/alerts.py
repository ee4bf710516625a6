"""Alert records: one per state change of one (segment, rule), keyed by both on the alert topic."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.types import SegmentId, Total

Severity = Literal["critical", "warning", "info"]
State = Literal["firing", "resolved"]


class AlertFigures(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    as_of: datetime | None
    requirement: Total
    funds: Total
    excess: Total
    target: Total
    excess_over_target: Total


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    type: Literal["alert"] = "alert"
    alert_id: str = Field(description="Stable for one incident: the firing and its resolution share it.")
    rule: str = Field(description="deficiency, under_target, ...")
    segment: SegmentId
    state: State
    severity: Severity
    summary: str
    regulation: str = Field(description="The rule of law or exchange rule the alert concerns.")
    figures: AlertFigures
    started_at: datetime = Field(description="When the incident began (the figures' computation time).")
    at: datetime = Field(description="When this state change was observed.")
    correlation_id: str | None = Field(default=None, description="The input event that caused the change.")
    runbook: str | None = None

    @property
    def key(self) -> str:
        return f"{self.segment}|{self.rule}"
