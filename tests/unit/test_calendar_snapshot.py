"""The calendar snapshot: the services read business days without pandas, and the file matches the library."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import pytest

from segwatch.calendar_snapshot import build
from segwatch.core.calendar import BusinessCalendar, CalendarConfig, snapshot_path

SNAPSHOTS = ("CME_TradeDate", "CBOT_Agriculture")


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_the_snapshot_matches_the_library(name: str) -> None:
    """The drift test: regenerate with `python -m segwatch.calendar_snapshot --calendar NAME` when it fails
    (a library upgrade moved a holiday, or the years ran out)."""
    on_disk = json.loads(snapshot_path(name).read_text(encoding="utf-8"))
    fresh = build(name, on_disk["first_year"], on_disk["last_year"])
    for field in ("years", "closes", "half_days", "regular_close", "timezone"):
        assert on_disk[field] == fresh[field], f"{field} of {snapshot_path(name).name} differs from the library"


def test_the_snapshot_covers_the_coming_years() -> None:
    on_disk = json.loads(snapshot_path("CME_TradeDate").read_text(encoding="utf-8"))
    assert on_disk["first_year"] <= 2013 and on_disk["last_year"] >= date.today().year + 5


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_snapshot_and_library_give_the_same_sessions(name: str) -> None:
    snap = BusinessCalendar(CalendarConfig(name=name, cutoff="close"))
    lib = BusinessCalendar(CalendarConfig(name=name, cutoff="close"), use_snapshot=False)
    assert snap.snapshot is not None and lib.snapshot is None
    for year in (2013, 2017, 2024, 2026):
        assert snap._sessions(year) == lib._sessions(year)
    day = date(2017, 11, 24)  # the Friday after Thanksgiving
    assert snap.cutoff(day) == lib.cutoff(day)
    assert snap.is_half_day(day) == lib.is_half_day(day)


def test_a_year_outside_the_snapshot_falls_back_to_the_library() -> None:
    cal = BusinessCalendar()
    assert cal.snapshot is not None and not cal.snapshot.covers(1995)
    assert cal.is_business_day(date(1995, 3, 1)) and not cal.is_business_day(date(1995, 12, 25))


def test_the_services_never_import_pandas() -> None:
    code = (
        "import sys\n"
        "from datetime import date\n"
        "import services.calculator.app, services.alerter.service, services.ingest.api, segwatch.core.twin\n"
        "from segwatch.core.calendar import BusinessCalendar\n"
        "cal = BusinessCalendar()\n"
        "assert cal.is_business_day(date(2026, 11, 27)) and cal.next_business_day(date(2026, 12, 24))\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'pandas_market_calendars'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
