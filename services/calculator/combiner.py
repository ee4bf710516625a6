"""Combine every partition's partial sums and the FCM's settings into per-segment figures.

Pure: no Kafka. The Faust app feeds it partials and settings and publishes what `flush` returns. A figures
record is produced only when a figure changed, and each one carries a version that only grows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from schemas.events import (
    DepositoryReference,
    ForeignMarginRequirement,
    ForeignRequirement,
    FxRate,
    ManagementTarget,
)
from schemas.records import Figures, HoldingsFigures
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.figures import Consolidated, combine, figures_record, stalest_as_of
from segwatch.core.holdings import Holdings
from segwatch.core.holdings_figures import HoldingsInputs, consolidate_held
from segwatch.core.settings import Settings
from services.calculator.partials import Partial

SettingEvent = ManagementTarget | ForeignRequirement | FxRate | DepositoryReference | ForeignMarginRequirement


@dataclass(slots=True)
class Emitted:
    version: int
    digest: str

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "digest": self.digest}


def digest(c: Consolidated) -> str:
    return _digest(c.lines, c.by_currency, c.missing_fx, c.stale_fx, c.holdings)


def figures_digest(f: Figures) -> str:
    """The digest of a published figures record: equal to `digest` of the Consolidated it was made from."""
    return _digest(f.lines, f.by_currency, f.missing_fx, f.stale_fx, f.holdings)


def _digest(
    lines: Mapping[str, Any],
    by_currency: Mapping[str, Mapping[str, Any]],
    missing_fx: Any,
    stale_fx: Any,
    holdings: HoldingsFigures | None = None,
) -> str:
    content: dict[str, Any] = {
        "lines": {k: str(v) for k, v in lines.items()},
        "by_currency": {ccy: {k: str(v) for k, v in ls.items()} for ccy, ls in by_currency.items()},
        "missing_fx": list(missing_fx),
        "stale_fx": list(stale_fx),
    }
    if holdings is not None:  # a change of where or in what the money is held is a new figures record too
        content["holdings"] = holdings.model_dump(mode="json")
    body = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


class Combiner:
    def __init__(self) -> None:
        self.partials: dict[int, Partial] = {}
        self.settings = Settings()
        self.holdings = HoldingsInputs()  # depository reference data, foreign margin requirements (issue #14)
        self.emitted: dict[str, Emitted] = {}
        self.dirty: set[str] = set()
        # The input that last touched each segment, for correlation and latency.
        self.trigger: dict[str, tuple[str | None, datetime | None]] = {}

    def on_partial(self, partial: Partial) -> bool:
        held = self.partials.get(partial.partition)
        if held is not None and partial.order <= held.order:
            return False  # stale or replayed
        self.partials[partial.partition] = partial
        for sid, seg in partial.segments.items():
            before = held.segments.get(sid) if held else None
            if before is None:
                changed = bool(seg.accounts or seg.depositories)
            else:
                changed = (
                    before.last_event_id != seg.last_event_id
                    or before.totals != seg.totals
                    or (held is not None and held.holdings != partial.holdings)
                )
            if changed:
                self.dirty.add(sid)
                self.trigger[sid] = (seg.last_event_id, partial.ingested_at)
        return True

    def on_setting(self, ev: SettingEvent, ingested_at: datetime | None = None) -> frozenset[str]:
        if isinstance(ev, DepositoryReference | ForeignMarginRequirement):
            changed = self.holdings.apply(ev)
        else:
            changed = self.settings.apply(ev)
        for sid in changed:
            self.dirty.add(sid)
            self.trigger[sid] = (ev.event_id, ingested_at)
        return changed

    def holds(self, segment_id: str) -> bool:
        """Whether any balance of the segment is held (by any partition)."""
        return any(
            p.segments[segment_id].accounts or p.segments[segment_id].depositories
            for p in self.partials.values()
            if segment_id in p.segments
        )

    def consolidated(self, segment_id: str) -> Consolidated:
        segs = [p.segments[segment_id] for p in self.partials.values() if segment_id in p.segments]
        newest = max((s.as_of for s in segs if s.as_of), default=None)
        sums = Holdings.merged(p.holdings for p in self.partials.values())
        return consolidate_held(segment_id, combine(s.totals for s in segs), self.settings, newest, sums, self.holdings)

    def flush(self, now: datetime) -> list[Figures]:
        """Figures for every segment whose figures changed since the last flush, in segment order."""
        out = []
        for sid in SEGMENT_IDS:
            if sid not in self.dirty:
                continue
            c = self.consolidated(sid)
            d = digest(c)
            last = self.emitted.get(sid)
            if last is not None and last.digest == d:
                continue
            if last is None and not self.holds(sid):
                # A segment with no balance in it yet has no figures to publish (its settings alone are not
                # figures). One that holds only a currency without a rate is published: incomplete figures.
                continue
            version = (last.version if last else 0) + 1
            self.emitted[sid] = Emitted(version, d)
            out.append(self._record(sid, c, version, now))
        self.dirty.clear()
        return out

    def _record(self, sid: str, c: Consolidated, version: int, now: datetime) -> Figures:
        segs = [p.segments[sid] for p in self.partials.values() if sid in p.segments]
        sources: dict[str, datetime] = {}
        for s in segs:
            for src, ts in s.sources.items():
                if src not in sources or ts > sources[src]:
                    sources[src] = ts
        event_id, ingested_at = self.trigger.get(sid, (None, None))
        return figures_record(
            c,
            version=version,
            as_of=stalest_as_of(sources),
            computed_at=now,
            accounts=sum(s.accounts for s in segs),
            depositories=sum(s.depositories for s in segs),
            last_event_id=event_id,
            ingested_at=ingested_at,
            sources=sources,
        )

    # Recovery: the app persists partials and settings; what was emitted is the last record of each segment on
    # the figures topic (whatever this worker or its predecessor believed it sent).
    def restore(
        self,
        partials: Mapping[int, Partial],
        settings: list[SettingEvent],
        published: Mapping[str, Figures],
    ) -> None:
        self.partials = dict(partials)
        self.settings = Settings()
        self.holdings = HoldingsInputs()
        for ev in sorted(settings, key=lambda e: (e.as_of, e.event_id)):
            if isinstance(ev, DepositoryReference | ForeignMarginRequirement):
                self.holdings.apply(ev)
            else:
                self.settings.apply(ev)
        self.emitted = {sid: Emitted(f.version, figures_digest(f)) for sid, f in published.items()}
        self.dirty = set(SEGMENT_IDS)  # flushed at once; unchanged figures are not re-sent
