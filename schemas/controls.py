"""Controls before the money moves: the records of the 25% disbursement rule and of the pro-forma what-if.

- `Baseline`: one daily computation of a segment's excess (the business-day close): what the 25% test of
  Reg. 1.23(c) / 30.7(g) / 22.17 and NFA 16(b) measures against, and where its aggregation window starts.
- `DisbursementDecision`: the decision on one disbursement (within limit / needs approval / approved /
  violation), keyed per disbursement on a compacted topic: the alerter rebuilds its window from them.
- `DisbursementNotice`: the notice a disbursement over 25% owes, to the exchange's Audit Department (CBOT Rule
  971.E.2) or to the CFTC and the DSRO (Reg. 1.23(c), NFA 16(b) through WinJammer), structured and as text.
- `WhatIfRequest` / `WhatIfResponse`: the pro-forma computation of JAC Regulatory Alert 18-04 before an
  intraday withdrawal of residual interest (`POST /v1/what-if`).

Amounts are exact US dollars (Decimal); 25% limits may carry up to four decimal places.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from schemas.alerts import ExactAmount, Severity
from schemas.events import ApprovalRole
from schemas.types import Identifier, Money, NonNegativeMoney, SegmentId, Total

Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]
PositiveMoney = Annotated[Money, Field(gt=0)]

# What happened to a disbursement (also the `outcome` of its decision record):
#   within_limit    no pre-approval needed (or for the benefit of customers: the 25% test does not apply)
#   needs_approval  over 25%: it names a written pre-approval that segwatch does not hold (yet) — confirm it
#   approved        over 25%, and pre-approved in writing (an approval event matched it before it executed)
#   violation       over 25%, executed without the pre-approval it needed (critical, pages)
DecisionOutcome = Literal["within_limit", "needs_approval", "approved", "violation"]
# What the 25% test was made against: the last daily computation and the live figures (both), only the live
# figures (no daily computation yet), only the daily computation (no live figures), or nothing known.
DecisionBasis = Literal["daily_and_live", "live_only", "daily_only", "none"]
NoticeAudience = Literal["exchange_audit", "cftc_dsro"]
Verdict = Literal["allowed", "needs_approval", "refused"]


class Baseline(BaseModel):
    """One daily computation of a segment's excess (residual interest): the close of a business day.

    The 25% window of the segment runs from this computation to the next: it holds the disbursements not for
    the benefit of customers made after `cutoff`. A later `version` of the same business day (an amended
    statement) replaces the excess without restarting the window; a later business day restarts it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    type: Literal["baseline"] = "baseline"
    segment: SegmentId
    business_day: date
    cutoff: AwareDatetime = Field(description="The close: the statement is as of this time.")
    excess: Total = Field(description="The excess (residual interest) the computation reported, line 7190/7380/8730.")
    version: int = Field(default=1, ge=1, description="The statement's version (1 initial; more: amendments).")


class ApprovalInfo(BaseModel):
    """The written pre-approval a disbursement was matched to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: Identifier
    reference: str
    approver: str
    role: ApprovalRole
    approved_at: datetime
    proposal_id: Identifier | None = None
    amount: Total | None = Field(default=None, description="The most it approves; null: no amount stated.")


class LimitTest(BaseModel):
    """The 25% test against one calculation of the excess."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    excess: Total
    limit: ExactAmount = Field(description="25% of the excess (0 when there is no excess).")
    alone_exceeds: bool
    aggregate_exceeds: bool


class BaselineTest(LimitTest):
    """The test against the last daily computation (Reg. 1.23(c), 30.7(g), 22.17; NFA 16(b))."""

    business_day: date
    cutoff: datetime
    version: int


class LiveTest(LimitTest):
    """The test against the live figures: CBOT Rule 971.E.1.a's "most recent calculation of excess"."""

    figures_version: int
    as_of: datetime | None


class WindowItem(BaseModel):
    """One disbursement not for customers in a segment's window (what a notice lists: amount, recipient)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: Identifier
    as_of: datetime
    amount: Total
    recipient: str
    purpose: str


class DisbursementDecision(BaseModel):
    """The decision on one disbursement. Keyed `segment|disbursement|event_id` on a compacted topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    type: Literal["disbursement_decision"] = "disbursement_decision"
    decision_id: str = Field(description="Deterministic: segment and the disbursement's event id.")
    correlation_id: Identifier = Field(description="The disbursement's event id.")
    segment: SegmentId
    as_of: datetime = Field(description="When the disbursement was made.")
    amount: Total
    recipient: str
    purpose: str
    for_customer_benefit: bool
    proposal_id: Identifier | None = None
    approval_reference: str | None = Field(description="The pre-approval the disbursement names; null if none.")
    outcome: DecisionOutcome
    needs_approval: bool = Field(description="True when the 25% test failed (or could not be made).")
    severity: Severity
    page: bool
    basis: DecisionBasis
    baseline: BaselineTest | None = Field(description="The last daily computation; null when none is known yet.")
    live: LiveTest | None = Field(description="The live figures at the decision; null when none are known.")
    prior: Total = Field(description="Disbursements not for customers in the window before this one.")
    aggregate: Total = Field(description="prior + amount (prior alone when this one is for customers).")
    limit: ExactAmount | None = Field(description="The binding (smallest) 25% limit; null when none was known.")
    counted: bool = Field(description="Whether it is part of the window (not for customers, after the cut-off).")
    leaves_deficiency: bool = Field(description="The disbursement(s) exceed the excess they are measured against.")
    approval: ApprovalInfo | None = None
    reasons: list[str] = Field(description="Why the outcome, each with the regulation behind it.")
    regulation: str
    summary: str
    decided_at: datetime

    @property
    def key(self) -> str:
        return f"{self.segment}|disbursement|{self.correlation_id}"


