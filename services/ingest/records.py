"""What every source produces: validated events with their line, and bad records with field and reason."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from schemas.errors import input_errors
from schemas.events import EVENT_ADAPTER, EventBase, parse_event_json
from segwatch.errors import InputError


@dataclass(frozen=True, slots=True)
class Parsed:
    """A valid event and the line of its source it came from."""

    line: int
    event: EventBase
    raw: bytes | str


@dataclass(frozen=True, slots=True)
class Bad:
    """A record that cannot be processed: where, which field, why, and the record as received."""

    line: int
    field: str
    reason: str
    raw: bytes | str
    malformed: bool = False  # not JSON at all (as opposed to JSON that is not a valid event)

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "reason": self.reason}


@dataclass(slots=True)
class Parse:
    """The outcome of reading one source: the good events and the bad records, in source order."""

    format: str
    events: list[Parsed] = field(default_factory=list)
    bad: list[Bad] = field(default_factory=list)


def error_of(exc: ValidationError) -> InputError:
    """The first error of a validation failure, in segwatch's `field: reason` form."""
    errors = input_errors(exc)
    return errors[0] if errors else InputError("(record)", str(exc))


def is_malformed_json(exc: ValidationError) -> bool:
    return any(err["type"] == "json_invalid" for err in exc.errors(include_url=False))


def json_reason(exc: ValidationError) -> str:
    for err in exc.errors(include_url=False):
        if err["type"] == "json_invalid":
            detail = str(err.get("ctx", {}).get("error", "")) or str(err["msg"])
            return f"not valid JSON ({detail})"
    return "not valid JSON"


class _Number(str):
    """A JSON number's text, as read by `_oversized_number`."""


def _oversized_number(raw: bytes) -> tuple[str, str] | None:
    """The field and text of a number too large for pydantic's JSON parser (it only says "number out of
    range at column N"), found by reading the JSON again with every number kept as text; None when the JSON
    cannot be read that way either."""
    try:
        data = json.loads(raw, parse_int=_Number, parse_float=_Number, parse_constant=_Number)
    except (ValueError, RecursionError):
        return None
    found: tuple[str, str] | None = None
    longest = -1
    todo: list[tuple[tuple[str, ...], Any]] = [((), data)]
    while todo:  # depth first, in document order
        path, value = todo.pop()
        if isinstance(value, _Number):
            whole = value.lstrip("-").partition(".")[0].partition("e")[0].partition("E")[0]
            if len(whole) > longest:
                found, longest = (".".join(path) or "(record)", str(value)), len(whole)
        elif isinstance(value, dict):
            todo.extend(((*path, str(k)), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            todo.extend(((*path, str(i)), v) for i, v in reversed(list(enumerate(value))))
    return found


def parse_event(line: int, raw: bytes) -> Parsed | Bad:
    """One JSON event (bytes of one NDJSON line or one request body), validated by the event schemas."""
    try:
        return Parsed(line, parse_event_json(raw), raw)
    except ValidationError as exc:
        if is_malformed_json(exc):
            reason = json_reason(exc)
            if "number out of range" in reason and (number := _oversized_number(raw)) is not None:
                field_name, text = number
                digits = len(text.lstrip("-"))
                return Bad(
                    line,
                    field_name,
                    f"a number of {digits} characters is out of range (an amount has at most 17 digits)",
                    raw,
                )
            return Bad(line, "(record)", reason, raw, malformed=True)
        err = error_of(exc)
        return Bad(line, err.field, err.reason, raw)


def parse_event_with_source(line: int, raw: bytes, source: str) -> Parsed | Bad:
    """Like `parse_event`, but an event without a `source` gets `source` (the CLI's --source)."""
    first = parse_event(line, raw)
    if not isinstance(first, Bad) or first.field != "source" or first.reason != "required field is missing":
        return first
    try:
        data = _loads_exact(raw)
    except ValueError:
        return first
    if not isinstance(data, dict):
        return first
    data["source"] = source
    try:
        return Parsed(line, EVENT_ADAPTER.validate_python(data), raw)
    except ValidationError as exc:
        err = error_of(exc)
        return Bad(line, err.field, err.reason, raw)


def _loads_exact(raw: bytes) -> Any:
    # Numbers straight to Decimal from their text, never through a float.
    return json.loads(raw, parse_float=Decimal, parse_constant=Decimal)


def derived_id(prefix: str, *parts: str) -> str:
    """A deterministic event id: the same input gives the same id, so re-ingesting a file is idempotent."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"{prefix}-{digest}"


def parse_ndjson(data: bytes, *, source: str | None = None) -> Parse:
    """Every non-blank line an event. A line that is not JSON or not a valid event is a Bad record."""
    out = Parse("ndjson")
    for number, line in enumerate(data.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        result = parse_event(number, line) if source is None else parse_event_with_source(number, line, source)
        if isinstance(result, Bad):
            out.bad.append(result)
        else:
            out.events.append(result)
    return out
