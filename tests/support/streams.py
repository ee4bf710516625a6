"""Hypothesis strategies for a book's events: balances, settings, duplicates, any order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from schemas import AccountBalance, DepositoryBalance, EventBase, FxRate, ManagementTarget
from schemas.events import LINE_LOCATIONS, ForeignRequirement
from segwatch.core.catalogue import SEGMENTS

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
CURRENCIES = ("USD", "EUR", "JPY")
cents = st.integers(min_value=-10**11, max_value=10**11).map(lambda c: Decimal(c).scaleb(-2))
nonneg = cents.map(abs)
times = st.integers(min_value=0, max_value=5).map(lambda m: T0 + timedelta(minutes=m))


@st.composite
def account_events(draw: st.DrawFn, n: int) -> AccountBalance:
    return AccountBalance(
        event_id=f"a{n}", source="test", as_of=draw(times), segment=draw(st.sampled_from(list(SEGMENTS))),
        account=f"C{draw(st.integers(0, 5))}", currency=draw(st.sampled_from(CURRENCIES)),
        cash=draw(cents), securities=(sec := draw(nonneg)), unrealized=draw(cents), long_options=draw(nonneg),
        short_options=-draw(nonneg), offset_securities=min(sec, draw(nonneg)),
    )


@st.composite
def depository_events(draw: st.DrawFn, n: int) -> DepositoryBalance:
    sid = draw(st.sampled_from(list(SEGMENTS)))
    line = draw(st.sampled_from(sorted(SEGMENTS[sid].depository_codes)))
    sign = SEGMENTS[sid].line(line).sign.value
    amount = draw(cents)
    amount = abs(amount) if sign == "nonnegative" else -abs(amount) if sign == "nonpositive" else amount
    return DepositoryBalance(
        event_id=f"d{n}", source="test", as_of=draw(times), segment=sid, depository=f"B{draw(st.integers(0, 3))}",
        line=line, currency=draw(st.sampled_from(CURRENCIES)),
        location=LINE_LOCATIONS.get(line) or draw(st.sampled_from(["us", "non_us"])),
        amount=amount,
    )


@st.composite
def setting_events(draw: st.DrawFn, n: int) -> EventBase:
    kind = draw(st.sampled_from(["target", "fx", "foreign"]))
    common = {"event_id": f"s{n}", "source": "test", "as_of": draw(times)}
    if kind == "target":
        return ManagementTarget(segment=draw(st.sampled_from(list(SEGMENTS))), amount=draw(nonneg), **common)
    if kind == "foreign":
        return ForeignRequirement(amount=draw(nonneg), **common)
    rate = Decimal(draw(st.integers(1, 10**8))).scaleb(-6)
    return FxRate(currency=draw(st.sampled_from(["EUR", "JPY"])), usd_per_unit=rate, **common)


@st.composite
def event_streams(draw: st.DrawFn) -> list[EventBase]:
    """A book's events, then duplicates of some of them, in a random order."""
    size = draw(st.integers(1, 40))
    kinds = draw(st.lists(st.sampled_from([account_events, depository_events, setting_events]),
                          min_size=size, max_size=size))
    events = [draw(kind(i)) for i, kind in enumerate(kinds)]
    dupes = draw(st.lists(st.sampled_from(events), max_size=10))
    rng = random.Random(draw(st.integers(0, 2**32)))
    stream = events + dupes
    rng.shuffle(stream)
    return stream
