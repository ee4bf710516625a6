"""Incremental figures equal a from-scratch recomputation, whatever the order, duplicates or updates."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from schemas import AccountBalance, DepositoryBalance, EventBase, FxRate, ManagementTarget
from schemas.events import LINE_LOCATIONS, ForeignRequirement
from segwatch.core import statement
from segwatch.core.book import Book
from segwatch.core.catalogue import SEGMENTS
from segwatch.core.money import to_usd

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
        cash=draw(cents), securities=draw(nonneg), unrealized=draw(cents), long_options=draw(nonneg),
        short_options=-draw(nonneg), offset_securities=draw(nonneg),
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


def latest(events: list[EventBase], key) -> dict[tuple, EventBase]:
    out: dict[tuple, EventBase] = {}
    for ev in events:
        k = key(ev)
        if k not in out or (ev.as_of, ev.event_id) > (out[k].as_of, out[k].event_id):
            out[k] = ev
    return out


def from_scratch(events: list[EventBase]) -> dict[str, dict[str, Decimal]]:
    """An independent oracle: the latest fact per key, summed directly, converted, then the statement."""
    accounts = latest([e for e in events if isinstance(e, AccountBalance)],
                      lambda e: (e.segment, e.account, e.currency))
    depos = latest([e for e in events if isinstance(e, DepositoryBalance)],
                   lambda e: (e.segment, e.depository, e.currency))
    targets = latest([e for e in events if isinstance(e, ManagementTarget)], lambda e: e.segment)
    foreign = latest([e for e in events if isinstance(e, ForeignRequirement)], lambda e: "7305")
    fx = latest([e for e in events if isinstance(e, FxRate)], lambda e: e.currency)
    sums: dict[tuple[str, str], dict[str, Decimal]] = {}

    def add(sid: str, ccy: str, code: str, amount: Decimal) -> None:
        per = sums.setdefault((sid, ccy), {})
        per[code] = per.get(code, Decimal(0)) + amount

    for a in accounts.values():
        codes = SEGMENTS[a.segment].ledger
        nle = a.cash + a.securities + a.unrealized + a.long_options + a.short_options
        deficit = max(Decimal(0), -nle)
        for field in ("cash", "securities", "unrealized", "long_options", "short_options"):
            add(a.segment, a.currency, codes[field], getattr(a, field))
        add(a.segment, a.currency, codes["deficit"], deficit)
        add(a.segment, a.currency, codes["offset"], -min(deficit, a.offset_securities))
    for d in depos.values():
        add(d.segment, d.currency, d.line, d.amount)
    out = {}
    for sid, seg in SEGMENTS.items():
        usd: dict[str, Decimal] = {}
        for (s, ccy), per in sums.items():
            if s != sid:
                continue
            rate = Decimal(1) if ccy == "USD" else (fx[ccy].usd_per_unit if ccy in fx else None)
            if rate is None:
                continue
            for code, amount in per.items():
                usd[code] = usd.get(code, Decimal(0)) + (amount if ccy == "USD" else to_usd(amount, rate))
        usd[seg.target] = targets[sid].amount if sid in targets else Decimal(0)
        if sid == "30.7":
            usd["7305"] = foreign["7305"].amount if foreign else Decimal(0)
        out[sid] = statement.compute(sid, usd)
    return out


@given(event_streams())
def test_incremental_figures_equal_a_from_scratch_recomputation(stream):
    book = Book()
    for ev in stream:
        book.apply(ev)
    assert book.statement() == from_scratch(stream)


@given(event_streams(), st.randoms(use_true_random=False))
def test_reordering_and_replaying_change_no_figure(stream, rng):
    once = Book()
    once.apply_all(stream)
    again = Book()
    shuffled = stream * 2
    rng.shuffle(shuffled)
    again.apply_all(shuffled)
    assert again.statement() == once.statement()


@given(event_streams())
def test_per_account_offset_never_exceeds_its_deficit(stream):
    book = Book()
    book.apply_all(stream)
    for key, held in book.aggregate.held.items():
        if key.startswith("acct|"):
            codes = dict(held.contribution)
            ledger = SEGMENTS[held.segment].ledger
            assert Decimal(0) <= -codes[ledger["offset"]] <= codes[ledger["deficit"]]
    for sid, lines in book.statement().items():
        seg = SEGMENTS[sid]
        assert lines[seg.ledger["deficit"]] + lines[seg.ledger["offset"]] >= 0


@given(event_streams())
def test_segments_are_independent(stream):
    full = Book()
    full.apply_all(stream)
    for sid in SEGMENTS:
        alone = Book()
        alone.apply_all(e for e in stream if getattr(e, "segment", sid) == sid)
        assert alone.statement()[sid] == full.statement()[sid]


@given(event_streams())
def test_every_identity_of_the_form_holds_on_live_figures(stream):
    book = Book()
    book.apply_all(stream)
    for sid, lines in book.statement().items():
        assert statement.check(sid, lines) == []
