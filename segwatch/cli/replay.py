"""`segwatch replay EVENTS.ndjson`: the pipeline's offline twin (segwatch.core.twin) from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

from schemas.controls import Baseline
from schemas.errors import first_error
from schemas.statements import StatementRecord
from segwatch.core.catalogue import SEGMENTS
from segwatch.core.twin import ALERTS_TOPIC, FIGURES_TOPIC, Clock, EventClock, Twin
from segwatch.errors import InputError
from segwatch.ndjson import BadLine, events_of

DESCRIPTION = """\
Feed the events of an NDJSON file, in file order, through the same pure core the services use (book ->
figures -> alert rules and the 25% disbursement control) and print, one JSON object per line, every record
the alerter would publish: alert records (the alert topic's schema), and for each disbursement its decision
("type": "disbursement_decision", with correlation_id = the event id and needs_approval) and the notices it
owes ("type": "disbursement_notice", with the rendered text); with --figures also every figures record
("type": "figures").

The 25% control measures against the last daily computation: the StatementRecords of the close (when the
twin computes them), or those of --baselines FILE (NDJSON: one StatementRecord, "type": "statement", or one
baseline, "type": "baseline" with segment, business_day, cutoff, excess, version per line), each taken just
before the first event made after its cut-off (the close is computed once the day's books are cut off).

The twin evaluates after EVERY event; the live calculator coalesces figures for up to
50 ms and takes balances a fetch at a time, so the live pipeline may skip a transient state (and number its
figures versions differently) where the replay shows it. Clock fields (computed_at, at) come from --now.

An invalid line is reported on stderr with its line number, field and reason, as a dead letter would be,
and the replay goes on; a summary line ends stderr.

exit status: 0 every line replayed; 1 some lines were invalid (each reported; the rest replayed);
2 nothing replayed (unreadable file, bad option)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay",
        help="replay events offline through the pipeline's core and print the alerts it would publish",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="EVENTS.ndjson", help="NDJSON events, or - for stdin")
    p.add_argument(
        "--figures", action="store_true", help="also print every figures record the calculator would publish"
    )
    p.add_argument(
        "--now",
        default="event",
        metavar="CLOCK",
        help="the clock of the records and of time-based rules: 'event' (default: the latest as_of seen so far,"
        " reproducible), 'wall' (the current time), or a fixed ISO 8601 time with a timezone",
    )
    p.add_argument(
        "--baselines",
        default=None,
        metavar="FILE",
        help="NDJSON daily computations (StatementRecords or baselines) for the 25%% control",
    )
    p.set_defaults(func=cmd_replay)


def read_baselines(path: str) -> list[Baseline]:
    """The baselines of a --baselines file, by cut-off; an unusable line is an InputError naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError("--baselines", f"cannot read {path}: {exc}") from None
    out: list[Baseline] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"--baselines {path}:{number}"
        try:
            data = json.loads(line, parse_float=Decimal)
        except ValueError as exc:
            raise InputError(where, f"not valid JSON ({exc})") from None
        kind = data.get("type") if isinstance(data, dict) else None
        try:
            if kind == "statement":
                record = StatementRecord.model_validate(data)
                excess = record.lines.get(SEGMENTS[record.segment].excess)
                if excess is None:
                    raise InputError(where, f"the statement has no excess line {SEGMENTS[record.segment].excess}")
                out.append(
                    Baseline(
                        segment=record.segment,
                        business_day=record.business_day,
                        cutoff=record.cutoff,
                        excess=excess,
                        version=record.version,
                    )
                )
            elif kind == "baseline":
                out.append(Baseline.model_validate(data))
            else:
                raise InputError(where, f"expected a statement or baseline record, got type {kind!r}")
        except ValidationError as exc:
            err = first_error(exc)
            raise InputError(f"{where} {err.field}", err.reason) from None
    return sorted(out, key=lambda b: b.cutoff)


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
    baselines = read_baselines(args.baselines) if args.baselines else []
    takers = [stage for stage in twin.stages if hasattr(stage, "on_baseline")]
    events = bad = alerts = figures = controls = 0
    out = sys.stdout
    for item in events_of(args.file):
        while baselines and not isinstance(item, BadLine) and baselines[0].cutoff < item.event.as_of:
            baseline = baselines.pop(0)
            for stage in takers:
                stage.on_baseline(baseline)
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
            elif record.topic != FIGURES_TOPIC:
                controls += 1  # decisions and notices (the alerter's state topic)
            else:
                figures += 1
                if not args.figures:
                    continue
            out.write(record.json() + "\n")
    out.flush()
    print(
        f"segwatch replay: {events} events replayed, {bad} invalid lines, {figures} figures records,"
        f" {alerts} alert records, {controls} decision and notice records",
        file=sys.stderr,
    )
    return 1 if bad else 0
