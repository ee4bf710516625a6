"""The JAC 18-04 pro-forma what-if: pro-forma excess from the daily computation and the live figures, the 25%
tests, and a verdict whose every reason names its regulation."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.controls import Baseline, WhatIfRequest, WhatIfResponse
from schemas.errors import input_errors
from segwatch.core.controls import Controls, Live
from segwatch.core.proforma import what_if, what_if_from
from segwatch.errors import InputError

M = Decimal(1_000_000)
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
BASE = Baseline(
    segment="4d2", business_day=date(2026, 11, 19), cutoff=datetime(2026, 11, 19, 23, 0, tzinfo=UTC), excess=100 * M
)
LIVE = Live(segment="4d2", version=9, excess=100 * M, as_of=NOW)


def request(*amounts: Decimal, **extra: Any) -> WhatIfRequest:
    return WhatIfRequest.model_validate(
        {
            "segment": "4d2",
            "proposal_id": "prop-1",
            "withdrawals": [{"amount": str(a), "recipient": "Holdco LLC", "purpose": "dividend"} for a in amounts],
            **extra,
        }
    )


def ask(req: WhatIfRequest, **changes: Any) -> WhatIfResponse:
    kwargs: dict[str, Any] = {
        "baseline": BASE,
        "live": LIVE,
        "target": 40 * M,
        "prior_statement_filed": True,
        "now": NOW,
    }
    kwargs.update(changes)
    return what_if(req, **kwargs)


def test_a_small_withdrawal_is_allowed_with_both_pro_formas() -> None:
    r = ask(request(10 * M))
    assert (r.verdict, r.needs_approval, r.reasons) == ("allowed", False, [])
    assert r.daily is not None and r.live is not None
    assert (r.daily.pro_forma_excess, r.daily.excess_over_target, r.daily.limit) == (90 * M, 50 * M, 25 * M)
    assert (r.live.pro_forma_excess, r.live_figures_version) == (90 * M, 9)
    assert r.proposal_id == "prop-1" and r.baseline_business_day == date(2026, 11, 19)


def test_over_25_percent_needs_ceo_cfo_approval() -> None:
    r = ask(request(20 * M, 10 * M))
    assert (r.verdict, r.needs_approval) == ("needs_approval", True)
    assert r.daily is not None and r.daily.aggregate_exceeds and not r.daily.alone_exceeds
    codes = {x.code: x for x in r.reasons}
    assert set(codes) == {"exceeds_25pct_daily", "exceeds_25pct_live"}
    assert "Reg. 1.23(c)" in codes["exceeds_25pct_daily"].regulation
    assert "971.E" in codes["exceeds_25pct_live"].regulation


def test_what_was_already_withdrawn_counts_in_the_daily_pro_forma_and_the_aggregate() -> None:
    r = ask(request(10 * M), withdrawn=20 * M, live=Live("4d2", 10, 80 * M, NOW))
    assert r.daily is not None and r.live is not None
    assert (r.daily.pro_forma_excess, r.live.pro_forma_excess) == (70 * M, 70 * M)
    assert r.verdict == "needs_approval" and r.daily.aggregate_exceeds


def test_a_withdrawal_crossing_the_target_is_refused() -> None:
    r = ask(request(Decimal("20000000.01")), target=80 * M)
    assert r.verdict == "refused"
    under = [x for x in r.reasons if x.code == "under_target"]
    assert len(under) == 2 and all("JAC Regulatory Alert 18-04" in x.regulation for x in under)
    assert r.daily is not None and r.daily.excess_over_target == Decimal("-0.01")
    assert ask(request(20 * M), target=80 * M).verdict == "allowed"  # landing exactly on the target is allowed


def test_estimated_debits_and_deposits_move_the_daily_pro_forma() -> None:
    req = request(10 * M, estimated_debits="55000000", deposits=[{"amount": "4000000"}])
    r = ask(req)
    assert r.daily is not None and r.daily.pro_forma_excess == 39 * M
    assert r.verdict == "refused" and [x.code for x in r.reasons] == ["under_target"]


def test_a_deficiency_is_refused() -> None:
    r = ask(request(10 * M), live=Live("4d2", 10, 5 * M, NOW), target=Decimal(0))
    assert r.verdict == "refused" and "deficiency" in {x.code for x in r.reasons}


def test_before_the_prior_days_statement_is_filed_it_is_refused() -> None:
    r = ask(request(1 * M), prior_statement_filed=False)
    assert (r.verdict, r.prior_statement_filed) == ("refused", False)
    [reason] = r.reasons
    assert reason.code == "prior_statement_not_filed" and "JAC Regulatory Alert 18-04" in reason.regulation


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"baseline": None}, "no_daily_computation"),
        ({"live": None}, "no_live_figures"),
        ({"target": None}, "no_target"),
    ],
)
def test_what_cannot_be_shown_is_refused(changes: dict[str, Any], code: str) -> None:
    r = ask(request(1 * M), **changes)
    assert r.verdict == "refused" and code in {x.code for x in r.reasons}


def test_from_the_controls_state() -> None:
    c = Controls()
    c.on_baseline(BASE)
    c.live["4d2"] = LIVE
    r = what_if_from(c, request(30 * M), target=Decimal(0), prior_statement_filed=True, now=NOW)
    assert r.verdict == "needs_approval" and r.daily is not None and r.daily.alone_exceeds


def test_a_baseline_of_another_segment_is_an_error() -> None:
    with pytest.raises(InputError) as exc:
        ask(request(1 * M), baseline=BASE.model_copy(update={"segment": "4df"}))
    assert exc.value.field == "baseline"


def test_bad_requests_name_the_field() -> None:
    with pytest.raises(ValidationError) as exc:
        WhatIfRequest.model_validate(
            {"segment": "4d2", "withdrawals": [{"amount": "-1", "recipient": "x", "purpose": "y"}]}
        )
    assert [e.field for e in input_errors(exc.value)] == ["withdrawals.0.amount"]
    with pytest.raises(ValidationError):
        WhatIfRequest.model_validate({"segment": "4d2", "withdrawals": []})


def test_the_response_round_trips_as_json() -> None:
    r = ask(request(30 * M))
    assert WhatIfResponse.model_validate_json(r.model_dump_json()) == r
