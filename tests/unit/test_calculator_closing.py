"""The calculator's business day (services/calculator/closing.py): the partition closer beside the live aggregate,
its changelog rows, the partial's view, and the combiner's statements desk."""

from __future__ import annotations

import random
from datetime import date, datetime
from typing import Any

import orjson
import pytest

from schemas.events import BusinessDayClose, EventBase
from schemas.statements import StatementRecord
from segwatch.cli.dayclose import statement_at_close
from segwatch.core.aggregate import Aggregate
from segwatch.core.business_day import put_balance
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.close import DayCloser
from segwatch.core.figures import consolidate
from segwatch.core.ledger import held_of
from segwatch.core.settings import Settings
from services.calculator import closing
from services.calculator.closing import StatementDesk, clock_from, load_rows, partition_day
from services.calculator.partials import Partial, PartitionState
from tests.unit.test_business_day import CAL, CHI, MON, TUE, account, at, bank, day_events, event

WED = date(2017, 11, 8)


def put(state: PartitionState, ev: EventBase, rows: dict[str, Any] | None = None) -> bool:
    key, held = held_of(ev)  # type: ignore[arg-type]
    changed = partition_day(state, CAL).put(key, held)
    if rows is not None:  # what the changelog keeps: the latest row of each key
        rows.update({k: orjson.loads(v) for k, v in state.closing.take_rows(state.partition).items()})
    return changed


def balances() -> list[EventBase]:
    """Monday's balances, Tuesday's, late Monday ones (changed and unchanged), Wednesday's."""
    return [
        account("m1", "C-1", "1000", at(MON, 10)),
        bank("m2", "1500", at(MON, 11)),
        account("m3", "C-2", "300", at(MON, 15)),
        account("t1", "C-1", "5000", at(TUE, 9)),
        bank("m4", "1700", at(MON, 16)),  # late, changes Monday
        account("m5", "C-2", "300", at(MON, 16)),  # late, same amounts
        account("m6", "C-1", "900", at(MON, 8)),  # late but older than Monday's C-1
        bank("t2", "2500", at(TUE, 10)),
        account("w1", "C-2", "50", at(WED, 9)),
        account("t3", "C-3", "70", at(TUE, 17)),  # late for Tuesday, no balance before it
    ]


def test_the_live_aggregate_is_the_closers_view_and_answers_as_the_aggregate_alone() -> None:
    state = PartitionState(0)
    alone = Aggregate()
    reference: DayCloser | None = None
    for ev in balances():
        key, held = held_of(ev)  # type: ignore[arg-type]
        assert put(state, ev) == alone.put(key, held)
        reference, _, _ = put_balance(reference, CAL, key, held)
    assert state.closing.closer.view is state.aggregate
    assert reference is not None
    mine = state.closing.closer
    assert (mine.open_day, mine.cutoff) == (reference.open_day, reference.cutoff) == (WED, CAL.cutoff(WED))
    assert {d: (c.sums, c.version) for d, c in mine.closed.items()} == {
        d: (c.sums, c.version) for d, c in reference.closed.items()
    }
    for sid in SEGMENT_IDS:
        assert state.aggregate.totals(sid) == alone.totals(sid) == reference.view.totals(sid)
    # Monday's close is the statement from the events as of its cut-off, late balances included.
    monday = mine.closed[MON]
    assert monday.version == 2  # amended once: by m4 only (m5 the same amounts, m6 older than C-1's)
    expected = statement_at_close(balances(), MON, CAL)
    for sid in SEGMENT_IDS:
        assert dict(consolidate(sid, monday.totals(sid), Settings()).lines) == expected[sid]


def test_the_changelog_rows_rebuild_the_same_closer_and_it_goes_on_the_same() -> None:
    rng = random.Random(12)
    evs = balances()
    first, later = evs[:6], evs[6:]
    state, rows = PartitionState(3), dict[str, Any]()
    for ev in first:
        put(state, ev, rows)
    assert any(k.startswith(closing.META) for k in rows) and any(k.startswith(closing.BEFORE) for k in rows)
    # A restart: the balances table reloads the aggregate, the closing table the closer.
    reloaded = PartitionState(3)
    items = list(state.aggregate.held.items())
    rng.shuffle(items)
    shuffled = list(rows.items())
    rng.shuffle(shuffled)
    load_rows(partition_day(reloaded, CAL), dict(shuffled))
    reloaded.load(items)
    assert closing.meta_of(reloaded.closing.closer) == closing.meta_of(state.closing.closer)
    for key in state.aggregate.held:
        assert closing.before_of(reloaded.closing.closer, key) == closing.before_of(state.closing.closer, key)
    for ev in later:
        assert put(reloaded, ev, rows) == put(state, ev)
    assert closing.meta_of(reloaded.closing.closer) == closing.meta_of(state.closing.closer)
    assert reloaded.partial().day == state.partial().day


