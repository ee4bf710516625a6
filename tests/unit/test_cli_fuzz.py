"""Seeded fuzzing of the CLI's file inputs: corrupted NDJSON, CSV, BAI2 files (from the examples) and filings
never make `segwatch` raise; it exits 0, 1 (some records bad, each listed) or 2 (unusable, one line naming the
problem)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from segwatch.cli import main

EXAMPLES = Path(__file__).parents[2] / "services" / "ingest" / "examples"
REFERENCE = Path("/work/shared/reference")
DEPOSITORIES = str(EXAMPLES / "depositories.csv")

# Poisons: what corrupted and careless files really hold.
POISONS = [
    "9" * 4400,
    "1" + "0" * 26,
    "1e999999999",
    "-1e999999999",
    "NaN",
    "١٢٣",
    "１２",
    "1_000",
    ",",
    ",,,",
    "",
    "[" * 3000,
    '{"a":' * 3000,
    "\x00",
    "\u2028",
    "\ufeff",
    '"',
    "\\",
    "/",
    "x" * 140_000,
    "-",
    ".",
    "(,)",
    "\r",
    "99999999999999999999",
    "+",
    "0x10",
    "\udcff",
    "2026-02-30T00:00:00Z",
    "24:00",
]


def poison(rng: random.Random) -> str:
    return rng.choice(POISONS[:8] if rng.random() < 0.5 else POISONS)  # numbers half of the time


def mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    for _ in range(rng.randint(1, 3)):
        if not lines:
            lines = [poison(rng)]
        i = rng.randrange(len(lines))
        line = lines[i]
        op = rng.randrange(6)
        if op == 0:  # a field or token replaced by a poison
            parts = line.split(",")
            parts[rng.randrange(len(parts))] = poison(rng)
            lines[i] = ",".join(parts)
        elif op == 1:  # a poison inserted anywhere
            at = rng.randrange(len(line) + 1)
            lines[i] = line[:at] + poison(rng) + line[at:]
        elif op == 2:  # truncated
            lines = lines[: i + 1]
            lines[i] = line[: rng.randrange(len(line) + 1)]
        elif op == 3:  # a line doubled or dropped
            lines.insert(i, line) if rng.random() < 0.5 else lines.pop(i)
        elif op == 4:  # digits swapped for a number from elsewhere
            lines[i] = "".join(rng.choice(POISONS[:3]) if ch.isdigit() and rng.random() < 0.05 else ch for ch in line)
        else:  # a byte flipped
            at = rng.randrange(max(len(line), 1))
            lines[i] = line[:at] + chr(rng.randrange(1, 0x3000)) + line[at + 1 :]
    return "".join(lines)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))  # an exception here is the failure this test looks for
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err


CASES = [
    ("events.ndjson", ()),
    ("errors/events-with-errors.ndjson", ()),
    ("ledger.csv", ()),
    ("errors/ledger-with-errors.csv", ()),
    ("bank.bai2", ("--depositories", DEPOSITORIES)),
    ("errors/bank-unmapped.bai2", ("--depositories", DEPOSITORIES)),
]


@pytest.mark.parametrize("seed", range(40))
def test_corrupted_files_never_crash_the_cli(seed: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(seed)
    for name, extra in CASES:
        path = tmp_path / Path(name).name
        path.write_bytes(mutate((EXAMPLES / name).read_text(), rng).encode("utf-8", "surrogatepass"))
        status, err = run(capsys, "ingest", str(path), "--dry-run", *extra)
        assert status in (0, 1, 2), (name, status, err)
        if status == 2:
            assert err.startswith("segwatch: error: ") and len(err.strip().splitlines()) == 1, err
        if status == 1:
            assert all(line.startswith(str(path)) for line in err.splitlines()), err


@pytest.mark.parametrize("seed", range(15))
def test_corrupted_filings_and_statements_never_crash_the_cli(
    seed: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(1000 + seed)
    filing = sorted(REFERENCE.glob("*.txt"))[seed % 2]
    path = tmp_path / "filing.txt"
    path.write_bytes(mutate(filing.read_text(), rng).encode("utf-8", "surrogatepass"))
    status, err = run(capsys, "statement", "parse", str(path))
    assert status in (0, 1, 2), err
    if status == 2:
        assert err.startswith("segwatch: error: "), err
    if status == 1:  # lines of the form it could not read: each named, nothing guessed
        assert err.splitlines()[-1].startswith("parse: ") and all(
            line.startswith(("missing: ", "parse: ")) for line in err.splitlines()
        ), err
    statement = tmp_path / "statement.json"
    amount = poison(rng)[:5000]
    statement.write_bytes(('{"4d2": {"7010": ' + amount + ', "7020": "1"}}').encode("utf-8", "surrogatepass"))
    status, err = run(capsys, "statement", "compute", str(statement))
    assert status in (0, 2) and (status == 0 or err.startswith("segwatch: error: ")), err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ("ingest", str(EXAMPLES / "bank.bai2"), "--depositories", DEPOSITORIES, "--timezone", "America"),
            "--timezone: unknown time zone 'America'",
        ),
        (
            ("ingest", str(EXAMPLES / "bank.bai2"), "--depositories", DEPOSITORIES, "--timezone", "../../etc/passwd"),
            "--timezone: unknown time zone",
        ),
    ],
)
def test_named_cli_problems(argv: tuple[str, ...], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, err = run(capsys, *argv, "--dry-run")
    assert status == 2 and says in err


def test_bai2_amounts_past_any_balance_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bank = (EXAMPLES / "bank.bai2").read_text()
    for amount in ("1" + "0" * 26, "9" * 4300):
        path = tmp_path / "bank.bai2"
        path.write_text(bank.replace("015,13125000000", f"015,{amount}"))
        status, err = run(capsys, "ingest", str(path), "--depositories", DEPOSITORIES, "--dry-run")
        assert status == 2 and "amount of type code 015" in err and "more than 20 digits" in err


def test_a_csv_header_field_over_128_kb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text("segment,account," + "x" * 140_000 + "\n" + (EXAMPLES / "ledger.csv").read_text())
    status, err = run(capsys, "ingest", str(path), "--format", "csv", "--dry-run")
    assert status == 2 and f"{path}:1: the header row is not CSV" in err


def test_a_filing_amount_of_a_lone_comma(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    filing = sorted(REFERENCE.glob("*.txt"))[0].read_text()
    path = tmp_path / "filing.txt"
    path.write_text(filing.replace("<u>5,180,390,001</u>", "<u>,</u>", 1))
    status, err = run(capsys, "statement", "parse", str(path))
    assert status == 1 and "missing: 4d2 line 1A [7010]: no legible amount printed before the code" in err
