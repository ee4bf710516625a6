"""The business day: CME trade dates, holidays and half days, cut-offs, the filing deadlines."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from segwatch.core.calendar import BusinessCalendar, CalendarConfig
from segwatch.errors import InputError

CHI = ZoneInfo("America/Chicago")


@pytest.fixture(scope="module")
def cal() -> BusinessCalendar:
    return BusinessCalendar()


def test_reference_days_are_business_days(cal: BusinessCalendar) -> None:
    assert cal.is_business_day(date(2017, 11, 6)) and cal.is_business_day(date(2013, 7, 25))
    assert cal.next_business_day(date(2017, 11, 6)) == date(2017, 11, 7)  # the filing's Submit Date
    assert cal.next_business_day(date(2013, 7, 25)) == date(2013, 7, 26)


@pytest.mark.parametrize(
    "holiday",
    [
        date(2017, 11, 23),
        date(2017, 12, 25),
        date(2017, 7, 4),
        date(2017, 4, 14),
        date(2017, 1, 16),
        date(2018, 12, 5),
        date(2024, 6, 19),
    ],
)
def test_holidays_have_no_statement(cal: BusinessCalendar, holiday: date) -> None:
    assert not cal.is_business_day(holiday)
    assert cal.segments_due(holiday) == ()


def test_weekend_and_thanksgiving_move_the_filing_day(cal: BusinessCalendar) -> None:
    assert cal.next_business_day(date(2017, 11, 10)) == date(2017, 11, 13)  # Friday -> Monday
    assert cal.next_business_day(date(2017, 11, 22)) == date(2017, 11, 24)  # over Thanksgiving
    assert cal.previous_business_day(date(2017, 11, 24)) == date(2017, 11, 22)
    assert cal.business_days(date(2017, 11, 20), date(2017, 11, 26)) == [
        date(2017, 11, 20),
        date(2017, 11, 21),
        date(2017, 11, 22),
        date(2017, 11, 24),
    ]


def test_half_day_closes_early_with_the_close_cutoff() -> None:
    cal = BusinessCalendar(CalendarConfig(name="CBOT_Agriculture", cutoff="close"))
    friday = date(2017, 11, 24)  # the day after Thanksgiving
    assert cal.is_business_day(friday) and cal.is_half_day(friday)
    assert not cal.is_half_day(date(2017, 11, 27))
    half, full = cal.cutoff(friday).astimezone(CHI).time(), cal.cutoff(date(2017, 11, 27)).astimezone(CHI).time()
    assert half < full and half < time(13, 0)


def test_default_cutoff_is_the_end_of_the_day_in_chicago(cal: BusinessCalendar) -> None:
    cut = cal.cutoff(date(2017, 11, 6))
    assert cut == datetime(2017, 11, 6, 23, 59, 59, 999_999, tzinfo=CHI)
    assert cal.statement_day_of(cut) == date(2017, 11, 6)  # exactly at the cut-off: in the day
    assert cal.statement_day_of(cut + timedelta(microseconds=1)) == date(2017, 11, 7)
    assert cal.statement_day_of(datetime(2017, 11, 11, 12, tzinfo=UTC)) == date(2017, 11, 13)  # Saturday


def test_configured_cutoff_and_timezone() -> None:
    cal = BusinessCalendar(CalendarConfig(cutoff="17:00", timezone="America/New_York"))
    cut = cal.cutoff(date(2017, 11, 6))
    assert cut == datetime(2017, 11, 6, 17, 0, tzinfo=ZoneInfo("America/New_York"))
    assert cal.statement_day_of(cut) == date(2017, 11, 6)
    assert cal.statement_day_of(cut + timedelta(seconds=1)) == date(2017, 11, 7)


def test_extra_307_days() -> None:
    columbus = date(2017, 11, 23)  # a day NFA asks a 30.7 statement for (configured)
    cal = BusinessCalendar(CalendarConfig(extra_307_days=frozenset({columbus})))
    assert cal.segments_due(columbus) == ("30.7",)
    assert cal.has_statement(columbus, "30.7") and not cal.has_statement(columbus, "4d2")
    assert cal.next_business_day(columbus) == date(2017, 11, 24)
    assert cal.statement_days(date(2017, 11, 22), date(2017, 11, 24)) == [
        date(2017, 11, 22),
        columbus,
        date(2017, 11, 24),
    ]


def test_deadlines_next_business_day_chicago(cal: BusinessCalendar) -> None:
    d = cal.deadlines(date(2017, 11, 10))
    assert d.filing_day == date(2017, 11, 13)
    assert d.warning == datetime(2017, 11, 13, 10, 0, tzinfo=CHI)
    assert d.critical == datetime(2017, 11, 13, 12, 0, tzinfo=CHI)


def test_closed_since_lists_the_days_a_clock_closes(cal: BusinessCalendar) -> None:
    now = datetime(2017, 11, 13, 8, 0, tzinfo=CHI)
    assert cal.closed_since(date(2017, 11, 9), now) == [date(2017, 11, 9), date(2017, 11, 10)]


def test_from_env_and_bad_configuration() -> None:
    cfg = CalendarConfig.from_env(
        {
            "SEGWATCH_CALENDAR": "CME_TradeDate",
            "SEGWATCH_CUTOFF": "18:30",
            "SEGWATCH_307_DAYS": "2017-10-09, 2017-11-10",
            "SEGWATCH_FILING_WARNING": "09:30",
            "SEGWATCH_FILING_DEADLINE": "12:00",
        }
    )
    assert cfg.cutoff == "18:30" and cfg.warning_at == time(9, 30)
    assert cfg.extra_307_days == {date(2017, 10, 9), date(2017, 11, 10)}
    with pytest.raises(InputError, match="SEGWATCH_307_DAYS"):
        CalendarConfig.from_env({"SEGWATCH_307_DAYS": "10/9/2017"})
    with pytest.raises(InputError, match="cutoff"):
        CalendarConfig(cutoff="25:00")
    with pytest.raises(InputError, match="timezone"):
        CalendarConfig(timezone="Mars/Olympus")
    with pytest.raises(InputError, match="calendar"):
        BusinessCalendar(CalendarConfig(name="NO_SUCH_EXCHANGE"))
