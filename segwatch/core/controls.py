"""Controls before the money moves: the 25% test of each disbursement not for the benefit of customers.

Pure Python: no Kafka, no clock (callers pass `now`), no I/O. Replaces `DisbursementMonitor` of rules.py,
whose window restarted at every figures version (so four 20M disbursements against a 100M excess, with
balance ticks between them, each looked like the first).

The test, per segment (exact Decimal arithmetic; "exceeds" is strict: exactly 25% needs no approval):

    daily  the disbursement alone, and aggregated with every disbursement not for customers in the window,
           against 25% of the excess of the LAST DAILY COMPUTATION (`Baseline`, the business-day close)
           — Reg. 1.23(c) (4d(2)), 30.7(g) (30.7), 22.17 (4d(f)); NFA Financial Requirements Section 16(b)
    live   the same two amounts against 25% of the LIVE excess (the latest figures record)
           — CBOT Rule 971.E.1.a "the most recent calculation of excess"

It needs approval when either test fails. A limit is 25% of the excess, or 0 when there is no excess (any
disbursement then needs approval). With no daily computation yet the live test alone applies (basis
`live_only`, said in the record's reasons); with no live figures the daily one alone (`daily_only`); with
neither, nothing shows the disbursement is within 25%, so it needs approval (basis `none`).

The window: the disbursements not for customers made (as-of) after the baseline's cut-off. It resets only when
the baseline of a LATER business day arrives (its entries made at or before the new cut-off leave it); an
amended statement of the same day (a higher `version`) changes the excess, not the window; live ticks never
touch it. Before any baseline, the window holds every counted disbursement seen. A disbursement made at or
before the held baseline's cut-off arriving late is decided against the current window (conservative) but
not counted in it: the daily computation already reflects it. Disbursements for customers are decided
`within_limit` (the 25% rule does not apply) and are never counted.

Outcomes (`DisbursementDecision.outcome`) of a disbursement — each an executed payment:

    within_limit    needs_approval false                                             info
    needs_approval  over 25%; names a pre-approval (`approval`) that segwatch does   warning
                    not hold: the written pre-approval must be confirmed
    approved        over 25%; a `DisbursementApproval` of the segment matched it      info (critical if it
                    (its `reference` = the disbursement's `approval`, or its            leaves the segment
                    `proposal_id` = the disbursement's), dated at or before it,         under-segregated)
                    for at least its amount
    violation       over 25% and executed without that pre-approval (none named,      critical, pages
                    or the one matched came after it or for less)

Rules and records (alert rule names in schemas/alerts.py):

    disbursement_25pct      notice   warning/info     needs_approval / approved: CBOT Rule 971.E.2 notice to
                                                      the exchange's Audit Department; Reg. 1.23(c) notice
                                                      to the CFTC and the DSRO (NFA 16(b), WinJammer)
    disbursement_violation  notice   critical, pages  executed without the written pre-approval it needed

Every decision needing approval also yields two `DisbursementNotice` records (exchange_audit, cftc_dsro) with
their rendered text. The example of issue #13: close excess 100M (limit 25M); next morning 20M (within),
a tick to 80M, 20M (aggregate 40M > 25M: needs approval), a customer withdrawal (within: not tested), 20M
(60M: needs), 20M (80M: needs); the next day's close restarts the window: 20M (within).

Idempotent: a disbursement's event id is decided once; a duplicate or replay returns None and changes
nothing. `Controls` is serializable (`to_json`/`from_json`) and rebuilt from its inputs and its own decision
records (`Controls.restore`), so the alerter recovers it from the decision topic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from schemas.alerts import Alert, AlertDisbursement, AlertFigures, NoticeRuleName, Severity
from schemas.controls import (
    ApprovalInfo,
    Baseline,
    BaselineTest,
    DecisionBasis,
    DecisionOutcome,
    DisbursementDecision,
    DisbursementNotice,
    LiveTest,
    NoticeAudience,
    WindowItem,
)
from schemas.events import Disbursement, DisbursementApproval
from schemas.records import Figures
from segwatch.core.catalogue import SEGMENT_IDS, ZERO
from segwatch.core.rules import RUNBOOK, SEGMENT_NAMES, alert_figures, usd
from segwatch.errors import InputError

LIMIT_SHARE: Final = Decimal("0.25")

NOTICE_RULE: Final[NoticeRuleName] = "disbursement_25pct"
VIOLATION_RULE: Final[NoticeRuleName] = "disbursement_violation"
NOTICE_RUNBOOK: Final = f"{RUNBOOK}#disbursement-25pct"
VIOLATION_RUNBOOK: Final = f"{RUNBOOK}#disbursement-violation"

# The daily-computation test of each segment: Reg. 1.23(c) and its 30.7 and Part 22 counterparts, NFA 16(b).
DAILY_REGULATION: Final[Mapping[str, str]] = MappingProxyType(
    {
        "4d2": "CFTC Reg. 1.23(c); NFA Financial Requirements Section 16(b)",
        "30.7": "CFTC Reg. 30.7(g); NFA Financial Requirements Section 16(b)",
        "4df": "CFTC Reg. 22.17; NFA Financial Requirements Section 16(b)",
    }
)
LIVE_REGULATION: Final = "CBOT Rule 971.E.1 (the most recent calculation of excess)"
AUDIT_REGULATION: Final = "CBOT Rule 971.E.2"


def regulation(segment: str) -> str:
    return f"{DAILY_REGULATION[segment]}; CBOT Rule 971.E"


def quarter(excess: Decimal) -> Decimal:
    """25% of the excess; 0 when there is no excess (then any disbursement exceeds it)."""
    return excess * LIMIT_SHARE if excess > ZERO else ZERO


def decision_id(segment: str, event_id: str) -> str:
    return f"{segment}:disbursement:{event_id}"


def notice_id(audience: str, segment: str, event_id: str) -> str:
    return f"{segment}:{audience}:{event_id}"


@dataclass(frozen=True, slots=True)
class Live:
    """A segment's latest figures: the live excess (CBOT Rule 971.E's most recent calculation)."""

    segment: str
    version: int
    excess: Decimal
    as_of: datetime | None
    figures: AlertFigures | None = None

    @classmethod
    def of(cls, f: Figures) -> Live:
        return cls(f.segment, f.version, f.excess, f.as_of, alert_figures(f))

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "version": self.version,
            "excess": str(self.excess),
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "figures": self.figures.model_dump(mode="json") if self.figures else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Live:
        try:
            return cls(
                segment=str(data["segment"]),
                version=int(data["version"]),
                excess=Decimal(str(data["excess"])),
                as_of=datetime.fromisoformat(data["as_of"]) if data.get("as_of") else None,
                figures=AlertFigures.model_validate(data["figures"]) if data.get("figures") else None,
            )
        except (KeyError, ValueError, ArithmeticError) as exc:
            raise InputError("live", f"not a live excess record: {exc}") from exc


@dataclass(frozen=True, slots=True)
class WindowStatus:
    """A segment's 25% window for the dashboard: baseline, aggregate and the headroom to each limit."""

    segment: str
    baseline: Baseline | None
    aggregate: Decimal
    daily_limit: Decimal | None
    daily_headroom: Decimal | None
    live_excess: Decimal | None
    live_limit: Decimal | None
    live_headroom: Decimal | None
    disbursements: int


