"""Issue #13 through `segwatch replay`: the example day (close excess 100M; 20M, 20M, a customer withdrawal,
20M, 20M on the next morning with balance ticks between; the next day afresh), with the daily computations
given as StatementRecords (`--baselines`), black-box through the command line."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from schemas.alerts import Alert
from schemas.controls import DisbursementDecision
from schemas.statements import StatementRecord
from segwatch.cli import main

M = 1_000_000
DAY1, DAY2 = date(2026, 11, 19), date(2026, 11, 20)
CUT1, CUT2 = "2026-11-19T23:00:00+00:00", "2026-11-20T23:00:00+00:00"
MORNING = datetime.fromisoformat("2026-11-20T14:00:00+00:00")


def at(minutes: int, base: datetime = MORNING) -> str:
    return (base + timedelta(minutes=minutes)).isoformat()


def bank(eid: str, when: str, millions: int) -> dict[str, Any]:
    return {
        "type": "depository_balance",
        "event_id": eid,
        "source": "bank",
        "as_of": when,
        "segment": "4d2",
        "depository": "BANK-1",
        "line": "7070",
        "currency": "USD",
        "location": "us",
        "amount": f"{millions * M}.00",
    }


def disb(eid: str, when: str, millions: int, *, customer: bool = False, approval: str | None = None) -> dict[str, Any]:
    return {
        "type": "disbursement",
        "event_id": eid,
        "source": "treasury",
        "as_of": when,
        "segment": "4d2",
        "amount": f"{millions * M}.00",
        "recipient": "Customer C-9" if customer else "Holdco LLC (parent)",
        "purpose": "withdrawal for a customer" if customer else "dividend to the parent",
        "for_customer_benefit": customer,
        "approval": approval,
    }


def statement(day: date, cutoff: str, excess_millions: int) -> StatementRecord:
    return StatementRecord(
        business_day=day,
        segment="4d2",
        kind="INITIAL",
        version=1,
        cutoff=datetime.fromisoformat(cutoff),
        computed_at=datetime.fromisoformat(cutoff) + timedelta(minutes=5),
        lines={"7190": Decimal(excess_millions * M)},
    )


def example() -> list[dict[str, Any]]:
    ref = "CFO-MEMO-7"
    return [
        {
            "type": "management_target",
            "event_id": "t1",
            "source": "treasury",
            "as_of": "2026-11-19T15:00:00+00:00",
            "segment": "4d2",
            "amount": f"{10 * M}.00",
        },
        bank("b0", "2026-11-19T15:01:00+00:00", 1100),
        {
            "type": "account_balance",
            "event_id": "a1",
            "source": "ledger",
            "as_of": "2026-11-19T15:02:00+00:00",
            "segment": "4d2",
            "account": "C-1",
            "currency": "USD",
            "cash": f"{1000 * M}.00",
            "securities": "0",
            "unrealized": "0",
            "long_options": "0",
            "short_options": "0",
        },  # excess 100M at the close of DAY1
        disb("d1", at(0), 20),
        bank("b1", at(1), 1080),  # the first 20M has left the bank: live excess 80M
        disb("d2", at(10), 20, approval=ref),
        bank("b2", at(11), 1081),
        disb("c1", at(20), 5, customer=True),
        bank("b3", at(21), 1060),
        disb("d3", at(30), 20, approval=ref),
        bank("b4", at(31), 1040),
        disb("d4", at(40), 20, approval=ref),
        bank("b5", at(41), 1100),  # topped up: DAY2 closes at 100M
        disb("d5", at(15 * 60, datetime.fromisoformat(CUT2)), 20),  # the next morning, after DAY2's close
    ]


def replay(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    events = tmp_path / "events.ndjson"
    events.write_text("".join(json.dumps(e) + "\n" for e in example()), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["replay", str(events), *args])
    return status, out.getvalue(), err.getvalue()


def test_the_issue_example_through_segwatch_replay(tmp_path: Path) -> None:
    baselines = tmp_path / "closes.ndjson"
    baselines.write_text(
        statement(DAY1, CUT1, 100).model_dump_json() + "\n" + statement(DAY2, CUT2, 100).model_dump_json() + "\n",
        encoding="utf-8",
    )
    status, out, err = replay(tmp_path, "--baselines", str(baselines))
    assert status == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    got = [DisbursementDecision.model_validate(r) for r in lines if r["type"] == "disbursement_decision"]
    assert [d.correlation_id for d in got] == ["d1", "d2", "c1", "d3", "d4", "d5"]
    assert [d.needs_approval for d in got] == [False, True, False, True, True, False]
    assert [d.outcome for d in got] == [
        "within_limit",
        "needs_approval",
        "within_limit",
        "needs_approval",
        "needs_approval",
        "within_limit",
    ]
    assert [d.aggregate for d in got] == [v * M for v in (20, 40, 40, 60, 80, 20)]
    assert all(d.basis == "daily_and_live" for d in got)
    assert got[0].baseline is not None and got[0].baseline.business_day == DAY1
    assert got[5].baseline is not None and got[5].baseline.business_day == DAY2 and got[5].prior == 0
    notices = [Alert.model_validate(r) for r in lines if r["type"] == "alert" and r["state"] == "notice"]
    assert [n.correlation_id for n in notices] == ["d2", "d3", "d4"]
    assert {n.rule for n in notices} == {"disbursement_25pct"} and not any(n.page for n in notices)
    texts = [r for r in lines if r["type"] == "disbursement_notice"]
    assert len(texts) == 6 and {t["audience"] for t in texts} == {"exchange_audit", "cftc_dsro"}
    # The summary counts what was printed (the close's own statements and day alerts come too).
    alert_lines = sum(r["type"] == "alert" for r in lines)
    assert f"{alert_lines} alert records," in err and len(got) + len(texts) <= alert_lines + len(lines)


def test_without_baselines_the_live_test_alone_applies_and_says_so(tmp_path: Path) -> None:
    status, out, err = replay(tmp_path)
    assert status == 0, err
    got = [
        DisbursementDecision.model_validate_json(line)
        for line in out.splitlines()
        if '"type":"disbursement_decision"' in line
    ]
    # Before the first close the live test alone applies, and the record says so; the twin's own closes of
    # the events' business days (the BusinessDay stage) are the baselines after that.
    assert got[0].basis == "live_only"
    assert any("no daily computation yet" in r for r in got[0].reasons)


def test_a_bad_baselines_line_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "closes.ndjson"
    bad.write_text('{"type": "baseline", "segment": "4d2"}\n', encoding="utf-8")
    status, _, err = replay(tmp_path, "--baselines", str(bad))
    assert status == 2 and "closes.ndjson:1" in err and "business_day" in err