def test_a_fetch_of_the_open_day_writes_a_row_per_key_once_per_day_and_no_meta() -> None:
    state = PartitionState(0)
    put(state, account("m1", "C-1", "1", at(MON, 10)))
    put(state, account("t1", "C-1", "2", at(TUE, 9)))
    state.closing.take_rows(0)
    put(state, account("t2", "C-2", "3", at(TUE, 10)))
    put(state, account("t3", "C-2", "4", at(TUE, 11)))
    rows = state.closing.take_rows(0)
    assert list(rows) == ["before|acct|4d2|C-2|USD"]  # C-2 had no balance at Monday's cut-off
    assert orjson.loads(rows["before|acct|4d2|C-2|USD"]) == {"2017-11-06": None}
    put(state, account("t4", "C-2", "5", at(TUE, 12)))
    assert state.closing.take_rows(0) == {}


def test_the_partial_carries_the_partitions_view_and_an_old_partial_still_reads() -> None:
    state = PartitionState(1)
    for ev in balances()[:4]:
        put(state, ev)
    partial = Partial.from_json(state.partial().to_json())
    assert partial.day is not None
    assert partial.day["open_day"] == TUE.isoformat() and list(partial.day["closed"]) == [MON.isoformat()]
    old = orjson.loads(partial.to_json())
    del old["day"]
    assert Partial.from_json(orjson.dumps(old)).day is None
    assert "day" not in orjson.loads(Partial.from_json(orjson.dumps(old)).to_json())


def desk_with(*states: PartitionState, now: datetime) -> tuple[StatementDesk, list[StatementRecord]]:
    desk = StatementDesk(CAL)
    for s in states:
        desk.on_partial(Partial.from_json(s.partial().to_json()))
    return desk, desk.flush(now)


def test_the_desk_publishes_initial_then_one_amendment_and_nothing_for_an_unchanged_late_balance() -> None:
    evs = day_events()
    target = evs[0]
    a, b = PartitionState(0), PartitionState(1)
    for ev in evs[1:]:
        put(a, ev)
    put(b, account("m7", "C-7", "20", at(MON, 9)))
    desk = StatementDesk(CAL)
    assert desk.on_setting(target) and not desk.on_setting(target)  # type: ignore[arg-type]
    now = datetime(2017, 11, 7, 9, tzinfo=CHI)
    for s in (a, b):
        desk.on_partial(Partial.from_json(s.partial().to_json()))
    assert desk.flush(now) == []  # nothing closed yet
    put(a, account("t1", "C-1", "5000", at(TUE, 9)))
    desk.on_partial(Partial.from_json(a.partial().to_json()))
    first = desk.flush(now)
    assert [(r.segment, r.kind, r.version) for r in first] == [(sid, "INITIAL", 1) for sid in SEGMENT_IDS]
    closed_events = [*evs, account("m7", "C-7", "20", at(MON, 9))]
    expected = statement_at_close(closed_events, MON, CAL)
    assert {r.segment: dict(r.lines) for r in first} == expected
    # A late balance at the partition still open at Monday (b): one amendment, version 2.
    late = bank("m8", "99", at(MON, 12), depository="BANK-2")
    put(b, late)
    desk.on_partial(Partial.from_json(b.partial().to_json()))
    (amended,) = desk.flush(now)
    assert (amended.segment, amended.kind, amended.version) == ("4d2", "AMENDMENT", 2) and amended.moved
    assert amended.lines == statement_at_close([*closed_events, late], MON, CAL)["4d2"]
    put(b, bank("m8", "99", at(MON, 12), depository="BANK-2"))
    desk.on_partial(Partial.from_json(b.partial().to_json()))
    assert desk.flush(now) == []
    # A restart: restored from the partials and what was published, it publishes nothing again, and the next
    # amendment is version 3.
    again = StatementDesk(CAL)
    again.restore(
        [Partial.from_json(s.partial().to_json()) for s in (a, b)],
        [target],  # type: ignore[list-item]
        None,
        [*first, amended],
    )
    assert again.flush(now) == []
    put(a, account("m9", "C-9", "1", at(MON, 13)))
    again.on_partial(Partial.from_json(a.partial().to_json()))
    assert [(r.segment, r.kind, r.version) for r in again.flush(now)] == [("4d2", "AMENDMENT", 3)]


