"""Reading NDJSON event files: one JSON event per line, numbered, every bad line named with field and reason.

One reader for every command that takes an events file (`segwatch statement from-events`, `segwatch replay`).
Lines end at "\\n" only (a "\\r" before it is dropped): U+2028, U+2029, U+0085 and the other characters that
`str.splitlines` would break on may stand inside a JSON string, so they never end a line. Each line is
decoded and validated on its own (pydantic's JSON parser: numbers read from their text, nesting bounded), so
one bad line — not UTF-8, not JSON, nested too deeply, a number out of range, an invalid event — is reported
with its line number, the field and the reason, and the lines after it are still read. Blank lines are
skipped (and counted).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from schemas.errors import input_errors
from schemas.events import EventBase, parse_event_json
from segwatch.errors import InputError

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Event:
    """A valid event and the line it came from."""

    line: int
    event: EventBase


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that is not a valid event: where, which field, why (what a dead letter would say)."""

    line: int
    field: str
    reason: str

    def error(self, where: str) -> InputError:
        return InputError(f"{where} line {self.line}: {self.field}", self.reason)


def lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each non-blank line; a binary stream splits on b"\\n" only."""
    for number, raw in enumerate(stream, start=1):
        if number == 1:
            raw = raw.removeprefix(BOM)
        raw = raw.removesuffix(b"\n").removesuffix(b"\r")
        if raw.strip():
            yield number, raw


def split(data: bytes) -> Iterator[tuple[int, bytes]]:
    """`lines` of a whole buffer."""
    return lines(data.split(b"\n"))


_AT = re.compile(r" at line 1 column (\d+)$")


def _json_reason(detail: str) -> str:
    detail = detail.removeprefix("Invalid JSON: ")
    detail = _AT.sub(r" at column \1", detail)
    if detail.startswith("recursion limit exceeded"):
        detail = "nested too deeply" + detail.removeprefix("recursion limit exceeded")
    return f"not valid JSON ({detail})"


def parse_line(number: int, raw: bytes) -> Event | BadLine:
    """One line as an event, or why it is not one."""
    try:
        return Event(number, parse_event_json(raw))
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            if err["type"] == "json_invalid":
                return BadLine(number, "(record)", _json_reason(str(err.get("ctx", {}).get("error", err["msg"]))))
        errors = input_errors(exc)
        if not errors:  # pragma: no cover - pydantic always names at least one error
            return BadLine(number, "(record)", str(exc))
        return BadLine(number, errors[0].field, errors[0].reason)
    except (RecursionError, MemoryError, ValueError) as exc:  # never a traceback, whatever the line holds
        return BadLine(number, "(record)", f"cannot be read ({type(exc).__name__})")


def read_events(stream: Iterable[bytes]) -> Iterator[Event | BadLine]:
    """Every non-blank line of an NDJSON stream, in order, as an event or a bad line."""
    for number, raw in lines(stream):
        yield parse_line(number, raw)


def open_binary(path: str) -> BinaryIO:
    """The file at `path` (or stdin for "-") for reading bytes; an unreadable file is an InputError."""
    if path == "-":
        return sys.stdin.buffer
    try:
        return Path(path).open("rb")
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None


def events_of(path: str) -> Iterator[Event | BadLine]:
    """`read_events` of the file at `path` ("-": stdin), closed when exhausted."""
    stream = open_binary(path)
    try:
        yield from read_events(stream)
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def valid_events(path: str) -> Iterator[EventBase]:
    """The events of the file at `path`, for a command that needs all of them: the first bad line is an
    InputError naming its line, field and reason."""
    for item in events_of(path):
        if isinstance(item, BadLine):
            raise item.error(path)
        yield item.event
