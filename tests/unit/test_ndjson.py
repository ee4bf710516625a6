"""The one NDJSON reader (segwatch.ndjson): lines end at \\n only; every bad line is named, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from segwatch.ndjson import BadLine, Event, read_events, split

EVENT = {
    "type": "account_balance",
    "event_id": "e1",
    "source": "ledger",
    "as_of": "2026-03-02T15:00:00Z",
    "segment": "4d2",
    "account": "C-1",
    "currency": "USD",
    "cash": "5.00",
    "securities": "0",
    "unrealized": "0",
    "long_options": "0",
    "short_options": "0",
}


def line(**changes: object) -> bytes:
    return json.dumps({**EVENT, **changes}, ensure_ascii=False).encode()


def test_only_newline_ends_a_line() -> None:
    # Each of these is a line break to str.splitlines, and legal inside a JSON string.
    for separator in ("\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e", "\x0b", "\x0c"):
        raw = line(source=f"led{separator}ger")
        assert [n for n, _ in split(raw + b"\n" + raw)] == [1, 2], repr(separator)
        [first, _] = list(read_events([raw + b"\n", raw]))
        assert isinstance(first, Event) and first.event.source == f"led{separator}ger"


def test_crlf_bom_and_blank_lines() -> None:
    data = b"\xef\xbb\xbf" + line() + b"\r\n\r\n   \n" + line(event_id="e2") + b"\r\n"
    got = list(read_events(data.splitlines(keepends=True)))
    assert [(type(g).__name__, g.line) for g in got] == [("Event", 1), ("Event", 4)]


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        (b"{not json", "(record)", "not valid JSON (key must be a string at column 2)"),
        (b"[" * 5000 + b"]" * 5000, "(record)", "not valid JSON (nested too deeply"),
        (line().replace(b'"5.00"', b"1" + b"0" * 5000), "(record)", "not valid JSON (number out of range"),
        (line().replace(b'"5.00"', b"1e999999999"), "cash", "no more than 17 digits"),
        (line().replace(b"ledger", b"led\xffger"), "(record)", "not valid JSON"),
        (line(cash="1.234"), "cash", "no more than 2 decimal places"),
        (line(currency="usd"), "currency", "String should match pattern"),
        (b'"just a string"', "(record)", ""),
    ],
)
def test_each_bad_line_is_named_with_field_and_reason(raw: bytes, field: str, reason: str) -> None:
    [bad] = list(read_events([line() + b"\n", b"\n", raw + b"\n", line(event_id="e3")]))[1:2]
    assert isinstance(bad, BadLine)
    assert (bad.line, bad.field) == (3, field)
    assert reason in bad.reason
    assert str(bad.error("f.ndjson")).startswith(f"f.ndjson line 3: {field}: ")


def test_from_events_keeps_u2028_inside_a_string() -> None:
    text = json.dumps({**EVENT, "source": "ledger\u2028x"}, ensure_ascii=False) + "\n"
    result = subprocess.run(
        [sys.executable, "-m", "segwatch.cli", "statement", "from-events", "-"],
        input=text.encode(),
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["4d2"]["7010"] == "5.00"


def test_from_events_names_every_bad_line_and_prints_no_statement() -> None:
    text = b"\n".join([line(), b"{oops", line(cash="x"), b"[" * 100000]) + b"\n"
    result = subprocess.run(
        [sys.executable, "-m", "segwatch.cli", "statement", "from-events", "-"],
        input=text,
        capture_output=True,
        check=False,
    )
    err = result.stderr.decode()
    assert result.returncode == 2 and result.stdout == b""
    assert "- line 2: (record): not valid JSON" in err
    assert "- line 3: cash: " in err
    assert "- line 4: (record): not valid JSON (nested too deeply" in err
    assert "Traceback" not in err
