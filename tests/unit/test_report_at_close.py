"""The report of investments at a report date's close (issue #14, CBOT Rule 971.D): produced once, from the
figures in force at the cut-off, equal to the depository balances by instrument; nothing on other days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from schemas.events import EVENT_ADAPTER, EventBase
from schemas.statements import InvestmentReportRecord
from segwatch.core.calendar import BusinessCalendar, CalendarConfig
from segwatch.core.report_at_close import FiguresAt
from segwatch.core.twin import Twin
from tests.support.figures import real_figures

CHI = ZoneInfo("America/Chicago")
REPORT_DAY = date(2026, 11, 16)  # the 15th is a Sunday: the next business day
PLAIN_DAY = date(2026, 11, 17)


def at(day: date, hour: int) -> str:
    return datetime.combine(day, time(hour), CHI).isoformat()


def ev(kind: str, eid: str, when: str, **fields: Any) -> EventBase:
    return EVENT_ADAPTER.validate_python({"type": kind, "event_id": eid, "source": "t", "as_of": when, **fields})


def day_of(day: date, n: int) -> list[EventBase]:
    """A 4d(2) book of the day: 60M owed, 40M cash at a bank, 30M of Treasuries, 5M of a money market fund."""
    when = at(day, 10)
    return [
        ev(
            "account_balance",
            f"a{n}",
            when,
            segment="4d2",
            account="C-1",
            currency="USD",
            cash="60000000",
            securities="0",
            unrealized="0",
            long_options="0",
            short_options="0",
        ),
        ev(
            "depository_balance",
            f"b{n}",
            when,
            segment="4d2",
            depository="BANK-1",
            line="7070",
            currency="USD",
            location="us",
            instrument="cash",
            amount="40000000",
        ),
        ev(
            "depository_balance",
            f"t{n}",
            when,
            segment="4d2",
            depository="DCO-1",
            line="7140",
            currency="USD",
            location="us",
            instrument="us_government",
            amount="30000000",
        ),
        ev(
            "depository_balance",
            f"m{n}",
            when,
            segment="4d2",
            depository="MMF-1",
            line="7070",
            currency="USD",
            location="us",
            instrument="money_market_fund",
            amount="5000000",
        ),
        ev("business_day_close", f"close{n}", at(day, 17), business_day=day.isoformat()),
    ]


def reports(records: list[Any]) -> list[InvestmentReportRecord]:
    return [r.value for r in records if isinstance(r.value, InvestmentReportRecord)]


def test_a_report_dates_close_publishes_its_report_once_equal_to_the_balances_by_instrument() -> None:
    twin = Twin()
    out = twin.feed_all(day_of(REPORT_DAY, 1))
    [report] = reports(out)
    assert report.report_date == REPORT_DAY and report.key == "investment_report|2026-11-16"
    pool = report.pools["4d2"]
    rows = {k: Decimal(v) for k, v in pool["cash_and_permitted_investments"].items() if Decimal(v)}
    assert rows == {
        "cash": Decimal(40_000_000),
        "us_government": Decimal(30_000_000),
        "money_market_fund": Decimal(5_000_000),
    }
    assert Decimal(pool["total"]) == Decimal(75_000_000)
    assert {k: Decimal(v) for k, v in pool["depositories"].items()} == {
        "BANK-1": Decimal(40_000_000),
        "DCO-1": Decimal(30_000_000),
        "MMF-1": Decimal(5_000_000),
    }
    # A late balance amends the statement; the report of the date is not published again.
    late = ev(
        "depository_balance",
        "late",
        at(REPORT_DAY, 15),
        segment="4d2",
        depository="BANK-1",
        line="7070",
        currency="USD",
        location="us",
        instrument="cash",
        amount="41000000",
    )
    assert reports(twin.feed(late)) == []
    # The next day is not a report date: its close owes none.
    assert reports(twin.feed_all(day_of(PLAIN_DAY, 2))) == []


def test_the_figures_in_force_at_the_cutoff_not_the_next_days() -> None:
    held = FiguresAt()
    cutoff = datetime(2026, 11, 16, 23, 0, tzinfo=UTC)
    before, after = real_figures("4d2", 1), real_figures("4d2", 2, funds_delta=1)
    held.add(before, cutoff)
    held.add(after, cutoff.replace(hour=23, minute=1))
    assert held.at(cutoff) == {"4d2": before}
    assert held.at(cutoff.replace(hour=22)) == {"4d2": None}


def test_the_calendar_decides_the_report_dates() -> None:
    from segwatch.core.investments import is_report_date

    cal = BusinessCalendar(CalendarConfig.from_env())
    assert is_report_date(REPORT_DAY, cal) and not is_report_date(PLAIN_DAY, cal)
