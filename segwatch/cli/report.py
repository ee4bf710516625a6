"""`segwatch report investments EVENTS.ndjson --date D`: the report of investments (CBOT Rule 971.D), offline."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from segwatch.errors import InputError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("report", help="reports from events, offline (the report of investments)")
    cmds = parser.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    p = cmds.add_parser(
        "investments",
        help="per pool, cash and each permitted investment and the amount at each depository (CBOT Rule 971.D)",
    )
    p.add_argument("file", help="NDJSON events, or - for stdin")
    p.add_argument(
        "--date",
        required=True,
        metavar="YYYY-MM-DD",
        help="the report date: balances as of its close (end of the day, Chicago time)",
    )
    p.add_argument("--format", choices=("json", "text"), default="json", help="output format (default json)")
    p.add_argument(
        "--count-unacknowledged",
        action="store_true",
        help="count funds at depositories without an acknowledgment letter (default: shown apart)",
    )
    p.set_defaults(func=cmd_investments)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError("--date", f"{text!r} is not a date (YYYY-MM-DD)") from None


def cmd_investments(args: argparse.Namespace) -> int:
    from segwatch import ndjson
    from segwatch.core.holdings import HoldingsBook, HoldingsSettings
    from segwatch.core.investments import close_of, investment_report, is_report_date, to_json, to_text

    day = _date(args.date)
    cutoff = close_of(day)
    book = HoldingsBook(settings=HoldingsSettings(count_unacknowledged=args.count_unacknowledged))
    # The close is a cut-off: what was in force at it, whatever arrived later.
    book.apply_all(ev for ev in ndjson.valid_events(args.file) if ev.as_of < cutoff)
    report = investment_report(day, book.pools(day))
    if args.format == "text":
        sys.stdout.write(to_text(report))
    else:
        sys.stdout.write(json.dumps(to_json(report), indent=2) + "\n")
    if not is_report_date(day):
        print(
            f"segwatch: note: {day} is not a report date (the 15th or next business day, or the last business"
            " day of the month)",
            file=sys.stderr,
        )
    return 0
