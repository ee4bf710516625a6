"""The operations path end to end: a deficiency in the pipeline pages on-call through real Prometheus and
Alertmanager, and the dashboard's every query returns data from that Prometheus.

The three services run as processes (LocalSystem) on the real broker. Prometheus scrapes their actual ports
every second and evaluates deploy/prometheus/rules every second: the real expressions, `for` durations, labels
and annotations, with only `keep_firing_for` (which holds a cured alert 2 minutes) shortened to 1 s.
Alertmanager runs deploy/alertmanager's routing tree,
inhibit rule and templates (group_wait/group_interval shortened to 1 s), with every receiver pointed at a
sink this test runs: the PagerDuty Events API URL, the generic webhook and the chat webhooks. The sample day
is posted up to the 4d(2) deficiency; the page must arrive, routed to `oncall-page`, while the under-target
warning of the same segment is inhibited; then the funds are restored and the resolution must arrive.
Missing prometheus/alertmanager binaries FAIL this test (never skip).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from schemas.events import EventBase
from segwatch.core.book import Book
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.ops import dashboard
from segwatch.ops.stack import (
    Endpoints,
    MissingBinary,
    Notification,
    Process,
    Sink,
    alertmanager_alerts,
    alertmanager_binary,
    alertmanager_config,
    alertmanager_process,
    prometheus_binary,
    prometheus_config,
    prometheus_process,
    promql,
)
from segwatch.replay import Watcher
from segwatch.sample import OPEN, Day
from segwatch.system import LocalSystem
from segwatch.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(150)]

DEFICIENCY_PHASE = "4d2 margin: deficiency"
CURED_PHASE = "4d2 margin: deficiency cured"
# Grafana's $__rate_interval for a 1 s scrape interval: max($__interval + scrape, 4 × scrape) = 4 s.
RATE_INTERVAL = "4s"
WAIT = 30.0  # seconds for any one notification; scrape, evaluation and group_wait are 1 s each


def alerts_in(n: Notification, alertname: str, status: str) -> list[dict[str, Any]]:
    """Alertmanager's webhook/Slack-less view: the alerts of a webhook payload with that name and status."""
    return [a for a in n.body.get("alerts", []) if a["labels"].get("alertname") == alertname and a["status"] == status]


def webhook(alertname: str, status: str) -> Any:
    return lambda n: n.kind == "webhook" and bool(alerts_in(n, alertname, status))


def chat(receiver: str, alertname: str, status: str) -> Any:
    def match(n: Notification) -> bool:
        if n.kind != "chat" or n.receiver != receiver:
            return False
        text = json.dumps(n.body)
        return f"[{status.upper()}" in text and alertname in text

    return match


def pagerduty(action: str, alertname: str = "SegwatchDeficiency") -> Any:
    # Other critical alerts page too (the sample day's euros before the EUR rate: SegwatchMissingFx).
    return lambda n: (
        n.kind == "pagerduty"
        and n.body.get("event_action") == action
        and alertname in str(n.body.get("payload", {}).get("summary", ""))
    )


async def post_phases(
    system: LocalSystem, watcher: Watcher, book: Book, phases: Sequence[tuple[str, list[EventBase]]]
) -> None:
    """Post each phase and wait until the published figures equal the core's (as segwatch.replay does)."""
    async with aiohttp.ClientSession() as http:
        for name, events in phases:
            await system.post(http, events)
            book.apply_all(events)
            expected = {sid: book.consolidated(sid).lines for sid in SEGMENT_IDS if book.holds(sid)}
            missing = {sid: book.consolidated(sid).missing_fx for sid in expected}
            await watcher.wait_for(partial(watcher.figures_equal, expected, missing), 60, f"the figures after {name}")


async def start_monitoring(system: LocalSystem, tmp: Path, sink: Sink, endpoints: Endpoints) -> tuple[Process, Process]:
    am = alertmanager_process(tmp / "alertmanager", alertmanager_config(tmp / "am-secrets", endpoints))
    targets = {name: f"127.0.0.1:{svc.port}" for name, svc in system.services.items()}
    # The real rules, with `keep_firing_for` shortened to 1 s so the resolution comes within the test.
    config = prometheus_config(targets, f"127.0.0.1:{am.port}", "1s", rules_dir=tmp / "rules", longest="1s")
    prom = prometheus_process(tmp / "prometheus", config)
    am.start()
    prom.start()
    await asyncio.gather(am.wait_ready(), prom.wait_ready())
    return prom, am


async def wait_scraped(http: aiohttp.ClientSession, system: LocalSystem, prom: Process, timeout: float = 20.0) -> None:
    """Every service answers its probes; then wait until Prometheus has scraped all three successfully."""
    for name, svc in system.services.items():
        for probe in ("/healthz", "/readyz"):
            async with http.get(f"{svc.url}{probe}") as r:
                assert r.status == 200, (name, probe, r.status)
    up: list[Any] = []

    async def all_up() -> bool:
        up[:] = await promql(http, prom.url, 'up{job=~"segwatch-.*"} == 1')
        return len(up) == 3

    await wait_until(
        all_up,
        what="Prometheus to scrape all three services",
        timeout=timeout,
        interval=0.5,
        detail=lambda: f"up: {up}\n{prom.log_tail()}",
    )


