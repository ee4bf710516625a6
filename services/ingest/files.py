"""File sources: NDJSON events, CSV ledger extracts and BAI2 bank files → events, published to Kafka.

`load_file` reads and validates a whole file first (so an unusable file publishes nothing) and returns the
good events and the bad records. `publish_parse` publishes the events and sends every bad record, and
every event Kafka did not acknowledge, to the dead-letter topic with its source (FILE:LINE), field and
reason: nothing is dropped silently.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.records import DeadLetter
from segwatch.deadletter import dead_letter
from segwatch.errors import InputError
from services.ingest.bai2 import CLOSING_LEDGER, bai2_events, parse_bai2
from services.ingest.csvledger import parse_ledger_csv
from services.ingest.depositories import load_depositories, load_reference_file, reference_events
from services.ingest.publisher import Publisher, final_outcome
from services.ingest.records import Bad, Parse, Parsed, parse_ndjson

FORMATS = ("auto", "ndjson", "csv", "bai2")
DEFAULT_TIMEZONE = "America/New_York"
PUBLISH_CHUNK = 5_000
STAGE = "ingest"
PUBLISH_FIELD = "(publish)"  # a valid record Kafka did not acknowledge


@dataclass(frozen=True)
class FileOptions:
    format: str = "auto"
    depositories: str | None = None  # the depository reference CSV (BAI2)
    source: str | None = None  # the events' source (CSV, BAI2; NDJSON events that lack one)
    timezone: str = DEFAULT_TIMEZONE  # the BAI2 as-of times' zone
    type_code: str = CLOSING_LEDGER  # the BAI2 balance type code to read


def read_bytes(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None


def _text(data: bytes, path: str, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"{what} is not UTF-8 text (byte {exc.start})") from None


def detect_format(data: bytes, path: str) -> str:
    """ndjson, csv or bai2, from the first non-blank line."""
    first = b""
    for line in data.removeprefix(b"\xef\xbb\xbf").splitlines():
        if line.strip():
            first = line.strip()
            break
    if not first:
        raise InputError(path, "the file is empty")
    if first.startswith(b"01,"):
        return "bai2"
    if first.startswith(b"{"):
        return "ndjson"
    header = [name.strip().lower() for name in first.decode("utf-8", "replace").split(",")]
    if "segment" in header and "account" in header:
        return "csv"
    raise InputError(
        path,
        "cannot tell the format (NDJSON events, a CSV ledger extract with a header row, or a BAI2 file); give --format",
    )


def timezone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory of zones ("America")
        raise InputError("--timezone", f"unknown time zone {name!r} (an IANA name such as America/New_York)") from None


def reference_parsed(ref_path: str) -> list[Parsed]:
    """The reference file's `depository_reference` events, as of the file's modification time (when it was
    true; the latest as-of wins per depository account), for the settings topic (issue #14). Line 0: the
    reference file. `segwatch ingest FILE --depositories REF.csv` publishes them before the file's events."""
    from datetime import UTC, datetime

    data = read_bytes(ref_path)
    ref = load_reference_file(_text(data, ref_path, "the reference file"), ref_path)
    if not ref.references:
        return []
    try:
        as_of = datetime.fromtimestamp(Path(ref_path).stat().st_mtime, UTC).replace(microsecond=0)
    except OSError:
        as_of = datetime.now(UTC).replace(microsecond=0)
    as_of = min(as_of, datetime.now(UTC).replace(microsecond=0))
    return [Parsed(0, ev, ev.model_dump_json()) for ev in reference_events(ref, as_of=as_of)]


def load_file(path: str, options: FileOptions) -> Parse:
    if options.format not in FORMATS:
        raise InputError("--format", f"must be one of {', '.join(FORMATS)}")
    if options.source is not None and not 1 <= len(options.source) <= 64:
        raise InputError("--source", "must be 1 to 64 characters")
    data = read_bytes(path)
    fmt = detect_format(data, path) if options.format == "auto" else options.format
    name = "stdin" if path == "-" else Path(path).name
    if fmt == "ndjson":
        return parse_ndjson(data, source=options.source)
    if fmt == "csv":
        return parse_ledger_csv(_text(data, path, "the CSV file"), where=path, file_name=name, source=options.source)
    # bai2
    if not options.depositories:
        raise InputError("--depositories", "a BAI2 file needs the depository reference file (CSV) to map accounts")
    if not options.type_code.isdigit() or len(options.type_code) != 3:
        raise InputError("--bai2-type-code", f"expected a three-digit BAI type code, got {options.type_code!r}")
    zone = timezone_of(options.timezone)
    refs = load_depositories(
        _text(read_bytes(options.depositories), options.depositories, "the reference file"), options.depositories
    )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # bank free text (16 records) is sometimes Latin-1
    bai = parse_bai2(text, path)
    return bai2_events(
        bai,
        refs,
        timezone=zone,
        type_code=options.type_code,
        source=options.source,
        reference_name=options.depositories,
    )


@dataclass
class FileReport:
    """What happened to a file's records."""

    where: str
    format: str
    accepted: list[Parsed] = field(default_factory=list)
    dead_lettered: list[Bad] = field(default_factory=list)  # bad, or not acknowledged: on the dead-letter topic
    lost: list[Bad] = field(default_factory=list)  # could be neither published nor dead-lettered

    @property
    def exit_status(self) -> int:
        """0 every record accepted; 1 some dead-lettered; 3 some could not even be dead-lettered."""
        if self.lost:
            return 3
        return 1 if self.dead_lettered else 0


def letter_for(bad: Bad, where: str) -> DeadLetter:
    field_name = None if bad.field == PUBLISH_FIELD else bad.field
    return dead_letter(STAGE, f"{where}:{bad.line}", bad.reason, bad.raw, field=field_name)


async def publish_parse(parse: Parse, publisher: Publisher, where: str, *, chunk: int = PUBLISH_CHUNK) -> FileReport:
    report = FileReport(where, parse.format)
    bad: list[Bad] = list(parse.bad)
    for start in range(0, len(parse.events), chunk):
        part = parse.events[start : start + chunk]
        outcomes = await publisher.publish([p.event for p in part])
        for parsed, outcome in zip(part, outcomes, strict=True):
            error = await final_outcome(outcome)  # one still in flight: its final answer, not a guess
            if error is None:
                report.accepted.append(parsed)
            else:
                bad.append(Bad(parsed.line, PUBLISH_FIELD, error, parsed.raw))
    bad.sort(key=lambda b: b.line)
    if bad:
        outcomes = await _dead_letter(publisher, [letter_for(b, where) for b in bad])
        for b, error in zip(bad, outcomes, strict=True):
            if error is None:
                report.dead_lettered.append(b)
            else:
                report.lost.append(Bad(b.line, b.field, f"{b.reason} (and not dead-lettered: {error})", b.raw))
    return report


async def _dead_letter(publisher: Publisher, letters: Sequence[DeadLetter]) -> list[str | None]:
    outcomes: list[str | None] = []
    for start in range(0, len(letters), PUBLISH_CHUNK):
        outcomes.extend(await publisher.dead_letter(letters[start : start + PUBLISH_CHUNK]))
    return outcomes
