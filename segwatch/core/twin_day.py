"""The business day in the twin (`segwatch replay`): the close, its statements, amendments and deadline alerts.

The pure counterpart of the calculator's closing (services/calculator/closing.py) and of the alerter's
business-day rules (services/alerter/business_day.py), as one `Stage` of segwatch/core/twin.py. The twin is
one partition: a `DayCloser` fed every balance, closing a day at the first balance after its cut-off (or at
a `business_day_close` event); a `ClosingBook` that turns the closed days into `StatementRecord`s (INITIAL,
then AMENDMENT); `DayAlerts` that turns sign-off, filing and the time (the twin's clock: event time) into
`statement_not_filed`, `statement_filed_late` and `amendment_needed` alerts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from schemas.events import (
    AccountBalance,
    BusinessDayClose,
    DepositoryBalance,
    DepositoryReference,
    EventBase,
    ForeignRequirement,
    FxRate,
    ManagementTarget,
    StatementApproval,
    StatementFiling,
)
from schemas.records import Figures
from segwatch.core.business_day import ClosingBook, PartView, close_through, put_balance, sums_of_live
from segwatch.core.calendar import BusinessCalendar, CalendarConfig
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.close import DayCloser, depository_sums
from segwatch.core.day_alerts import DayAlerts
from segwatch.core.ledger import held_of

if TYPE_CHECKING:
    from segwatch.core.twin import Record, Twin

STATEMENTS_TOPIC = "segwatch.statements"


@dataclass
class BusinessDay:
    """The close, amendments and the filing deadline, event by event."""

    calendar: BusinessCalendar = field(default_factory=lambda: BusinessCalendar(CalendarConfig.from_env()))
    closer: DayCloser | None = None
    book: ClosingBook = field(init=False)
    alerts: DayAlerts = field(init=False)

    def __post_init__(self) -> None:
        self.book = ClosingBook(self.calendar)
        self.alerts = DayAlerts(self.calendar)

    def on_figures(self, twin: Twin, figures: Figures, now: datetime) -> Iterable[Record]:
        return ()

    def view(self) -> PartView:
        if self.closer is None:
            return PartView()
        live = sums_of_live({sid: self.closer.view.totals(sid) for sid in SEGMENT_IDS})
        return PartView.of(self.closer, live, depository_sums(self.closer.view))

    def on_event(self, twin: Twin, event: EventBase, now: datetime) -> Iterable[Record]:
        from segwatch.core.twin import ALERTS_TOPIC, Record

        changed = False
        if isinstance(event, AccountBalance | DepositoryBalance):
            key, held = held_of(event)
            self.closer, closed, amended = put_balance(self.closer, self.calendar, key, held)
            changed = bool(closed or amended)
        elif isinstance(event, ManagementTarget | ForeignRequirement | FxRate | DepositoryReference):
            self.book.on_setting(event)
            changed = self.book.closed_through is not None
        elif isinstance(event, BusinessDayClose):
            if self.closer is not None:
                close_through(self.closer, self.calendar, event.business_day)
            self.book.close(event.business_day)
            changed = True
        elif isinstance(event, StatementApproval):
            self.alerts.on_approval(event)
        elif isinstance(event, StatementFiling):
            self.alerts.on_filing(event)
        out: list[Record] = []
        if changed:
            for rec in self.book.statements([self.view()], now):
                self.alerts.on_statement(rec)
                out.append(Record(STATEMENTS_TOPIC, rec))
        out.extend(Record(ALERTS_TOPIC, a) for a in self.alerts.evaluate(now, event.event_id))
        return out
