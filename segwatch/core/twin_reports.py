"""The report of investments' deadline in the twin (`segwatch replay`; issue #14): `investment_report_overdue`.

The pure counterpart of the alerter's (services/alerter/business_day.py), as one `Stage` of
segwatch/core/twin.py after the business day's (`BusinessDay`, segwatch/core/twin_day.py): each statement it
publishes (`on_record`) is a close, which on a report date owes that pool's report; each
`investment_report_submitted` event marks one submitted; the twin's clock (event time) passing the deadline
fires the alert, a submission resolves it. The report itself, from the figures in force at the report date's
cut-off, is published once per report date (segwatch/core/report_at_close.py), as the alerter does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from schemas.events import EventBase, InvestmentReportSubmitted
from schemas.records import Figures
from schemas.statements import StatementRecord
from segwatch.core.calendar import BusinessCalendar, CalendarConfig
from segwatch.core.report_at_close import FiguresAt, report_at_close
from segwatch.core.report_deadlines import ReportDeadlines

if TYPE_CHECKING:
    from segwatch.core.twin import Record, Twin


@dataclass
class InvestmentReports:
    """investment_report_overdue, event by event."""

    calendar: BusinessCalendar = field(default_factory=lambda: BusinessCalendar(CalendarConfig.from_env()))
    deadlines: ReportDeadlines = field(init=False)
    figures: FiguresAt = field(default_factory=FiguresAt)
    reported: set[date] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.deadlines = ReportDeadlines(self.calendar)

    def on_figures(self, twin: Twin, figures: Figures, now: datetime) -> Iterable[Record]:
        self.figures.add(figures, now)
        return ()

    def on_record(self, twin: Twin, record: Record, now: datetime) -> Iterable[Record]:
        from segwatch.core.twin import Record

        rec = record.value
        if not isinstance(rec, StatementRecord):
            return ()
        self.deadlines.on_statement(rec)
        if rec.business_day in self.reported:
            return ()
        report = report_at_close(rec, self.figures.at(rec.cutoff), self.calendar)
        if report is None:
            return ()
        self.reported.add(rec.business_day)
        return [Record(record.topic, report)]

    def on_event(self, twin: Twin, event: EventBase, now: datetime) -> Iterable[Record]:
        from segwatch.core.twin import ALERTS_TOPIC, Record

        if isinstance(event, InvestmentReportSubmitted):
            self.deadlines.on_submitted(event)
        return [Record(ALERTS_TOPIC, a) for a in self.deadlines.evaluate(now, event.event_id)]
