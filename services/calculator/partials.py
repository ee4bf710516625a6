"""One balances partition's share of the figures: its running sums, and the wire form the combiner reads.

Each calculator worker keeps a `PartitionState` per balances partition it owns and publishes a `Partial`
after every batch. The combiner adds the latest partial of every partition, so more workers on more
partitions scale the calculator out while the figures stay exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from schemas.events import AccountBalance, DepositoryBalance
from segwatch.core.aggregate import Aggregate
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.holdings import Holdings, Sums
from segwatch.core.ledger import Held, held_of


@dataclass(slots=True)
class SegmentPartial:
    totals: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    accounts: int = 0
    depositories: int = 0
    as_of: datetime | None = None
    last_event_id: str | None = None
    sources: dict[str, datetime] = field(default_factory=dict)


@dataclass(slots=True)
class Partial:
    partition: int
    offset: int  # the highest balances offset applied (-1: none since the partition's state was loaded)
    ingested_at: datetime | None  # Kafka timestamp of the newest balance applied
    segments: dict[str, SegmentPartial]
    # Which load of the partition's state this is: the sum of its changelogs' end offsets when it was loaded.
    # It only grows (a later load has read at least what an earlier one read), and it grows whenever a
    # worker made a change durable since the last load. Partials are ordered by (epoch, offset): one that
    # is not newer than the combiner's is stale or replayed.
    epoch: int = 0
    # Where and in what the money is held (issue #14): the partition's holdings sums (services/calculator/
    # holdings_stage.py), integer cents per key; the combiner adds them up.
    holdings: Sums = field(default_factory=dict)
    # The partition's business days (issue #12, services/calculator/closing.py): its `PartView` on the wire
    # (open day, closing sums of the closed days kept); None from a partition without balances or an older
    # calculator.
    day: dict[str, Any] | None = None

    @property
    def order(self) -> tuple[int, int]:
        return self.epoch, self.offset

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "partition": self.partition,
                "epoch": self.epoch,
                "offset": self.offset,
                "ingested_at": _iso(self.ingested_at),
                "segments": {
                    sid: {
                        "totals": {c: {k: str(v) for k, v in t.items()} for c, t in s.totals.items()},
                        "accounts": s.accounts,
                        "depositories": s.depositories,
                        "as_of": _iso(s.as_of),
                        "last_event_id": s.last_event_id,
                        "sources": {src: _iso(ts) for src, ts in s.sources.items()},
                    }
                    for sid, s in self.segments.items()
                },
                "holdings": [(list(k), v) for k, v in sorted(self.holdings.items())],
                **({"day": self.day} if self.day is not None else {}),
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str | Mapping[str, Any]) -> Partial:
        data = raw if isinstance(raw, Mapping) else orjson.loads(raw)
        return cls(
            partition=int(data["partition"]),
            epoch=int(data.get("epoch", 0)),
            offset=int(data["offset"]),
            ingested_at=_dt(data.get("ingested_at")),
            segments={
                sid: SegmentPartial(
                    totals={c: {k: Decimal(v) for k, v in t.items()} for c, t in s["totals"].items()},
                    accounts=int(s["accounts"]),
                    depositories=int(s["depositories"]),
                    as_of=_dt(s.get("as_of")),
                    last_event_id=s.get("last_event_id"),
                    sources={src: ts for src, ts in ((k, _dt(v)) for k, v in s.get("sources", {}).items()) if ts},
                )
                for sid, s in data["segments"].items()
                if sid in SEGMENT_IDS
            },
            holdings=Holdings.from_partial(data.get("holdings") or ()),
            day=data.get("day"),
        )


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


def _dt(raw: object) -> datetime | None:
    return datetime.fromisoformat(str(raw)) if raw else None


class PartitionState:
    """The balances one partition has seen: latest per key, running sums, freshness per source."""

    __slots__ = (
        "_ingested_ms",
        "aggregate",
        "batch_last_event",
        "closing",
        "ends",
        "holdings",
        "offset",
        "partition",
        "published",
    )

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.aggregate = Aggregate()
        self.offset = -1
        self._ingested_ms: int | None = None  # Kafka timestamp (ms) of the newest balance applied
        self.batch_last_event: dict[str, str] = {}
        self.ends: dict[str, int] = {}  # changelog end offset per table when this state was loaded
        self.published = -1  # the highest offset of a partial of this state that Kafka acknowledged
        self.holdings = Holdings()  # the same depository balances, by instrument, location, issuer (issue #14)
        self.closing: Any = None  # its business days (issue #12): a closing.PartitionDay, made at first use

    @property
    def epoch(self) -> int:
        return sum(self.ends.values())

    def loaded(self, table: str, end: int) -> None:
        """The state's rows of `table` were loaded from its changelog, read up to offset `end`."""
        self.ends[table] = end

    @property
    def ingested_at(self) -> datetime | None:
        return None if self._ingested_ms is None else datetime.fromtimestamp(self._ingested_ms / 1000, UTC)

    def load(self, items: Iterable[tuple[str, Held]]) -> None:
        self.aggregate.load(items)

    def load_one(self, key: str, held: Held) -> None:
        """A balance recovered from the changelog (not a new input: no offset, no timestamp)."""
        self.aggregate.put(key, held)

    def apply(self, ev: AccountBalance | DepositoryBalance, offset: int, ingested_at: datetime | None) -> bool:
        key, held = held_of(ev)
        return self.put(key, held, offset, None if ingested_at is None else round(ingested_at.timestamp() * 1000))

    def put(self, key: str, held: Held, offset: int, timestamp_ms: int | None) -> bool:
        """Apply one balance read at `offset` with Kafka timestamp `timestamp_ms`; True when it changed a sum."""
        self.advance(offset, timestamp_ms)
        if self.aggregate.put(key, held):
            self.batch_last_event[held.segment] = held.event_id
            return True
        return False

    def advance(self, offset: int, timestamp_ms: int | None) -> None:
        """Balances up to `offset`, the newest with Kafka timestamp `timestamp_ms`, have been read (the
        calculator applies a fetch with `aggregate.put` and calls this once)."""
        if offset > self.offset:
            self.offset = offset
        if timestamp_ms is not None and (self._ingested_ms is None or timestamp_ms > self._ingested_ms):
            self._ingested_ms = timestamp_ms

    def partial(self) -> Partial:
        """The partial to publish; its last_event_id per segment is the newest event this batch applied."""
        segments = {}
        for sid, state in self.aggregate.segments.items():
            segments[sid] = SegmentPartial(
                totals=state.totals,  # a fresh Decimal copy of the cent sums
                accounts=state.accounts,
                depositories=state.depositories,
                as_of=state.as_of,
                last_event_id=self.batch_last_event.get(sid, state.last_event_id),
                sources=dict(state.sources),
            )
        self.batch_last_event = {}
        return Partial(
            self.partition,
            self.offset,
            self.ingested_at,
            segments,
            self.epoch,
            dict(self.holdings.sums),
            None if self.closing is None else self.closing.wire(),
        )