async def test_deficiency_pages_oncall_resolves_and_dashboard_has_data(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:  # never skipped: CI installs them (scripts/prereqs)
        prometheus_binary()
        alertmanager_binary()
    except MissingBinary as exc:
        pytest.fail(str(exc), pytrace=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
    began = time.time()
    sink = Sink()
    await sink.start()
    endpoints = Endpoints(sink.url)
    phases = Day(accounts=300, events=200, seed=21).phases()
    names = [name for name, _ in phases]
    deficiency, cured = names.index(DEFICIENCY_PHASE) + 1, names.index(CURED_PHASE) + 1
    book = Book()
    monitoring: tuple[Process, ...] = ()
    try:
        async with LocalSystem(workdir=tmp_path / "system", out=lambda _: None, now=OPEN.isoformat()) as system:
            watcher = Watcher(system, out=None)
            await watcher.start()
            try:
                monitoring = await start_monitoring(system, tmp_path, sink, endpoints)
                prom, am = monitoring
                async with aiohttp.ClientSession() as http:
                    await wait_scraped(http, system, prom)
                    await drive_and_check(
                        system, watcher, book, phases, (deficiency, cured), sink, endpoints, prom, am, http
                    )
                    await publish_closes(system, watcher, http, prom, began)
                    await check_dashboard(http, prom, began, watcher)
            finally:
                await watcher.stop()
                for process in monitoring:
                    await process.stop()
    finally:
        await sink.stop()
    print(f"\nalerting e2e: {time.time() - began:.0f}s")  # a figure to watch, never an assertion


async def drive_and_check(
    system: LocalSystem,
    watcher: Watcher,
    book: Book,
    phases: Sequence[tuple[str, list[EventBase]]],
    cuts: tuple[int, int],
    sink: Sink,
    endpoints: Endpoints,
    prom: Process,
    am: Process,
    http: aiohttp.ClientSession,
) -> None:
    deficiency, cured = cuts
    # 1. Up to the deficiency: the page arrives at the generic webhook of the paging receiver, and at PagerDuty
    #    with the routing key from the secret file.
    await post_phases(system, watcher, book, phases[:deficiency])
    excess = watcher.figures["4d2"].excess
    assert excess < 0
    page = await sink.wait_for(webhook("SegwatchDeficiency", "firing"), WAIT, "the deficiency page (webhook)")
    assert page.receiver == "oncall-page" and page.body["receiver"] == "oncall-page"
    assert page.body["groupLabels"] == {"alertname": "SegwatchDeficiency", "segment": "4d2"}
    [alert] = alerts_in(page, "SegwatchDeficiency", "firing")
    assert alert["labels"]["segment"] == "4d2" and alert["labels"]["severity"] == "critical"
    assert alert["labels"]["job"] == "segwatch-alerter"
    assert alert["annotations"]["summary"] == f"4d2 DEFICIENCY: excess {float(excess):.2f} USD"
    assert alert["annotations"]["runbook_url"] == "docs/RUNBOOK.md#deficiency"
    trigger = await sink.wait_for(pagerduty("trigger"), WAIT, "the PagerDuty trigger")
    assert trigger.receiver == "oncall-page"
    assert trigger.body["routing_key"] == endpoints.routing_key
    assert trigger.body["payload"]["severity"] == "critical"
    assert "SegwatchDeficiency segment 4d2" in trigger.body["payload"]["summary"]
    # Critical goes on to the segment's compliance chat too (`continue: true`).
    await sink.wait_for(chat("compliance-chat", "SegwatchDeficiency", "firing"), WAIT, "the deficiency in chat")
    # The under-target warning of 4d2 is active in Alertmanager but inhibited by the deficiency.
    under = await alertmanager_alerts(http, am.url, 'alertname="SegwatchUnderTarget"', 'segment="4d2"')
    assert len(under) == 1, under
    assert under[0]["status"]["state"] == "suppressed" and under[0]["status"]["inhibitedBy"], under

    # 2. The funds come back: the deficiency resolves (webhook and PagerDuty); 4d2 is still under its target,
    #    which, no longer inhibited, reaches the compliance chat.
    await post_phases(system, watcher, book, phases[deficiency:cured])
    target = watcher.figures["4d2"].target
    assert target is not None and 0 <= watcher.figures["4d2"].excess < target
    resolved = await sink.wait_for(webhook("SegwatchDeficiency", "resolved"), WAIT, "the deficiency resolution")
    assert resolved.receiver == "oncall-page"
    resolve = await sink.wait_for(pagerduty("resolve"), WAIT, "the PagerDuty resolve")
    assert resolve.body["routing_key"] == endpoints.routing_key
    assert resolve.body["dedup_key"] == trigger.body["dedup_key"]
    await sink.wait_for(chat("compliance-chat", "SegwatchUnderTarget", "firing"), WAIT, "under target in chat")

    # 3. The close restores the filed excess: the under-target warning resolves too.
    await post_phases(system, watcher, book, phases[cured:])
    target = watcher.figures["4d2"].target
    assert target is not None and watcher.figures["4d2"].excess >= target
    await sink.wait_for(chat("compliance-chat", "SegwatchUnderTarget", "resolved"), WAIT, "under target resolved")

    # Only the 4d2 deficiency paged, and perhaps 30.7's incomplete figures: the sample's euro balances arrive a
    # phase before the EUR rate, a real page when a scrape falls in that gap (whether one does is timing).
    # Nothing went to the platform's chat (all inputs fresh, all services up).
    pages = [n for n in sink.received if n.receiver == "oncall-page"]
    paged = {
        (a["labels"]["alertname"], a["labels"]["segment"])
        for n in pages
        if n.kind == "webhook"
        for a in n.body["alerts"]
    }
    assert ("SegwatchDeficiency", "4d2") in paged, [n.body for n in pages]
    assert paged <= {("SegwatchDeficiency", "4d2"), ("SegwatchMissingFx", "30.7")}, [n.body for n in pages]
    assert not [n for n in sink.received if n.receiver == "ops-chat"], [n.body for n in sink.received]

    # Every notification that resolves came after the one that fired, on each path.
    def first(matches: Callable[[Notification], bool]) -> int:
        return next(i for i, n in enumerate(sink.received) if matches(n))

    for fired, resolved in [
        (webhook("SegwatchDeficiency", "firing"), webhook("SegwatchDeficiency", "resolved")),
        (pagerduty("trigger"), pagerduty("resolve")),
        (
            chat("compliance-chat", "SegwatchUnderTarget", "firing"),
            chat("compliance-chat", "SegwatchUnderTarget", "resolved"),
        ),
    ]:
        assert first(fired) < first(resolved), [(n.kind, n.receiver, n.body) for n in sink.received]


async def publish_closes(
    system: LocalSystem, watcher: Watcher, http: aiohttp.ClientSession, prom: Process, began: float
) -> None:
    """The daily computation of each segment (a StatementRecord, as the calculator's close publishes it) on the
    statements topic: the alerter's 25% window gets its baseline (the dashboard's window panels)."""
    from aiokafka import AIOKafkaProducer

    from schemas.statements import StatementRecord
    from segwatch.config import KafkaSettings
    from segwatch.kafka.topics import STATEMENTS

    producer = AIOKafkaProducer(**KafkaSettings.from_env().aiokafka_kwargs(), acks="all")
    await producer.start()
    try:
        for sid, figures in sorted(watcher.figures.items()):
            cutoff = figures.as_of or datetime.now(UTC)
            record = StatementRecord(
                business_day=cutoff.date(),
                segment=sid,  # type: ignore[arg-type]
                kind="INITIAL",
                version=1,
                cutoff=cutoff,
                computed_at=cutoff,
                lines=dict(figures.lines),
            )
            await producer.send_and_wait(
                system.topic(STATEMENTS), record.model_dump_json().encode(), key=record.key.encode()
            )
    finally:
        await producer.stop()
    expr = "segwatch_disbursement_window_baseline_excess_dollars"

    async def baselines_shown() -> bool:  # the range query the dashboard check makes: a point at one of its steps
        return len(await promql(http, prom.url, expr, start=began, end=time.time(), step=1)) >= len(watcher.figures)

    await wait_until(baselines_shown, what="the alerter to show the closes' baselines", timeout=20, interval=0.2)


async def check_dashboard(http: aiohttp.ClientSession, prom: Process, began: float, watcher: Watcher) -> None:
    """Every query of the checked-in dashboard, as Grafana would run it, returns data from the live Prometheus."""
    with dashboard.OUTPUT.open(encoding="utf-8") as f:
        model = json.load(f)
    queries = dashboard.queries(model)
    assert len(queries) >= 30
    empty: list[str] = []
    for q in queries:
        expr = q.expr.replace("$__rate_interval", RATE_INTERVAL)
        if q.instant:
            result = await promql(http, prom.url, expr)
            values = [float(s["value"][1]) for s in result]
        else:
            result = await promql(http, prom.url, expr, start=began, end=time.time(), step=1)
            values = [float(v) for s in result for _, v in s["values"]]
        if not any(math.isfinite(v) for v in values):
            empty.append(f"{q.panel} [{q.ref_id}]: {expr}")
        if "statement lines" in q.panel:
            segment = next(sid for sid in SEGMENT_IDS if q.panel.startswith(f"{sid} "))
            lines = {s["metric"]["line"] for s in result}
            assert lines == set(watcher.figures[segment].lines), (segment, lines)
            assert all(s["metric"]["number"] == s["metric"]["line"] == s["metric"]["label"] for s in result)
        if q.panel == "Services up":
            assert {s["metric"]["job"] for s in result} == {
                "segwatch-ingest",
                "segwatch-calculator",
                "segwatch-alerter",
            }
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)
