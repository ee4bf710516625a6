"""`segwatch statement compute|parse|from-events`: the statement core from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal

from segwatch import ndjson
from segwatch.cli import dayclose
from segwatch.core import statement
from segwatch.core.book import Book
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.errors import InputError
from segwatch.forms.parse import read_filing
from segwatch.forms.render import header_text, to_json, to_text

FILING_KEY = "filing"  # the header in `statement parse` output; `compute` skips it


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("statement", help="compute, check, parse and render Daily Seg statements")
    cmds = parser.add_subparsers(dest="statement_command", required=True, metavar="ACTION")

    p = cmds.add_parser("compute", help="complete a statement from its leaf lines (JSON in, JSON or text out)")
    p.add_argument("file", help='JSON {"4d2": {code: amount}, "30.7": {...}, "4df": {...}}, or - for stdin')
    p.add_argument("--check", action="store_true", help="fail listing every derived line that disagrees")
    _format(p)
    p.set_defaults(func=cmd_compute)

    p = cmds.add_parser(
        "parse",
        help="read a filing like those in shared/reference/ into statement JSON",
        description='Read a Daily Seg FOCUS II filing: its header (under "filing") and every amount it prints,'
        " whatever the markup. Exit status 1, naming each one on stderr, when a line of the form (or a header"
        " field) is not legibly stated; 2 when the file cannot be read.",
    )
    p.add_argument("file", help="the filing's text, or - for stdin")
    p.add_argument(
        "--partial",
        action="store_true",
        help="accept a filing that leaves lines out: print what it states, exit 0 (the gaps still listed)",
    )
    _format(p)
    p.set_defaults(func=cmd_parse)

    p = cmds.add_parser("from-events", help="apply balance events (NDJSON) and print the statement")
    p.add_argument("file", help="NDJSON events, or - for stdin")
    _format(p)
    dayclose.add_close_flags(p)
    p.set_defaults(func=cmd_from_events)

    dayclose.register_reconcile(cmds)


def _format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("json", "text"), default="json", help="output format (default json)")


_read = dayclose.read_text  # one reader of a text file (or stdin) for every statement command


def load_statement_json(text: str, where: str) -> dict[str, dict[str, Decimal]]:
    try:
        # Numbers become Decimal straight from their text: no binary float ever touches an amount.
        data = json.loads(text, parse_float=Decimal, parse_constant=Decimal)  # NaN is rejected per field
    except json.JSONDecodeError as exc:
        raise InputError(where, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise InputError(where, "expected a JSON object keyed by segment (4d2, 30.7, 4df)")
    if not data:
        raise InputError(where, "no segment given; expected any of 4d2, 30.7, 4df")
    out = {}
    for segment_id, lines in data.items():
        if segment_id == FILING_KEY:
            continue  # the filing's header, as `statement parse` prints it
        if segment_id not in SEGMENT_IDS:
            raise InputError(f"segment {segment_id!r}", f"unknown segment; expected one of {', '.join(SEGMENT_IDS)}")
        out[segment_id] = statement.parse_statement(segment_id, lines)
    return out


def emit(statements: dict[str, dict[str, Decimal]], fmt: str, header: dict[str, str | None] | None = None) -> None:
    if fmt == "text":
        if header is not None:
            sys.stdout.write(header_text(header) + "\n\n")
        sys.stdout.write(to_text(statements))
    else:
        body: dict[str, object] = {FILING_KEY: header} if header is not None else {}
        sys.stdout.write(json.dumps({**body, **to_json(statements)}, indent=2) + "\n")


def cmd_compute(args: argparse.Namespace) -> int:
    given = load_statement_json(_read(args.file), args.file)
    emit({sid: statement.complete(sid, lines) for sid, lines in given.items()}, args.format)
    if not args.check:
        return 0
    mismatches = [m for sid, lines in given.items() for m in statement.check(sid, lines)]
    checked = sum(len(statement.derived_given(sid, lines)) for sid, lines in given.items())
    for m in mismatches:
        print(f"mismatch: {m}", file=sys.stderr)
    if mismatches:
        print(f"check: {len(mismatches)} of {checked} derived lines disagree", file=sys.stderr)
        return 1
    print(f"check: all {checked} derived lines agree", file=sys.stderr)
    return 0


def cmd_parse(args: argparse.Namespace) -> int:
    filing = read_filing(_read(args.file))
    for gap in filing.missing:
        print(f"{'warning' if args.partial else 'missing'}: {gap}", file=sys.stderr)
    if filing.missing and not args.partial:
        print(f"parse: {len(filing.missing)} lines of the form not legibly stated (--partial accepts)", file=sys.stderr)
        return 1
    emit(filing.statements, args.format, filing.header)
    return 0


def read_events(path: str, book: Book) -> int:
    """Apply the events of an NDJSON file (segwatch.ndjson: lines end at \\n only) to `book`. Every line that
    is not a valid event, or that the core refuses, is reported on stderr with its line number, field and
    reason; returns how many were."""
    bad = 0
    for item in ndjson.events_of(path):
        if isinstance(item, ndjson.Event):
            try:
                book.apply(item.event)
                continue
            except InputError as exc:
                item = ndjson.BadLine(item.line, exc.field, exc.reason)
        bad += 1
        print(f"segwatch: error: {item.error(path)}", file=sys.stderr)
    return bad


def cmd_from_events(args: argparse.Namespace) -> int:
    if args.close is not None:
        return dayclose.cmd_from_events_close(args)
    book = Book()
    if read_events(args.file, book):
        return 2  # a statement that leaves out an event is not printed
    emit(book.statement(), args.format)
    return 0
