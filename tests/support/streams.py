"""Hypothesis strategies for a book's events: balances, settings, duplicates, any order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal, get_args

from hypothesis import strategies as st

from schemas import AccountBalance, DepositoryBalance, EventBase, FxRate, ManagementTarget
from schemas.events import LINE_LOCATIONS, ForeignRequirement
from schemas.types import SegmentId
from segwatch.core.catalogue import SEGMENTS

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
CURRENCIES = ("USD", "EUR", "JPY")
cents = st.integers(min_value=-(10**11), max_value=10**11).map(lambda c: Decimal(c).scaleb(-2))
nonneg = cents.map(abs)
Location = Literal["us", "non_us"]
segment_ids: st.SearchStrategy[SegmentId] = st.sampled_from(get_args(SegmentId))
locations: st.SearchStrategy[Location] = st.sampled_from(get_args(Location))
times = st.integers(min_value=0, max_value=5).map(lambda m: T0 + timedelta(minutes=m))


@st.composite
def account_events(draw: st.DrawFn, n: int) -> AccountBalance:
    return AccountBalance(
        event_id=f"a{n}",
        source="test",
        as_of=draw(times),
        segment=draw(segment_ids),
        account=f"C{draw(st.integers(0, 5))}",
        currency=draw(st.sampled_from(CURRENCIES)),
        cash=draw(cents),
        securities=(sec := draw(nonneg)),
        unrealized=draw(cents),
        long_options=draw(nonneg),
        short_options=-draw(nonneg),
        offset_securities=min(sec, draw(nonneg)),
    )


@st.composite
def depository_events(draw: st.DrawFn, n: int) -> DepositoryBalance:
    sid = draw(segment_ids)
    line = draw(st.sampled_from(sorted(SEGMENTS[sid].depository_codes)))
    sign = SEGMENTS[sid].line(line).sign.value
    amount = draw(cents)
    amount = abs(amount) if sign == "nonnegative" else -abs(amount) if sign == "nonpositive" else amount
    return DepositoryBalance(
        event_id=f"d{n}",
        source="test",
        as_of=draw(times),
        segment=sid,
        depository=f"B{draw(st.integers(0, 3))}",
        line=line,
        currency=draw(st.sampled_from(CURRENCIES)),
        location=fixed if (fixed := LINE_LOCATIONS.get(line)) is not None else draw(locations),
        amount=amount,
    )


@st.composite
def setting_events(draw: st.DrawFn, n: int) -> EventBase:
    kind = draw(st.sampled_from(["target", "fx", "foreign"]))
    eid, at = f"s{n}", draw(times)
    if kind == "target":
        return ManagementTarget(event_id=eid, source="test", as_of=at, segment=draw(segment_ids), amount=draw(nonneg))
    if kind == "foreign":
        return ForeignRequirement(event_id=eid, source="test", as_of=at, amount=draw(nonneg))
    rate = Decimal(draw(st.integers(1, 10**8))).scaleb(-6)
    return FxRate(
        event_id=eid, source="test", as_of=at, currency=draw(st.sampled_from(["EUR", "JPY"])), usd_per_unit=rate
    )


@st.composite
def event_streams(draw: st.DrawFn) -> list[EventBase]:
    """A book's events, then duplicates of some of them, in a random order."""
    size = draw(st.integers(1, 40))
    kinds = draw(
        st.lists(st.sampled_from([account_events, depository_events, setting_events]), min_size=size, max_size=size)
    )
    events = [draw(kind(i)) for i, kind in enumerate(kinds)]
    dupes = draw(st.lists(st.sampled_from(events), max_size=10))
    rng = random.Random(draw(st.integers(0, 2**32)))
    stream = events + dupes
    rng.shuffle(stream)
    return stream
