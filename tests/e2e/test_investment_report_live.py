"""The report of investments on the live pipeline (issue #14, CBOT Rule 971.D): a report date's close (the
ledger's `business_day_close`) makes the alerter publish the report to segwatch.statements, once, equal to the
depository balances by instrument; `segwatch replay` of the same events prints the same report."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from schemas.events import AccountBalance, BusinessDayClose, DepositoryBalance, EventBase
from schemas.statements import InvestmentReportRecord
from segwatch.core.twin import Twin
from segwatch.kafka import topics
from segwatch.system import LocalSystem
from tests.support.alerter import read_to_end

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

CHI = ZoneInfo("America/Chicago")
REPORT_DAY = date(2017, 11, 15)  # the 15th, a Wednesday: a report date
ZERO = Decimal(0)


def at(hour: int) -> datetime:
    return datetime(REPORT_DAY.year, REPORT_DAY.month, REPORT_DAY.day, hour, tzinfo=CHI)


def held(eid: str, depository: str, line: str, instrument: str, amount: int) -> DepositoryBalance:
    return DepositoryBalance(
        event_id=eid,
        source="bank",
        as_of=at(10),
        segment="4d2",
        depository=depository,
        line=line,
        currency="USD",
        location="us",
        instrument=instrument,  # type: ignore[arg-type]
        amount=Decimal(amount),
    )


def events() -> list[EventBase]:
    return [
        AccountBalance(
            event_id="ir-a",
            source="ledger",
            as_of=at(10),
            segment="4d2",
            account="IR-C-1",
            currency="USD",
            cash=Decimal(60_000_000),
            securities=ZERO,
            unrealized=ZERO,
            long_options=ZERO,
            short_options=ZERO,
        ),
        held("ir-b", "IR-BANK-1", "7070", "cash", 40_000_000),
        held("ir-t", "IR-DCO-1", "7140", "us_government", 30_000_000),
        held("ir-m", "IR-MMF-1", "7070", "money_market_fund", 5_000_000),
    ]


async def reports_on(system: LocalSystem) -> list[InvestmentReportRecord]:
    return [
        InvestmentReportRecord.model_validate_json(r.value)
        for r in await read_to_end(system, topics.STATEMENTS)
        if r.value is not None and b'"type":"investment_report"' in r.value
    ]


async def test_a_report_dates_close_publishes_the_report_of_investments_once(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
    close = BusinessDayClose(event_id="ir-close", source="ledger", as_of=at(17), business_day=REPORT_DAY)
    async with (
        LocalSystem(workdir=tmp_path, out=lambda _: None, now=at(18).isoformat()) as system,
        aiohttp.ClientSession() as http,
    ):
        await system.post(http, events())
        await asyncio.sleep(0)  # the close after the balances, as the ledger sends it
        await system.post(http, [close])
        for _ in range(300):
            reports = await reports_on(system)
            if reports:
                break
            await asyncio.sleep(0.2)
        [report] = reports
        # A second close event for the date: no second report (it is owed once per report date).
        await system.post(http, [close.model_copy(update={"event_id": "ir-close-2"})])
        await asyncio.sleep(2)
        assert len(await reports_on(system)) == 1
    assert report.report_date == REPORT_DAY and report.key == "investment_report|2017-11-15"
    pool = report.pools["4d2"]
    assert {k: Decimal(v) for k, v in pool["cash_and_permitted_investments"].items() if Decimal(v)} == {
        "cash": Decimal(40_000_000),
        "us_government": Decimal(30_000_000),
        "money_market_fund": Decimal(5_000_000),
    }
    assert Decimal(pool["total"]) == Decimal(75_000_000)
    # The twin prints the same report.
    twin = Twin()
    [offline] = [r.value for r in twin.feed_all([*events(), close]) if isinstance(r.value, InvestmentReportRecord)]
    assert offline.pools["4d2"] == pool
