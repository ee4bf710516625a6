"""Figures records built from the 2017-11-06 reference filing, for the alerter's tests (unit and Kafka)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache

from schemas.records import Figures
from segwatch.core import statement
from segwatch.core.catalogue import SEGMENTS
from segwatch.forms.parse import parse_filing
from tests.conftest import REFERENCE

T0 = datetime(2017, 11, 6, 21, 0, tzinfo=UTC)
# A funds line of each segment holding cash, moved up and down to script the excess.
CASH_LINE = {"4d2": "7070", "30.7": "7500", "4df": "8600"}


@cache
def _filed() -> dict[str, dict[str, Decimal]]:
    return parse_filing((REFERENCE / "000_a00a1cb97de91a10.txt").read_text())


def real_figures(
    segment: str = "4d2",
    version: int = 1,
    *,
    funds_delta: Decimal | int = 0,
    target: Decimal | int | None = None,
    missing_fx: Sequence[str] = (),
    no_target: bool = False,
    stale_fx: Sequence[str] = (),
    event: str | None = None,
    computed_at: datetime | None = None,
    ingested_at: datetime | None = None,
) -> Figures:
    """The segment's real figures (the 2017-11-06 filing), with its cash at bank moved by `funds_delta`."""
    seg = SEGMENTS[segment]
    leaves = dict(statement.leaves_of(segment, _filed()[segment]))
    leaves[CASH_LINE[segment]] = leaves.get(CASH_LINE[segment], Decimal(0)) + Decimal(funds_delta)
    if target is not None:
        leaves[seg.target] = Decimal(target)
    if no_target:
        leaves.pop(seg.target, None)
    lines = statement.compute(segment, leaves)
    at = computed_at or T0 + timedelta(seconds=version)
    return Figures(
        segment=segment,  # type: ignore[arg-type]
        version=version,
        as_of=at - timedelta(seconds=1),
        computed_at=at,
        lines=lines,
        requirement=lines[seg.requirement],
        funds=lines[seg.funds],
        excess=lines[seg.excess],
        target=lines.get(seg.target),
        excess_over_target=lines.get(seg.over_target),
        excess_by_currency={"USD": lines[seg.excess]},
        missing_fx=list(missing_fx),
        incomplete=bool(missing_fx),
        stale_fx=list(stale_fx),
        accounts=10,
        depositories=5,
        last_event_id=event or f"evt-{segment}-{version}",
        ingested_at=ingested_at or at - timedelta(milliseconds=250),
        sources={"ledger": at - timedelta(seconds=1)},
    )


def scripted(segment: str = "4d2", start: int = 1) -> list[Figures]:
    """Healthy → under target → deficient (twice) → under target → healthy, on the segment's real figures."""
    real = real_figures(segment)
    assert real.excess_over_target is not None
    below_target = -(real.excess_over_target + 1_000_000)  # 1,000,000 under the target
    deficient = -(real.excess + 2_500_000)  # a 2,500,000 deficiency
    deltas: list[Decimal | int] = [0, below_target, deficient, deficient - 10, below_target, 0]
    return [real_figures(segment, start + i, funds_delta=d) for i, d in enumerate(deltas)]
