"""The FCM's settings that enter the figures: management targets, the 30.7 foreign requirement, FX rates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import NamedTuple

from schemas.events import ForeignRequirement, FxRate, ManagementTarget
from segwatch.core.catalogue import SEGMENT_IDS, ZERO
from segwatch.environment import FiguresPart, load

ONE = Decimal(1)
CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def fx_max_age(env: Mapping[str, str] | None = None) -> timedelta:
    """A rate older than this (behind the newest balance of the segment) is stale: a warning (rule stale_fx).
    SEGWATCH_FX_MAX_AGE_SECONDS (segwatch/environment.py, FiguresPart), default 26 h: a daily rate, with a couple of
    hours' grace."""
    return timedelta(seconds=load(FiguresPart, env).fx_max_age)


class Target(NamedTuple):
    """A management target: a dollar amount, or a percentage of the requirement (exactly one is set)."""

    as_of: datetime
    event_id: str
    amount: Decimal | None
    percentage: Decimal | None

    def supersedes(self, other: Target | None) -> bool:
        return other is None or (self.as_of, self.event_id) > (other.as_of, other.event_id)

    def of(self, requirement: Decimal) -> Decimal:
        """The target in dollars. A percentage target follows the requirement, rounded half-even to the cent
        (never below zero: a requirement below zero has a target of zero)."""
        if self.amount is not None:
            return self.amount
        assert self.percentage is not None
        return max(ZERO, (requirement * self.percentage / HUNDRED).quantize(CENT, rounding=ROUND_HALF_EVEN))


class Versioned(NamedTuple):
    as_of: datetime
    event_id: str
    value: Decimal

    def supersedes(self, other: Versioned | None) -> bool:
        return other is None or (self.as_of, self.event_id) > (other.as_of, other.event_id)


@dataclass(slots=True)
class Settings:
    targets: dict[str, Target] = field(default_factory=dict)
    foreign_requirement: Versioned | None = None
    fx: dict[str, Versioned] = field(default_factory=dict)  # each currency's last rate, with its as-of
    fx_max_age: timedelta = field(default_factory=fx_max_age)

    def apply(self, ev: ManagementTarget | ForeignRequirement | FxRate) -> frozenset[str]:
        """Apply one setting; returns the segments whose figures it changes (none when it is stale)."""
        if isinstance(ev, ManagementTarget):
            target = Target(ev.as_of, ev.event_id, ev.amount, ev.percentage)
            if not target.supersedes(self.targets.get(ev.segment)):
                return frozenset()
            self.targets[ev.segment] = target
            return frozenset({ev.segment})
        new = Versioned(ev.as_of, ev.event_id, ev.usd_per_unit if isinstance(ev, FxRate) else ev.amount)
        if isinstance(ev, ForeignRequirement):
            if not new.supersedes(self.foreign_requirement):
                return frozenset()
            self.foreign_requirement = new
            return frozenset({"30.7"})
        if not new.supersedes(self.fx.get(ev.currency)):
            return frozenset()
        self.fx[ev.currency] = new
        return frozenset(SEGMENT_IDS)

    def target(self, segment_id: str, requirement: Decimal) -> Decimal | None:
        """The segment's management target in dollars; None when none is set (a finding, not a zero)."""
        held = self.targets.get(segment_id)
        return held.of(requirement) if held else None

    def foreign(self) -> Decimal:
        return self.foreign_requirement.value if self.foreign_requirement else ZERO

    def rate(self, currency: str) -> Decimal | None:
        if currency == "USD":
            return ONE
        held = self.fx.get(currency)
        return held.value if held else None

    def rate_as_of(self, currency: str) -> datetime | None:
        """When the currency's last rate was true (None for USD and for a currency never given a rate)."""
        held = self.fx.get(currency)
        return held.as_of if held else None
