"""The record of each business day and its rules: statement versions, sign-off, filing, the noon deadline.

Pure Python: no Kafka, no clock (the caller passes `now`). The calculator's combiner turns each close (and
each amendment of one) into `StatementRecord`s with `DayRecord.publish`; the alerter feeds sign-off and
filing events and the clock to `DayRecord` and turns the `Finding`s of `evaluate` into alerts.

Rules (one business day's statement, all its segments; CBOT Rule 971.B, Reg. 1.32, Reg. 1.12):

    statement_not_filed    not filed by warning_at (10:00) next business day   warning
                           not filed by deadline_at (12:00, noon)               critical, pages
    statement_filed_late   filed after the noon deadline                        warning
    amendment_needed       a late balance or setting changed a statement        warning
                           already filed or approved: file the AMENDMENT
                           (the finding names the lines that move)

A finding is a state: `evaluate` returns the findings in force at `now`; the caller raises one alert per
finding that appears and resolves it when it is gone (filing resolves statement_not_filed; filing the
amended version resolves amendment_needed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from schemas.events import StatementApproval, StatementFiling
from schemas.statements import DayStatus, LineMove, StatementRecord
from segwatch.core.calendar import Deadlines
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.figures import Consolidated
from segwatch.core.statement import Lines

DayRuleName = Literal["statement_not_filed", "statement_filed_late", "amendment_needed"]
REGULATION = "CBOT Rule 971.B; CFTC Reg. 1.32"


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule in force for one business day: what the alerter turns into an alert."""

    rule: DayRuleName
    business_day: date
    severity: Literal["critical", "warning"]
    page: bool
    summary: str
    regulation: str = REGULATION
    since: datetime | None = None  # when the condition began (the deadline passed, the amendment computed)
    moved: Mapping[str, Mapping[str, LineMove]] = field(default_factory=dict)  # amendment: segment -> lines

    @property
    def key(self) -> str:
        return f"{self.business_day.isoformat()}|{self.rule}"


def moved_lines(before: Mapping[str, Decimal], after: Mapping[str, Decimal]) -> dict[str, LineMove]:
    """The lines that differ between two versions of a statement."""
    return {
        code: LineMove(before=before.get(code), after=after.get(code))
        for code in [*before, *(c for c in after if c not in before)]
        if before.get(code) != after.get(code)
    }


