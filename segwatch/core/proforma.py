"""The pro-forma what-if before an intraday withdrawal of residual interest (JAC Regulatory Alert 18-04).

Pure: `what_if(request, ...)` answers a `WhatIfRequest` (the body of `POST /v1/what-if`) from what the caller
knows — the segment's last daily computation (`Baseline`), its live excess, its management target, the
withdrawals not for customers already made since the daily computation (the 25% window's aggregate), and
whether the prior business day's statement has been filed. No clock, no I/O.

Two bases, each with its pro-forma excess, excess over target and 25% test:

    daily  baseline excess − withdrawn since it + deposits − estimated debits − proposed withdrawals
           (JAC 18-04: the last daily computation adjusted for the day's withdrawals and deposits and the
           debits and deficits estimated since); 25% of the baseline excess (Reg. 1.23(c), 30.7(g), 22.17)
    live   live excess − proposed withdrawals (the live figures already carry what reached the books; a
           deposit counts there once its balance arrives); 25% of the live excess (CBOT Rule 971.E.1)

The 25% tests compare the largest proposed withdrawal alone and `withdrawn + proposed` with each limit
("exceeds" is strict). Verdict, the worst reason winning (each reason names its regulation):

    refused         the prior day's statement is not filed; no daily computation, live figures or target
                    known (compliance cannot be shown); a pro-forma excess under 0 (deficiency) or under
                    the management target (on either basis)
    needs_approval  a 25% test fails: written pre-approval by the CEO or CFO first, then the notices
    allowed         none of the above
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from schemas.controls import Baseline, ProForma, Reason, Verdict, WhatIfRequest, WhatIfResponse
from segwatch.core.catalogue import ZERO
from segwatch.core.controls import DAILY_REGULATION, LIVE_REGULATION, Controls, Live, quarter
from segwatch.core.rules import SEGMENT_NAMES, usd
from segwatch.errors import InputError

JAC_18_04: Final = "JAC Regulatory Alert 18-04"
FILED_REGULATION: Final = (
    f"{JAC_18_04}: residual interest is withdrawn only after the prior day's segregation computation is filed"
    " (CFTC Reg. 1.32; CBOT Rule 971.B)"
)
TARGET_REGULATION: Final = (
    f"{JAC_18_04}: the withdrawal may not take the excess under the management target (CFTC Reg. 1.11;"
    " NFA Financial Requirements Section 16(a))"
)
DEFICIENCY_REGULATION: Final[Mapping[str, str]] = MappingProxyType(
    {
        "4d2": f"CEA 4d(2), CFTC Reg. 1.20 and 1.23: only the FCM's residual interest may be withdrawn; {JAC_18_04}",
        "30.7": f"CFTC Reg. 30.7: only the FCM's residual interest may be withdrawn; {JAC_18_04}",
        "4df": f"CEA 4d(f), CFTC Reg. 22.2 and 22.17: only the FCM's residual interest may be withdrawn; {JAC_18_04}",
    }
)
_RANK: Final[Mapping[Verdict, int]] = MappingProxyType({"allowed": 0, "needs_approval": 1, "refused": 2})


def _basis(
    excess: Decimal,
    withdrawn: Decimal,
    deposits: Decimal,
    debits: Decimal,
    proposed: Decimal,
    largest: Decimal,
    target: Decimal | None,
) -> ProForma:
    pro_forma = excess - withdrawn + deposits - debits - proposed
    limit = quarter(excess)
    return ProForma(
        excess=excess,
        withdrawn=withdrawn,
        deposits=deposits,
        estimated_debits=debits,
        proposed=proposed,
        pro_forma_excess=pro_forma,
        target=target,
        excess_over_target=pro_forma - target if target is not None else None,
        limit=limit,
        alone_exceeds=largest > limit,
        aggregate_exceeds=withdrawn + proposed > limit,
    )


def what_if(
    request: WhatIfRequest,
    *,
    baseline: Baseline | None,
    live: Live | None,
    target: Decimal | None,
    prior_statement_filed: bool,
    withdrawn: Decimal = ZERO,
    now: datetime,
) -> WhatIfResponse:
    """The JAC 18-04 pro-forma of one proposal. `withdrawn`: disbursements not for customers already made since
    the daily computation (`Controls.aggregate`); `target`: the segment's management target (None: not set)."""
    segment = request.segment
    _check_inputs(segment, baseline, live, withdrawn)
    proposed = sum((w.amount for w in request.withdrawals), ZERO)
    largest = max(w.amount for w in request.withdrawals)
    deposits = sum((d.amount for d in request.deposits), ZERO)
    debits = request.estimated_debits

    daily = (
        _basis(baseline.excess, withdrawn, deposits, debits, proposed, largest, target)
        if baseline is not None
        else None
    )
    live_pf = _live_basis(live, withdrawn, proposed, largest, target) if live is not None else None
    reasons = [
        *_unknown_reasons(prior_statement_filed, daily, live_pf, target),
        *_excess_reasons(segment, daily, live_pf, target),
        *_quarter_reasons(segment, daily, live_pf, withdrawn, proposed, largest),
    ]
    verdict: Verdict = max((r.verdict for r in reasons), key=_RANK.__getitem__, default="allowed")
    needs = any(r.verdict == "needs_approval" for r in reasons)
    return WhatIfResponse(
        proposal_id=request.proposal_id,
        segment=segment,
        verdict=verdict,
        needs_approval=needs,
        prior_statement_filed=prior_statement_filed,
        baseline_business_day=baseline.business_day if baseline is not None else None,
        daily=daily,
        live=live_pf,
        live_figures_version=live.version if live is not None else None,
        reasons=reasons,
        summary=_summary(segment, verdict, proposed, reasons),
        evaluated_at=now,
    )