def test_a_close_event_and_the_clock_close_the_day_in_the_book() -> None:
    a = PartitionState(0)
    for ev in day_events()[1:]:
        put(a, ev)
    desk, out = desk_with(a, now=datetime(2017, 11, 6, 18, tzinfo=CHI))
    assert out == []
    close = BusinessDayClose(
        event_id="c1", source="ledger", as_of=datetime(2017, 11, 6, 18, tzinfo=CHI), business_day=MON
    )
    assert desk.on_close(close) and not desk.on_close(close)
    assert [r.kind for r in desk.flush(datetime(2017, 11, 6, 18, tzinfo=CHI))] == ["INITIAL"] * len(SEGMENT_IDS)
    clocked, _ = desk_with(a, now=datetime(2017, 11, 6, 18, tzinfo=CHI))
    clocked.tick(datetime(2017, 11, 6, 23, 59, tzinfo=CHI))  # Monday open: the Friday before closes
    assert (
        clocked.book.closed_through == date(2017, 11, 3)
        and clocked.flush(datetime(2017, 11, 6, 23, 59, tzinfo=CHI)) == []
    )
    assert not clocked.tick(datetime(2017, 11, 6, 23, 59, 30, tzinfo=CHI))
    assert clocked.tick(datetime(2017, 11, 7, 0, 0, 1, tzinfo=CHI))
    assert [(r.business_day, r.kind) for r in clocked.flush(datetime(2017, 11, 7, 0, 1, tzinfo=CHI))] == [
        (MON, "INITIAL")
    ] * len(SEGMENT_IDS)


def test_settings_history_is_pruned_only_of_what_no_kept_day_needs() -> None:
    desk = StatementDesk(CAL, retain=1)
    a = PartitionState(0)
    for i, day in enumerate((MON, TUE, WED)):
        assert desk.on_setting(event("fx_rate", f"fx{i}", at(day, 8), currency="EUR", usd_per_unit=f"1.{i}"))  # type: ignore[arg-type]
        put(a, account(f"a{i}", "C-1", str(i + 1), at(day, 9)))
    desk.on_partial(Partial.from_json(a.partial().to_json()))
    desk.flush(datetime(2017, 11, 8, 12, tzinfo=CHI))
    assert desk.prunable() == ["fx0"]  # Tuesday (the only day kept) needs fx1, Wednesday fx2
    assert desk.prunable() == []


def test_the_clock_is_fixed_by_segwatch_now_or_is_the_wall_clock() -> None:
    assert clock_from("2017-11-07T12:00:00-06:00")() == datetime(2017, 11, 7, 12, tzinfo=CHI)
    assert clock_from("")().tzinfo is not None
    with pytest.raises(ValueError, match="SEGWATCH_NOW"):
        clock_from("2017-11-07T12:00:00")
    with pytest.raises(ValueError, match="SEGWATCH_NOW"):
        clock_from("tomorrow")


def test_the_calculator_reads_its_clock_and_retention_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.calculator.app import CalculatorConfig

    monkeypatch.setenv("SEGWATCH_NOW", "2017-11-06T12:00:00+00:00")
    monkeypatch.setenv("SEGWATCH_CLOSE_RETAIN", "3")
    cfg = CalculatorConfig.from_env()
    assert (cfg.now, cfg.close_retain) == ("2017-11-06T12:00:00+00:00", 3)
    monkeypatch.delenv("SEGWATCH_NOW")
    monkeypatch.delenv("SEGWATCH_CLOSE_RETAIN")
    assert (CalculatorConfig.from_env().now, CalculatorConfig.from_env().close_retain) == ("", 5)
    # Sign-off and filing belong with the statements (a calculator dead-letters them from the settings topic).
    assert cfg.home("statement_filing") == cfg.home("statement_approval") == cfg.statements
    assert cfg.home("business_day_close") == cfg.settings


def test_a_partition_loaded_without_a_closer_counts_in_the_days_since_its_newest_balance() -> None:
    """Balances from before the calculator closed days: the partial says the partition is open at its newest
    balance's day, and its first balance after that closes the day with what it held."""
    state = PartitionState(2)
    evs = [account("m1", "C-1", "1000", at(MON, 10)), bank("m2", "1500", at(MON, 11))]
    state.load(held_of(ev) for ev in evs)  # type: ignore[arg-type]
    load_rows(partition_day(state, CAL), {})  # its `closing` changelog is empty
    assert state.partial().day == {"open_day": MON.isoformat(), "closed": {}}
    put(state, account("w1", "C-1", "7", at(WED, 9)))
    closer = state.closing.closer
    assert list(closer.closed) == [MON, TUE] and closer.open_day == WED
    expected = statement_at_close(evs, MON, CAL)
    for day in (MON, TUE):
        assert dict(consolidate("4d2", closer.closed[day].totals("4d2"), Settings()).lines) == expected["4d2"]