@dataclass(frozen=True, slots=True)
class DecisionResult:
    """What deciding one disbursement yields; `Controls.record` makes it part of the state once published."""

    decision: DisbursementDecision
    notices: tuple[DisbursementNotice, ...]
    alert: Alert | None  # a disbursement_25pct / disbursement_violation notice for the alert topic
    entry: WindowItem | None  # what joins the window (None: for customers, or made before the cut-off)


def _item(ev: Disbursement) -> WindowItem:
    return WindowItem(
        event_id=ev.event_id, as_of=ev.as_of, amount=ev.amount, recipient=ev.recipient, purpose=ev.purpose
    )


def _approval_info(a: DisbursementApproval) -> ApprovalInfo:
    return ApprovalInfo(
        event_id=a.event_id,
        reference=a.reference,
        approver=a.approver,
        role=a.role,
        approved_at=a.as_of,
        proposal_id=a.proposal_id,
        amount=a.amount,
    )


def _newer_approval(a: DisbursementApproval, held: DisbursementApproval | None) -> bool:
    return held is None or (a.as_of, a.event_id) > (held.as_of, held.event_id)


@dataclass(slots=True)
class Controls:
    """What the 25% control knows, per segment: the last daily computation, the live excess, the window, the
    written approvals; and every disbursement already decided. `decide` changes nothing; `record` does."""

    baselines: dict[str, Baseline] = field(default_factory=dict)
    live: dict[str, Live] = field(default_factory=dict)
    windows: dict[str, list[WindowItem]] = field(default_factory=dict)
    approvals: dict[tuple[str, str], DisbursementApproval] = field(default_factory=dict)  # (segment, reference)
    decided: set[str] = field(default_factory=set)  # disbursement event ids

    # --- inputs ---------------------------------------------------------------------------------------

    def on_baseline(self, baseline: Baseline) -> bool:
        """A daily computation: a later business day restarts the window, a later version of the same day
        replaces the excess; an older one changes nothing (False)."""
        held = self.baselines.get(baseline.segment)
        if held is not None and (baseline.business_day, baseline.version) <= (held.business_day, held.version):
            return False
        if held is None or baseline.business_day > held.business_day:
            window = self.windows.get(baseline.segment, [])
            self.windows[baseline.segment] = [item for item in window if item.as_of > baseline.cutoff]
        self.baselines[baseline.segment] = baseline
        return True

    def on_figures(self, figures: Figures) -> bool:
        """A new live excess, unless a newer figures version is already held (False). Never touches a window."""
        held = self.live.get(figures.segment)
        if held is not None and figures.version <= held.version:
            return False
        self.live[figures.segment] = Live.of(figures)
        return True

    def on_approval(self, approval: DisbursementApproval) -> bool:
        """A written pre-approval; per (segment, reference) the latest as-of wins (ties: event id)."""
        key = (approval.segment, approval.reference)
        if not _newer_approval(approval, self.approvals.get(key)):
            return False
        self.approvals[key] = approval
        return True

    # --- the decision ---------------------------------------------------------------------------------

    def window(self, segment: str) -> tuple[WindowItem, ...]:
        return tuple(self.windows.get(segment, ()))

    def aggregate(self, segment: str) -> Decimal:
        """Disbursements not for customers since the last daily computation."""
        return sum((item.amount for item in self.windows.get(segment, ())), ZERO)

    def matching_approval(self, ev: Disbursement) -> DisbursementApproval | None:
        """The approval a disbursement executes: by its `approval` reference, else by its `proposal_id`."""
        if ev.approval is not None:
            found = self.approvals.get((ev.segment, ev.approval))
            if found is not None:
                return found
        if ev.proposal_id is not None:
            candidates = [
                a for (seg, _), a in self.approvals.items() if seg == ev.segment and a.proposal_id == ev.proposal_id
            ]
            if candidates:
                return max(candidates, key=lambda a: (a.as_of, a.event_id))
        return None

    def decide(self, ev: Disbursement, *, now: datetime) -> DecisionResult | None:
        """The decision on one disbursement; None when its event id was decided before (nothing changes)."""
        if ev.segment not in SEGMENT_IDS:  # pragma: no cover - the schema forbids it
            raise InputError("segment", f"unknown segment {ev.segment!r}")
        if ev.event_id in self.decided:
            return None
        segment = ev.segment
        base = self.baselines.get(segment)
        live = self.live.get(segment)
        window = self.window(segment)
        prior = sum((item.amount for item in window), ZERO)
        subject = not ev.for_customer_benefit
        late = base is not None and ev.as_of <= base.cutoff
        counted = subject and not late
        aggregate = prior + ev.amount if subject else prior
        reasons: list[str] = []

        btest: BaselineTest | None = None
        if base is not None:
            limit = quarter(base.excess)
            btest = BaselineTest(
                business_day=base.business_day,
                cutoff=base.cutoff,
                version=base.version,
                excess=base.excess,
                limit=limit,
                alone_exceeds=subject and ev.amount > limit,
                aggregate_exceeds=subject and aggregate > limit,
            )
        ltest: LiveTest | None = None
        if live is not None:
            limit = quarter(live.excess)
            ltest = LiveTest(
                figures_version=live.version,
                as_of=live.as_of,
                excess=live.excess,
                limit=limit,
                alone_exceeds=subject and ev.amount > limit,
                aggregate_exceeds=subject and aggregate > limit,
            )
        basis: DecisionBasis = (
            "daily_and_live" if btest and ltest else "daily_only" if btest else "live_only" if ltest else "none"
        )
        limits = [t.limit for t in (btest, ltest) if t is not None]
        binding = min(limits) if limits else None

        if not subject:
            reasons.append(
                "for the benefit of customers: the 25% rule does not apply"
                f" ({DAILY_REGULATION[segment]}; CBOT Rule 971.E)"
            )
            needs = False
        else:
            needs = _test_reasons(reasons, segment, ev, btest, ltest, prior, aggregate)
            if late and base is not None:
                reasons.append(
                    f"made at or before the cut-off of the daily computation of {base.business_day}"
                    f" ({base.cutoff.isoformat()}), which already reflects it: decided against the current"
                    " window, not counted in it"
                )
        leaves_deficiency = subject and (
            (base is not None and aggregate > base.excess) or (live is not None and ev.amount > live.excess)
        )
        if leaves_deficiency:
            reasons.append(
                "the disbursement(s) exceed the excess: the segment would be UNDER-SEGREGATED"
                " (CFTC Reg. 1.12(h): immediate notice)"
            )

        approval: DisbursementApproval | None = None
        outcome: DecisionOutcome = "within_limit"
        if needs:
            outcome, approval = self._approval_outcome(ev, reasons)
        severity: Severity
        if outcome == "violation" or (leaves_deficiency and needs):
            severity = "critical"
        elif outcome == "needs_approval":
            severity = "warning"
        else:
            severity = "info"
        page = outcome == "violation"

        decision = DisbursementDecision(
            decision_id=decision_id(segment, ev.event_id),
            correlation_id=ev.event_id,
            segment=segment,
            as_of=ev.as_of,
            amount=ev.amount,
            recipient=ev.recipient,
            purpose=ev.purpose,
            for_customer_benefit=ev.for_customer_benefit,
            proposal_id=ev.proposal_id,
            approval_reference=ev.approval,
            outcome=outcome,
            needs_approval=needs,
            severity=severity,
            page=page,
            basis=basis,
            baseline=btest,
            live=ltest,
            prior=prior,
            aggregate=aggregate,
            limit=binding,
            counted=counted,
            leaves_deficiency=leaves_deficiency,
            approval=_approval_info(approval) if approval is not None else None,
            reasons=reasons,
            regulation=regulation(segment),
            summary="",
            decided_at=now,
        )
        decision = decision.model_copy(update={"summary": _summary(decision)})
        notices: tuple[DisbursementNotice, ...] = ()
        alert = None
        if needs:
            items = _notice_items(decision, window, ev)
            notices = tuple(_notice(decision, audience, items, now) for audience in ("exchange_audit", "cftc_dsro"))
            alert = _alert(decision, live, now)
        return DecisionResult(decision, notices, alert, _item(ev) if counted else None)

    def _approval_outcome(
        self, ev: Disbursement, reasons: list[str]
    ) -> tuple[DecisionOutcome, DisbursementApproval | None]:
        match = self.matching_approval(ev)
        if match is None:
            if ev.approval is not None:
                reasons.append(
                    f"names the written pre-approval {ev.approval!r}, which segwatch does not hold: confirm the"
                    " CEO/CFO pre-approval (CBOT Rule 971.E.2.a)"
                )
                return "needs_approval", None
            reasons.append(
                f"executed WITHOUT the written CEO/CFO pre-approval it needed: a violation of {regulation(ev.segment)}"
            )
            return "violation", None
        problems = []
        if match.as_of > ev.as_of:
            problems.append(
                f"the approval {match.reference!r} ({match.as_of.isoformat()}) came after the"
                f" disbursement ({ev.as_of.isoformat()}): not a pre-approval"
            )
        if match.amount is not None and ev.amount > match.amount:
            problems.append(
                f"the approval {match.reference!r} is for {usd(match.amount)}, less than the {usd(ev.amount)} disbursed"
            )
        if problems:
            reasons.extend(problems)
            reasons.append(f"executed without a valid written pre-approval: a violation of {regulation(ev.segment)}")
            return "violation", match
        reasons.append(
            f"pre-approved in writing by {match.approver} ({match.role.upper()}), reference"
            f" {match.reference!r}, {match.as_of.isoformat()}: notify the exchange's Audit Department"
            " and the CFTC and the DSRO immediately"
        )
        return "approved", match

    def record(self, result: DecisionResult) -> None:
        """Make a published decision part of the state: decided, and counted in its window."""
        d = result.decision
        if d.correlation_id in self.decided:
            return
        self.decided.add(d.correlation_id)
        if result.entry is not None:
            self.windows.setdefault(d.segment, []).append(result.entry)

    def process(self, ev: Disbursement, *, now: datetime) -> DecisionResult | None:
        """decide + record, for replays and tests (a service records only after publishing)."""
        result = self.decide(ev, now=now)
        if result is not None:
            self.record(result)
        return result

    # --- dashboard --------------------------------------------------------------------------------------

    def status(self, segment: str) -> WindowStatus:
        base = self.baselines.get(segment)
        live = self.live.get(segment)
        aggregate = self.aggregate(segment)
        daily_limit = quarter(base.excess) if base is not None else None
        live_limit = quarter(live.excess) if live is not None else None
        return WindowStatus(
            segment=segment,
            baseline=base,
            aggregate=aggregate,
            daily_limit=daily_limit,
            daily_headroom=daily_limit - aggregate if daily_limit is not None else None,
            live_excess=live.excess if live is not None else None,
            live_limit=live_limit,
            live_headroom=live_limit - aggregate if live_limit is not None else None,
            disbursements=len(self.windows.get(segment, ())),
        )

    # --- recovery and serialization ---------------------------------------------------------------------

    def restore_decision(self, d: DisbursementDecision) -> None:
        """Fold in a decision record of an earlier run (after the baselines are known)."""
        if d.correlation_id in self.decided:
            return
        self.decided.add(d.correlation_id)
        base = self.baselines.get(d.segment)
        if d.counted and (base is None or d.as_of > base.cutoff):
            self.windows.setdefault(d.segment, []).append(
                WindowItem(
                    event_id=d.correlation_id, as_of=d.as_of, amount=d.amount, recipient=d.recipient, purpose=d.purpose
                )
            )

    @classmethod
    def restore(
        cls,
        baselines: Iterable[Baseline] = (),
        figures: Iterable[Figures] = (),
        approvals: Iterable[DisbursementApproval] = (),
        decisions: Iterable[DisbursementDecision] = (),
    ) -> Controls:
        """The state an earlier run left: its inputs (any order) and its own decision records."""
        controls = cls()
        for b in baselines:
            controls.on_baseline(b)
        for f in figures:
            controls.on_figures(f)
        for a in approvals:
            controls.on_approval(a)
        for d in decisions:
            controls.restore_decision(d)
        return controls

    def to_dict(self) -> dict[str, Any]:
        return {
            "baselines": {s: b.model_dump(mode="json") for s, b in sorted(self.baselines.items())},
            "live": {s: v.to_dict() for s, v in sorted(self.live.items())},
            "windows": {s: [i.model_dump(mode="json") for i in w] for s, w in sorted(self.windows.items())},
            "approvals": [a.model_dump(mode="json") for _, a in sorted(self.approvals.items())],
            "decided": sorted(self.decided),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Controls:
        controls = cls()
        for segment, raw in dict(data.get("baselines", {})).items():
            b = Baseline.model_validate(raw)
            if b.segment != segment:
                raise InputError(f"baselines.{segment}", f"holds the baseline of {b.segment}")
            controls.baselines[segment] = b
        for segment, raw in dict(data.get("live", {})).items():
            live = Live.from_dict(raw)
            if live.segment != segment:
                raise InputError(f"live.{segment}", f"holds the live excess of {live.segment}")
            controls.live[segment] = live
        for segment, items in dict(data.get("windows", {})).items():
            if segment not in SEGMENT_IDS:
                raise InputError(f"windows.{segment}", "unknown segment")
            controls.windows[segment] = [WindowItem.model_validate(i) for i in items]
        for raw in data.get("approvals", []):
            controls.on_approval(DisbursementApproval.model_validate(raw))
        controls.decided = {str(i) for i in data.get("decided", [])}
        return controls

    @classmethod
    def from_json(cls, text: str | bytes) -> Controls:
        return cls.from_dict(json.loads(text))


Input = Baseline | Figures | DisbursementApproval | Disbursement


def run(controls: Controls, items: Iterable[Input], *, now: Callable[[], datetime]) -> list[DecisionResult]:
    """Fold an ordered stream of inputs (offline replay, tests): every decision, in order."""
    out: list[DecisionResult] = []
    for item in items:
        if isinstance(item, Baseline):
            controls.on_baseline(item)
        elif isinstance(item, Figures):
            controls.on_figures(item)
        elif isinstance(item, DisbursementApproval):
            controls.on_approval(item)
        else:
            result = controls.process(item, now=now())
            if result is not None:
                out.append(result)
    return out


# --- the texts ------------------------------------------------------------------------------------------------


def _test_reasons(
    reasons: list[str],
    segment: str,
    ev: Disbursement,
    btest: BaselineTest | None,
    ltest: LiveTest | None,
    prior: Decimal,
    aggregate: Decimal,
) -> bool:
    """Add why the disbursement is (not) within 25%; whether it needs approval."""
    if btest is None and ltest is None:
        reasons.append(
            "no excess known (no daily computation, no live figures): nothing shows the disbursement"
            " is within 25% of the excess, so it needs the written pre-approval"
            f" ({regulation(segment)})"
        )
        return True
    if btest is None:
        reasons.append(
            f"no daily computation yet: tested against the live figures only ({LIVE_REGULATION});"
            f" the test against the last daily computation ({DAILY_REGULATION[segment]}) cannot be made"
        )
    if ltest is None:
        reasons.append(
            "no live figures yet: tested against the last daily computation only;"
            f" the test of {LIVE_REGULATION} cannot be made"
        )
    needs = False
    what = f"{usd(ev.amount)}" + (
        f" with {usd(prior)} before it since the last daily computation (aggregate {usd(aggregate)})" if prior else ""
    )
    if btest is not None:
        against = (
            f"25% of the excess of the daily computation of {btest.business_day} ({usd(btest.excess)};"
            f" limit {usd(btest.limit)})"
        )
        if btest.alone_exceeds or btest.aggregate_exceeds:
            needs = True
            which = "alone" if btest.alone_exceeds else "in the aggregate"
            reasons.append(f"{what} exceeds, {which}, {against} — {DAILY_REGULATION[segment]}")
        else:
            reasons.append(f"{what} is within {against}")
    if ltest is not None:
        against = (
            f"25% of the live excess (figures v{ltest.figures_version}: {usd(ltest.excess)}; limit {usd(ltest.limit)})"
        )
        if ltest.alone_exceeds or ltest.aggregate_exceeds:
            needs = True
            which = "alone" if ltest.alone_exceeds else "in the aggregate"
            reasons.append(f"{what} exceeds, {which}, {against} — {LIVE_REGULATION}")
        else:
            reasons.append(f"{what} is within {against}")
    return needs


_OUTCOME_TEXT: Final[Mapping[str, str]] = MappingProxyType(
    {
        "within_limit": "within 25%",
        "needs_approval": "NEEDS APPROVAL (pre-approval named, not on record: confirm it)",
        "approved": "over 25%, pre-approved",
        "violation": "VIOLATION: over 25% without the written pre-approval it needed",
    }
)


def _summary(d: DisbursementDecision) -> str:
    name = SEGMENT_NAMES[d.segment]
    paid = f"disbursement {usd(d.amount)} to {d.recipient}"
    if d.for_customer_benefit:
        return f"{name}: {paid} for the benefit of customers: the 25% rule does not apply"
    parts = [f"aggregate {usd(d.aggregate)}"]
    if d.baseline is not None:
        parts.append(
            f"close of {d.baseline.business_day}: excess {usd(d.baseline.excess)}, limit {usd(d.baseline.limit)}"
        )
    else:
        parts.append("no daily computation yet")
    if d.live is not None:
        parts.append(f"live excess {usd(d.live.excess)}, limit {usd(d.live.limit)}")
    text = f"{name}: {paid}: {_OUTCOME_TEXT[d.outcome]} ({'; '.join(parts)})"
    if d.leaves_deficiency:
        text += " — it leaves the segment UNDER-SEGREGATED"
    return text


def _notice_items(d: DisbursementDecision, window: tuple[WindowItem, ...], ev: Disbursement) -> list[WindowItem]:
    """The disbursement(s) a notice lists: this one; with the window's when only the aggregate crossed 25%."""
    tests = [t for t in (d.baseline, d.live) if t is not None]
    alone = any(t.alone_exceeds for t in tests)
    return [_item(ev)] if alone or not window else [*window, _item(ev)]


def _residual_after(d: DisbursementDecision) -> Decimal | None:
    estimates = []
    if d.baseline is not None:
        estimates.append(d.baseline.excess - d.aggregate)
    if d.live is not None:
        estimates.append(d.live.excess - d.amount)
    return min(estimates) if estimates else None


def _notice(
    d: DisbursementDecision, audience: NoticeAudience, items: list[WindowItem], now: datetime
) -> DisbursementNotice:
    reg = AUDIT_REGULATION if audience == "exchange_audit" else DAILY_REGULATION[d.segment]
    reasons = list(dict.fromkeys(item.purpose for item in items))
    notice = DisbursementNotice(
        notice_id=notice_id(audience, d.segment, d.correlation_id),
        audience=audience,
        correlation_id=d.correlation_id,
        segment=d.segment,
        outcome=d.outcome,
        pre_approved=d.outcome == "approved",
        approval=d.approval,
        approval_reference=d.approval_reference,
        disbursements=items,
        total=sum((i.amount for i in items), ZERO),
        reasons=reasons,
        baseline_business_day=d.baseline.business_day if d.baseline else None,
        baseline_excess=d.baseline.excess if d.baseline else None,
        residual_interest_after=_residual_after(d),
        regulation=reg,
        text="",
        at=now,
    )
    return notice.model_copy(update={"text": render_notice(notice, d)})


def render_notice(n: DisbursementNotice, d: DisbursementDecision) -> str:
    """The notice as sent: to the exchange's Audit Department (971.E.2) or to the CFTC and the DSRO (1.23(c))."""
    name = SEGMENT_NAMES[n.segment]
    if n.audience == "exchange_audit":
        head = [
            "To: the Exchange's Audit Department (CME Group), through Exchange-approved electronic transmission",
            f"Re: CBOT Rule 971.E.2 — {name}: disbursement not for the benefit of customers over 25% of excess",
        ]
    else:
        head = [
            "To: the Commodity Futures Trading Commission and the designated self-regulatory organization"
            " (NFA: through WinJammer, Financial Requirements Section 16(b))",
            f"Re: {DAILY_REGULATION[n.segment]} — {name}: withdrawal of residual interest over 25%",
        ]
    lines = [*head, f"Notice {n.notice_id}, {n.at.isoformat()}", ""]
    if n.pre_approved and n.approval is not None:
        a = n.approval
        lines.append(
            f"(a) Pre-approval: CONFIRMED — approved in writing by {a.approver} ({a.role.upper()}) on"
            f" {a.approved_at.isoformat()}, reference {a.reference}."
        )
    elif n.approval_reference is not None:
        lines.append(
            f"(a) Pre-approval: reference {n.approval_reference} named by the disbursement; NOT ON RECORD"
            " in segwatch — to be confirmed before this notice is sent."
        )
    else:
        lines.append(
            "(a) Pre-approval: NONE — the disbursement was made without the written pre-approval of the"
            " CEO, the CFO or their authorized representative."
        )
    lines.append("(b) Amounts and recipients:")
    for item in n.disbursements:
        lines.append(f"    {item.as_of.isoformat()}  {usd(item.amount):>20}  to {item.recipient}  [{item.event_id}]")
    lines.append(f"    Total {usd(n.total)}")
    lines.append("(c) Reasons: " + "; ".join(n.reasons))
    if d.baseline is not None:
        lines.append(
            f"Last daily computation: {d.baseline.business_day}, excess {usd(d.baseline.excess)},"
            f" 25% {usd(d.baseline.limit)}; aggregate since {usd(d.aggregate)}."
        )
    else:
        lines.append("Last daily computation: none yet.")
    if d.live is not None:
        lines.append(
            f"Most recent calculation of excess: {usd(d.live.excess)} (figures v{d.live.figures_version}),"
            f" 25% {usd(d.live.limit)}."
        )
    if n.residual_interest_after is not None:
        lines.append(f"Estimated residual interest after the withdrawal: {usd(n.residual_interest_after)}.")
    if n.audience == "cftc_dsro":
        lines.append(
            "Representation: to the knowledge and reasonable belief of the undersigned, the firm remains in"
            " compliance with the segregation requirements after the withdrawal."
        )
        lines.append("Signed: ______________________ (Chief Executive Officer / Chief Financial Officer)")
    return "\n".join(lines) + "\n"


def _alert(d: DisbursementDecision, live: Live | None, now: datetime) -> Alert:
    violation = d.outcome == "violation"
    rule: NoticeRuleName = VIOLATION_RULE if violation else NOTICE_RULE
    test = d.baseline or d.live
    details = AlertDisbursement(
        event_id=d.correlation_id,
        as_of=d.as_of,
        amount=d.amount,
        recipient=d.recipient,
        purpose=d.purpose,
        approval=d.approval_reference,
        calculation=d.live.figures_version if d.live else None,
        excess=test.excess if test else None,
        limit=d.limit,
        prior=d.prior,
        aggregate=d.aggregate,
        alone_exceeds=any(t.alone_exceeds for t in (d.baseline, d.live) if t) if test else None,
        aggregate_exceeds=any(t.aggregate_exceeds for t in (d.baseline, d.live) if t) if test else None,
        exceeds_excess=d.leaves_deficiency,
    )
    return Alert(
        alert_id=f"{d.segment}:{rule}:{d.correlation_id}",
        rule=rule,
        segment=d.segment,
        state="notice",
        severity=d.severity,
        page=d.page,
        summary=d.summary,
        regulation=d.regulation,
        figures=live.figures if live is not None else None,
        disbursement=details,
        started_at=d.as_of,
        at=now,
        correlation_id=d.correlation_id,
        runbook=VIOLATION_RUNBOOK if violation else NOTICE_RUNBOOK,
    )


def describe_decision(d: DisbursementDecision) -> str:
    """One line for `segwatch replay`."""
    flag = "needs_approval" if d.needs_approval else "within"
    return (
        f"DECISION {d.segment:>4} {d.outcome:<14} needs_approval={str(d.needs_approval).lower():<5}"
        f" {d.correlation_id} {flag}: {d.summary}"
    )
