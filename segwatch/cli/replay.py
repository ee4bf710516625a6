"""`segwatch replay EVENTS.ndjson`: the pipeline's offline twin (segwatch.core.twin) from the command line."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from segwatch.core.twin import ALERTS_TOPIC, Clock, EventClock, Twin
from segwatch.errors import InputError
from segwatch.ndjson import BadLine, events_of

DESCRIPTION = """\
Feed the events of an NDJSON file, in file order, through the same pure core the services use (book ->
figures -> alert rules and the CBOT Rule 971.E disbursement check) and print, one JSON object per line, every
alert record the alerter would publish (the alert topic's schema; with --figures also every figures record,
"type": "figures"). The twin evaluates after EVERY event; the live calculator coalesces figures for up to
50 ms and takes balances a fetch at a time, so the live pipeline may skip a transient state (and number its
figures versions differently) where the replay shows it. Clock fields (computed_at, at) come from --now.

An invalid line is reported on stderr with its line number, field and reason, as a dead letter would be,
and the replay goes on; a summary line ends stderr.

exit status: 0 every line replayed; 1 some lines were invalid (each reported; the rest replayed);
2 nothing replayed (unreadable file, bad option)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay", help="replay events offline through the pipeline's core and print the alerts it would publish",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="EVENTS.ndjson", help="NDJSON events, or - for stdin")
    p.add_argument("--figures", action="store_true",
                   help="also print every figures record the calculator would publish")
    p.add_argument(
        "--now", default="event", metavar="CLOCK",
        help="the clock of the records and of time-based rules: 'event' (default: the latest as_of seen so far,"
        " reproducible), 'wall' (the current time), or a fixed ISO 8601 time with a timezone",
    )
    p.set_defaults(func=cmd_replay)


def clock_of(text: str) -> Clock:
    if text == "event":
        return EventClock()
    if text == "wall":
        return lambda _event: datetime.now(UTC)
    try:
        fixed = datetime.fromisoformat(text)
    except ValueError:
        raise InputError("--now", f"{text!r} is not 'event', 'wall' or an ISO 8601 time") from None
    if fixed.tzinfo is None:
        raise InputError("--now", f"{text!r} has no timezone")
    return lambda _event: fixed


def cmd_replay(args: argparse.Namespace) -> int:
    twin = Twin(clock=clock_of(args.now))
    events = bad = alerts = figures = 0
    out = sys.stdout
    for item in events_of(args.file):
        if isinstance(item, BadLine):
            bad += 1
            print(f"segwatch replay: {item.error(args.file)}", file=sys.stderr)
            continue
        try:
            records = twin.feed(item.event)
        except InputError as exc:  # refused by the core: the calculator would dead-letter it
            bad += 1
            print(f"segwatch replay: {BadLine(item.line, exc.field, exc.reason).error(args.file)}", file=sys.stderr)
            continue
        events += 1
        for record in records:
            if record.topic == ALERTS_TOPIC:
                alerts += 1
            else:
                figures += 1
                if not args.figures:
                    continue
            out.write(record.json() + "\n")
    out.flush()
    print(
        f"segwatch replay: {events} events replayed, {bad} invalid lines, {figures} figures records,"
        f" {alerts} alert records",
        file=sys.stderr,
    )
    return 1 if bad else 0
