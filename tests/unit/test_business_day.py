"""The business day in motion (the twin's stage, the combiner's closing book, the deadline alerts)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from schemas.alerts import Alert
from schemas.events import EVENT_ADAPTER, AccountBalance, DepositoryBalance, EventBase
from schemas.statements import StatementRecord
from segwatch.cli.dayclose import statement_at_close
from segwatch.core.business_day import ClosingBook, PartView, put_balance, sums_of_live
from segwatch.core.calendar import BusinessCalendar
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.twin import Twin
from segwatch.core.twin_day import STATEMENTS_TOPIC

CHI = ZoneInfo("America/Chicago")
MON, TUE = date(2017, 11, 6), date(2017, 11, 7)
CAL = BusinessCalendar()


def at(day: date, hour: int, minute: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=CHI).isoformat()


def account(eid: str, acct: str, cash: str, when: str, segment: str = "4d2") -> AccountBalance:
    ev = EVENT_ADAPTER.validate_python(
        {
            "type": "account_balance",
            "event_id": eid,
            "source": "test",
            "as_of": when,
            "segment": segment,
            "account": acct,
            "currency": "USD",
            "cash": cash,
            "securities": "0",
            "unrealized": "0",
            "long_options": "0",
            "short_options": "0",
        }
    )
    assert isinstance(ev, AccountBalance)
    return ev


def bank(eid: str, amount: str, when: str, segment: str = "4d2", depository: str = "BANK-1") -> DepositoryBalance:
    ev = EVENT_ADAPTER.validate_python(
        {
            "type": "depository_balance",
            "event_id": eid,
            "source": "test",
            "as_of": when,
            "segment": segment,
            "depository": depository,
            "line": "7070",
            "location": "us",
            "currency": "USD",
            "amount": amount,
        }
    )
    assert isinstance(ev, DepositoryBalance)
    return ev


def event(kind: str, eid: str, when: str, **fields: Any) -> EventBase:
    return EVENT_ADAPTER.validate_python({"type": kind, "event_id": eid, "source": "test", "as_of": when, **fields})


def day_events() -> list[EventBase]:
    return [
        event("management_target", "t1", at(MON, 8), segment="4d2", amount="100"),
        account("m1", "C-1", "1000", at(MON, 10)),
        bank("m2", "1500", at(MON, 11)),
        account("m3", "C-1", "1200", at(MON, 15)),
    ]


def statements(records: list[Any]) -> list[StatementRecord]:
    return [r.value for r in records if r.topic == STATEMENTS_TOPIC]


def alerts(records: list[Any]) -> list[Alert]:
    return [
        r.value for r in records if isinstance(r.value, Alert) and r.value.rule.startswith(("statement", "amendment"))
    ]


def test_the_next_days_first_balance_closes_the_day_as_from_events_close() -> None:
    twin = Twin()
    events = day_events()
    assert statements(twin.feed_all(events)) == []  # the day is open
    tuesday = account("t-1", "C-1", "5000", at(TUE, 9))
    out = statements(twin.feed(tuesday))
    assert [(s.business_day, s.segment, s.kind, s.version) for s in out] == [
        (MON, sid, "INITIAL", 1) for sid in SEGMENT_IDS
    ]
    expected = statement_at_close([*events, tuesday], MON, CAL)
    assert {s.segment: dict(s.lines) for s in out} == expected
    # Live figures move on with Tuesday's balance while the close stays fixed.
    assert twin.figures["4d2"].lines != out[0].lines
    assert statements(twin.feed(account("t-2", "C-1", "6000", at(TUE, 10)))) == []


def test_a_late_balance_amends_the_closed_day_and_an_unchanged_one_does_nothing() -> None:
    twin = Twin()
    twin.feed_all([*day_events(), account("t-1", "C-1", "5000", at(TUE, 9))])
    approval = event(
        "statement_approval",
        "ap1",
        at(TUE, 8),
        business_day=MON.isoformat(),
        approved_by="Jane Roe",
        role="cfo",
        approved_at=at(TUE, 8),
        reference="SIGN-1",
    )
    assert alerts(twin.feed(approval)) == []
    late = bank("m4", "1700", at(MON, 16))  # arrives Tuesday, as of Monday afternoon
    records = twin.feed(late)
    (amended,) = [s for s in statements(records) if s.segment == "4d2"]
    assert (amended.kind, amended.version) == ("AMENDMENT", 2) and amended.moved
    assert amended.lines == statement_at_close([*day_events(), late], MON, CAL)["4d2"]
    (alert,) = alerts(records)
    assert (alert.rule, alert.state, alert.segment, alert.alert_id) == (
        "amendment_needed",
        "firing",
        "4d2",
        "2017-11-06|amendment_needed",
    )
    same = bank("m4", "1700", at(MON, 16))
    assert statements(twin.feed(same)) == [] and alerts(twin.feed(same)) == []
    filing = event(
        "statement_filing", "f1", at(TUE, 11), business_day=MON.isoformat(), filed_at=at(TUE, 11), confirmation="WJ-1"
    )
    resolved = alerts(twin.feed(filing))
    assert [(a.rule, a.state) for a in resolved] == [("amendment_needed", "resolved")]


def test_the_noon_deadline_warns_at_ten_and_pages_at_noon_until_filed() -> None:
    twin = Twin()
    twin.feed_all([*day_events(), account("t-1", "C-1", "5000", at(TUE, 9))])
    ten = alerts(twin.feed(account("t-2", "C-2", "1", at(TUE, 10, 5))))
    assert [(a.rule, a.severity, a.page, a.state) for a in ten] == [("statement_not_filed", "warning", False, "firing")]
    noon = alerts(twin.feed(account("t-3", "C-2", "2", at(TUE, 12, 1))))
    assert sorted((a.rule, a.severity, a.page, a.state) for a in noon) == [
        ("statement_not_filed", "critical", True, "firing"),
        ("statement_not_filed", "warning", False, "resolved"),
    ]
    filed = alerts(
        twin.feed(
            event(
                "statement_filing",
                "f1",
                at(TUE, 12, 30),
                business_day=MON.isoformat(),
                filed_at=at(TUE, 12, 30),
                confirmation="WJ-1",
            )
        )
    )
    assert sorted((a.rule, a.state) for a in filed) == [
        ("statement_filed_late", "firing"),
        ("statement_not_filed", "resolved"),
    ]


def test_a_close_event_closes_the_day_before_any_next_day_balance() -> None:
    twin = Twin()
    twin.feed_all(day_events())
    out = statements(twin.feed(event("business_day_close", "c1", at(MON, 18), business_day=MON.isoformat())))
    assert {s.segment for s in out} == set(SEGMENT_IDS) and all(s.kind == "INITIAL" for s in out)
    # A balance of the closed day after the close event is an amendment.
    out = statements(twin.feed(bank("m9", "2000", at(MON, 17))))
    assert [(s.segment, s.kind) for s in out] == [("4d2", "AMENDMENT")]


def test_partitions_combine_and_a_lagging_partition_counts_with_its_live_sums() -> None:
    """Two partitions: one sees Tuesday's balance (it closes Monday), the other does not: its live sums are
    its share of Monday, and a balance it gets later for Monday amends Monday."""
    from segwatch.core.ledger import held_of

    evs = [*day_events(), account("m5", "C-2", "500", at(MON, 14))]
    a = b = None
    for ev in evs[1:4]:
        key, held = held_of(ev)  # type: ignore[arg-type]
        a, _, _ = put_balance(a, CAL, key, held)
    key, held = held_of(evs[4])  # type: ignore[arg-type]
    b, _, _ = put_balance(b, CAL, key, held)
    key, held = held_of(account("t-1", "C-9", "7", at(TUE, 9)))
    a, closed, _ = put_balance(a, CAL, key, held)
    assert [c.day for c in closed] == [MON]
    book = ClosingBook(CAL)
    book.on_setting(evs[0])  # type: ignore[arg-type]

    def views() -> list[PartView]:
        return [PartView.of(c, sums_of_live({s: c.view.totals(s) for s in SEGMENT_IDS})) for c in (a, b) if c]

    first = book.statements(views(), datetime(2017, 11, 7, 16, tzinfo=CHI))
    four = next(s for s in first if s.segment == "4d2")
    assert four.lines == statement_at_close(evs, MON, CAL)["4d2"]
    key, held = held_of(bank("m8", "99", at(MON, 12), depository="BANK-2"))
    b, _, _ = put_balance(b, CAL, key, held)
    again = book.statements(views(), datetime(2017, 11, 7, 17, tzinfo=CHI))
    assert [(s.segment, s.kind, s.version) for s in again] == [("4d2", "AMENDMENT", 2)]
    assert book.statements(views(), datetime(2017, 11, 7, 18, tzinfo=CHI)) == []


def test_the_clock_closes_a_day_at_its_cutoff() -> None:
    book = ClosingBook(CAL)
    book.close_at(datetime(2017, 11, 6, 23, 0, tzinfo=CHI))
    assert book.closed_through == date(2017, 11, 3)  # Monday still open: the Friday before is closed
    book.close_at(datetime(2017, 11, 7, 0, 0, 1, tzinfo=CHI) + timedelta(seconds=1))
    assert book.closed_through == MON