class DisbursementNotice(BaseModel):
    """A notice a disbursement over 25% owes, to one audience, structured and rendered (`text`).

    exchange_audit: CBOT Rule 971.E.2 — (a) confirmation of the CEO/CFO written pre-approval, (b) the amounts
    and recipients, (c) the reasons. cftc_dsro: Reg. 1.23(c) (30.7(g), 22.17) and NFA 16(b) — the same, with
    the estimate of the residual interest after the withdrawal and the CEO/CFO representation of compliance.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    type: Literal["disbursement_notice"] = "disbursement_notice"
    notice_id: str = Field(description="Deterministic: audience, segment and the disbursement's event id.")
    audience: NoticeAudience
    correlation_id: Identifier = Field(description="The disbursement that triggered the notice.")
    segment: SegmentId
    outcome: DecisionOutcome
    pre_approved: bool = Field(description="Whether the written pre-approval is on record (971.E.2.a).")
    approval: ApprovalInfo | None
    approval_reference: str | None
    disbursements: list[WindowItem] = Field(
        description="The disbursement and, when the aggregate crossed 25%, the others of the window (971.E.2.b)."
    )
    total: Total
    reasons: list[str] = Field(description="The purposes stated for the disbursements (971.E.2.c).")
    baseline_business_day: date | None
    baseline_excess: Total | None
    residual_interest_after: Total | None = Field(
        description="Estimated residual interest after the withdrawal: the lower of the daily computation less"
        " the window's aggregate and the live excess less this disbursement; null when neither is known."
    )
    regulation: str
    text: str = Field(description="The notice rendered for sending.")
    at: datetime

    @property
    def key(self) -> str:
        return f"{self.segment}|notice|{self.audience}|{self.correlation_id}"


class ProposedWithdrawal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    amount: PositiveMoney
    recipient: Text
    purpose: Text


class ProposedDeposit(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    amount: PositiveMoney
    description: Text | None = None


class WhatIfRequest(BaseModel):
    """`POST /v1/what-if`: a proposed intraday withdrawal of residual interest from one segment (JAC 18-04).

    `deposits` and `estimated_debits` adjust the last daily computation (deposits of residual interest since
    it; debits and deficits estimated since it); the live figures already carry what has reached the books.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    schema_version: Literal[1] = 1
    type: Literal["what_if_request"] = "what_if_request"
    proposal_id: Identifier | None = Field(
        default=None, description="Names the proposal so an approval event and the disbursement can match it."
    )
    segment: SegmentId
    withdrawals: list[ProposedWithdrawal] = Field(min_length=1, max_length=1000)
    deposits: list[ProposedDeposit] = Field(default_factory=list, max_length=1000)
    estimated_debits: NonNegativeMoney = Field(
        default=Decimal(0), description="Customer debits and deficits estimated since the last daily computation."
    )


class ProForma(BaseModel):
    """The pro-forma excess on one basis, and the 25% test against that basis's excess."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    excess: Total = Field(description="The excess the basis starts from.")
    withdrawn: Total = Field(
        description="Disbursements not for customers since the last daily computation: in the 25% aggregate on"
        " both bases, subtracted on the daily basis only (the live figures already reflect it)."
    )
    deposits: Total = Field(description="Deposits of residual interest since the daily computation (daily basis).")
    estimated_debits: Total = Field(description="Debits and deficits estimated since then (daily basis).")
    proposed: Total
    pro_forma_excess: Total
    target: Total | None
    excess_over_target: Total | None
    limit: ExactAmount
    alone_exceeds: bool
    aggregate_exceeds: bool


class Reason(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Literal[
        "prior_statement_not_filed",
        "no_daily_computation",
        "no_live_figures",
        "no_target",
        "deficiency",
        "under_target",
        "exceeds_25pct_daily",
        "exceeds_25pct_live",
    ]
    verdict: Verdict = Field(description="What this reason alone makes of the proposal.")
    regulation: str
    message: str


class WhatIfResponse(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    type: Literal["what_if_response"] = "what_if_response"
    proposal_id: Identifier | None
    segment: SegmentId
    verdict: Verdict
    needs_approval: bool = Field(description="The 25% test failed: CEO/CFO written pre-approval first.")
    prior_statement_filed: bool
    baseline_business_day: date | None
    daily: ProForma | None = Field(description="From the last daily computation; null when none is known.")
    live: ProForma | None = Field(description="From the live figures; null when none are known.")
    live_figures_version: int | None
    reasons: list[Reason]
    summary: str
    evaluated_at: datetime
