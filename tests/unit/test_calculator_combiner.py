"""The calculator's pure parts: partition state, partials on the wire, and the combiner."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from schemas import AccountBalance, DepositoryBalance, ManagementTarget
from segwatch.core.book import Book
from segwatch.core.catalogue import SEGMENT_IDS
from services.calculator.combiner import Combiner
from services.calculator.partials import Partial, PartitionState
from tests.unit.test_aggregate import event_streams

NOW = datetime(2026, 11, 21, tzinfo=UTC)
T0 = datetime(2026, 11, 20, 15, tzinfo=UTC)


def run_partitioned(stream, partitions: int, batch: int) -> Combiner:
    """Route balances by key to partitions, publish a partial after every batch, settings straight in."""
    states = {p: PartitionState(p) for p in range(partitions)}
    combiner = Combiner()
    offsets = dict.fromkeys(range(partitions), 0)
    for start in range(0, len(stream), batch):
        touched = set()
        for ev in stream[start:start + batch]:
            if isinstance(ev, AccountBalance | DepositoryBalance):
                p = zlib.crc32(ev.key.encode()) % partitions
                offsets[p] += 1
                states[p].apply(ev, offsets[p], None)
                touched.add(p)
            else:
                combiner.on_setting(ev)
        for p in touched:
            # Through the wire form, as the app does.
            combiner.on_partial(Partial.from_json(states[p].partial().to_json()))
        combiner.flush(NOW)
    return combiner


@given(event_streams(), st.integers(1, 5), st.integers(1, 15))
def test_partitioned_figures_equal_the_single_book(stream, partitions, batch):
    combiner = run_partitioned(stream, partitions, batch)
    book = Book()
    book.apply_all(stream)
    for sid in SEGMENT_IDS:
        assert combiner.consolidated(sid).lines == book.consolidated(sid).lines


def acct(n: int, cash: str, minutes: int = 0, segment: str = "4d2") -> AccountBalance:
    return AccountBalance(event_id=f"e{n}", source="ledger", as_of=T0 + timedelta(minutes=minutes), segment=segment,
                          account="C1", currency="USD", cash=Decimal(cash), securities=Decimal(0),
                          unrealized=Decimal(0), long_options=Decimal(0), short_options=Decimal(0))


def test_a_figures_record_only_when_a_figure_changes_and_versions_grow():
    state, combiner = PartitionState(0), Combiner()
    state.apply(acct(1, "100"), 1, None)
    combiner.on_partial(state.partial())
    [first] = combiner.flush(NOW)
    assert (first.segment, first.version, first.requirement) == ("4d2", 1, Decimal(100))
    assert combiner.flush(NOW) == []  # nothing new
    state.apply(acct(2, "100", minutes=1), 2, None)  # same figure, newer as-of
    combiner.on_partial(state.partial())
    assert combiner.flush(NOW) == []
    state.apply(acct(3, "250", minutes=2), 3, None)
    combiner.on_partial(state.partial())
    [second] = combiner.flush(NOW)
    assert (second.version, second.requirement, second.last_event_id) == (2, Decimal(250), "e3")


def test_a_stale_partial_is_ignored():
    state, combiner = PartitionState(0), Combiner()
    state.apply(acct(1, "100"), 5, None)
    newer = state.partial()
    state.apply(acct(2, "999", minutes=1), 4, None)  # offsets only grow in Kafka; simulate an old partial
    older = Partial.from_json(newer.to_json())
    older.offset = 3
    assert combiner.on_partial(newer)
    assert not combiner.on_partial(older)


def test_settings_make_their_segment_dirty_and_carry_the_correlation_id():
    state, combiner = PartitionState(0), Combiner()
    state.apply(acct(1, "100", segment="4df"), 1, None)
    combiner.on_partial(state.partial())
    [first] = combiner.flush(NOW)
    assert first.target is None and first.excess_over_target is None  # no target set: no target lines
    target = ManagementTarget(event_id="t1", source="treasury", as_of=T0, segment="4df", amount=Decimal(5))
    assert combiner.on_setting(target) == frozenset({"4df"})
    [figures] = combiner.flush(NOW)
    assert (figures.segment, figures.target, figures.excess_over_target) == ("4df", Decimal(5), Decimal(-105))
    assert figures.last_event_id == "t1"


def test_a_segment_with_settings_but_no_balance_publishes_nothing():
    combiner = Combiner()
    target = ManagementTarget(event_id="t1", source="treasury", as_of=T0, segment="4df", amount=Decimal(5))
    assert combiner.on_setting(target) == frozenset({"4df"})
    assert combiner.flush(NOW) == []


def test_restore_resumes_versions_and_does_not_resend_unchanged_figures():
    state, combiner = PartitionState(0), Combiner()
    state.apply(acct(1, "100"), 1, None)
    partial = state.partial()
    combiner.on_partial(partial)
    [figures] = combiner.flush(NOW)
    again = Combiner()
    again.restore({0: Partial.from_json(partial.to_json())}, [],
                  {sid: e.to_json() for sid, e in combiner.emitted.items()})
    assert again.flush(NOW) == []
    state.apply(acct(2, "1", minutes=1), 2, None)
    again.on_partial(state.partial())
    [after] = again.flush(NOW)
    assert after.version == figures.version + 1


def test_partition_state_rebuilds_from_its_table_entries():
    state = PartitionState(0)
    state.apply(acct(1, "100"), 1, None)
    rebuilt = PartitionState(0)
    rebuilt.load(state.aggregate.held.items())
    assert rebuilt.partial().segments["4d2"].totals == state.partial().segments["4d2"].totals
    assert rebuilt.aggregate.segments["4d2"].sources == {"ledger": T0}
