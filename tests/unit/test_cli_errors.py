"""The CLI rejects bad input with the field and the reason, exits non-zero, and prints no traceback."""

import subprocess
import sys

import pytest


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "segwatch.cli", *args], input=stdin, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ('{"4d2": {"7010": "abc"}}', "4d2.7010: 'abc' is not a decimal amount"),
        ('{"4d2": {"7010": NaN}}', "4d2.7010: NaN is not a finite amount"),
        ('{"4d2": {"7010": -Infinity}}', "4d2.7010: -Infinity is not a finite amount"),
        ('{"4d2": {"7010": 1e999}}', "4d2.7010: 1E+999 is out of range"),
        ('{"9x9": {}}', "segment '9x9': unknown segment"),
        ('{"4df": {"1234": 1}}', "4df.1234: unknown line code"),
        ('{"4d2": ', "not valid JSON"),
        ("[]", "expected a JSON object"),
    ],
)
def test_statement_compute_rejects_bad_input(stdin: str, message: str) -> None:
    result = run("statement", "compute", "-", stdin=stdin)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_missing_file_is_a_clear_error() -> None:
    result = run("statement", "compute", "/nonexistent/file.json")
    assert result.returncode == 2
    assert "/nonexistent/file.json: No such file or directory" in result.stderr


EVENT = (
    '{"type": "account_balance", "event_id": "e1", "source": "ledger", "as_of": "2026-11-20T21:00:00Z", '
    '"segment": "4d2", "account": "C-1", "currency": "%s", "cash": %s, "securities": "0", "unrealized": "0", '
    '"long_options": "0", "short_options": "0"}'
)


@pytest.mark.parametrize(
    ("currency", "cash", "message"),
    [
        ("usd", '"1"', "line 2: currency: String should match pattern"),
        ("XYZ", '"1"', "line 2: currency: 'XYZ' is not an ISO 4217 currency code"),
        ("USD", '"1.234"', "line 2: cash: Decimal input should have no more than 2 decimal places"),
        ("USD", '"NaN"', "line 2: cash: Input should be a finite number"),
    ],
)
def test_from_events_names_the_line_field_and_reason(currency: str, cash: str, message: str) -> None:
    good = EVENT % ("USD", '"5"')
    result = run("statement", "from-events", "-", stdin=good + "\n" + EVENT % (currency, cash) + "\n")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_from_events_missing_field() -> None:
    result = run("statement", "from-events", "-", stdin=(EVENT % ("USD", '"5"')).replace(', "cash": "5"', ""))
    assert result.returncode == 2
    assert "line 1: cash: required field is missing" in result.stderr


def test_from_events_prints_the_statement() -> None:
    result = run("statement", "from-events", "-", stdin=EVENT % ("USD", '"-5.25"'))
    assert result.returncode == 0, result.stderr
    assert '"7045": "5.25"' in result.stdout
    assert '"7060": "0.00"' in result.stdout
