"""The calendar snapshot: the business days, half days and session closes of an exchange calendar for a range
of years, generated from `pandas_market_calendars` and read by `segwatch.core.calendar` without it.

The library stays the maintained source, but it pulls in pandas (+80 MB per process), which the services
cannot afford (docs/PERFORMANCE.md: about 2 KB per account in the calculator). So the services read the file
this module writes, `segwatch/data/calendar-<NAME>.json`; only a year outside it falls back to the library.
Regenerate it after upgrading the library, or to extend the years:

    python -m segwatch.calendar_snapshot [--calendar CME_TradeDate] [--first 2000] [--last 2040]

tests/unit/test_calendar_snapshot.py compares the file with the library installed (the drift test).

File format (small: one line of day numbers per year):
    {"calendar": NAME, "library_version": "5.5.0", "timezone": exchange tz, "first_year", "last_year",
     "regular_close": "HH:MM" (the most common local close),
     "years": {"2024": "0102 0103 …"},                  business days, MMDD
     "closes": {"2024-07-03": "12:15"},                 local closes that differ from regular_close
     "half_days": ["2024-07-03", …]}                    the library's early closes
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

from segwatch.core.calendar import DEFAULT_CALENDAR, snapshot_path

FIRST_YEAR = 2000
LAST_YEAR = 2040


def build(name: str = DEFAULT_CALENDAR, first: int = FIRST_YEAR, last: int = LAST_YEAR) -> dict[str, Any]:
    """The snapshot of calendar `name` for the years `first`..`last` (imports the library, and pandas)."""
    import pandas_market_calendars as mcal

    cal = mcal.get_calendar(name)
    tz = str(cal.tz)
    schedule = cal.schedule(start_date=f"{first}-01-01", end_date=f"{last}-12-31")
    early = {label.date() for label in cal.early_closes(schedule).index} if len(schedule) else set()
    local: dict[str, str] = {}
    years: dict[str, list[str]] = {}
    for label, row in schedule.iterrows():
        day = label.date()
        years.setdefault(str(day.year), []).append(day.strftime("%m%d"))
        local[day.isoformat()] = row["market_close"].tz_convert(tz).strftime("%H:%M")
    regular = Counter(local.values()).most_common(1)[0][0] if local else "16:00"
    return {
        "calendar": name,
        "library_version": version("pandas_market_calendars"),
        "timezone": tz,
        "first_year": first,
        "last_year": last,
        "regular_close": regular,
        "years": {y: " ".join(days) for y, days in years.items()},
        "closes": {d: c for d, c in local.items() if c != regular},
        "half_days": sorted(d.isoformat() for d in early),
    }


def write(snapshot: dict[str, Any], path: Path | None = None) -> Path:
    path = path or snapshot_path(snapshot["calendar"])
    path.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m segwatch.calendar_snapshot", description=__doc__.split("\n\n")[0])
    p.add_argument("--calendar", default=DEFAULT_CALENDAR, help="a pandas_market_calendars name")
    p.add_argument("--first", type=int, default=FIRST_YEAR)
    p.add_argument("--last", type=int, default=LAST_YEAR)
    args = p.parse_args(argv)
    path = write(build(args.calendar, args.first, args.last))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
