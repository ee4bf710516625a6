"""The close applies issue #14's rule as the live figures do: funds at a depository whose reference data, in force
at the day's cut-off, says its acknowledgment letter is missing are out of the statement's funds lines (unless
SEGWATCH_COUNT_UNACKNOWLEDGED=yes), in the twin, in the calculator's desk and in `from-events --close` alike.

A reference is a setting: one as of the cut-off or earlier amends the closed day even when it arrives after the
close (like a late FX rate); one as of after the cut-off leaves the closed day alone."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from schemas.events import EVENT_ADAPTER, AccountBalance, DepositoryBalance, EventBase
from schemas.statements import StatementRecord
from segwatch.cli.dayclose import statement_at_close
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.close import DayCloser
from segwatch.core.ledger import held_of
from segwatch.core.twin import EventClock, Twin
from services.calculator import closing
from services.calculator.closing import StatementDesk, load_rows, partition_day
from services.calculator.partials import Partial, PartitionState
from tests.unit.test_business_day import CAL, CHI, MON, TUE, account, at, bank, event, statements

NOW = datetime(2017, 11, 7, 9, tzinfo=CHI)


def letter(eid: str, when: str, on_file: bool, depository: str = "NOLETTER") -> EventBase:
    return EVENT_ADAPTER.validate_python(
        {
            "type": "depository_reference",
            "event_id": eid,
            "source": "test",
            "as_of": when,
            "segment": "4d2",
            "depository": depository,
            "kind": "bank",
            "country": "US",
            "acknowledgment_letter": on_file,
        }
    )


def monday() -> list[EventBase]:
    """A customer, an acknowledged bank account (no reference data: counts as before) and one whose reference
    data says its letter is missing."""
    return [
        event("management_target", "t1", at(MON, 8), segment="4d2", amount="100"),
        letter("r1", at(MON, 8), on_file=False),
        account("m1", "C-1", "1000", at(MON, 10)),
        bank("m2", "1500", at(MON, 11)),
        bank("m3", "250", at(MON, 11), depository="NOLETTER"),
    ]


TUESDAY = account("t1", "C-1", "5000", at(TUE, 9))  # the first balance after Monday's cut-off: closes it


def close_in_twin(events: list[EventBase]) -> tuple[Twin, dict[str, Any], StatementRecord]:
    """Monday in the twin, the live 4d(2) lines at its cut-off, then Tuesday's first balance: the INITIAL."""
    twin = Twin(clock=EventClock())
    twin.feed_all(events)
    live = dict(twin.figures["4d2"].lines)
    [initial] = [s for s in statements(twin.feed(TUESDAY)) if s.segment == "4d2"]
    return twin, live, initial


def test_the_close_leaves_out_funds_at_a_depository_without_its_letter() -> None:
    twin, live, initial = close_in_twin(monday())
    assert initial.kind == "INITIAL"
    assert initial.lines["7070"] == Decimal("1500.00")  # the 250 at NOLETTER are out, as in the live figures
    assert dict(initial.lines) == live  # the close equals the live figures at the cut-off
    assert dict(initial.lines) == statement_at_close([*monday(), TUESDAY], MON, CAL)["4d2"]
    assert twin.figures["4d2"].lines["7070"] == Decimal("1500.00")


def test_with_count_unacknowledged_the_close_counts_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGWATCH_COUNT_UNACKNOWLEDGED", "yes")
    _, live, initial = close_in_twin(monday())
    assert initial.lines["7070"] == Decimal("1750.00")
    assert dict(initial.lines) == live
    assert dict(initial.lines) == statement_at_close([*monday(), TUESDAY], MON, CAL)["4d2"]


def test_a_reference_after_the_cut_off_leaves_the_closed_day_alone_a_late_one_as_of_it_amends_it() -> None:
    twin, _, initial = close_in_twin(monday())
    # The letter is on file from Tuesday: the live figures count the funds, Monday's close does not change.
    tuesday_letter = letter("r2", at(TUE, 10), on_file=True)
    assert statements(twin.feed(tuesday_letter)) == []
    assert twin.figures["4d2"].lines["7070"] == Decimal("1750.00")
    assert statement_at_close([*monday(), TUESDAY, tuesday_letter], MON, CAL)["4d2"] == dict(initial.lines)
    # A correction of Monday's reference data (as of Monday, arriving now): Monday is amended.
    correction = letter("r3", at(MON, 9), on_file=True)
    [amended] = statements(twin.feed(correction))
    assert (amended.business_day, amended.kind, amended.version) == (MON, "AMENDMENT", 2)
    assert amended.lines["7070"] == Decimal("1750.00") and "7070" in amended.moved
    assert dict(amended.lines) == statement_at_close([*monday(), TUESDAY, tuesday_letter, correction], MON, CAL)["4d2"]


