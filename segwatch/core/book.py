"""A whole book in one process: balances and settings in, every segment's figures out."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from schemas.events import (
    DAY_EVENT_MODELS,
    AccountBalance,
    DepositoryBalance,
    DepositoryReference,
    Disbursement,
    DisbursementApproval,
    EventBase,
    ForeignMarginRequirement,
    ForeignRequirement,
    FxRate,
    ManagementTarget,
    UndermarginedAmounts,
)
from schemas.records import Figures
from segwatch.core.aggregate import Aggregate
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.figures import Consolidated, figures_record, stalest_as_of
from segwatch.core.holdings import Holdings
from segwatch.core.holdings_figures import HoldingsInputs, consolidate_held
from segwatch.core.settings import Settings
from segwatch.core.statement import Lines


class Book:
    def __init__(self) -> None:
        self.aggregate = Aggregate()
        self.settings = Settings()
        self.versions = dict.fromkeys(SEGMENT_IDS, 0)
        self.holdings = Holdings()  # where and in what (issue #14): the depository balances' holdings sums
        self.holdings_inputs = HoldingsInputs()

    def apply(self, ev: EventBase) -> frozenset[str]:
        """Apply any event; returns the segments whose figures may have changed."""
        changed: frozenset[str]
        if isinstance(ev, AccountBalance | DepositoryBalance):
            changed = frozenset({ev.segment}) if self.aggregate.apply(ev) else frozenset()
            if isinstance(ev, DepositoryBalance):
                self.holdings.apply(ev)
        elif isinstance(ev, ManagementTarget | ForeignRequirement | FxRate):
            changed = self.settings.apply(ev)
        elif isinstance(ev, Disbursement | DisbursementApproval | UndermarginedAmounts):
            # A compliance fact for the alerter (CBOT Rule 971.E), not a balance: the funds leaving show up
            # in the figures through the depository balances that report them. No figure changes. Approvals and
            # undermargined amounts are compliance facts too (issue #13).
            changed = frozenset()
        elif isinstance(ev, DAY_EVENT_MODELS):
            # The business day's close, sign-off and filing: records about a day's statement, not figures.
            changed = frozenset()
        elif isinstance(ev, ForeignMarginRequirement | DepositoryReference):
            # Where and in what the money is held (segwatch.core.holdings_figures): the figures' holdings, and
            # the funds lines when a depository's acknowledgment letter is missing.
            changed = self.holdings_inputs.apply(ev)
        else:
            raise TypeError(f"not an event segwatch computes from: {type(ev).__name__}")
        for sid in changed:
            self.versions[sid] += 1
        return changed

    def apply_all(self, events: Iterable[EventBase]) -> None:
        for ev in events:
            self.apply(ev)

    def holds(self, segment_id: str) -> bool:
        """Whether the segment holds any balance: before it does it has no figures to publish (the calculator
        publishes none), whatever settings it has."""
        state = self.aggregate.segments[segment_id]
        return bool(state.accounts or state.depositories)

    def consolidated(self, segment_id: str) -> Consolidated:
        state = self.aggregate.segments[segment_id]
        return consolidate_held(
            segment_id, state.totals, self.settings, state.as_of, self.holdings.sums, self.holdings_inputs
        )

    def statement(self) -> dict[str, Lines]:
        return {sid: self.consolidated(sid).lines for sid in SEGMENT_IDS}

    def figures(self, segment_id: str, computed_at: datetime | None = None) -> Figures:
        state = self.aggregate.segments[segment_id]
        return figures_record(
            self.consolidated(segment_id),
            version=self.versions[segment_id],
            as_of=stalest_as_of(state.sources),
            computed_at=computed_at or datetime.now(UTC),
            accounts=state.accounts,
            depositories=state.depositories,
            last_event_id=state.last_event_id,
            sources=state.sources,
        )
