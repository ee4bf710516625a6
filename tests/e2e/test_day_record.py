"""Issue #12's alerter side on the live services (ingest and alerter, as subprocesses, on the test broker):
the statements of a day with no filing warn at the test clock's 10:00 the next business day and page at
noon (the timer: no input), a filing resolves them; an amendment after filing raises one amendment_needed,
resolved by filing the amended version; restarts in between lose and duplicate nothing; the read API returns
the statement (JSON and text) and the status.

The calculator's close is stood in for: the test publishes the StatementRecords to segwatch.statements itself,
as the calculator does at each close and amendment. The alerter's clock is shifted with
SEGWATCH_CLOCK_OFFSET_SECONDS (services/alerter/clock.py), set again before each restart.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from schemas.events import InvestmentReportSubmitted, StatementFiling
from schemas.statements import StatementRecord
from segwatch.config import KafkaSettings
from segwatch.core.deadlines import moved_lines
from segwatch.forms.parse import read_filing
from segwatch.kafka import topics
from segwatch.replay import Watcher
from segwatch.system import LocalSystem
from services.alerter.recovery import parse_alerts, read_to_end
from tests.support.figures import real_figures

CHI = ZoneInfo("America/Chicago")
D = date(2026, 11, 16)  # a Monday: due by noon Tuesday 11-17, Chicago
CUT = datetime(2026, 11, 16, 23, 59, 59, 999999, tzinfo=CHI)
NOT_FILED = "statement_not_filed"


def chicago(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, 17, hour, minute, second, tzinfo=CHI)


def clock_at(monkeypatch: pytest.MonkeyPatch, at: datetime) -> None:
    """The alerter launched next reads `at` now, and runs on from there."""
    monkeypatch.setenv("SEGWATCH_CLOCK_OFFSET_SECONDS", f"{at.timestamp() - time.time():.3f}")


def statement(
    segment: str, version: int = 1, delta: int = 0, previous: StatementRecord | None = None
) -> StatementRecord:
    lines = dict(real_figures(segment, funds_delta=delta, target=0).lines)
    return StatementRecord(
        business_day=D,
        segment=segment,  # type: ignore[arg-type]
        kind="INITIAL" if version == 1 else "AMENDMENT",
        version=version,
        cutoff=CUT,
        computed_at=chicago(0, 0, 5 * version),
        lines=lines,
        moved=moved_lines(previous.lines, lines) if previous is not None else {},
    )


def filing(event_id: str, at: datetime, version: int | None = None) -> StatementFiling:
    return StatementFiling(
        event_id=event_id,
        source="winjammer",
        as_of=at,
        business_day=D,
        version=version,
        filed_at=at,
        confirmation=f"WJ-{event_id}",
        filed_by="Pat Filer",
    )


@pytest.fixture
async def day_system(
    kafka_bootstrap: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[LocalSystem]:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("SEGWATCH_ALERTER_DAY_INTERVAL_SECONDS", "0.5")
    clock_at(monkeypatch, chicago(9, 59, 55))
    async with LocalSystem(workdir=tmp_path, out=lambda _: None, run=("ingest", "alerter")) as running:
        yield running


async def publish(system: LocalSystem, records: list[StatementRecord]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for rec in records:
            await producer.send_and_wait(
                system.topic(topics.STATEMENTS), rec.model_dump_json().encode(), key=rec.key.encode()
            )
    finally:
        await producer.stop()


async def get(http: aiohttp.ClientSession, system: LocalSystem, path: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token or system.token}"} if token != "" else {}
    async with http.get(f"{system.services['alerter'].url}{path}", headers=headers) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


def day_alerts(watcher: Watcher) -> list[tuple[str, str, str]]:
    return [(a.rule, a.severity, a.state) for a in watcher.alerts if a.alert_id.startswith("2026-11-16|")]


def report_alerts(watcher: Watcher) -> list[tuple[str, str, str]]:
    return [(a.segment, a.rule, a.state) for a in watcher.alerts if a.rule == "investment_report_overdue"]


async def test_the_filing_deadline_amendments_and_the_record_on_the_live_services(
    day_system: LocalSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = day_system
    watcher = Watcher(system, out=None)
    await watcher.start()
    try:
        first = [statement("4d2"), statement("30.7"), statement("4df")]
        await publish(system, first)
        # 10:00 on the next business day passes on the alerter's clock: the warning, from the timer.
        await watcher.wait_for(
            lambda: day_alerts(watcher) == [(NOT_FILED, "warning", "firing")], 60, "statement_not_filed warning"
        )
        # A restart just before noon: nothing published twice; noon passes with no input: the page.
        clock_at(monkeypatch, chicago(11, 59, 50))
        await system.restart_service("alerter")
        await watcher.wait_for(lambda: len(day_alerts(watcher)) >= 3, 90, "the noon deadline")
        assert day_alerts(watcher) == [
            (NOT_FILED, "warning", "firing"),
            (NOT_FILED, "warning", "resolved"),
            (NOT_FILED, "critical", "firing"),
        ]
        critical = watcher.alerts[-1]
        assert critical.page and critical.alert_id == "2026-11-16|statement_not_filed|critical"

        async with aiohttp.ClientSession() as http:
            # The filing (through ingest, as the filer's system sends it) resolves the page.
            await system.post(http, [filing("fil-1", chicago(11, 58))])
            await watcher.wait_for(lambda: len(day_alerts(watcher)) >= 4, 60, "the filing")
            assert day_alerts(watcher)[3] == (NOT_FILED, "critical", "resolved")
            assert watcher.alerts[-1].correlation_id == "fil-1"

            # A late balance amends the filed statement: one amendment_needed, resolved by filing version 2.
            amended = statement("4d2", 2, delta=-1_250, previous=first[0])
            await publish(system, [amended])
            await watcher.wait_for(lambda: len(day_alerts(watcher)) >= 5, 60, "amendment_needed")
            assert day_alerts(watcher)[4] == ("amendment_needed", "warning", "firing")
            assert "4d2 [" in watcher.alerts[-1].summary

            status, day = await get(http, system, "/v1/days/2026-11-16")
            assert status == 200 and (day["status"], day["version"], day["filed_version"], day["amendment_needed"]) == (
                "filed",
                2,
                1,
                True,
            )
            assert day["versions"] == {"30.7": [1], "4d2": [1, 2], "4df": [1]}

            # A restart with the amendment pending: nothing lost (still pending), nothing published again.
            clock_at(monkeypatch, chicago(13))
            await system.restart_service("alerter")
            await system.post(http, [filing("fil-2", chicago(12, 30), version=2)])
            await watcher.wait_for(lambda: len(day_alerts(watcher)) >= 6, 60, "the amended filing")
            assert day_alerts(watcher) == [
                (NOT_FILED, "warning", "firing"),
                (NOT_FILED, "warning", "resolved"),
                (NOT_FILED, "critical", "firing"),
                (NOT_FILED, "critical", "resolved"),
                ("amendment_needed", "warning", "firing"),
                ("amendment_needed", "warning", "resolved"),
            ]

            # The record over HTTP.
            assert (await get(http, system, "/v1/days", token=""))[0] == 401
            status, days = await get(http, system, "/v1/days")
            assert status == 200 and [(d["business_day"], d["status"], d["filed_version"]) for d in days["days"]] == [
                ("2026-11-16", "filed", 2)
            ]
            status, latest = await get(http, system, "/v1/days/2026-11-16/statement?segment=4d2")
            assert status == 200 and latest["kind"] == "AMENDMENT"
            assert Decimal(latest["statements"]["4d2"]["lines"]["7190"]) == amended.lines["7190"]
            status, text = await get(http, system, "/v1/days/2026-11-16/statement?format=text&version=1")
            assert status == 200 and "**INITIAL**" in text and "Submit Date:11/17/2026" in text
            filed = read_filing(text).statements
            assert sorted(filed) == ["30.7", "4d2", "4df"]
            assert filed["4d2"]["7190"] == first[0].lines["7190"].quantize(Decimal(1))
            status, bad = await get(http, system, "/v1/days/2026-11-16/statement?version=x")
            assert (status, bad["field"]) == (400, "version")

            # Issue #14: the close of a report date (10-15) owes its report of investments, due by the close of
            # 10-16: long overdue on this clock. The submission, through ingest, resolves it.
            report_day = statement("30.7").model_copy(
                update={"business_day": date(2026, 10, 15), "cutoff": datetime(2026, 10, 15, 23, 59, tzinfo=CHI)}
            )
            await publish(system, [report_day])
            await watcher.wait_for(
                lambda: report_alerts(watcher) == [("30.7", "investment_report_overdue", "firing")],
                60,
                "investment_report_overdue",
            )
            submitted = InvestmentReportSubmitted(
                event_id="sidr-1",
                source="nfa",
                as_of=datetime(2026, 10, 19, 9, tzinfo=CHI),
                report_date=date(2026, 10, 15),
                segment=None,
                submitted_at=datetime(2026, 10, 19, 9, tzinfo=CHI),
                reference="SIDR-2026-10-15",
            )
            await system.post(http, [submitted])
            await watcher.wait_for(lambda: len(report_alerts(watcher)) >= 2, 60, "the report's submission")
            assert report_alerts(watcher) == [
                ("30.7", "investment_report_overdue", "firing"),
                ("30.7", "investment_report_overdue", "resolved"),
            ]

        # The last restart published nothing of its own: what it published while recovering was acknowledged
        # before it was ready, so the alert topic read to its end now holds it if there is any.
        await system.restart_service("alerter")
        async with aiohttp.ClientSession() as http:
            status, day = await get(http, system, "/v1/days/2026-11-16")
            assert status == 200 and (day["status"], day["filed_version"], day["amendment_needed"]) == (
                "filed",
                2,
                False,
            )
        settings = KafkaSettings.from_env({"KAFKA_BOOTSTRAP": system.bootstrap})
        alerts, _ = parse_alerts(await read_to_end(settings, system.topic(topics.ALERTS), 1, timeout=30))
        assert [(a.alert_id, a.state) for a in alerts] == [(a.alert_id, a.state) for a in watcher.alerts]
        assert len(day_alerts(watcher)) == 6 and len(report_alerts(watcher)) == 2
    finally:
        await watcher.stop()
