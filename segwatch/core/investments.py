"""The report of investments (CBOT Rule 971.D; NFA's Segregated Investment Detail Report) and its dates.

As of the 15th of each month (or the next business day when the 15th is not one) and the last business day
of the month, per pool (4d(2), 30.7, 4d(f)): the dollar amount held in cash and in each permitted investment
of Reg. 1.25(a), and the amount at each depository; due by the close of business of the next business day.
Every other holding (customer securities, open trade equity, anything not permitted) is listed apart, so the
report's total is the sum of the pool's depository balances.

Business days come from a `BusinessCalendar` (one method); `WeekdayCalendar` (Monday to Friday) stands in
until the exchange calendar replaces it.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from segwatch.core.catalogue import ZERO
from segwatch.core.holding_rules import INVESTMENT_REPORT_OVERDUE, POOL_NAMES, Finding, usd
from segwatch.core.holdings import PoolHoldings
from segwatch.core.money import fmt

# The rows of the report: cash, then each permitted investment of Reg. 1.25(a)(1) (as amended by FR Doc
# 2024-30927, 90 FR 7810; see segwatch.core.holding_rules): U.S. government securities (i), municipal securities
# (ii), U.S. agency obligations (iii), then DOMAIN.md's certificates of deposit, commercial paper and corporate
# notes (the 2011 list's (iv)-(vi), off the list since 2025), government money market funds (iv), permitted
# foreign sovereign debt (vi). U.S. Treasury ETFs (v) have no instrument type yet: such a balance is `other`.
REPORT_ROWS: tuple[str, ...] = (
    "cash",
    "us_government",
    "municipal",
    "us_agency",
    "certificate_of_deposit",
    "commercial_paper",
    "corporate_note",
    "money_market_fund",
    "foreign_sovereign",
)
ROW_LABELS: Mapping[str, str] = {
    "cash": "Cash",
    "us_government": "U.S. government securities",
    "municipal": "Municipal securities",
    "us_agency": "U.S. agency obligations",
    "certificate_of_deposit": "Certificates of deposit",
    "commercial_paper": "Commercial paper (TLGP)",
    "corporate_note": "Corporate notes or bonds (TLGP)",
    "money_market_fund": "Money market funds",
    "foreign_sovereign": "Foreign sovereign debt",
    "customer_securities": "Securities held for customers in lieu of cash",
    "open_trade_equity": "Open trade equity and settlement",
    "other": "Other (not a permitted investment)",
}
CHICAGO = ZoneInfo("America/Chicago")


class BusinessCalendar(Protocol):
    def is_business_day(self, day: date) -> bool: ...


class WeekdayCalendar:
    """Monday to Friday; no holidays (the exchange calendar replaces it)."""

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5


WEEKDAYS = WeekdayCalendar()


def on_or_after(day: date, cal: BusinessCalendar = WEEKDAYS) -> date:
    while not cal.is_business_day(day):
        day += timedelta(days=1)
    return day


def next_business_day(day: date, cal: BusinessCalendar = WEEKDAYS) -> date:
    return on_or_after(day + timedelta(days=1), cal)


def last_business_day(year: int, month: int, cal: BusinessCalendar = WEEKDAYS) -> date:
    day = date(year, month, _calendar.monthrange(year, month)[1])
    while not cal.is_business_day(day):
        day -= timedelta(days=1)
    return day


def report_dates(year: int, month: int, cal: BusinessCalendar = WEEKDAYS) -> tuple[date, date]:
    """The month's two report dates: the 15th (or the next business day) and the last business day."""
    return on_or_after(date(year, month, 15), cal), last_business_day(year, month, cal)


def is_report_date(day: date, cal: BusinessCalendar = WEEKDAYS) -> bool:
    return day in report_dates(day.year, day.month, cal)


def report_deadline(report_date: date, cal: BusinessCalendar = WEEKDAYS) -> date:
    """Due by the close of business of this day: the business day after the report date."""
    return next_business_day(report_date, cal)


def report_overdue(report_date: date, submitted: bool, today: date, cal: BusinessCalendar = WEEKDAYS) -> bool:
    """Due and not marked submitted by the next business day: true from the day after the deadline."""
    return not submitted and today > report_deadline(report_date, cal)