@dataclass
class DayRecord:
    """One business day: each segment's statement versions, the sign-off, the filing."""

    business_day: date
    cutoff: datetime
    deadlines: Deadlines
    segments: tuple[str, ...] = SEGMENT_IDS
    statements: dict[str, StatementRecord] = field(default_factory=dict)  # segment -> latest version
    approval: StatementApproval | None = None
    filing: StatementFiling | None = None
    amended_at: datetime | None = None  # when a version after the one filed/approved was computed
    # The versions signed off and filed: the event's, or (none given) the latest computed when it came.
    signed_version: int = 0
    filed_version: int = 0
    first_filed_at: datetime | None = None  # the deadline is the first filing's; an amendment is filed when due

    def publish(
        self, segment: str, c: Consolidated, computed_at: datetime, *, summary_form: bool = False
    ) -> StatementRecord | None:
        """The statement of `segment` at this close (or as amended): a new record when its lines differ from
        the latest version (INITIAL first, then AMENDMENT), None when nothing changed."""
        previous = self.statements.get(segment)
        if previous is not None and dict(previous.lines) == c.lines and list(previous.missing_fx) == list(c.missing_fx):
            return None
        version = 1 if previous is None else previous.version + 1
        record = StatementRecord(
            business_day=self.business_day,
            segment=segment,  # type: ignore[arg-type]
            kind="INITIAL" if previous is None else "AMENDMENT",
            version=version,
            cutoff=self.cutoff,
            computed_at=computed_at,
            lines=c.lines,
            by_currency=c.by_currency,
            missing_fx=list(c.missing_fx),
            summary_form=summary_form,
            moved=moved_lines(previous.lines, c.lines) if previous is not None else {},
        )
        self.statements[segment] = record
        if previous is not None and (self.filing is not None or self.approval is not None):
            self.amended_at = self.amended_at or computed_at
        return record

    @property
    def version(self) -> int:
        return max((r.version for r in self.statements.values()), default=0)

    def approve(self, ev: StatementApproval) -> None:
        if self.approval is None or (ev.approved_at, ev.event_id) > (self.approval.approved_at, self.approval.event_id):
            self.approval = ev
            self.signed_version = ev.version if ev.version is not None else self.version

    def file(self, ev: StatementFiling) -> None:
        if self.first_filed_at is None or ev.filed_at < self.first_filed_at:
            self.first_filed_at = ev.filed_at
        if self.filing is None or (ev.filed_at, ev.event_id) > (self.filing.filed_at, self.filing.event_id):
            self.filing = ev
            self.filed_version = ev.version if ev.version is not None else self.version
            if self.filed_version >= self.version:
                self.amended_at = None

    @property
    def amendment_needed(self) -> bool:
        """A version later than the one filed (or, before filing, the one signed off) exists."""
        done = self.filed_version if self.filing is not None else self.signed_version
        return (self.filing is not None or self.approval is not None) and self.version > done

    def status(self) -> DayStatus:
        if not self.statements:
            raise ValueError(f"business day {self.business_day}: no statement computed yet")
        a, f = self.approval, self.filing
        return DayStatus(
            business_day=self.business_day,
            status="filed" if f else "approved" if a else "computed",
            segments=[s for s in SEGMENT_IDS if s in self.statements],  # type: ignore[misc]
            version=self.version,
            computed_at=max(r.computed_at for r in self.statements.values()),
            approved_by=a.approved_by if a else None,
            approved_role=a.role if a else None,
            approved_at=a.approved_at if a else None,
            approval_reference=a.reference if a else None,
            approved_version=self.signed_version if a else None,
            filed_at=f.filed_at if f else None,
            filed_by=f.filed_by if f else None,
            confirmation=f.confirmation if f else None,
            filed_version=self.filed_version if f else None,
            due_at=self.deadlines.critical,
            filed_late=self.first_filed_at is not None and self.first_filed_at > self.deadlines.critical,
            amendment_needed=self.amendment_needed,
        )

    def evaluate(self, now: datetime) -> list[Finding]:
        """The findings in force at `now`."""
        out: list[Finding] = []
        d, day = self.deadlines, self.business_day
        if self.filing is None:
            if now >= d.critical:
                out.append(
                    Finding(
                        "statement_not_filed",
                        day,
                        "critical",
                        True,
                        f"The statement of {day} is not filed and the noon deadline "
                        f"({d.critical:%Y-%m-%d %H:%M %Z}) has passed",
                        since=d.critical,
                    )
                )
            elif now >= d.warning:
                out.append(
                    Finding(
                        "statement_not_filed",
                        day,
                        "warning",
                        False,
                        f"The statement of {day} is not filed yet; due by {d.critical:%Y-%m-%d %H:%M %Z}",
                        since=d.warning,
                    )
                )
        elif self.first_filed_at is not None and self.first_filed_at > d.critical:
            out.append(
                Finding(
                    "statement_filed_late",
                    day,
                    "warning",
                    False,
                    f"The statement of {day} was filed at {self.first_filed_at:%Y-%m-%d %H:%M %Z}, "
                    f"after the noon deadline",
                    since=self.first_filed_at,
                )
            )
        if self.amendment_needed:
            moved = {sid: r.moved for sid, r in self.statements.items() if r.kind == "AMENDMENT" and r.moved}
            lines = ", ".join(f"{sid} [{code}]" for sid, m in moved.items() for code in m)
            out.append(
                Finding(
                    "amendment_needed",
                    day,
                    "warning",
                    False,
                    f"The statement of {day} changed after it was "
                    f"{'filed' if self.filing else 'signed off'} (version {self.version}): file an "
                    f"AMENDMENT; lines that move: {lines or 'none shown'}",
                    since=self.amended_at,
                    moved=moved,
                )
            )
        return out


def lines_of(records: Mapping[str, StatementRecord]) -> dict[str, Lines]:
    """The statements of a day as `{segment: lines}` (what the renderer and reconcile take)."""
    return {sid: dict(r.lines) for sid, r in records.items()}
