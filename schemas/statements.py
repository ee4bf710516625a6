"""The record of each business day, on the compacted `segwatch.statements` topic (kept five years, Reg. 1.31).

`StatementRecord`: the statement of one segment as of one business day's close, keyed by business day and
segment and version (`<day>|<segment>|v<version>`: compaction keeps every version); INITIAL (version 1) when
the day closes, then an AMENDMENT (version 2, 3, …) each time a late balance or setting changes it, with the
lines that moved (`moved`: what changed since the version before).

`DayStatus`: where the day's statement stands (computed / approved / filed) and by whom, keyed
`<business day>|status`.

`InvestmentReportRecord`: the report of investments (CBOT Rule 971.D) of a report date, produced at its close,
keyed `investment_report|<report date>` (segwatch/core/report_at_close.py).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.types import Currency, LineCode, SegmentId, Total

StatementKind = Literal["INITIAL", "AMENDMENT"]
DayState = Literal["computed", "approved", "filed"]


class LineMove(BaseModel):
    """One line of an amended statement: what it said in the version before, and what it says now."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    before: Total | None = Field(description="The line in the previous version; null when it had none.")
    after: Total | None = Field(description="The line now; null when it has none any more.")


class StatementRecord(BaseModel):
    """One segment's statement as of the close of one business day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    type: Literal["statement"] = "statement"
    business_day: date
    segment: SegmentId
    kind: StatementKind = Field(description="INITIAL for version 1, AMENDMENT after it (the form's header).")
    version: int = Field(ge=1)
    cutoff: datetime = Field(description="The close: balances as of this instant or earlier are in it.")
    computed_at: datetime
    lines: dict[LineCode, Total] = Field(description="Every line of the statement, in US dollars, exact cents.")
    by_currency: dict[Currency, dict[LineCode, Total]] = Field(
        default_factory=dict, description="The statement computed currency by currency (Reg. 1.32(a))."
    )
    missing_fx: list[Currency] = Field(
        default_factory=list, description="Currencies held at the close without an FX rate; not in `lines`."
    )
    summary_form: bool = Field(
        default=False, description="30.7 filed on the summary form (7360, 7370, 7380 and the funds detail)."
    )
    moved: dict[LineCode, LineMove] = Field(
        default_factory=dict, description="On an amendment: the lines that differ from the previous version."
    )

    @property
    def key(self) -> str:
        """Every version its own key: compaction keeps the INITIAL beside its AMENDMENTs (Reg. 1.31's record)."""
        return f"{self.business_day.isoformat()}|{self.segment}|v{self.version}"


class DayStatus(BaseModel):
    """Where one business day's statement stands: computed, approved (by whom), filed (when, confirmation)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    type: Literal["statement_status"] = "statement_status"
    business_day: date
    status: DayState
    segments: list[SegmentId] = Field(description="The segments this day's statement covers.")
    version: int = Field(ge=1, description="The latest version computed (the highest of its segments).")
    computed_at: datetime
    approved_by: str | None = None
    approved_role: Literal["ceo", "cfo"] | None = None
    approved_at: datetime | None = None
    approval_reference: str | None = None
    approved_version: int | None = None
    filed_at: datetime | None = None
    filed_by: str | None = None
    confirmation: str | None = None
    filed_version: int | None = None
    due_at: datetime = Field(description="CBOT Rule 971.B: noon (Chicago) on the next business day.")
    filed_late: bool = Field(default=False, description="Filed after `due_at`.")
    amendment_needed: bool = Field(
        default=False, description="A version later than the one filed (or approved) exists: file the amendment."
    )

    @property
    def key(self) -> str:
        return f"{self.business_day.isoformat()}|status"


class InvestmentReportRecord(BaseModel):
    """The report of investments of one report date (the 15th or the next business day, and the month's last
    business day), per pool: cash and each permitted investment of Reg. 1.25(a), the other holdings, each
    depository, the total (the pool's depository balances) and what could not be classified. Amounts are exact
    decimal strings (segwatch.core.investments.to_json)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    type: Literal["investment_report"] = "investment_report"
    report_date: date = Field(description="The report date (YYYY-MM-DD).")
    due: date = Field(description="Due by the close of business of this day (the next business day).")
    regulation: str
    pools: dict[SegmentId, dict[str, Any]] = Field(description="Per pool: the report's rows (decimal strings).")

    @property
    def key(self) -> str:
        return f"investment_report|{self.report_date.isoformat()}"
