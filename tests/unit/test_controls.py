"""The 25% disbursement control (Reg. 1.23(c), 30.7(g), 22.17; NFA 16(b); CBOT Rule 971.E): the window runs
from one daily computation to the next, live ticks never restart it; decisions, notices, idempotence."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from schemas.controls import Baseline, DisbursementDecision, DisbursementNotice
from schemas.events import EVENT_ADAPTER, Disbursement, DisbursementApproval
from schemas.records import Figures
from schemas.types import SegmentId
from segwatch.core.book import Book
from segwatch.core.controls import Controls, DecisionResult, Input, describe_decision, quarter, run

M = Decimal(1_000_000)
DAY1 = date(2026, 11, 19)
DAY2 = date(2026, 11, 20)
CUT1 = datetime(2026, 11, 19, 23, 0, tzinfo=UTC)  # the close of DAY1 (17:00 Chicago)
CUT2 = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)
MORNING = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def baseline(
    excess: Decimal, day: date = DAY1, cutoff: datetime = CUT1, segment: SegmentId = "4d2", version: int = 1
) -> Baseline:
    return Baseline(segment=segment, business_day=day, cutoff=cutoff, excess=excess, version=version)


def figures(version: int, excess: Decimal, segment: SegmentId = "4d2") -> Figures:
    requirement = 1000 * M
    return Figures(
        segment=segment,
        version=version,
        as_of=MORNING,
        computed_at=MORNING,
        lines={},
        requirement=requirement,
        funds=requirement + excess,
        excess=excess,
        target=Decimal(0),
        excess_over_target=excess,
        accounts=1,
        depositories=1,
        last_event_id=f"b-{version}",
    )


def disb(
    event_id: str,
    amount: Decimal,
    *,
    at: datetime = MORNING,
    customer: bool = False,
    segment: str = "4d2",
    **extra: Any,
) -> Disbursement:
    data = {
        "type": "disbursement",
        "event_id": event_id,
        "source": "treasury",
        "as_of": at.isoformat(),
        "segment": segment,
        "amount": str(amount),
        "recipient": "Holdco LLC (parent)",
        "purpose": "dividend to the parent",
        "for_customer_benefit": customer,
        **extra,
    }
    ev = EVENT_ADAPTER.validate_python(data)
    assert isinstance(ev, Disbursement)
    return ev


def approval(
    reference: str,
    *,
    at: datetime = MORNING - timedelta(hours=1),
    amount: Decimal | None = None,
    proposal_id: str | None = None,
    event_id: str = "ap-1",
) -> DisbursementApproval:
    ev = EVENT_ADAPTER.validate_python(
        {
            "type": "disbursement_approval",
            "event_id": event_id,
            "source": "treasury",
            "as_of": at.isoformat(),
            "segment": "4d2",
            "reference": reference,
            "approver": "Jane Doe",
            "role": "cfo",
            "proposal_id": proposal_id,
            "amount": str(amount) if amount is not None else None,
        }
    )
    assert isinstance(ev, DisbursementApproval)
    return ev


def clock() -> datetime:
    return NOW


def decisions(results: list[DecisionResult]) -> list[DisbursementDecision]:
    return [r.decision for r in results]


def test_the_issue_example_within_needs_within_needs_needs_then_within_next_day() -> None:
    """Issue #13: close excess 100M (limit 25M); on the next morning 20M, 20M, a customer withdrawal, 20M, 20M
    with the live excess ticking down between them; the next day's close restarts the window: 20M within.
    The needing ones name a pre-approval segwatch does not hold, so their outcome is needs_approval."""
    t = [MORNING + timedelta(minutes=10 * i) for i in range(6)]
    ref = "CFO-MEMO-7"
    items: list[Input] = [
        baseline(100 * M),
        figures(1, 100 * M),
        disb("d1", 20 * M, at=t[0]),
        figures(2, 80 * M),  # the first 20M has left the bank
        disb("d2", 20 * M, at=t[1], approval=ref),
        figures(3, 80 * M),
        disb("c1", 5 * M, at=t[2], customer=True),
        figures(4, 60 * M),
        disb("d3", 20 * M, at=t[3], approval=ref),
        figures(5, 40 * M),
        disb("d4", 20 * M, at=t[4], approval=ref),
        figures(6, 100 * M),  # the firm tops the segment up; it closes at 100M
        baseline(100 * M, day=DAY2, cutoff=CUT2),
        disb("d5", 20 * M, at=CUT2 + timedelta(hours=15)),
    ]
    out = decisions(run(Controls(), items, now=clock))
    assert [d.correlation_id for d in out] == ["d1", "d2", "c1", "d3", "d4", "d5"]
    assert [d.needs_approval for d in out] == [False, True, False, True, True, False]
    assert [d.outcome for d in out] == [
        "within_limit",
        "needs_approval",
        "within_limit",
        "needs_approval",
        "needs_approval",
        "within_limit",
    ]
    assert [d.aggregate for d in out] == [20 * M, 40 * M, 40 * M, 60 * M, 80 * M, 20 * M]
    first, second = out[0], out[1]
    assert first.basis == "daily_and_live" and first.baseline is not None and first.live is not None
    assert (first.baseline.business_day, first.baseline.excess, first.baseline.limit) == (DAY1, 100 * M, 25 * M)
    assert second.baseline is not None and second.baseline.aggregate_exceeds and not second.baseline.alone_exceeds
    assert second.live is not None and second.live.figures_version == 2 and second.live.limit == 20 * M
    assert out[2].for_customer_benefit and not out[2].counted
    assert out[5].baseline is not None and out[5].baseline.business_day == DAY2 and out[5].prior == 0


def test_live_ticks_do_not_restart_the_window() -> None:
    c = Controls()
    c.on_baseline(baseline(100 * M))
    for version in range(1, 50):
        c.on_figures(figures(version, 100 * M))
        c.process(disb(f"d{version}", 10 * M, at=MORNING + timedelta(seconds=version)), now=NOW)
    assert c.aggregate("4d2") == 490 * M


def test_the_live_test_alone_can_require_approval() -> None:
    """The daily computation says 100M (limit 25M) but the live excess is 60M (limit 15M): 20M needs approval."""
    c = Controls()
    c.on_baseline(baseline(100 * M))
    c.on_figures(figures(7, 60 * M))
    result = c.process(disb("d1", 20 * M), now=NOW)
    assert result is not None
    d = result.decision
    assert d.needs_approval and d.outcome == "violation"
    assert d.baseline is not None and not d.baseline.alone_exceeds
    assert d.live is not None and d.live.alone_exceeds and d.limit == 15 * M
    assert any("CBOT Rule 971.E.1" in r for r in d.reasons)


def test_exactly_25_percent_needs_no_approval() -> None:
    c = Controls()
    c.on_baseline(baseline(Decimal("100.00")))
    c.on_figures(figures(1, Decimal("100.00")))
    result = c.process(disb("d1", Decimal("25.00")), now=NOW)
    assert result is not None and not result.decision.needs_approval
    result = c.process(disb("d2", Decimal("0.01")), now=NOW)
    assert result is not None and result.decision.needs_approval


def test_a_violation_is_critical_pages_and_owes_both_notices() -> None:
    c = Controls()
    c.on_baseline(baseline(100 * M))
    c.on_figures(figures(1, 100 * M))
    result = c.process(disb("d1", 30 * M), now=NOW)
    assert result is not None
    d = result.decision
    assert (d.outcome, d.needs_approval, d.severity, d.page) == ("violation", True, "critical", True)
    assert result.alert is not None
    assert (result.alert.rule, result.alert.state, result.alert.severity, result.alert.page) == (
        "disbursement_violation",
        "notice",
        "critical",
        True,
    )
    assert result.alert.correlation_id == "d1"
    assert {n.audience for n in result.notices} == {"exchange_audit", "cftc_dsro"}
    audit = next(n for n in result.notices if n.audience == "exchange_audit")
    assert not audit.pre_approved and "NONE" in audit.text and "Holdco LLC (parent)" in audit.text
    assert "$30,000,000.00" in audit.text and "dividend to the parent" in audit.text


def test_approved_by_reference_is_info_with_the_confirmation_in_the_notices() -> None:
    c = Controls()
    c.on_baseline(baseline(100 * M))
    c.on_figures(figures(1, 100 * M))
    c.on_approval(approval("CFO-2026-11-20-1", amount=30 * M))
    result = c.process(disb("d1", 30 * M, approval="CFO-2026-11-20-1"), now=NOW)
    assert result is not None
    d = result.decision
    assert (d.outcome, d.needs_approval, d.severity, d.page) == ("approved", True, "info", False)
    assert d.approval is not None and (d.approval.approver, d.approval.role) == ("Jane Doe", "cfo")
    assert result.alert is not None and result.alert.rule == "disbursement_25pct" and not result.alert.page
    for notice in result.notices:
        assert notice.pre_approved and "CONFIRMED" in notice.text and "Jane Doe (CFO)" in notice.text
    regulator = next(n for n in result.notices if n.audience == "cftc_dsro")
    assert regulator.residual_interest_after == 70 * M
    assert "Reg. 1.23(c)" in regulator.regulation and "Representation" in regulator.text


def test_approved_through_the_proposal_it_executes() -> None:
    c = Controls()
    c.on_baseline(baseline(100 * M))
    c.on_approval(approval("CFO-9", proposal_id="prop-1"))
    result = c.process(disb("d1", 30 * M, proposal_id="prop-1"), now=NOW)
    assert result is not None and result.decision.outcome == "approved"
    assert result.decision.approval is not None and result.decision.approval.proposal_id == "prop-1"


@pytest.mark.parametrize(
    ("at", "amount", "why"),
    [
        (MORNING + timedelta(hours=1), None, "came after the disbursement"),
        (MORNING - timedelta(hours=1), 25 * M, "less than the"),
    ],
)
def test_an_approval_after_the_fact_or_for_less_is_a_violation(at: datetime, amount: Decimal | None, why: str) -> None:
    c = Controls()
    c.on_baseline(baseline(100 * M))
    c.on_approval(approval("CFO-1", at=at, amount=amount))
    result = c.process(disb("d1", 30 * M, approval="CFO-1"), now=NOW)
    assert result is not None and result.decision.outcome == "violation" and result.decision.page
    assert any(why in r for r in result.decision.reasons)


def test_an_aggregate_notice_lists_every_disbursement_of_the_window() -> None:
    c = Controls()
    c.on_baseline(baseline(100 * M))
    c.process(disb("d1", 20 * M), now=NOW)
    result = c.process(disb("d2", 10 * M, at=MORNING + timedelta(minutes=1)), now=NOW)
    assert result is not None
    audit = next(n for n in result.notices if n.audience == "exchange_audit")
    assert [i.event_id for i in audit.disbursements] == ["d1", "d2"] and audit.total == 30 * M


def test_without_a_daily_computation_the_live_test_applies_and_the_record_says_so() -> None:
    c = Controls()
    c.on_figures(figures(3, 100 * M))
    within = c.process(disb("d1", 20 * M), now=NOW)
    over = c.process(disb("d2", 10 * M, at=MORNING + timedelta(minutes=1)), now=NOW)
    assert within is not None and over is not None
    assert within.decision.basis == "live_only" and within.decision.baseline is None
    assert not within.decision.needs_approval
    assert any("no daily computation yet" in r for r in within.decision.reasons)
    assert over.decision.needs_approval and over.decision.live is not None and over.decision.live.aggregate_exceeds


def test_with_no_excess_known_at_all_it_needs_approval() -> None:
    result = Controls().process(disb("d1", Decimal("1.00")), now=NOW)
    assert result is not None
    assert (result.decision.basis, result.decision.needs_approval, result.decision.outcome) == (
        "none",
        True,
        "violation",
    )


def test_duplicates_and_replays_change_nothing() -> None:
    c = Controls()
    c.on_baseline(baseline(100 * M))
    first = c.process(disb("d1", 20 * M), now=NOW)
    assert first is not None
    before = c.to_json()
    assert c.process(disb("d1", 20 * M), now=NOW) is None
    assert c.decide(disb("d1", 20 * M), now=NOW) is None
    assert c.to_json() == before and c.aggregate("4d2") == 20 * M
    # an older baseline or figures version arriving late changes nothing either
    assert not c.on_baseline(baseline(90 * M, day=date(2026, 11, 18), cutoff=CUT1 - timedelta(days=1)))
    assert c.to_json() == before


def test_an_amended_statement_of_the_same_day_keeps_the_window() -> None:
    c = Controls()
    c.on_baseline(baseline(100 * M))
    c.process(disb("d1", 20 * M), now=NOW)
    assert c.on_baseline(baseline(60 * M, version=2))
    result = c.process(disb("d2", 1 * M, at=MORNING + timedelta(minutes=1)), now=NOW)
    assert result is not None and result.decision.aggregate == 21 * M
    assert result.decision.needs_approval  # 21M > 25% of the amended 60M = 15M


def test_the_next_close_keeps_only_what_was_made_after_its_cutoff() -> None:
    c = Controls()
    c.on_baseline(baseline(100 * M))
    c.process(disb("before", 10 * M, at=CUT2 - timedelta(hours=1)), now=NOW)
    c.process(disb("after", 5 * M, at=CUT2 + timedelta(minutes=5)), now=NOW)  # processed before the close arrives
    c.on_baseline(baseline(100 * M, day=DAY2, cutoff=CUT2))
    assert [i.event_id for i in c.window("4d2")] == ["after"]
    late = c.process(disb("late", 1 * M, at=CUT2 - timedelta(minutes=1)), now=NOW)
    assert late is not None and not late.decision.counted and late.entry is None
    assert c.aggregate("4d2") == 5 * M


def test_segments_never_share_a_window() -> None:
    c = Controls()
    for segment in ("4d2", "30.7"):
        c.on_baseline(baseline(100 * M, segment=segment))
    c.process(disb("a", 20 * M), now=NOW)
    result = c.process(disb("b", 20 * M, segment="30.7"), now=NOW)
    assert result is not None and result.decision.aggregate == 20 * M and not result.decision.needs_approval


def test_a_deficiency_makes_any_disbursement_need_approval_and_says_under_segregated() -> None:
    c = Controls()
    c.on_baseline(baseline(Decimal(-5) * M))
    result = c.process(disb("d1", Decimal("0.01")), now=NOW)
    assert result is not None
    assert result.decision.needs_approval and result.decision.leaves_deficiency and quarter(Decimal(-5)) == 0
    assert result.decision.severity == "critical"


def test_state_round_trips_and_is_rebuilt_from_its_decision_records() -> None:
    c = Controls()
    c.on_baseline(baseline(100 * M))
    c.on_figures(figures(1, 100 * M))
    c.on_approval(approval("CFO-1"))
    results = [c.process(disb(f"d{i}", 10 * M, at=MORNING + timedelta(minutes=i)), now=NOW) for i in range(3)]
    again = Controls.from_json(c.to_json())
    assert again.to_json() == c.to_json()
    records = [DisbursementDecision.model_validate_json(r.decision.model_dump_json()) for r in results if r]
    rebuilt = Controls.restore([baseline(100 * M)], [figures(1, 100 * M)], [approval("CFO-1")], records)
    assert rebuilt.to_json() == c.to_json()
    assert rebuilt.process(disb("d0", 10 * M), now=NOW) is None


def test_status_shows_baseline_aggregate_and_headroom() -> None:
    c = Controls()
    c.on_baseline(baseline(100 * M))
    c.on_figures(figures(1, 80 * M))
    c.process(disb("d1", 15 * M), now=NOW)
    s = c.status("4d2")
    assert (s.aggregate, s.daily_limit, s.daily_headroom, s.live_limit, s.live_headroom) == (
        15 * M,
        25 * M,
        10 * M,
        20 * M,
        5 * M,
    )


def test_records_serialise_as_the_exported_schemas_describe() -> None:
    c = Controls()
    c.on_baseline(baseline(100 * M))
    result = c.process(disb("d1", 30 * M), now=NOW)
    assert result is not None
    raw = json.loads(result.decision.model_dump_json())
    assert (raw["correlation_id"], raw["needs_approval"], raw["baseline"]["excess"]) == ("d1", True, "100000000")
    for notice in result.notices:
        assert DisbursementNotice.model_validate_json(notice.model_dump_json()) == notice
    assert "needs_approval=true" in describe_decision(result.decision)


def test_the_book_ignores_approvals_and_undermargined_amounts() -> None:
    book = Book()
    assert book.apply(approval("CFO-1")) == frozenset()
