"""The report of investments from a business day's close (CBOT Rule 971.D; issue #14), for the close path.

`report_for_close(day, events)`: when `day` is a report date (the 15th or the next business day, the last
business day of the month), the report of investments as of its close, as the JSON record for the statements
topic and its readable rendering; None on any other day. `events` are the day's inputs as the close sees them
(every balance, reference and requirement event, and FX rates): only those with an as-of before the close
(segwatch.core.investments.close_of) count, whatever arrived later, so the report equals the sum of the
depository balances by instrument at the close, as `segwatch report investments --date D` prints it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from schemas.events import EventBase
from segwatch.core.holdings import HoldingsBook, HoldingsSettings
from segwatch.core.investments import (
    WEEKDAYS,
    BusinessCalendar,
    close_of,
    investment_report,
    is_report_date,
    to_json,
    to_text,
)


@dataclass(frozen=True, slots=True)
class ClosedReport:
    report_date: date
    record: dict[str, Any]  # to_json: the statements topic's record (type "investment_report")
    text: str  # to_text: the readable rendering

    @property
    def key(self) -> str:
        """The record's key on the statements topic: one report per report date."""
        return f"investment_report|{self.report_date.isoformat()}"


def report_for_close(
    day: date,
    events: Iterable[EventBase],
    *,
    cal: BusinessCalendar = WEEKDAYS,
    settings: HoldingsSettings | None = None,
) -> ClosedReport | None:
    if not is_report_date(day, cal):
        return None
    cutoff = close_of(day)
    book = HoldingsBook(settings=settings or HoldingsSettings())
    book.apply_all(ev for ev in events if ev.as_of < cutoff)
    report = investment_report(day, book.pools(day), cal)
    return ClosedReport(day, to_json(report), to_text(report))
