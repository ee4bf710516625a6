"""Reg. 1.22(c): residual interest at least the customers' undermargined amounts of the prior close, by 6:00 pm
Eastern on the next business day (the calendar is a parameter)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from schemas.events import EVENT_ADAPTER, UndermarginedAmounts
from schemas.records import Figures
from segwatch.core.residual import EASTERN, RULE, ResidualInterest, deadline

M = Decimal(1_000_000)
FRI = date(2026, 11, 20)
MON = date(2026, 11, 23)


def weekdays(day: date) -> date:
    """A calendar with weekends only (the exchange calendar is built elsewhere)."""
    nxt = day + timedelta(days=1)
    while nxt.weekday() >= 5:
        nxt += timedelta(days=1)
    return nxt


def amounts(day: date, amount: Decimal, event_id: str = "u-1", segment: str = "4d2") -> UndermarginedAmounts:
    ev = EVENT_ADAPTER.validate_python(
        {
            "type": "undermargined_amounts",
            "event_id": event_id,
            "source": "margin",
            "segment": segment,
            "as_of": datetime(day.year, day.month, day.day, 23, 30, tzinfo=UTC).isoformat(),
            "business_day": day.isoformat(),
            "amount": str(amount),
        }
    )
    assert isinstance(ev, UndermarginedAmounts)
    return ev


def figures(version: int, excess: Decimal) -> Figures:
    t = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    return Figures(
        segment="4d2",
        version=version,
        as_of=t,
        computed_at=t,
        lines={},
        requirement=100 * M,
        funds=100 * M + excess,
        excess=excess,
        target=Decimal(0),
        excess_over_target=excess,
        accounts=1,
        depositories=1,
        last_event_id=f"b{version}",
    )


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=EASTERN)


def test_the_deadline_is_6pm_eastern_on_the_next_business_day() -> None:
    assert deadline(FRI, weekdays) == at(MON, 18)
    assert deadline(FRI, weekdays).astimezone(UTC) == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)


def test_the_alert_fires_at_6pm_not_a_second_before() -> None:
    state = ResidualInterest()
    state.on_amounts(amounts(FRI, 30 * M))
    short = figures(5, 20 * M)
    assert state.evaluate(short, None, now=at(MON, 17, 59, 59), next_business_day=weekdays) is None
    check = state.check("4d2", 20 * M, now=at(MON, 17, 59, 59), next_business_day=weekdays)
    assert not check.breached and check.pending is not None and check.pending_deadline == at(MON, 18)
    alert = state.evaluate(short, None, now=at(MON, 18), next_business_day=weekdays)
    assert alert is not None
    assert (alert.rule, alert.state, alert.severity, alert.correlation_id) == (RULE, "firing", "critical", "b5")
    assert "$10,000,000.00 short" in alert.summary and "1.22(c)" in alert.regulation


def test_covered_amounts_do_not_fire_and_a_firing_resolves_when_covered() -> None:
    state = ResidualInterest()
    state.on_amounts(amounts(FRI, 30 * M))
    late = at(MON, 19)
    assert state.evaluate(figures(5, 30 * M), None, now=late, next_business_day=weekdays) is None  # equal: covered
    firing = state.evaluate(figures(6, 29 * M), None, now=late, next_business_day=weekdays)
    assert firing is not None
    assert state.evaluate(figures(7, 29 * M), firing, now=late, next_business_day=weekdays) is None  # still firing
    resolved = state.evaluate(figures(8, 31 * M), firing, now=late, next_business_day=weekdays)
    assert resolved is not None and resolved.state == "resolved" and resolved.alert_id == firing.alert_id


def test_the_next_close_takes_over_only_at_its_own_deadline() -> None:
    state = ResidualInterest()
    state.on_amounts(amounts(FRI, 10 * M))
    state.on_amounts(amounts(MON, 50 * M, event_id="u-2"))
    excess = 20 * M
    tue = date(2026, 11, 24)
    assert not state.check("4d2", excess, now=at(tue, 17, 59), next_business_day=weekdays).breached
    check = state.check("4d2", excess, now=at(tue, 18), next_business_day=weekdays)
    assert check.breached and check.in_force is not None and check.in_force.business_day == MON
    assert check.shortfall == 30 * M


def test_a_replayed_or_older_statement_of_amounts_changes_nothing() -> None:
    state = ResidualInterest()
    assert state.on_amounts(amounts(FRI, 10 * M, event_id="u-2"))
    assert not state.on_amounts(amounts(FRI, 10 * M, event_id="u-2"))
    assert not state.on_amounts(amounts(FRI, 99 * M, event_id="u-1"))  # same as-of, lower event id
    assert ResidualInterest.from_json(state.to_json()).to_json() == state.to_json()


def test_each_close_has_its_own_key_so_compaction_keeps_the_pending_and_the_in_force() -> None:
    assert amounts(FRI, M).key == "undermargined|4d2|2026-11-20" != amounts(MON, M).key
