"""The business day's findings as alerts: `statement_not_filed`, `statement_filed_late`, `amendment_needed`.

Pure: no Kafka, no clock. The alerter (services/alerter/business_day.py) and the twin feed it the statements
(segwatch.statements), the sign-off and filing events and the time, and publish the alerts it returns.

Shape: one alert per (business day, rule), for the whole day's statement (it is signed off and filed as one),
on the segment of the day's first statement due (4d2 on a business day, 30.7 on an NFA 30.7-only day). Its
`alert_id` is `<business day>|<rule>` (`|<severity>` for statement_not_filed, so the noon escalation is a new
incident that pages while the 10:00 warning resolves); `figures` are that segment's statement as computed at
the close (cut-off, requirement, funds, excess; `version` 0: not a figures version, which the alerter's
recovery reads as each segment's last figures version). A finding that appears fires, one that goes away
resolves (the filing resolves statement_not_filed; filing the amended version resolves amendment_needed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from schemas.alerts import Alert, AlertFigures
from schemas.events import StatementApproval, StatementFiling
from schemas.statements import StatementRecord
from segwatch.core.calendar import BusinessCalendar
from segwatch.core.catalogue import SEGMENT_IDS, SEGMENTS
from segwatch.core.deadlines import DayRecord, Finding
from segwatch.core.rules import RUNBOOK

RUNBOOK_ANCHORS = {
    "statement_not_filed": "statement-not-filed",
    "statement_filed_late": "statement-filed-late",
    "amendment_needed": "amendment-needed",
}


def day_figures(rec: StatementRecord) -> AlertFigures:
    seg = SEGMENTS[rec.segment]
    lines = rec.lines
    zero = Decimal(0)
    target = lines.get(seg.target)
    return AlertFigures(
        version=0,
        as_of=rec.cutoff,
        computed_at=rec.computed_at,
        requirement=lines.get(seg.requirement, zero),
        funds=lines.get(seg.funds, zero),
        excess=lines.get(seg.excess, zero),
        target=target,
        excess_over_target=lines.get(seg.over_target),
        missing_fx=sorted(rec.missing_fx),
        incomplete=bool(rec.missing_fx),
    )


def alert_id(f: Finding) -> str:
    base = f"{f.business_day.isoformat()}|{f.rule}"
    return f"{base}|{f.severity}" if f.rule == "statement_not_filed" else base


@dataclass
class DayAlerts:
    """Each business day's record and the alerts in force for it."""

    calendar: BusinessCalendar
    retain_days: int = 10  # day records kept (a day whose statement is filed and not amended is quiet)
    days: dict[date, DayRecord] = field(default_factory=dict)
    firing: dict[str, Alert] = field(default_factory=dict)  # alert_id -> its firing record

    def _day(self, day: date, cutoff: datetime | None = None) -> DayRecord:
        record = self.days.get(day)
        if record is None:
            record = self.days[day] = DayRecord(
                day, cutoff or self.calendar.cutoff(day), self.calendar.deadlines(day), self.calendar.segments_due(day)
            )
            self.days = dict(sorted(self.days.items()))
            while len(self.days) > self.retain_days:
                oldest = next(iter(self.days))
                if any(a.startswith(oldest.isoformat()) for a in self.firing):
                    break  # never forget a day with an alert in force
                self.days.pop(oldest)
        return record

    def on_statement(self, rec: StatementRecord) -> None:
        record = self._day(rec.business_day, rec.cutoff)
        held = record.statements.get(rec.segment)
        if held is None or rec.version > held.version:
            record.statements[rec.segment] = rec
            if held is not None and (record.filing is not None or record.approval is not None):
                record.amended_at = record.amended_at or rec.computed_at

    def on_approval(self, ev: StatementApproval) -> None:
        self._day(ev.business_day).approve(ev)

    def on_filing(self, ev: StatementFiling) -> None:
        self._day(ev.business_day).file(ev)

    def evaluate(self, now: datetime, correlation_id: str | None = None) -> list[Alert]:
        """The alert state changes at `now`: a firing for each finding that appeared, a resolution for each
        that went away. Days without a computed statement have no findings yet."""
        findings: dict[str, tuple[Finding, DayRecord]] = {}
        for record in self.days.values():
            if not record.statements:
                continue
            for f in record.evaluate(now):
                findings[alert_id(f)] = (f, record)
        out: list[Alert] = []
        for aid, alert in list(self.firing.items()):
            if aid not in findings:
                out.append(alert.model_copy(update={"state": "resolved", "at": now, "correlation_id": correlation_id}))
                del self.firing[aid]
        for aid, (f, record) in findings.items():
            if aid in self.firing:
                continue
            alert = self._alert(aid, f, record, now, correlation_id)
            self.firing[aid] = alert
            out.append(alert)
        return out

    def _alert(self, aid: str, f: Finding, record: DayRecord, now: datetime, correlation_id: str | None) -> Alert:
        segment = next(s for s in SEGMENT_IDS if s in record.statements)
        return Alert(
            alert_id=aid,
            rule=f.rule,
            segment=segment,  # type: ignore[arg-type]
            state="firing",
            severity=f.severity,
            page=f.page,
            summary=f.summary,
            regulation=f.regulation,
            figures=day_figures(record.statements[segment]),
            started_at=f.since or now,
            at=now,
            correlation_id=correlation_id,
            runbook=f"{RUNBOOK}#{RUNBOOK_ANCHORS[f.rule]}",
        )

    def restore(self, firing: Iterable[Alert]) -> None:
        """The alerts of these rules in force (from the alert topic) after a restart: not fired twice."""
        for alert in firing:
            if alert.rule in RUNBOOK_ANCHORS and alert.state == "firing":
                self.firing[alert.alert_id] = alert
            elif alert.rule in RUNBOOK_ANCHORS:
                self.firing.pop(alert.alert_id, None)
