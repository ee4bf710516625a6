"""Residual interest vs undermargined amounts: CFTC Reg. 1.22(c) (30.7(f), 22.2(f)).

Pure: no clock (callers pass `now`), no calendar of its own (callers pass `next_business_day`, the exchange
calendar's function from a business day to the next one), no I/O.

The customers' margin deficiencies computed as of the close of business day D (`UndermarginedAmounts`) must be
covered by the FCM's residual interest (the segment's excess) from 6:00 pm Eastern on the next business day:
the obligation of D is IN FORCE from that deadline until the next close's obligation takes over at its own.

    residual_interest_undermargined   excess < undermargined amounts in force   critical (no page)

Evaluated on every figures record and on the clock (the deadline may pass with no new figures): it fires
when, at or after the deadline, the live excess is below the amounts in force, and resolves when the excess
is back at or above them or a later obligation in force is met. Exactly 6:00:00 pm is past the deadline.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final
from zoneinfo import ZoneInfo

from schemas.alerts import Alert, RuleName
from schemas.events import UndermarginedAmounts
from schemas.records import Figures
from segwatch.core.rules import RUNBOOK, SEGMENT_NAMES, alert_figures, alert_id, usd

RULE: Final[RuleName] = "residual_interest_undermargined"
EASTERN: Final = ZoneInfo("America/New_York")
DEADLINE_TIME: Final = time(18, 0)
KEEP_DAYS: Final = 5  # business days of amounts kept per segment
RUNBOOK_ANCHOR: Final = f"{RUNBOOK}#residual-interest-undermargined"
REGULATION: Final[Mapping[str, str]] = MappingProxyType(
    {
        "4d2": "CFTC Reg. 1.22(c): residual interest at least the customers' undermargined amounts as of the prior"
        " close, by 6:00 pm Eastern on the next business day",
        "30.7": "CFTC Reg. 30.7(f): residual interest at least the 30.7 customers' undermargined amounts as of the"
        " prior close, by 6:00 pm Eastern on the next business day",
        "4df": "CFTC Reg. 22.2(f): residual interest at least the cleared swaps customers' undermargined amounts as of"
        " the prior close, by 6:00 pm Eastern on the next business day",
    }
)

NextBusinessDay = Callable[[date], date]


def deadline(business_day: date, next_business_day: NextBusinessDay) -> datetime:
    """6:00 pm Eastern on the business day after `business_day`."""
    return datetime.combine(next_business_day(business_day), DEADLINE_TIME, tzinfo=EASTERN)


@dataclass(frozen=True, slots=True)
class ResidualCheck:
    """A segment's residual interest against the undermargined amounts in force at `now`."""

    segment: str
    excess: Decimal
    in_force: UndermarginedAmounts | None  # None: no obligation has reached its deadline yet
    deadline: datetime | None  # the in-force obligation's deadline
    pending: UndermarginedAmounts | None  # the next obligation, not yet due
    pending_deadline: datetime | None

    @property
    def shortfall(self) -> Decimal:
        return max(self.in_force.amount - self.excess, Decimal(0)) if self.in_force is not None else Decimal(0)

    @property
    def breached(self) -> bool:
        return self.in_force is not None and self.excess < self.in_force.amount


@dataclass(slots=True)
class ResidualInterest:
    """The undermargined amounts held per segment and business day (latest as-of wins, ties by event id)."""

    amounts: dict[str, dict[date, UndermarginedAmounts]] = field(default_factory=dict)

    def on_amounts(self, ev: UndermarginedAmounts) -> bool:
        days = self.amounts.setdefault(ev.segment, {})
        held = days.get(ev.business_day)
        if held is not None and (ev.as_of, ev.event_id) <= (held.as_of, held.event_id):
            return False
        if days and held is None and ev.business_day < min(days) and len(days) >= KEEP_DAYS:
            return False  # older than anything kept: it can never be in force again
        days[ev.business_day] = ev
        for old in sorted(days)[:-KEEP_DAYS]:
            del days[old]
        return True

    def check(
        self, segment: str, excess: Decimal, *, now: datetime, next_business_day: NextBusinessDay
    ) -> ResidualCheck:
        in_force = pending = None
        in_force_at = pending_at = None
        for day in sorted(self.amounts.get(segment, {})):
            due = deadline(day, next_business_day)
            if due <= now:
                in_force, in_force_at = self.amounts[segment][day], due
            elif pending is None:
                pending, pending_at = self.amounts[segment][day], due
        return ResidualCheck(segment, excess, in_force, in_force_at, pending, pending_at)

    def evaluate(
        self, figures: Figures, firing: Alert | None, *, now: datetime, next_business_day: NextBusinessDay
    ) -> Alert | None:
        """The state change of the rule for this segment, given its current firing record (None: not firing,
        e.g. `AlertStates.firing(segment, RULE)`); None when nothing changes."""
        c = self.check(figures.segment, figures.excess, now=now, next_business_day=next_business_day)
        name = SEGMENT_NAMES[figures.segment]
        if c.breached and firing is None:
            assert c.in_force is not None and c.deadline is not None
            return Alert(
                alert_id=alert_id(figures.segment, RULE, figures.version),
                rule=RULE,
                segment=figures.segment,
                state="firing",
                severity="critical",
                page=False,
                summary=(
                    f"{name}: residual interest {usd(c.excess)} is {usd(c.shortfall)} short of the customers'"
                    f" undermargined amounts {usd(c.in_force.amount)} as of the close of"
                    f" {c.in_force.business_day} (due {c.deadline.isoformat()})"
                ),
                regulation=REGULATION[figures.segment],
                figures=alert_figures(figures),
                started_at=now,
                at=now,
                correlation_id=figures.last_event_id,
                runbook=RUNBOOK_ANCHOR,
            )
        if not c.breached and firing is not None:
            covered = (
                f"the undermargined amounts {usd(c.in_force.amount)} of {c.in_force.business_day}"
                if c.in_force is not None
                else "the undermargined amounts"
            )
            return Alert(
                alert_id=firing.alert_id,
                rule=RULE,
                segment=figures.segment,
                state="resolved",
                severity="critical",
                page=False,
                summary=f"{name}: residual interest {usd(c.excess)} covers {covered} again",
                regulation=REGULATION[figures.segment],
                figures=alert_figures(figures),
                started_at=firing.started_at,
                at=now,
                correlation_id=figures.last_event_id,
                runbook=RUNBOOK_ANCHOR,
            )
        return None

    def to_json(self) -> str:
        return json.dumps(
            [a.model_dump(mode="json") for days in self.amounts.values() for a in days.values()], sort_keys=True
        )

    @classmethod
    def restore(cls, events: Iterable[UndermarginedAmounts]) -> ResidualInterest:
        state = cls()
        for ev in events:
            state.on_amounts(ev)
        return state

    @classmethod
    def from_json(cls, text: str | bytes) -> ResidualInterest:
        raw: list[dict[str, Any]] = json.loads(text)
        return cls.restore(UndermarginedAmounts.model_validate(item) for item in raw)