def _check_inputs(segment: str, baseline: Baseline | None, live: Live | None, withdrawn: Decimal) -> None:
    """The caller's state must be of the request's segment, and a sum of disbursements is never negative."""
    for name, held in (("baseline", baseline), ("live", live)):
        if held is not None and held.segment != segment:
            raise InputError(name, f"is of segment {held.segment}, the request of {segment}")
    if withdrawn < ZERO:
        raise InputError("withdrawn", f"a sum of disbursements is never negative, got {withdrawn}")


def _live_basis(
    live: Live, withdrawn: Decimal, proposed: Decimal, largest: Decimal, target: Decimal | None
) -> ProForma:
    """The live basis: the live figures already reflect what has been withdrawn, deposited and debited, so only
    the proposal moves them; the aggregate 25% test still counts what was withdrawn since the daily computation."""
    pf = _basis(live.excess, ZERO, ZERO, ZERO, proposed, largest, target)
    return pf.model_copy(update={"withdrawn": withdrawn, "aggregate_exceeds": withdrawn + proposed > pf.limit})


def _reason(code: str, verdict: Verdict, regulation: str, message: str) -> Reason:
    return Reason.model_validate({"code": code, "verdict": verdict, "regulation": regulation, "message": message})


def _unknown_reasons(
    prior_statement_filed: bool, daily: ProForma | None, live_pf: ProForma | None, target: Decimal | None
) -> list[Reason]:
    """Refusals because compliance cannot be shown: the prior statement unfiled, or a figure not known."""
    reasons: list[Reason] = []
    if not prior_statement_filed:
        reasons.append(
            _reason(
                "prior_statement_not_filed",
                "refused",
                FILED_REGULATION,
                "the prior business day's segregation statement has not been filed yet",
            )
        )
    if daily is None:
        reasons.append(
            _reason(
                "no_daily_computation",
                "refused",
                JAC_18_04,
                "no daily computation is known: the pro-forma cannot start from it",
            )
        )
    if live_pf is None:
        reasons.append(
            _reason(
                "no_live_figures",
                "refused",
                LIVE_REGULATION,
                "no live figures are known: the most recent calculation of excess cannot be checked",
            )
        )
    if target is None:
        reasons.append(
            _reason(
                "no_target",
                "refused",
                TARGET_REGULATION,
                "no management target is set for the segment: nothing shows the withdrawal keeps the excess above it",
            )
        )
    return reasons