def overdue_findings(
    report_date: date,
    submitted: Iterable[str],
    today: date,
    cal: BusinessCalendar = WEEKDAYS,
    segments: Iterable[str] = ("4d2", "30.7", "4df"),
) -> list[Finding]:
    """investment_report_overdue per pool: `submitted` are the pools whose report is marked submitted."""
    done = set(submitted)
    deadline = report_deadline(report_date, cal)
    out = []
    for sid in segments:
        late = report_overdue(report_date, sid in done, today, cal)
        summary = (
            f"{POOL_NAMES[sid]}: the report of investments as of {report_date} was due by the close of"
            f" {deadline} and is not marked submitted"
            if late
            else f"{POOL_NAMES[sid]}: the report of investments as of {report_date} is submitted or not yet due"
        )
        out.append(
            Finding(
                sid,
                INVESTMENT_REPORT_OVERDUE,
                late,
                "warning",
                summary,
                "CBOT Rule 971.D: report of investments as of the 15th and the last business day of the"
                " month, by the close of business of the next business day",
                {"report_date": report_date.isoformat(), "deadline": deadline.isoformat()},
            )
        )
    return out


def close_of(day: date) -> datetime:
    """The cut-off of a report date: balances with an as-of before the end of that day in Chicago."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=CHICAGO)


@dataclass(frozen=True, slots=True)
class PoolReport:
    segment: str
    rows: Mapping[str, Decimal]  # cash and each permitted investment (zero when none)
    other: Mapping[str, Decimal]  # every other holding, listed apart
    depositories: Mapping[str, Decimal]
    unclassified: tuple[str, ...]
    unacknowledged: Mapping[str, Decimal]
    missing_fx: tuple[str, ...]

    @property
    def total(self) -> Decimal:
        return sum(self.rows.values(), ZERO) + sum(self.other.values(), ZERO)


@dataclass(frozen=True, slots=True)
class InvestmentReport:
    report_date: date
    due: date
    pools: Mapping[str, PoolReport]


def pool_report(pool: PoolHoldings) -> PoolReport:
    rows = {row: pool.by_instrument.get(row, ZERO) for row in REPORT_ROWS}
    other = {inst: a for inst, a in pool.by_instrument.items() if inst not in rows and a != ZERO}
    return PoolReport(
        pool.segment, rows, other, pool.by_depository, pool.unclassified, pool.unacknowledged, pool.missing_fx
    )


def investment_report(
    report_date: date, pools: Iterable[PoolHoldings], cal: BusinessCalendar = WEEKDAYS
) -> InvestmentReport:
    return InvestmentReport(report_date, report_deadline(report_date, cal), {p.segment: pool_report(p) for p in pools})


def to_json(report: InvestmentReport) -> dict[str, Any]:
    """Amounts as decimal strings with two places (never floats)."""

    def amounts(m: Mapping[str, Decimal]) -> dict[str, str]:
        return {k: fmt(v) for k, v in m.items()}

    return {
        "type": "investment_report",
        "report_date": report.report_date.isoformat(),
        "due": report.due.isoformat(),
        "regulation": "CBOT Rule 971.D; NFA Segregated Investment Detail Report",
        "pools": {
            sid: {
                "cash_and_permitted_investments": amounts(p.rows),
                "other_holdings": amounts(p.other),
                "depositories": amounts(p.depositories),
                "total": fmt(p.total),
                "unclassified_depositories": list(p.unclassified),
                "unacknowledged_depositories": amounts(p.unacknowledged),
                "missing_fx": list(p.missing_fx),
            }
            for sid, p in report.pools.items()
        },
    }


def to_text(report: InvestmentReport) -> str:
    width = 52
    out = [f"REPORT OF INVESTMENTS as of {report.report_date} (CBOT Rule 971.D) — due by close of {report.due}", ""]
    for sid, p in report.pools.items():
        out.append(POOL_NAMES[sid].upper())
        for row, amount in p.rows.items():
            out.append(f"  {ROW_LABELS[row]:<{width}}{usd(amount):>22}")
        for inst, amount in p.other.items():
            out.append(f"  {ROW_LABELS.get(inst, inst) + ' *':<{width}}{usd(amount):>22}")
        out.append(f"  {'Total':<{width}}{usd(p.total):>22}")
        out.append("  By depository")
        for dep, amount in p.depositories.items():
            marks = (" (unclassified)" if dep in p.unclassified else "") + (
                " (NO ACKNOWLEDGMENT LETTER)" if dep in p.unacknowledged else ""
            )
            out.append(f"    {dep + marks:<{width - 2}}{usd(amount):>22}")
        if p.other:
            out.append("  * not an investment under Reg. 1.25(a), or not permitted: listed apart")
        if p.missing_fx:
            out.append(f"  WARNING: no FX rate for {', '.join(p.missing_fx)}: those balances are left out")
        out.append("")
    return "\n".join(out)
