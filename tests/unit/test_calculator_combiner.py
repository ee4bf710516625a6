"""The calculator's pure parts: partition state, partials on the wire, and the combiner."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from schemas import AccountBalance, DepositoryBalance, EventBase, Figures, ManagementTarget
from schemas.events import Setting
from schemas.types import SegmentId
from segwatch.core.book import Book
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.ledger import Held, held_of
from services.calculator.combiner import Combiner
from services.calculator.partials import Partial, PartitionState
from tests.support.streams import event_streams

NOW = datetime(2026, 11, 21, tzinfo=UTC)
T0 = datetime(2026, 11, 20, 15, tzinfo=UTC)


def run_partitioned(stream: list[EventBase], partitions: int, batch: int) -> Combiner:
    """Route balances by key to partitions, publish a partial after every batch, settings straight in."""
    states = {p: PartitionState(p) for p in range(partitions)}
    combiner = Combiner()
    offsets = dict.fromkeys(range(partitions), 0)
    for start in range(0, len(stream), batch):
        touched = set()
        for ev in stream[start : start + batch]:
            if isinstance(ev, AccountBalance | DepositoryBalance):
                p = zlib.crc32(ev.key.encode()) % partitions
                offsets[p] += 1
                states[p].apply(ev, offsets[p], None)
                touched.add(p)
            else:
                assert isinstance(ev, Setting), ev
                combiner.on_setting(ev)
        for p in touched:
            # Through the wire form, as the app does.
            combiner.on_partial(Partial.from_json(states[p].partial().to_json()))
        combiner.flush(NOW)
    return combiner


@given(event_streams(), st.integers(1, 5), st.integers(1, 15))
def test_partitioned_figures_equal_the_single_book(stream: list[EventBase], partitions: int, batch: int) -> None:
    combiner = run_partitioned(stream, partitions, batch)
    book = Book()
    book.apply_all(stream)
    for sid in SEGMENT_IDS:
        assert combiner.consolidated(sid).lines == book.consolidated(sid).lines


def acct(n: int, cash: str, minutes: int = 0, segment: SegmentId = "4d2") -> AccountBalance:
    return AccountBalance(
        event_id=f"e{n}",
        source="ledger",
        as_of=T0 + timedelta(minutes=minutes),
        segment=segment,
        account="C1",
        currency="USD",
        cash=Decimal(cash),
        securities=Decimal(0),
        unrealized=Decimal(0),
        long_options=Decimal(0),
        short_options=Decimal(0),
    )


def test_a_figures_record_only_when_a_figure_changes_and_versions_grow() -> None:
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


def test_a_stale_partial_is_ignored() -> None:
    state, combiner = PartitionState(0), Combiner()
    state.apply(acct(1, "100"), 5, None)
    newer = state.partial()
    state.apply(acct(2, "999", minutes=1), 4, None)  # offsets only grow in Kafka; simulate an old partial
    older = Partial.from_json(newer.to_json())
    older.offset = 3
    assert combiner.on_partial(newer)
    assert not combiner.on_partial(older)


def test_settings_make_their_segment_dirty_and_carry_the_correlation_id() -> None:
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


def test_a_segment_with_settings_but_no_balance_publishes_nothing() -> None:
    combiner = Combiner()
    target = ManagementTarget(event_id="t1", source="treasury", as_of=T0, segment="4df", amount=Decimal(5))
    assert combiner.on_setting(target) == frozenset({"4df"})
    assert combiner.flush(NOW) == []


def test_restore_resumes_versions_from_the_published_record_and_does_not_resend_unchanged_figures() -> None:

    state, combiner = PartitionState(0), Combiner()
    state.apply(acct(1, "100"), 1, None)
    partial = state.partial()
    combiner.on_partial(partial)
    [figures] = combiner.flush(NOW)
    on_topic = Figures.model_validate_json(figures.model_dump_json())  # as read back from the figures topic
    again = Combiner()
    again.restore({0: Partial.from_json(partial.to_json())}, [], {"4d2": on_topic})
    assert again.flush(NOW) == []
    state.apply(acct(2, "1", minutes=1), 2, None)
    again.on_partial(state.partial())
    [after] = again.flush(NOW)
    assert after.version == figures.version + 1


def test_restore_publishes_at_once_what_the_figures_topic_lacks() -> None:
    """The combiner applied a partial and was killed before its figures record reached Kafka: the restored
    combiner compares with the last record on the topic, not with what it believed it sent."""
    state, combiner = PartitionState(0), Combiner()
    state.apply(acct(1, "100"), 1, None)
    combiner.on_partial(state.partial())
    [published] = combiner.flush(NOW)
    state.apply(acct(2, "-50", minutes=1), 2, None)
    combiner.on_partial(state.partial())
    [lost] = combiner.flush(NOW)  # never reached the topic
    again = Combiner()
    again.restore(dict(combiner.partials), [], {"4d2": published})
    [sent] = again.flush(NOW)
    assert (sent.version, sent.lines) == (lost.version, lost.lines)
    assert sent.version == published.version + 1


def test_a_reloaded_partition_state_supersedes_every_partial_of_an_earlier_load() -> None:
    """A worker killed after its change was durable but before the partial went out: its successor loads the
    state (a higher epoch: the changelog grew) and publishes it, offset -1 or not."""
    first = PartitionState(0)
    first.loaded("accounts", 10)
    first.apply(acct(1, "100"), 40, None)
    combiner = Combiner()
    assert combiner.on_partial(Partial.from_json(first.partial().to_json()))
    reloaded = PartitionState(0)
    reloaded.loaded("accounts", 12)  # the change of offset 41 was written, its partial never sent
    reloaded.load_one(*acct_held(2, "-7"))
    partial = reloaded.partial()
    assert (partial.epoch, partial.offset) == (12, -1)
    assert combiner.on_partial(Partial.from_json(partial.to_json()))
    [figures] = combiner.flush(NOW)
    assert figures.lines["7010"] == Decimal(-7)
    # The Kafka copy of the first load's partial comes back late: stale.
    assert not combiner.on_partial(Partial.from_json(first.partial().to_json()))


def acct_held(n: int, cash: str) -> tuple[str, Held]:

    return held_of(acct(n, cash, minutes=n))


def test_partition_state_rebuilds_from_its_table_entries() -> None:
    state = PartitionState(0)
    state.apply(acct(1, "100"), 1, None)
    rebuilt = PartitionState(0)
    rebuilt.load(state.aggregate.held.items())
    assert rebuilt.partial().segments["4d2"].totals == state.partial().segments["4d2"].totals
    assert rebuilt.aggregate.segments["4d2"].sources == {"ledger": T0}