def _excess_reasons(
    segment: str, daily: ProForma | None, live_pf: ProForma | None, target: Decimal | None
) -> list[Reason]:
    """Refusals because a pro-forma excess (on either basis) is a deficiency or under the management target."""
    reasons: list[Reason] = []
    for label, pf in (("the last daily computation", daily), ("the live figures", live_pf)):
        if pf is None:
            continue
        if pf.pro_forma_excess < ZERO:
            reasons.append(
                _reason(
                    "deficiency",
                    "refused",
                    DEFICIENCY_REGULATION[segment],
                    f"from {label}, the pro-forma excess is {usd(pf.pro_forma_excess)}: a DEFICIENCY",
                )
            )
        elif target is not None and pf.pro_forma_excess < target:
            reasons.append(
                _reason(
                    "under_target",
                    "refused",
                    TARGET_REGULATION,
                    f"from {label}, the pro-forma excess {usd(pf.pro_forma_excess)} is under the"
                    f" management target {usd(target)} by {usd(target - pf.pro_forma_excess)}",
                )
            )
    return reasons


def _quarter_reasons(
    segment: str,
    daily: ProForma | None,
    live_pf: ProForma | None,
    withdrawn: Decimal,
    proposed: Decimal,
    largest: Decimal,
) -> list[Reason]:
    """Pre-approval needed because the largest withdrawal alone, or with those already made, exceeds 25% of an
    excess."""
    reasons: list[Reason] = []
    for code, label, pf, reg in (
        ("exceeds_25pct_daily", "the last daily computation", daily, DAILY_REGULATION[segment]),
        ("exceeds_25pct_live", "the live figures", live_pf, LIVE_REGULATION),
    ):
        if pf is not None and (pf.alone_exceeds or pf.aggregate_exceeds):
            which = (
                f"{usd(largest)} alone"
                if pf.alone_exceeds
                else f"{usd(withdrawn + proposed)} with the {usd(withdrawn)} already withdrawn"
            )
            reasons.append(
                _reason(
                    code,
                    "needs_approval",
                    f"{reg}; CBOT Rule 971.E",
                    f"{which} exceeds 25% of the excess of {label} ({usd(pf.excess)}; limit"
                    f" {usd(pf.limit)}): written pre-approval by the CEO or CFO, then immediate notice",
                )
            )
    return reasons


def _summary(segment: str, verdict: Verdict, proposed: Decimal, reasons: list[Reason]) -> str:
    """One line for people: the verdict and, when refused, every refusal's message."""
    name = SEGMENT_NAMES[segment]
    if verdict == "allowed":
        return f"{name}: withdrawal of {usd(proposed)} allowed"
    if verdict == "needs_approval":
        return f"{name}: withdrawal of {usd(proposed)} needs CEO/CFO written pre-approval"
    return f"{name}: withdrawal of {usd(proposed)} REFUSED: " + "; ".join(
        r.message for r in reasons if r.verdict == "refused"
    )


def what_if_from(
    controls: Controls,
    request: WhatIfRequest,
    *,
    target: Decimal | None,
    prior_statement_filed: bool,
    now: datetime,
) -> WhatIfResponse:
    """`what_if` with the baseline, live excess and window aggregate of a `Controls` state."""
    segment = request.segment
    return what_if(
        request,
        baseline=controls.baselines.get(segment),
        live=controls.live.get(segment),
        target=target,
        prior_statement_filed=prior_statement_filed,
        withdrawn=controls.aggregate(segment),
        now=now,
    )
