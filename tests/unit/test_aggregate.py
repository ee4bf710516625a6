"""Incremental figures equal a from-scratch recomputation, whatever the order, duplicates or updates."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from schemas import EventBase
from segwatch.core.book import Book
from segwatch.core.catalogue import SEGMENTS
from tests.support.streams import event_streams
from tests.unit.oracle import FUNDS_LEAVES, LEDGER, RESULT, derive, oracle


def from_scratch(events: list[EventBase]) -> dict[str, dict[str, Decimal]]:
    """The independent oracle (tests/unit/oracle.py): the latest fact per key, summed directly, converted."""
    return {sid: seg.lines for sid, seg in oracle(events).items()}


@given(event_streams())
def test_incremental_figures_equal_a_from_scratch_recomputation(stream: list[EventBase]) -> None:
    book = Book()
    for ev in stream:
        book.apply(ev)
    assert book.statement() == from_scratch(stream)


@given(event_streams(), st.randoms(use_true_random=False))
def test_reordering_and_replaying_change_no_figure(stream: list[EventBase], rng: random.Random) -> None:
    once = Book()
    once.apply_all(stream)
    again = Book()
    shuffled = stream * 2
    rng.shuffle(shuffled)
    again.apply_all(shuffled)
    assert again.statement() == once.statement()


@given(event_streams())
def test_per_account_offset_never_exceeds_its_deficit(stream: list[EventBase]) -> None:
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
def test_segments_are_independent(stream: list[EventBase]) -> None:
    full = Book()
    full.apply_all(stream)
    for sid in SEGMENTS:
        alone = Book()
        alone.apply_all(e for e in stream if getattr(e, "segment", sid) == sid)
        assert alone.statement()[sid] == full.statement()[sid]


@given(event_streams())
def test_every_identity_of_the_form_holds_on_live_figures(stream: list[EventBase]) -> None:
    """The book's derived lines, recomputed from its own leaves by the oracle's arithmetic (not segwatch's)."""
    book = Book()
    book.apply_all(stream)
    for sid, lines in book.statement().items():
        target = RESULT[sid][3]
        leaves = {code: lines[code] for code in (*LEDGER[sid], *FUNDS_LEAVES[sid], "7305", target) if code in lines}
        assert lines == derive(sid, leaves, with_target=target in lines)
