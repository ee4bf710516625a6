"""`segwatch replay`: the pipeline's offline twin, tested black-box through the command line.

Each test writes an events file, runs the command and reads the NDJSON it prints (the alert topic's schema).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas.alerts import Alert
from schemas.controls import DisbursementDecision
from schemas.records import Figures
from schemas.statements import StatementRecord
from segwatch.cli import main
from segwatch.cli.dayclose import statement_at_close
from segwatch.core import statement
from segwatch.core.calendar import BusinessCalendar
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.twin import EventClock, Twin
from segwatch.forms.parse import parse_filing
from segwatch.sample import LATE_CORRECTION, Day
from tests.conftest import REFERENCE
from tests.support.replay_events import DAY, account, bank, disbursement, fx, ndjson
from tests.support.sample_day import EXPECTED_ALERTS, EXPECTED_STATEMENTS


def segwatch(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "segwatch.cli", *args], input=stdin, capture_output=True, text=True, check=False
    )


def replay(tmp_path: Path, events: list[dict[str, Any]] | str, *args: str) -> subprocess.CompletedProcess[str]:
    """`segwatch replay` in this process (the CLI's own entry point; the subprocess tests below check the rest)."""
    path = tmp_path / "events.ndjson"
    path.write_text(events if isinstance(events, str) else ndjson(events), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["replay", str(path), *args])
    return subprocess.CompletedProcess(["segwatch", "replay"], status, out.getvalue(), err.getvalue())


def alerts(result: subprocess.CompletedProcess[str]) -> list[Alert]:
    return [Alert.model_validate_json(line) for line in result.stdout.splitlines() if '"type":"alert"' in line]


def decisions(result: subprocess.CompletedProcess[str]) -> list[DisbursementDecision]:
    return [
        DisbursementDecision.model_validate_json(line)
        for line in result.stdout.splitlines()
        if '"type":"disbursement_decision"' in line
    ]


def transitions(result: subprocess.CompletedProcess[str]) -> list[tuple[str, str, str]]:
    return [(a.segment, a.rule, a.state) for a in alerts(result)]


def test_deficiency_fires_then_resolves_with_one_incident_id(tmp_path: Path) -> None:
    result = replay(tmp_path, DAY)
    assert result.returncode == 0, result.stderr
    assert transitions(result) == [
        ("4d2", "under_target", "firing"),
        ("4d2", "deficiency", "firing"),
        ("4d2", "deficiency", "resolved"),
        ("4d2", "under_target", "resolved"),
    ]
    records = alerts(result)
    firing, resolved = (a for a in records if a.rule == "deficiency")
    assert firing.alert_id == resolved.alert_id
    assert firing.page and firing.severity == "critical" and not resolved.page
    assert firing.correlation_id == "b2" and resolved.correlation_id == "b3"
    assert firing.figures is not None and firing.figures.excess == Decimal("-50.00")
    assert "DEFICIENCY of $50.00" in firing.summary
    assert "4 alert records" in result.stderr


def test_under_target_alone(tmp_path: Path) -> None:
    result = replay(tmp_path, [*DAY[:3], bank("b2", 3, "1050.00")])
    assert result.returncode == 0, result.stderr
    [alert] = alerts(result)
    assert (alert.rule, alert.state, alert.severity, alert.page) == ("under_target", "firing", "warning", False)
    assert alert.figures is not None and alert.figures.excess_over_target == Decimal("-50.00")


def test_missing_fx_fires_and_resolves_when_the_rate_arrives(tmp_path: Path) -> None:
    events = [*DAY[:3], bank("j1", 3, "500000", currency="JPY", depository="BANK-JP"), fx("r1", 4, "JPY", "0.0067")]
    result = replay(tmp_path, events)
    assert result.returncode == 0, result.stderr
    got = alerts(result)
    assert [(a.rule, a.state) for a in got] == [("missing_fx", "firing"), ("missing_fx", "resolved")]
    assert got[0].figures is not None and got[0].figures.missing_fx == ["JPY"]
    assert got[0].correlation_id == "j1"


def test_a_disbursement_over_25_percent_gets_a_decision_and_a_notice(tmp_path: Path) -> None:
    # No daily computation: the live excess 200 → the limit is 50. 40 alone is within it; 20 more makes the
    # aggregate 60: it needs approval; it names one segwatch does not hold, so: needs_approval, a warning notice.
    events = [*DAY[:3], disbursement("d1", 5, "40.00"), disbursement("d2", 6, "20.00", approval="CFO-7")]
    result = replay(tmp_path, events)
    assert result.returncode == 0, result.stderr
    first, second = decisions(result)
    assert (first.correlation_id, first.needs_approval, first.basis) == ("d1", False, "live_only")
    assert (second.correlation_id, second.needs_approval, second.outcome) == ("d2", True, "needs_approval")
    [notice] = alerts(result)
    assert (notice.rule, notice.state, notice.severity) == ("disbursement_25pct", "notice", "warning")
    assert notice.disbursement is not None and notice.disbursement.event_id == "d2"
    assert notice.disbursement.aggregate == Decimal("60.00") and notice.disbursement.limit == Decimal("50.00")
    texts = [json.loads(line) for line in result.stdout.splitlines() if '"type":"disbursement_notice"' in line]
    assert {t["audience"] for t in texts} == {"exchange_audit", "cftc_dsro"}
    assert all("CFO-7" in t["text"] for t in texts)


def test_a_disbursement_before_any_figures_needs_approval_and_is_a_violation_without_one(tmp_path: Path) -> None:
    result = replay(tmp_path, [disbursement("d1", 0, "40.00")])
    assert result.returncode == 0, result.stderr
    [decision] = decisions(result)
    assert (decision.basis, decision.needs_approval, decision.outcome, decision.page) == (
        "none",
        True,
        "violation",
        True,
    )
    [notice] = alerts(result)
    assert (notice.rule, notice.severity, notice.page, notice.figures) == (
        "disbursement_violation",
        "critical",
        True,
        None,
    )


def test_duplicates_and_reordering_within_a_state_change_nothing(tmp_path: Path) -> None:
    clean = replay(tmp_path, DAY)
    # Every event twice, and older balances of the same keys arriving after newer ones: the newest as-of wins.
    noisy = [
        DAY[0],
        DAY[0],
        DAY[1],
        account("a0", 0, "7.00"),
        DAY[2],
        DAY[1],
        DAY[3],
        bank("b0", 0, "1.00"),
        DAY[3],
        DAY[4],
        DAY[4],
        DAY[2],
    ]
    again = replay(tmp_path, noisy)
    assert again.returncode == 0, again.stderr

    def facts(result: subprocess.CompletedProcess[str]) -> list[tuple[Any, ...]]:
        # The same alerts on the same figures; versions (and so alert ids) count the extra figures records.
        return [(a.segment, a.rule, a.state, a.correlation_id, a.figures and a.figures.excess) for a in alerts(result)]

    assert facts(again) == facts(clean)


def test_figures_option_prints_each_change_once_with_growing_versions(tmp_path: Path) -> None:
    result = replay(tmp_path, [*DAY, DAY[4]], "--figures")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    figures = [Figures.model_validate(r) for r in lines if r["type"] == "figures"]
    assert [f.version for f in figures] == [1, 2, 3, 4]  # none for the target alone; none for the duplicate
    assert figures[-1].excess == Decimal("150.00") and figures[-1].last_event_id == "b3"
    assert sum(r["type"] == "alert" for r in lines) == 4


def test_invalid_lines_are_reported_with_line_field_and_reason_and_the_rest_replayed(tmp_path: Path) -> None:
    bad = dict(DAY[3], amount="12.345")
    text = ndjson(DAY[:3]) + "{not json\n" + json.dumps(bad) + "\n" + ndjson(DAY[3:])
    result = replay(tmp_path, text)
    assert result.returncode == 1
    assert "line 4: (record): not valid JSON" in result.stderr
    assert "line 5: amount: Decimal input should have no more than 2 decimal places" in result.stderr
    assert "Traceback" not in result.stderr
    assert "2 invalid lines" in result.stderr
    assert len(transitions(result)) == 4  # the valid lines were all replayed


def test_a_json_string_holding_u2028_is_one_line(tmp_path: Path) -> None:
    # U+2028 and U+0085 inside a JSON string must not split the line (str.splitlines would).
    first = json.dumps(dict(DAY[1], source="ledger\u2028x\x85y"), ensure_ascii=False)
    text = ndjson(DAY[:1]) + first + "\n" + ndjson(DAY[2:])
    result = replay(tmp_path, text)
    assert result.returncode == 0, result.stderr
    assert len(transitions(result)) == 4


def test_the_clock_is_event_time_by_default_or_fixed(tmp_path: Path) -> None:
    default = alerts(replay(tmp_path, DAY))
    assert [a.at.isoformat() for a in default] == [
        "2026-03-02T15:03:00+00:00",
        "2026-03-02T15:03:00+00:00",
        "2026-03-02T15:04:00+00:00",
        "2026-03-02T15:04:00+00:00",
    ]
    fixed = alerts(replay(tmp_path, DAY, "--now", "2030-01-01T00:00:00+00:00"))
    assert {a.at.isoformat() for a in fixed} == {"2030-01-01T00:00:00+00:00"}


@pytest.mark.parametrize("now", ["yesterday", "2030-01-01T00:00:00"])
def test_a_bad_clock_is_refused(tmp_path: Path, now: str) -> None:
    result = replay(tmp_path, DAY, "--now", now)
    assert result.returncode == 2
    assert "--now" in result.stderr and "Traceback" not in result.stderr


def test_through_the_installed_command(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_text(ndjson(DAY))
    result = segwatch("replay", str(path))
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["rule"] for line in result.stdout.splitlines()] == [
        "under_target",
        "deficiency",
        "deficiency",
        "under_target",
    ]


def test_a_missing_file_is_refused() -> None:
    result = segwatch("replay", "/nonexistent/events.ndjson")
    assert result.returncode == 2
    assert "/nonexistent/events.ndjson: No such file or directory" in result.stderr


def test_help_states_the_difference_from_the_live_pipeline() -> None:
    result = segwatch("replay", "--help")
    assert result.returncode == 0
    assert "50 ms" in result.stdout and "exit status" in result.stdout


@pytest.mark.parametrize("seed", [11, 12])
def test_the_sample_day_in_its_phases_gives_the_alerts_the_live_pipeline_publishes(seed: int) -> None:
    # The e2e test posts the day phase by phase and waits for the figures after each: the calculator takes a
    # phase as one batch (its coalescing window), so the twin does too (Twin.feed_batch). Event by event, the
    # opening would pass through states the live figures never show (funds before the customers they cover).
    twin = Twin(clock=EventClock())
    records = [r for _, events in Day(accounts=300, events=200, seed=seed).phases() for r in twin.feed_batch(events)]
    got = [r.value for r in records if isinstance(r.value, Alert)]
    assert [(a.segment, a.rule, a.state) for a in got] == EXPECTED_ALERTS  # what tests/e2e expects live
    ids: dict[str, set[str]] = {}
    for a in got:
        ids.setdefault(a.rule, set()).add(a.alert_id)
    assert all(len(v) == 1 for v in ids.values())
    # And the day closes on the 2017 filing, line by line, as the live pipeline does.
    last: dict[str, Figures] = {r.value.segment: r.value for r in records if isinstance(r.value, Figures)}
    filed = parse_filing((REFERENCE / "000_a00a1cb97de91a10.txt").read_text())
    for sid in SEGMENT_IDS:
        assert last[sid].lines == statement.complete(sid, filed[sid]), sid
    # The business day: the close, then the late balance that amends 4d(2) to the filing.
    statements = [r.value for r in records if isinstance(r.value, StatementRecord)]
    assert [(s.segment, s.kind, s.version) for s in statements] == EXPECTED_STATEMENTS
    amended = statements[-1]
    events = [ev for _, evs in Day(accounts=300, events=200, seed=seed).phases() for ev in evs]
    assert amended.lines == statement_at_close(events, amended.business_day, BusinessCalendar())["4d2"]
    # The close equals the live figures at its cut-off (the filing): the bank without its acknowledgment letter
    # (issue #14) is out of both.
    assert amended.lines == last["4d2"].lines
    assert statements[0].lines["7190"] == amended.lines["7190"] - LATE_CORRECTION


def test_shuffling_the_sample_day_changes_no_closing_figure(tmp_path: Path) -> None:
    # Events are facts as of a time: any order of the same events ends on the same figures.
    day = segwatch("sample", "--accounts", "120", "--events", "60", "--seed", "5").stdout.splitlines()
    lines = day[:]
    random.Random(3).shuffle(lines)

    def closing(text: list[str]) -> dict[str, dict[str, Decimal]]:
        result = replay(tmp_path, "\n".join(text) + "\n", "--figures")
        assert result.returncode == 0, result.stderr
        out = [json.loads(line) for line in result.stdout.splitlines()]
        # Compared as numbers: a zero total may print as "0" or "0.00" depending on the order.
        return {r["segment"]: {c: Decimal(a) for c, a in r["lines"].items()} for r in out if r["type"] == "figures"}

    assert closing(lines) == closing(day)
