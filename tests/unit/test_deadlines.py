"""The day's record and its rules: versions (INITIAL, AMENDMENT with moved lines), sign-off, filing, deadlines."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from schemas.events import AccountBalance, DepositoryBalance, ManagementTarget, StatementApproval, StatementFiling
from schemas.statements import DayStatus, StatementRecord
from segwatch.core.calendar import BusinessCalendar
from segwatch.core.close import DayCloser, SettingsHistory, combine_sums, sums_totals
from segwatch.core.deadlines import DayRecord
from segwatch.core.figures import consolidate

CHI = ZoneInfo("America/Chicago")
D = date(2017, 11, 6)


@pytest.fixture(scope="module")
def cal() -> BusinessCalendar:
    return BusinessCalendar()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2017, 11, day, hour, minute, tzinfo=CHI)


def depo(eid: str, when: datetime, amount: str, line: str = "7070") -> DepositoryBalance:
    return DepositoryBalance(
        event_id=eid,
        source="bank",
        as_of=when,
        segment="4d2",
        depository="b1",
        line=line,
        currency="USD",
        location="us",
        amount=Decimal(amount),
    )


def acct(eid: str, when: datetime, cash: str) -> AccountBalance:
    return AccountBalance(
        event_id=eid,
        source="ledger",
        as_of=when,
        segment="4d2",
        account="c1",
        currency="USD",
        cash=Decimal(cash),
        securities=Decimal(0),
        unrealized=Decimal(0),
        long_options=Decimal(0),
        short_options=Decimal(0),
    )


def approval(when: datetime, version: int | None = None) -> StatementApproval:
    return StatementApproval(
        event_id=f"a{when:%H%M}",
        source="signoff",
        as_of=when,
        business_day=D,
        version=version,
        approved_by="Jane Roe",
        role="cfo",
        approved_at=when,
        reference="SO-1",
    )


def filing(when: datetime, version: int | None = None) -> StatementFiling:
    return StatementFiling(
        event_id=f"f{when:%H%M}",
        source="winjammer",
        as_of=when,
        business_day=D,
        version=version,
        filed_at=when,
        confirmation="WJ-77",
        filed_by="ops",
    )


def close_and_publish(
    closers: list[DayCloser], history: SettingsHistory, record: DayRecord, now: datetime
) -> list[StatementRecord]:
    """What the combiner does on a close or an amendment: sum the partitions, settings at the cut-off."""
    sums = combine_sums(c.closed[record.business_day].sums for c in closers)
    settings = history.at(record.cutoff)
    out = []
    for sid in record.segments:
        r = record.publish(sid, consolidate(sid, sums_totals(sums, sid), settings), now)
        if r is not None:
            out.append(r)
    return out


def test_a_day_closes_amends_is_signed_off_and_filed(cal: BusinessCalendar) -> None:
    closers = [DayCloser(D, cal.cutoff(D)), DayCloser(D, cal.cutoff(D))]  # two partitions
    history = SettingsHistory()
    history.apply(ManagementTarget(event_id="t1", source="policy", as_of=at(1, 9), segment="4d2", amount=Decimal(10)))
    closers[0].apply(depo("d1", at(6, 15), "100"))
    closers[1].apply(acct("a1", at(6, 15), "50"))
    closers[0].apply(depo("d2", at(7, 9), "900"))  # the next day's balance: live only
    nxt = cal.next_business_day(D)
    for c in closers:
        c.close(nxt, cal.cutoff(nxt))
    record = DayRecord(D, cal.cutoff(D), cal.deadlines(D), segments=("4d2",))
    (initial,) = close_and_publish(closers, history, record, at(7, 0, 5))
    assert initial.kind == "INITIAL" and initial.version == 1 and initial.key == "2017-11-06|4d2|v1"
    assert initial.lines["7070"] == Decimal("100.00") and initial.lines["7190"] == Decimal("50.00")
    assert record.status().status == "computed"

    # an unchanged late balance changes nothing
    put = closers[0].apply(depo("d1-again", at(6, 16), "100"))
    assert put.amended == ()
    assert close_and_publish(closers, history, record, at(7, 1)) == []

    # sign-off, then a late balance of the closed day: an amendment is needed
    record.approve(approval(at(7, 9)))
    assert record.status().status == "approved" and record.status().approved_by == "Jane Roe"
    put = closers[0].apply(depo("d3", at(6, 20), "130"))
    assert put.amended == (D,)
    (amended,) = close_and_publish(closers, history, record, at(7, 9, 30))
    assert amended.kind == "AMENDMENT" and amended.version == 2
    assert set(amended.moved) == {"7070", "7180", "7190", "7198"}
    assert amended.moved["7070"].before == Decimal("100.00") and amended.moved["7070"].after == Decimal("130.00")
    (finding,) = [f for f in record.evaluate(at(7, 9, 31)) if f.rule == "amendment_needed"]
    assert "4d2 [7070]" in finding.summary and finding.moved["4d2"]["7070"].after == Decimal("130.00")

    # filed (the amended version) before noon: nothing in force, status filed
    record.file(filing(at(7, 11, 30)))
    assert record.evaluate(at(7, 13)) == []
    status = record.status()
    assert isinstance(status, DayStatus) and status.status == "filed" and status.filed_version == 2
    assert not status.filed_late and not status.amendment_needed and status.confirmation == "WJ-77"


def test_not_filed_warning_at_ten_critical_at_noon_then_filed_late(cal: BusinessCalendar) -> None:
    record = DayRecord(D, cal.cutoff(D), cal.deadlines(D))
    noon = datetime(2017, 11, 7, 12, 0, tzinfo=CHI)
    assert record.evaluate(noon - timedelta(hours=2, seconds=1)) == []
    (warning,) = record.evaluate(noon - timedelta(hours=2))
    assert (warning.rule, warning.severity, warning.page) == ("statement_not_filed", "warning", False)
    (critical,) = record.evaluate(noon)
    assert (critical.rule, critical.severity, critical.page) == ("statement_not_filed", "critical", True)
    record.file(filing(noon + timedelta(minutes=5)))
    (late,) = record.evaluate(noon + timedelta(minutes=6))
    assert late.rule == "statement_filed_late" and late.key == "2017-11-06|statement_filed_late"


def test_filing_an_older_version_leaves_the_amendment_needed(cal: BusinessCalendar) -> None:
    closer = DayCloser(D, cal.cutoff(D))
    closer.apply(depo("d1", at(6, 15), "100"))
    closer.close(date(2017, 11, 7), cal.cutoff(date(2017, 11, 7)))
    history = SettingsHistory()
    record = DayRecord(D, cal.cutoff(D), cal.deadlines(D), segments=("4d2",))
    close_and_publish([closer], history, record, at(7, 0))
    record.file(filing(at(7, 10), version=1))
    closer.apply(depo("d9", at(6, 21), "1"))
    close_and_publish([closer], history, record, at(7, 14))
    assert [f.rule for f in record.evaluate(at(7, 14))] == ["amendment_needed"]
    record.file(filing(at(7, 15), version=2))
    assert record.evaluate(at(7, 15)) == []


def test_late_fx_rate_or_target_amends_through_the_settings_history(cal: BusinessCalendar) -> None:
    history = SettingsHistory()
    history.apply(ManagementTarget(event_id="t1", source="p", as_of=at(6, 8), segment="4d2", amount=Decimal(5)))
    history.apply(ManagementTarget(event_id="t2", source="p", as_of=at(7, 8), segment="4d2", amount=Decimal(9)))
    # the next day's target is not in D's close
    assert history.at(cal.cutoff(D)).target("4d2", Decimal(0)) == Decimal(5)
    history.prune(cal.cutoff(D))
    assert history.at(cal.cutoff(D)).target("4d2", Decimal(0)) == Decimal(5)
    restored = SettingsHistory.from_state(history.to_state())
    assert restored.at(at(8, 0)).target("4d2", Decimal(0)) == Decimal(9)
