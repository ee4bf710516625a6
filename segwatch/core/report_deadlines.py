"""The report of investments' deadline as alerts: `investment_report_overdue` (CBOT Rule 971.D; issue #14).

Pure: no Kafka, no clock. The alerter (services/alerter/business_day.py) and the twin (`ReportDeadlines`
stage, segwatch/core/twin.py) feed it each close (a `StatementRecord`), each `investment_report_submitted`
event and the time, and publish the alerts it returns.

A report date R (the 15th or the next business day, the last business day of the month;
segwatch.core.investments) owes one report per pool whose statement of R was computed (its close is the
report's source). The report is due by the close of business of the next business day (the calendar's
cut-off of that day); from then on, until it is marked submitted, `investment_report_overdue` fires for that
pool (warning). A submission (for the pool, or for every pool) resolves it. One alert per (report date,
pool): `alert_id` `<segment>|investment_report_overdue|<report date>`, keyed "segment|rule" on the alert topic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final

from schemas.alerts import Alert
from schemas.events import InvestmentReportSubmitted
from schemas.statements import StatementRecord
from segwatch.core.calendar import BusinessCalendar
from segwatch.core.day_alerts import day_figures
from segwatch.core.holding_rules import INVESTMENT_REPORT_OVERDUE, POOL_NAMES
from segwatch.core.investments import is_report_date, report_deadline
from segwatch.core.rules import RUNBOOK

RULE: Final = INVESTMENT_REPORT_OVERDUE
REGULATION: Final = (
    "CBOT Rule 971.D: report of investments as of the 15th and the last business day of the month,"
    " by the close of business of the next business day"
)
ANCHOR: Final = "investment-report-overdue"


def alert_id(segment: str, report_date: date) -> str:
    return f"{segment}|{RULE}|{report_date.isoformat()}"


@dataclass
class ReportDue:
    """One pool's report of investments as of one report date."""

    report_date: date
    segment: str
    close: StatementRecord  # the pool's statement of the report date (latest version seen)
    due_at: datetime  # the close of business of the next business day
    submitted: InvestmentReportSubmitted | None = None


@dataclass
class ReportDeadlines:
    """The reports owed (from the closes of report dates), their submissions, and the alerts in force."""

    calendar: BusinessCalendar
    retain: int = 6  # report dates kept (three months); one with an alert in force is never dropped
    due: dict[tuple[date, str], ReportDue] = field(default_factory=dict)
    submissions: dict[date, list[InvestmentReportSubmitted]] = field(default_factory=dict)
    firing: dict[str, Alert] = field(default_factory=dict)  # alert_id -> its firing record

    def is_report_date(self, day: date) -> bool:
        return is_report_date(day, self.calendar)

    def deadline(self, report_date: date) -> datetime:
        return self.calendar.cutoff(report_deadline(report_date, self.calendar))

    def on_statement(self, rec: StatementRecord) -> bool:
        """A close: on a report date, the pool's report is owed. True when it is a report date."""
        if not self.is_report_date(rec.business_day):
            return False
        key = (rec.business_day, rec.segment)
        held = self.due.get(key)
        if held is None:
            self.due[key] = held = ReportDue(rec.business_day, rec.segment, rec, self.deadline(rec.business_day))
            for ev in self.submissions.get(rec.business_day, []):
                self._mark(held, ev)
            self._trim()
        elif rec.version > held.close.version:
            held.close = rec
        return True

    def on_submitted(self, ev: InvestmentReportSubmitted) -> None:
        """A report marked submitted (one pool, or every pool when no segment is given)."""
        held = self.submissions.setdefault(ev.report_date, [])
        if all(e.event_id != ev.event_id for e in held):
            held.append(ev)
        for (day, segment), report in self.due.items():
            if day == ev.report_date and (ev.segment is None or ev.segment == segment):
                self._mark(report, ev)

    @staticmethod
    def _mark(report: ReportDue, ev: InvestmentReportSubmitted) -> None:
        if ev.segment is not None and ev.segment != report.segment:
            return
        if report.submitted is None or ev.submitted_at < report.submitted.submitted_at:
            report.submitted = ev

    def _trim(self) -> None:
        dates = sorted({day for day, _ in self.due})
        for day in dates[: -self.retain] if len(dates) > self.retain else []:
            if any(a.startswith(f"{seg}|{RULE}|{day.isoformat()}") for seg in POOL_NAMES for a in self.firing):
                continue
            for key in [k for k in self.due if k[0] == day]:
                del self.due[key]
            self.submissions.pop(day, None)

    def overdue(self, now: datetime) -> list[ReportDue]:
        return [r for r in self.due.values() if r.submitted is None and now >= r.due_at]

    def evaluate(self, now: datetime, correlation_id: str | None = None) -> list[Alert]:
        """The state changes at `now`: resolutions (submitted) first, then firings (overdue)."""
        late = {alert_id(r.segment, r.report_date): r for r in self.overdue(now)}
        out: list[Alert] = []
        for aid, alert in list(self.firing.items()):
            if aid not in late:
                report = self.due.get((_date_of(aid), alert.segment))
                by = report.submitted if report is not None else None
                summary = (
                    f"{POOL_NAMES[alert.segment]}: the report of investments as of {_date_of(aid)} is marked"
                    f" submitted ({by.reference}, {by.submitted_at:%Y-%m-%d %H:%M %Z})"
                    if by is not None
                    else alert.summary
                )
                out.append(
                    alert.model_copy(
                        update={"state": "resolved", "at": now, "summary": summary, "correlation_id": correlation_id}
                    )
                )
                del self.firing[aid]
        for aid, r in sorted(late.items()):
            if aid in self.firing:
                continue
            alert = Alert(
                alert_id=aid,
                rule=RULE,
                segment=r.segment,  # type: ignore[arg-type]
                state="firing",
                severity="warning",
                page=False,
                summary=(
                    f"{POOL_NAMES[r.segment]}: the report of investments as of {r.report_date} was due by"
                    f" {r.due_at:%Y-%m-%d %H:%M %Z} and is not marked submitted"
                ),
                regulation=REGULATION,
                figures=day_figures(r.close),
                started_at=r.due_at,
                at=now,
                correlation_id=correlation_id,
                runbook=f"{RUNBOOK}#{ANCHOR}",
            )
            self.firing[aid] = alert
            out.append(alert)
        return out

    def restore(self, alerts: Iterable[Alert]) -> None:
        """The alert records of this rule (from the alert topic, in order) after a restart: never fired twice."""
        for alert in alerts:
            if alert.rule != RULE or alert.is_notice:
                continue
            if alert.state == "firing":
                self.firing[alert.alert_id] = alert
            else:
                self.firing.pop(alert.alert_id, None)


def _date_of(aid: str) -> date:
    return date.fromisoformat(aid.rsplit("|", 1)[1])
