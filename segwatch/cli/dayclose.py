"""`segwatch statement from-events --close DAY` and `segwatch statement reconcile COMPUTED FILED`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path

from schemas.events import EventBase
from segwatch import ndjson
from segwatch.core import statement
from segwatch.core.calendar import BusinessCalendar, CalendarConfig
from segwatch.core.catalogue import LINES, SEGMENT_IDS
from segwatch.core.close import book_at
from segwatch.errors import InputError
from segwatch.forms.parse import parse_filing
from segwatch.forms.render import FilingHeader, to_filing_text, to_json, whole_dollars

DEFAULT_FIRM = "segwatch FCM"


def close_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def read_text(path: str) -> str:
    """The text of the file at `path` ("-": stdin); unreadable or not UTF-8 is an InputError naming it."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text") from None


def statement_at_close(events: list[EventBase], day: date, calendar: BusinessCalendar) -> dict[str, dict[str, Decimal]]:
    """The statement of `day` as of its close, with every balance of the day however late it came: the
    latest version of the statement the pipeline publishes. Only the segments the day has a statement for."""
    due = calendar.segments_due(day)
    if not due:
        raise InputError("--close", f"{day} is not a business day of the {calendar.config.name} calendar")
    book = book_at(events, calendar.cutoff(day))
    return {sid: lines for sid, lines in book.statement().items() if sid in due}


def cmd_from_events_close(args: argparse.Namespace) -> int:
    calendar = BusinessCalendar(CalendarConfig.from_env())
    day: date = args.close
    statements = statement_at_close(list(ndjson.valid_events(args.file)), day, calendar)
    if args.format == "text":
        from segwatch.cli.settings import CliPart
        from segwatch.environment import load

        firm = getattr(args, "firm", None) or load(CliPart).firm_name
        header = FilingHeader(firm, day, calendar.next_business_day(day))
        sys.stdout.write(to_filing_text(statements, header))
    else:
        sys.stdout.write(json.dumps(to_json(statements), indent=2) + "\n")
    return 0


def load_any(path: str) -> dict[str, dict[str, Decimal]]:
    """A statement from filing text (like shared/reference/) or JSON ({segment: {code: amount}}, or the
    filing JSON with its `statements`)."""
    text = read_text(path)
    if not text.lstrip().startswith("{"):
        return parse_filing(text)
    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=Decimal)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if isinstance(data, dict) and isinstance(data.get("statements"), dict):
        data = data["statements"]
    if isinstance(data, dict):  # `statement parse` JSON: the filing's header beside the statements
        data.pop("filing", None)
    if not isinstance(data, dict) or not data:
        raise InputError(path, "expected a JSON object keyed by segment (4d2, 30.7, 4df)")
    out = {}
    for sid, lines in data.items():
        if sid not in SEGMENT_IDS:
            raise InputError(f"{path}: segment {sid!r}", f"unknown segment; expected one of {', '.join(SEGMENT_IDS)}")
        out[sid] = statement.parse_statement(sid, lines)
    return out


def differences(
    computed: Mapping[str, Mapping[str, Decimal]], filed: Mapping[str, Mapping[str, Decimal]]
) -> list[tuple[str, str, Decimal | None, Decimal | None]]:
    """Every line that differs: (segment, code, computed, filed); None where a side lacks the line. A filing
    in whole dollars is compared with the computed statement in whole dollars (`whole_dollars`)."""
    out: list[tuple[str, str, Decimal | None, Decimal | None]] = []
    for sid in SEGMENT_IDS:
        if sid not in computed and sid not in filed:
            continue
        mine = dict(computed.get(sid, {}))
        theirs = dict(filed.get(sid, {}))
        if mine and theirs and all(v == v.to_integral_value() for v in theirs.values()):
            mine = whole_dollars(sid, mine)
        for code in [c for c in LINES if LINES[c].segment == sid and (c in mine or c in theirs)]:
            a, b = mine.get(code), theirs.get(code)
            if a != b:
                out.append((sid, code, a, b))
    return out


def _money(v: Decimal | None) -> str:
    return "(none)" if v is None else f"{v:,}"


def cmd_reconcile(args: argparse.Namespace) -> int:
    diffs = differences(load_any(args.computed), load_any(args.filed))
    for sid, code, a, b in diffs:
        delta = f" (difference {b - a:,})" if a is not None and b is not None else ""
        print(f"{sid} line {LINES[code].number} [{code}]: computed {_money(a)}, filed {_money(b)}{delta}")
    if diffs:
        print(f"reconcile: {len(diffs)} lines differ", file=sys.stderr)
        return 1
    print("reconcile: every line agrees", file=sys.stderr)
    return 0


def register_reconcile(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = cmds.add_parser("reconcile", help="list every line that differs between a computed and a filed statement")
    p.add_argument("computed", help="the computed statement: JSON, or filing text")
    p.add_argument("filed", help="the filed statement: filing text (like shared/reference/), or JSON")
    p.set_defaults(func=cmd_reconcile)


def add_close_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--close",
        type=close_day,
        metavar="YYYY-MM-DD",
        help="the statement as of that business day's close (SEGWATCH_CALENDAR, SEGWATCH_CUTOFF, …)",
    )
    p.add_argument("--firm", help="the firm name in the text header (default $SEGWATCH_FIRM_NAME)")
