"""The FCM's settings that enter the figures: management targets, the 30.7 foreign requirement, FX rates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from schemas.events import ForeignRequirement, FxRate, ManagementTarget
from segwatch.core.catalogue import SEGMENT_IDS, ZERO

ONE = Decimal(1)


class Versioned(NamedTuple):
    as_of: datetime
    event_id: str
    value: Decimal

    def supersedes(self, other: Versioned | None) -> bool:
        return other is None or (self.as_of, self.event_id) > (other.as_of, other.event_id)


@dataclass(slots=True)
class Settings:
    targets: dict[str, Versioned] = field(default_factory=dict)
    foreign_requirement: Versioned | None = None
    fx: dict[str, Versioned] = field(default_factory=dict)

    def apply(self, ev: ManagementTarget | ForeignRequirement | FxRate) -> frozenset[str]:
        """Apply one setting; returns the segments whose figures it changes (none when it is stale)."""
        new = Versioned(ev.as_of, ev.event_id, ev.usd_per_unit if isinstance(ev, FxRate) else ev.amount)
        if isinstance(ev, ManagementTarget):
            if not new.supersedes(self.targets.get(ev.segment)):
                return frozenset()
            self.targets[ev.segment] = new
            return frozenset({ev.segment})
        if isinstance(ev, ForeignRequirement):
            if not new.supersedes(self.foreign_requirement):
                return frozenset()
            self.foreign_requirement = new
            return frozenset({"30.7"})
        if not new.supersedes(self.fx.get(ev.currency)):
            return frozenset()
        self.fx[ev.currency] = new
        return frozenset(SEGMENT_IDS)

    def target(self, segment_id: str) -> Decimal:
        held = self.targets.get(segment_id)
        return held.value if held else ZERO

    def foreign(self) -> Decimal:
        return self.foreign_requirement.value if self.foreign_requirement else ZERO

    def rate(self, currency: str) -> Decimal | None:
        if currency == "USD":
            return ONE
        held = self.fx.get(currency)
        return held.value if held else None
