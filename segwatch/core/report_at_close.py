"""The report of investments produced at a report date's close (CBOT Rule 971.D; issue #14), for the alerter and
the twin alike.

A report date's close (its first INITIAL statement) owes the report: per pool, cash and each permitted
investment, the other holdings and each depository, from the figures in force at the day's cut-off (each
figures record carries the pool's holdings). The alerter publishes it once per report date to
segwatch.statements (key `investment_report|<report date>`); `segwatch replay` prints it; `segwatch report
investments --date D` computes the same report offline from the events.

`FiguresAt` keeps, per segment, the figures records with the time each was computed, so the one in force at a
cut-off is at hand when the close arrives (the close can come after the next day's first balances).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from schemas.records import Figures
from schemas.statements import InvestmentReportRecord, StatementRecord
from segwatch.core.holdings_figures import pool_of
from segwatch.core.investments import BusinessCalendar, investment_report, is_report_date, to_json


def report_at_close(
    rec: StatementRecord, in_force: Mapping[str, Figures | None], calendar: BusinessCalendar
) -> InvestmentReportRecord | None:
    """The report owed by this close (JSON, as on the statements topic), or None: not a report date's
    INITIAL statement, or no figures with holdings in force at its cut-off."""
    if rec.kind != "INITIAL" or not is_report_date(rec.business_day, calendar):
        return None
    pools = [p for f in in_force.values() if f is not None and (p := pool_of(f)) is not None]
    if not pools:
        return None
    return InvestmentReportRecord.model_validate(to_json(investment_report(rec.business_day, pools, calendar)))


@dataclass
class FiguresAt:
    """Per segment, the last `keep` figures records and when each was computed (event time in the twin)."""

    keep: int = 10_000
    times: dict[str, list[datetime]] = field(default_factory=dict)
    records: dict[str, list[Figures]] = field(default_factory=dict)

    def add(self, figures: Figures, at: datetime) -> None:
        times = self.times.setdefault(figures.segment, [])
        records = self.records.setdefault(figures.segment, [])
        if times and at < times[-1]:
            at = times[-1]  # never out of order: a record computed later is in force after the earlier ones
        times.append(at)
        records.append(figures)
        if len(times) > self.keep:
            del times[: len(times) - self.keep]
            del records[: len(records) - self.keep]

    def at(self, when: datetime) -> dict[str, Figures | None]:
        out: dict[str, Figures | None] = {}
        for segment, times in self.times.items():
            i = bisect_right(times, when)
            out[segment] = self.records[segment][i - 1] if i else None
        return out
