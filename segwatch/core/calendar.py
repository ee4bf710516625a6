"""The business day: which days have a statement, when each day's books close, and when its filing is due.

Reg. 1.32 computes the statement as of the close of each business day; CBOT Rule 971.B wants it filed by
12:00 noon (Chicago) on the next business day. Business days follow an exchange calendar from
`pandas_market_calendars` (maintained on PyPI; default `CME_TradeDate`: the CME Group trade dates, which
leave out the US holidays on which Globex may trade an abbreviated session but no trade date settles).
NFA asks for 30.7 statements on some US holidays: those are configured as `extra_307_days`.

The cut-off of business day D is an instant in the FCM's time zone: by default the end of D (every balance
as of D, up to 23:59:59.999999 local time, is in D's statement); or a local time of day ("17:00"); or
"close", the exchange's close of D's session (earlier on half days). A balance belongs to the first
business day whose cut-off is at or after its as-of: a balance as of Saturday is in Monday's statement.

Where the days come from: the snapshot `segwatch/data/calendar-<NAME>.json` (generated from the library by
`python -m segwatch.calendar_snapshot`, checked against it by a drift test), so that no service imports the
library and pandas (+80 MB per process); a year the snapshot does not cover, or a calendar without a
snapshot, is built by the library itself on first use.

Pure: no clock (callers pass `now`), no I/O after the snapshot is read or the library has built a schedule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from segwatch.environment import CalendarPart, load
from segwatch.errors import InputError

DEFAULT_CALENDAR = "CME_TradeDate"
DEFAULT_TIMEZONE = "America/Chicago"
DEFAULT_CUTOFF = "end"
DEFAULT_WARNING = time(10, 0)  # statement not yet filed: warning
DEFAULT_DEADLINE = time(12, 0)  # CBOT Rule 971.B: noon, next business day

END_OF_DAY = time(23, 59, 59, 999_999)  # "at or before the cut-off" == strictly before the next midnight
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_MAX_GAP = 31  # no exchange is shut this long; a longer search means a misconfigured calendar


def parse_clock(text: str, where: str) -> time:
    """A local time of day, "HH:MM" or "HH:MM:SS"."""
    m = _CLOCK.match(text.strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59 or int(m.group(3) or 0) > 59:
        raise InputError(where, f"{text!r} is not a time of day (HH:MM or HH:MM:SS)")
    return time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def parse_days(text: str, where: str) -> frozenset[date]:
    """A comma- or space-separated list of ISO dates (YYYY-MM-DD)."""
    out: set[date] = set()
    for token in re.split(r"[,\s]+", text.strip()):
        if not token:
            continue
        try:
            out.add(date.fromisoformat(token))
        except ValueError:
            raise InputError(where, f"{token!r} is not a date (YYYY-MM-DD)") from None
    return frozenset(out)


@dataclass(frozen=True)
class CalendarConfig:
    """How the FCM's business day is set up. Every field has an environment variable (`from_env`)."""

    name: str = DEFAULT_CALENDAR  # a pandas_market_calendars calendar name (CME_TradeDate, CBOT_Agriculture, …)
    timezone: str = DEFAULT_TIMEZONE  # the FCM's time zone: cut-offs and deadlines are local times there
    cutoff: str = DEFAULT_CUTOFF  # "end" (of the business day), "close" (the exchange's close), or "HH:MM[:SS]"
    extra_307_days: frozenset[date] = field(default_factory=frozenset)  # NFA-requested 30.7-only statements
    warning_at: time = DEFAULT_WARNING  # next business day: statement not filed by then → warning
    deadline_at: time = DEFAULT_DEADLINE  # next business day: not filed by then → critical (pages)

    ENV = (
        "SEGWATCH_CALENDAR",
        "SEGWATCH_TIMEZONE",
        "SEGWATCH_CUTOFF",
        "SEGWATCH_307_DAYS",
        "SEGWATCH_FILING_WARNING",
        "SEGWATCH_FILING_DEADLINE",
    )

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError("timezone", f"{self.timezone!r} is not an IANA time zone") from None
        if self.cutoff not in ("end", "close"):
            parse_clock(self.cutoff, "cutoff")
        if self.warning_at > self.deadline_at:
            raise InputError(
                "warning_at", f"the warning ({self.warning_at}) comes after the deadline ({self.deadline_at})"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CalendarConfig:
        part = load(CalendarPart, env)  # the variables, read by the settings model (segwatch/environment.py)
        kwargs: dict[str, Any] = {}
        if (v := part.calendar) is not None:
            kwargs["name"] = v
        if (v := part.timezone) is not None:
            kwargs["timezone"] = v
        if (v := part.cutoff) is not None:
            kwargs["cutoff"] = v
        if (v := part.extra_307_days) is not None:
            kwargs["extra_307_days"] = parse_days(v, "SEGWATCH_307_DAYS")
        if (v := part.filing_warning) is not None:
            kwargs["warning_at"] = parse_clock(v, "SEGWATCH_FILING_WARNING")
        if (v := part.filing_deadline) is not None:
            kwargs["deadline_at"] = parse_clock(v, "SEGWATCH_FILING_DEADLINE")
        try:
            return cls(**kwargs)
        except InputError as exc:  # name the variable, not the field
            var = {
                "timezone": "SEGWATCH_TIMEZONE",
                "cutoff": "SEGWATCH_CUTOFF",
                "warning_at": "SEGWATCH_FILING_WARNING",
            }.get(exc.field)
            if var is None:
                raise
            raise InputError(var, exc.reason) from None


@dataclass(frozen=True, slots=True)
class Session:
    """One business day of the exchange calendar: its session's close, and whether that close is early."""

    day: date
    close: datetime  # the exchange's close of the session (aware, UTC)
    half_day: bool


@dataclass(frozen=True, slots=True)
class Deadlines:
    """When the statement of `day` is due: a warning at `warning`, critical (pages) at `critical`."""

    day: date
    filing_day: date  # the next business day
    warning: datetime
    critical: datetime


def _load(name: str) -> Any:
    try:
        import pandas_market_calendars as mcal
    except ImportError as exc:  # pragma: no cover - a broken install
        raise InputError("calendar", f"pandas_market_calendars is not installed ({exc})") from None
    try:
        return mcal.get_calendar(name)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise InputError("calendar", f"{name!r} is not a known exchange calendar ({exc})") from None


SNAPSHOT_DIR = Path(__file__).resolve().parent.parent / "data"


def snapshot_path(name: str) -> Path:
    """Where the snapshot of calendar `name` lives (segwatch/data/calendar-<NAME>.json)."""
    return SNAPSHOT_DIR / f"calendar-{name}.json"


class Snapshot:
    """The sessions of a calendar for a range of years, read from its snapshot file (no pandas)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.name: str = data["calendar"]
        self.first_year: int = int(data["first_year"])
        self.last_year: int = int(data["last_year"])
        self.tz = ZoneInfo(data["timezone"])
        self.regular_close = parse_clock(data["regular_close"], "regular_close")
        self.years: dict[int, str] = {int(y): days for y, days in data["years"].items()}
        self.closes: dict[str, str] = dict(data["closes"])
        self.half_days: frozenset[str] = frozenset(data["half_days"])

    @classmethod
    def load(cls, name: str) -> Snapshot | None:
        path = snapshot_path(name)
        if not path.is_file():
            return None
        try:
            return cls(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(str(path), f"unreadable calendar snapshot ({exc})") from None

    def covers(self, year: int) -> bool:
        return self.first_year <= year <= self.last_year

    def sessions(self, year: int) -> dict[date, Session]:
        out: dict[date, Session] = {}
        for mmdd in self.years.get(year, "").split():
            day = date(year, int(mmdd[:2]), int(mmdd[2:]))
            iso = day.isoformat()
            at = parse_clock(self.closes[iso], iso) if iso in self.closes else self.regular_close
            close = datetime.combine(day, at, tzinfo=self.tz).astimezone(UTC)
            out[day] = Session(day, close, iso in self.half_days)
        return out


class BusinessCalendar:
    """Business days, cut-offs and filing deadlines of one configuration. Years are built on first use: from
    the calendar's snapshot when it covers the year (`use_snapshot`), else from the library."""

    def __init__(self, config: CalendarConfig | None = None, *, use_snapshot: bool = True) -> None:
        self.config = config or CalendarConfig()
        self.tz = ZoneInfo(self.config.timezone)
        self.snapshot = Snapshot.load(self.config.name) if use_snapshot else None
        self._library: Any = None if self.snapshot is not None else _load(self.config.name)
        self._years: dict[int, dict[date, Session]] = {}

    @property
    def _cal(self) -> Any:
        if self._library is None:  # a year outside the snapshot: the library after all
            self._library = _load(self.config.name)
        return self._library

    def _sessions(self, year: int) -> dict[date, Session]:
        sessions = self._years.get(year)
        if sessions is None and self.snapshot is not None and self.snapshot.covers(year):
            sessions = self._years[year] = self.snapshot.sessions(year)
        if sessions is None:
            schedule = self._cal.schedule(start_date=f"{year}-01-01", end_date=f"{year}-12-31")
            early = set(self._cal.early_closes(schedule).index) if len(schedule) else set()
            sessions = {}
            for label, row in schedule.iterrows():
                close = row["market_close"].to_pydatetime()
                sessions[label.date()] = Session(label.date(), close, label in early)
            self._years[year] = sessions
        return sessions

    # -- which days ----------------------------------------------------------------------------------------------

    def session(self, day: date) -> Session | None:
        return self._sessions(day.year).get(day)

    def is_business_day(self, day: date) -> bool:
        """A day the exchange calendar has a session: every segment has a statement."""
        return day in self._sessions(day.year)

    def is_half_day(self, day: date) -> bool:
        s = self.session(day)
        return s is not None and s.half_day

    def has_statement(self, day: date, segment: str | None = None) -> bool:
        """Whether `day` has a statement (of `segment`, or of any segment): a business day, or for 30.7 a
        day NFA asked for."""
        if self.is_business_day(day):
            return True
        return day in self.config.extra_307_days and segment in (None, "30.7")

    def segments_due(self, day: date) -> tuple[str, ...]:
        """The segments whose statement `day` has: all three on a business day, 30.7 on an extra 30.7 day."""
        if self.is_business_day(day):
            return ("4d2", "30.7", "4df")
        return ("30.7",) if day in self.config.extra_307_days else ()

    def statement_days(self, start: date, end: date) -> list[date]:
        """Every day from `start` to `end` inclusive that has a statement (business days and extra 30.7 days)."""
        days: list[date] = []
        day = start
        while day <= end:
            if self.has_statement(day):
                days.append(day)
            day += timedelta(days=1)
        return days

    def business_days(self, start: date, end: date) -> list[date]:
        return [d for d in self.statement_days(start, end) if self.is_business_day(d)]

    def next_business_day(self, day: date) -> date:
        """The first business day after `day` (the filing day of `day`'s statement)."""
        return self._step(day, +1, self.is_business_day)

    def previous_business_day(self, day: date) -> date:
        return self._step(day, -1, self.is_business_day)

    def next_statement_day(self, day: date) -> date:
        """The first day after `day` that has a statement (a business day or an extra 30.7 day)."""
        return self._step(day, +1, self.has_statement)

    def _step(self, day: date, direction: int, ok: Any) -> date:
        for n in range(1, _MAX_GAP + 1):
            candidate = day + timedelta(days=direction * n)
            if ok(candidate):
                return candidate
        raise InputError("calendar", f"no business day within {_MAX_GAP} days of {day} in {self.config.name}")

    # -- when ----------------------------------------------------------------------------------------------------

    def local(self, day: date, at: time) -> datetime:
        """`at` on `day` in the FCM's time zone, as an aware datetime (the earlier one in a DST fold)."""
        return datetime.combine(day, at, tzinfo=self.tz)

    def cutoff(self, day: date) -> datetime:
        """The cut-off of `day`'s statement: a balance as of this instant or earlier is in it."""
        how = self.config.cutoff
        if how == "end":
            return self.local(day, END_OF_DAY)
        if how == "close":
            s = self.session(day)
            if s is not None:
                return s.close.astimezone(self.tz)
            # an extra 30.7 day has no session: its books close at the end of the day
            return self.local(day, END_OF_DAY)
        return self.local(day, parse_clock(how, "cutoff"))

    def statement_day_of(self, as_of: datetime, segment: str | None = None) -> date:
        """The day whose statement a balance as of `as_of` belongs to: the first statement day (of `segment`)
        whose cut-off is at or after `as_of`."""
        if as_of.tzinfo is None:
            raise InputError("as_of", "a timezone is required")
        day = as_of.astimezone(self.tz).date() - timedelta(days=1)  # a cut-off may fall before midnight
        for _ in range(_MAX_GAP + 2):
            if self.has_statement(day, segment) and as_of <= self.cutoff(day):
                return day
            day += timedelta(days=1)
        raise InputError("calendar", f"no statement day within {_MAX_GAP} days of {as_of}")

    def open_day(self, now: datetime) -> date:
        """The business day whose books are open at `now` (its cut-off has not passed)."""
        return self.statement_day_of(now)

    def closed_since(self, day: date, now: datetime) -> list[date]:
        """Statement days from `day` on whose cut-off has passed by `now`, oldest first (what a clock closes)."""
        out: list[date] = []
        d = day if self.has_statement(day) else self.next_statement_day(day)
        while self.cutoff(d) < now:
            out.append(d)
            d = self.next_statement_day(d)
        return out

    def deadlines(self, day: date) -> Deadlines:
        """When `day`'s statement is due: warning and noon deadline on the next business day, local time."""
        filing = self.next_business_day(day)
        return Deadlines(
            day, filing, self.local(filing, self.config.warning_at), self.local(filing, self.config.deadline_at)
        )