def test_a_late_balance_at_a_depository_without_its_letter_does_not_amend_the_close() -> None:
    twin, _, _ = close_in_twin(monday())
    # Monday's NOLETTER balance restated late: its funds are out either way, the statement does not move.
    assert statements(twin.feed(bank("m4", "900", at(MON, 16), depository="NOLETTER"))) == []
    # A late balance at the acknowledged bank does.
    [amended] = statements(twin.feed(bank("m5", "1600", at(MON, 16))))
    assert amended.kind == "AMENDMENT" and amended.lines["7070"] == Decimal("1600.00")
    events = [
        *monday(),
        TUESDAY,
        bank("m4", "900", at(MON, 16), depository="NOLETTER"),
        bank("m5", "1600", at(MON, 16)),
    ]
    assert dict(amended.lines) == statement_at_close(events, MON, CAL)["4d2"]


def test_the_closed_days_funds_per_depository_survive_a_restart_of_the_closer() -> None:
    closer = DayCloser(MON, CAL.cutoff(MON))
    for ev in monday()[2:]:
        closer.put(*held_of(ev))  # type: ignore[arg-type]
    closer.close(TUE, CAL.cutoff(TUE))
    closer.put(*held_of(bank("m4", "900", at(MON, 16), depository="NOLETTER")))
    assert closer.closed[MON].depositories == {"4d2": {"USD": {"BANK-1|7070": 150000, "NOLETTER|7070": 90000}}}
    restored = DayCloser.from_state(orjson.loads(orjson.dumps(closer.to_state())))
    assert restored.closed[MON].depositories == closer.closed[MON].depositories


# -- the calculator: partitions, partials on the wire, the statements desk, a restart ------------------------------


def put(state: PartitionState, ev: EventBase, rows: dict[str, Any]) -> None:
    """One balance as the calculator's aggregate stage applies it: the partition's closer and live aggregate,
    then its holdings (holdings_stage.note_depository), and the `closing` rows it writes."""
    key, held = held_of(ev)  # type: ignore[arg-type]
    if partition_day(state, CAL).put(key, held) and isinstance(ev, DepositoryBalance):
        state.holdings.apply(ev)
    rows.update({k: orjson.loads(v) for k, v in state.closing.take_rows(state.partition).items()})


def partial(state: PartitionState) -> Partial:
    return Partial.from_json(state.partial().to_json())


def test_the_calculators_close_leaves_them_out_across_partitions_and_restarts() -> None:
    balances = [ev for ev in monday() if isinstance(ev, AccountBalance | DepositoryBalance)]
    settings = [ev for ev in monday() if ev not in balances]
    a, b = PartitionState(0), PartitionState(1)
    rows_a: dict[str, Any] = {}
    rows_b: dict[str, Any] = {}
    put(a, balances[0], rows_a)
    put(a, balances[1], rows_a)
    put(b, balances[2], rows_b)  # NOLETTER's funds in partition 1, which then sees nothing after the cut-off
    desk = StatementDesk(CAL)
    for ev in settings:
        desk.on_setting(ev)  # type: ignore[arg-type]
    put(a, TUESDAY, rows_a)  # partition 0 closes Monday; partition 1 is still open at it (its live holdings)
    for s in (a, b):
        desk.on_partial(partial(s))
    first = desk.flush(NOW)
    expected = statement_at_close([*monday(), TUESDAY], MON, CAL)
    assert {r.segment: dict(r.lines) for r in first} == {sid: expected[sid] for sid in SEGMENT_IDS}
    [four] = [r for r in first if r.segment == "4d2"]
    assert four.lines["7070"] == Decimal("1500.00")
    # Partition 1 closes Monday too (its closed day now carries NOLETTER's funds): nothing changes.
    put(b, account("t2", "C-2", "1", at(TUE, 9)), rows_b)
    desk.on_partial(partial(b))
    assert desk.flush(NOW) == []
    # A restart of partition 1 from its changelog rows, then of the desk from the partials and what was
    # published: still nothing to publish, and the late correction of the reference amends Monday.
    reloaded = PartitionState(1)
    load_rows(partition_day(reloaded, CAL), rows_b)
    reloaded.load(b.aggregate.held.items())
    assert closing.meta_of(reloaded.closing.closer) == closing.meta_of(b.closing.closer)
    again = StatementDesk(CAL)
    again.restore([partial(a), partial(reloaded)], settings, None, first)  # type: ignore[arg-type]
    assert again.flush(NOW) == []
    correction = letter("r3", at(MON, 9), on_file=True)
    assert again.on_setting(correction)  # type: ignore[arg-type]
    [amended] = again.flush(NOW)
    assert (amended.segment, amended.kind, amended.version) == ("4d2", "AMENDMENT", 2)
    assert dict(amended.lines) == statement_at_close([*monday(), TUESDAY, correction], MON, CAL)["4d2"]
    assert amended.lines["7070"] == Decimal("1750.00")
