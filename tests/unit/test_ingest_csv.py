"""CSV ledger extracts and NDJSON files → events; the `segwatch ingest` command without Kafka (--dry-run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.events import AccountBalance
from segwatch.errors import InputError
from services.ingest.csvledger import parse_ledger_csv
from services.ingest.files import FileOptions, detect_format, load_file
from services.ingest.records import parse_ndjson

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "services" / "ingest" / "examples"
LEDGER = EXAMPLES / "ledger.csv"
HEADER = "segment,account,currency,as_of,cash,securities,unrealized,long_options,short_options"


def parse(text: str, name: str = "ledger.csv", source: str | None = None):  # type: ignore[no-untyped-def]
    return parse_ledger_csv(text, where=name, file_name=name, source=source)


def test_example_ledger_extract() -> None:
    result = parse(LEDGER.read_text())
    assert result.bad == []
    events = [p.event for p in result.events]
    assert len(events) == 9 and all(isinstance(e, AccountBalance) for e in events)
    first = events[0]
    assert isinstance(first, AccountBalance)
    assert (first.segment, first.account, first.currency) == ("4d2", "C-100231", "USD")
    assert (first.cash, first.securities, first.unrealized) == (
        Decimal("2450000.00"),
        Decimal("500000.00"),
        Decimal("-125340.50"),
    )
    assert (first.long_options, first.short_options) == (Decimal("88000.00"), Decimal("-12500.00"))
    assert first.as_of.isoformat() == "2026-11-20T17:00:00-05:00"
    assert first.source == "ledger-csv"
    assert first.key == "acct|4d2|C-100231"
    # An empty offset_securities means 0; a given one is kept exactly.
    second, third = events[1], events[2]
    assert isinstance(second, AccountBalance) and isinstance(third, AccountBalance)
    assert second.offset_securities == Decimal(0)
    assert third.offset_securities == Decimal("250000.00")
    assert [p.line for p in result.events] == list(range(2, 11))


def test_derived_event_ids_are_deterministic() -> None:
    text = LEDGER.read_text()
    ids = [p.event.event_id for p in parse(text).events]
    assert ids == [p.event.event_id for p in parse(text).events]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("csv-") for i in ids)
    assert set(ids).isdisjoint(p.event.event_id for p in parse(text, name="other.csv").events)
    assert set(ids).isdisjoint(p.event.event_id for p in parse(text, source="ledger-eod").events)
    changed = text.replace("2450000.00", "2450000.01")
    changed_ids = [p.event.event_id for p in parse(changed).events]
    assert changed_ids[0] != ids[0] and changed_ids[1:] == ids[1:]


def test_bad_rows_name_line_field_and_reason() -> None:
    result = load_file(str(EXAMPLES / "errors" / "ledger-with-errors.csv"), FileOptions())
    assert [p.event.event_id for p in result.events] == ["ledger-20261120-0001", "ledger-20261120-0008"]
    got = [(b.line, b.field) for b in result.bad]
    assert got == [(3, "cash"), (4, "short_options"), (5, "segment"), (6, "currency"), (7, "as_of"), (8, "(record)")]
    reasons = [b.reason for b in result.bad]
    assert "2 decimal places" in reasons[0]
    assert "less than or equal to 0" in reasons[1]
    assert "timezone" in reasons[4]
    assert reasons[5] == "expected 11 fields, got 10"
    assert str(result.bad[0].raw).startswith("4d2,C-100232,USD,")


def test_header_is_case_insensitive_in_any_order_with_blank_lines_and_bom() -> None:
    text = (
        "\ufeffAccount,Segment,CURRENCY,as_of,short_options,long_options,unrealized,securities,cash\n"
        "\n"
        "C-1,4df,USD,2026-11-20T22:00:00Z,-1.00,2.00,3.00,4.00,5.00\n"
    )
    [parsed] = parse(text).events
    assert parsed.line == 3
    event = parsed.event
    assert isinstance(event, AccountBalance)
    assert (event.account, event.segment, event.cash, event.short_options) == (
        "C-1",
        "4df",
        Decimal("5.00"),
        Decimal("-1.00"),
    )


def test_quoted_fields_and_explicit_event_id() -> None:
    text = HEADER + ",event_id\n" + '4d2,"C-9",USD,2026-11-20T22:00:00Z,"1000.10",0,0,0,0,eod-42\n'
    [parsed] = parse(text).events
    assert parsed.event.event_id == "eod-42"
    assert isinstance(parsed.event, AccountBalance) and parsed.event.cash == Decimal("1000.10")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("segment,account,currency\n", "missing column(s) as_of, cash"),
        (HEADER + ",colour\n", "unknown column(s) colour"),
        (HEADER + ",cash\n", "column(s) given twice: cash"),
        ("\n\n", "empty CSV file"),
    ],
)
def test_unusable_headers(text: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        parse(text)
    assert message in str(err.value)


def test_format_detection() -> None:
    assert detect_format(LEDGER.read_bytes(), "x") == "csv"
    assert detect_format((EXAMPLES / "events.ndjson").read_bytes(), "x") == "ndjson"
    assert detect_format((EXAMPLES / "bank.bai2").read_bytes(), "x") == "bai2"
    with pytest.raises(InputError, match="cannot tell the format"):
        detect_format(b"hello\n", "x")
    with pytest.raises(InputError, match="empty"):
        detect_format(b"\n \n", "x")


def test_ndjson_lines_and_source_fill_in() -> None:
    data = (EXAMPLES / "errors" / "events-with-errors.ndjson").read_bytes()
    result = parse_ndjson(data)
    assert [p.event.event_id for p in result.events] == ["fx-20261120-CHF", "dco-20261120-CME-4df"]
    assert [(b.line, b.field) for b in result.bad] == [
        (2, "usd_per_unit"),
        (3, "short_options"),
        (4, "line"),
        (5, "type"),
        (6, "(record)"),
    ]
    assert result.bad[4].malformed and result.bad[4].reason.startswith("not valid JSON")
    no_source = (
        b'{"type": "fx_rate", "event_id": "fx-1", "as_of": "2026-11-20T21:00:00Z", "currency": "EUR", '
        b'"usd_per_unit": 1.0842}\n'
    )
    assert [b.field for b in parse_ndjson(no_source).bad] == ["source"]
    [filled] = parse_ndjson(no_source, source="fx-feed").events
    assert filled.event.source == "fx-feed"
    assert filled.event.usd_per_unit == Decimal("1.0842")  # type: ignore[attr-defined]  # exact, not a float


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "segwatch.cli", "ingest", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )


def test_cli_dry_run_prints_events_and_exits_0() -> None:
    done = run(str(LEDGER), "--dry-run")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(events) == 9 and events[0]["cash"] == "2450000.00"
    assert "9 valid, 0 bad" in done.stderr


def test_cli_dry_run_lists_bad_lines_and_exits_1() -> None:
    path = EXAMPLES / "errors" / "ledger-with-errors.csv"
    done = run(str(path), "--dry-run")
    assert done.returncode == 1
    assert f"{path}:3: cash: Decimal input should have no more than 2 decimal places" in done.stderr
    assert f"{path}:8: (record): expected 11 fields, got 10" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("/nonexistent/ledger.csv",), "/nonexistent/ledger.csv: No such file or directory"),
        ((str(EXAMPLES / "bank.bai2"),), "--depositories"),
        (
            (str(EXAMPLES / "errors" / "bank-bad-totals.bai2"), "--depositories", str(EXAMPLES / "depositories.csv")),
            "group control total is 38125000100",
        ),
        (("serve", "--format", "csv"), "--format: only for ingesting a file"),
        ((str(LEDGER), "--port", "1"), "--host/--port: only with `segwatch ingest serve`"),
    ],
)
def test_cli_unusable_input_exits_2(args: tuple[str, ...], message: str) -> None:
    done = run(*args)
    assert done.returncode == 2, done
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_reads_stdin() -> None:
    done = run("-", "--dry-run", "--format", "csv", stdin=LEDGER.read_text())
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 9


def test_serve_refuses_to_start_without_tokens() -> None:
    env_free = {k: v for k, v in os.environ.items() if not k.startswith("SEGWATCH_INGEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "segwatch.cli", "ingest", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
        env=env_free,
    )
    assert done.returncode == 2
    assert "SEGWATCH_INGEST_TOKENS" in done.stderr and "SEGWATCH_INGEST_ALLOW_ANONYMOUS=1" in done.stderr
