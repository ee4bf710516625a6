"""The close: per key the latest balance as of the cut-off, whatever arrives later; amendments; restarts."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from segwatch.core.close import DayCloser, Sums, combine_sums
from segwatch.core.ledger import Held, line_codes

D1, D2, D3, D4 = date(2017, 11, 6), date(2017, 11, 7), date(2017, 11, 8), date(2017, 11, 9)
CUT = {d: datetime(d.year, d.month, d.day, 23, 0, tzinfo=UTC) for d in (D1, D2, D3, D4)}
DAYS = (D1, D2, D3, D4)


def bal(key: int, hours: float, cents: int, eid: str | None = None, code: str = "7070") -> tuple[str, Held]:
    as_of = datetime(2017, 11, 6, tzinfo=UTC) + timedelta(hours=hours)
    return f"depo|4d2|bank{key}|{code}|USD", Held(
        as_of, eid or f"e{key}-{hours}-{cents}", "4d2", "USD", line_codes(code), (cents,)
    )


def nonzero(sums: Sums) -> dict[tuple[str, str, str], int]:
    return {(s, c, code): v for s, curs in sums.items() for c, lines in curs.items() for code, v in lines.items() if v}


def brute(arrived: list[tuple[str, Held]], cutoff: datetime) -> dict[tuple[str, str, str], int]:
    """The definition: per key, the latest balance (as-of, then event id) at or before the cut-off."""
    latest: dict[str, Held] = {}
    for key, h in arrived:
        if h.as_of <= cutoff and (
            key not in latest or (h.as_of, h.event_id) > (latest[key].as_of, latest[key].event_id)
        ):
            latest[key] = h
    out: dict[tuple[str, str, str], int] = {}
    for h in latest.values():
        for code, cents in zip(h.codes, h.amounts, strict=True):
            out[(h.segment, h.currency, code)] = out.get((h.segment, h.currency, code), 0) + cents
    return {k: v for k, v in out.items() if v}


def test_next_days_balances_leave_the_close_fixed() -> None:
    closer = DayCloser(D1, CUT[D1])
    closer.put(*bal(1, 10, 100))
    closer.put(*bal(2, 12, 50))
    assert closer.put(*bal(1, 30, 999)).parked  # D2's balance arrives before D1 closes
    closed = closer.close(D2, CUT[D2])
    assert nonzero(closed.sums) == {("4d2", "USD", "7070"): 150}
    assert closer.view.held[bal(1, 0, 0)[0]].amounts == (999,)  # D2's view took the parked balance
    assert closer.later == {}


def test_balance_exactly_at_the_cutoff_is_in_the_day() -> None:
    closer = DayCloser(D1, CUT[D1])
    key, h = bal(1, 23, 100)
    assert h.as_of == CUT[D1]
    assert not closer.put(key, h).parked
    key, h = bal(2, 23 + 1e-9 * 3600 * 1000, 7)  # one microsecond after: the next day
    assert h.as_of > CUT[D1] and closer.put(key, h).parked
    assert nonzero(closer.close(D2, CUT[D2]).sums) == {("4d2", "USD", "7070"): 100}


def test_late_balance_amends_and_unchanged_late_balance_does_not() -> None:
    closer = DayCloser(D1, CUT[D1])
    closer.put(*bal(1, 10, 100))
    closed = closer.close(D2, CUT[D2])
    put = closer.put(*bal(1, 20, 130))  # as of D1 20:00, arrives after the close
    assert put.amended == (D1,)
    assert nonzero(closed.sums) == {("4d2", "USD", "7070"): 130} and closed.version == 2
    put = closer.put(*bal(1, 21, 130))  # newer, same amount: changes nothing
    assert put.amended == () and closed.version == 2
    put = closer.put(*bal(1, 5, 1))  # older than the balance in force: changes nothing
    assert put.amended == ()
    assert nonzero(closer.close(D3, CUT[D3]).sums) == {("4d2", "USD", "7070"): 130}


def test_late_balance_amends_every_later_closed_day_where_it_was_still_latest() -> None:
    closer = DayCloser(D1, CUT[D1])
    closer.put(*bal(1, 10, 100))
    closer.put(*bal(2, 10, 5))
    closer.close(D2, CUT[D2])
    closer.put(*bal(2, 30, 6))  # key 2 moves on D2; key 1 does not
    closer.close(D3, CUT[D3])
    put = closer.put(*bal(1, 11, 90))
    assert put.amended == (D1, D2)
    put = closer.put(*bal(2, 12, 4))  # key 2 on D1 only: D2 had its own newer balance
    assert put.amended == (D1,)
    assert nonzero(closer.closed[D1].sums) == {("4d2", "USD", "7070"): 94}
    assert nonzero(closer.closed[D2].sums) == {("4d2", "USD", "7070"): 96}


def test_late_balance_older_than_the_kept_days_is_reported() -> None:
    closer = DayCloser(D1, CUT[D1], retain=1)
    closer.put(*bal(1, 10, 100))
    closer.close(D2, CUT[D2])
    closer.close(D3, CUT[D3])
    put = closer.put(*bal(1, 11, 1))
    assert put.unchecked and put.amended == (D2,)


def run(
    events: list[tuple[str, Held]], closes_after: list[int], partitions: int = 1, restart_at: int | None = None
) -> tuple[list[DayCloser], list[tuple[str, Held]]]:
    closers = [DayCloser(D1, CUT[D1], retain=4) for _ in range(partitions)]
    arrived: list[tuple[str, Held]] = []
    for i, (key, h) in enumerate(events):
        if i == restart_at:
            closers = [DayCloser.from_state(json.loads(json.dumps(c.to_state()))) for c in closers]
        while closes_after and closes_after[0] <= i:
            closes_after.pop(0)
            for c in closers:
                nxt = DAYS[DAYS.index(c.open_day) + 1]
                c.close(nxt, CUT[nxt])
        closers[hash(key) % partitions].put(key, h)
        arrived.append((key, h))
    return closers, arrived


event = st.tuples(
    st.integers(0, 5), st.floats(0, 4 * 24, allow_nan=False), st.integers(-500, 500), st.sampled_from(["a", "b"])
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(event, max_size=40),
    st.lists(st.integers(0, 40), max_size=3),
    st.integers(1, 3),
    st.one_of(st.none(), st.integers(0, 40)),
)
def test_every_close_equals_the_definition(
    raw: list[tuple[int, float, int, str]], closes: list[int], partitions: int, restart_at: int | None
) -> None:
    events = [bal(k, round(h, 1), c, f"{eid}{k}{h}") for k, h, c, eid in raw]
    random.Random(len(events)).shuffle(events)  # arrival order has nothing to do with as-of order
    closers, arrived = run(events, sorted(closes), partitions, restart_at)
    # every kept closed day, as amended by everything that arrived, is the definition over what arrived
    for day in closers[0].closed:
        assert nonzero(combine_sums(c.closed[day].sums for c in closers)) == brute(arrived, CUT[day])
    # and the open day's view too
    view = combine_sums(
        {
            sid: {cur: {code: int(v * 100) for code, v in lines.items()} for cur, lines in c.view.totals(sid).items()}
            for sid in ("4d2",)
        }
        for c in closers
    )
    assert nonzero(view) == brute(arrived, closers[0].cutoff)


def test_restart_without_the_view_rebuilds_it_from_the_live_balances() -> None:
    from segwatch.core.aggregate import Aggregate

    live = Aggregate()
    closer = DayCloser(D1, CUT[D1])
    for key, h in (bal(1, 10, 100), bal(2, 11, 5), bal(1, 30, 7), bal(3, 31, 8)):
        live.put(key, h)
        closer.put(key, h)
    state = json.loads(json.dumps(closer.to_state(include_view=False)))
    assert len(state["view"]) == 1  # only key 1's balance at the cut-off: key 3 had none
    restored = DayCloser.from_state(state, live.held.items())
    assert nonzero(restored.close(D2, CUT[D2]).sums) == {("4d2", "USD", "7070"): 105}
    assert nonzero(restored.close(D3, CUT[D3]).sums) == {("4d2", "USD", "7070"): 20}
