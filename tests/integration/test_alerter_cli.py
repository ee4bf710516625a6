"""`segwatch alerter serve` as a process: JSON logs with the correlation id, a clean stop on SIGTERM; and
`segwatch alerter tail` printing the alert records."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from schemas.events import Disbursement
from segwatch.config import KafkaSettings
from segwatch.system import answers_ready
from segwatch.waiting import wait_until
from tests.support.figures import real_figures
from tests.support.kafka import NewTopic, unique_name

from .test_alerter_kafka import alerts_on, produce

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
WAIT = 15.0


async def next_log(stream: asyncio.StreamReader, event: str, seen: list[dict[str, Any]]) -> dict[str, Any]:
    """Read JSON log lines until one whose event is `event` (bounded)."""
    deadline = time.monotonic() + WAIT
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {event!r} log line within {WAIT:g}s; saw {[e.get('event') for e in seen]}")
        raw = await asyncio.wait_for(stream.readline(), left)
        if not raw:
            raise AssertionError(f"the alerter exited before logging {event!r}; saw {seen}")
        try:
            entry: dict[str, Any] = json.loads(raw)
        except json.JSONDecodeError:
            seen.append({"event": raw.decode(errors="replace").rstrip()})
            continue
        seen.append(entry)
        if entry.get("event") == event:
            return entry


async def test_serve_logs_json_with_correlation_ids_and_stops_cleanly_on_sigterm(
    kafka_bootstrap: str, kafka_settings: KafkaSettings, kafka_topics: object, new_topic: NewTopic
) -> None:
    figures, alerts = new_topic("figures", configs={"cleanup.policy": "compact"}), new_topic("alerts")
    state, deadletter = new_topic("alerter-state", configs={"cleanup.policy": "compact"}), new_topic("dl")
    disbursements = new_topic("disbursements")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SEGWATCH_LOG_FORMAT": "json",
        "SEGWATCH_ALERTER_PORT": "0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "segwatch.cli",
        "alerter",
        "serve",
        "--group",
        unique_name("alerter-cli"),
        "--figures-topic",
        figures,
        "--alerts-topic",
        alerts,
        "--state-topic",
        state,
        "--deadletter-topic",
        deadletter,
        "--disbursements-topic",
        disbursements,
        "--statements-topic",
        new_topic("statements", configs={"cleanup.policy": "compact"}),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    seen: list[dict[str, Any]] = []
    try:
        starting = await next_log(process.stderr, "alerter starting", seen)
        assert starting["service"] == "alerter" and starting["group"].startswith("segwatch-test.alerter-cli")
        await next_log(process.stderr, "alert state recovered", seen)
        port = int(starting["http"].rsplit(":", 1)[1])
        async with aiohttp.ClientSession() as http:
            await wait_until(
                lambda: answers_ready(http, f"http://127.0.0.1:{port}/readyz"),
                what="the alerter to be ready",
                timeout=WAIT,
            )

        real = real_figures("4d2")
        deficient = real_figures("4d2", 2, funds_delta=-real.excess - 1, event="evt-cli-deficiency")
        await produce(kafka_settings, figures, [real_figures("4d2", 1), deficient])
        fired = await next_log(process.stderr, "alert firing", seen)
        assert fired["correlation_id"] == "evt-cli-deficiency" and fired["level"] in ("warning", "critical")
        critical = await next_log(process.stderr, "alert firing", seen)
        assert critical["rule"] == "deficiency" and critical["level"] == "critical" and critical["page"] is True
        assert critical["correlation_id"] == "evt-cli-deficiency"

        # During the deficiency any disbursement not for customers needs approval: without one, a violation.
        payout = Disbursement(
            event_id="evt-cli-disb",
            source="treasury",
            as_of=real.computed_at,
            segment="4d2",
            amount=Decimal("10.00"),
            recipient="Parent Co",
            purpose="fee",
            for_customer_benefit=False,
        )
        await produce(kafka_settings, disbursements, [payout.model_dump_json().encode()])
        notice = await next_log(process.stderr, "alert notice", seen)
        assert notice["rule"] == "disbursement_violation" and notice["severity"] == "critical" and notice["page"]
        assert notice["level"] == "error" and notice["correlation_id"] == "evt-cli-disb"

        process.send_signal(signal.SIGTERM)
        await next_log(process.stderr, "alerter stopped", seen)
        assert await asyncio.wait_for(process.wait(), WAIT) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    # `tail` prints what is on the alert topic.
    assert len(await alerts_on(kafka_settings, alerts, expect=3)) == 3
    tail = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "segwatch.cli",
        "alerter",
        "tail",
        "--from-beginning",
        "--count",
        "3",
        "--topic",
        alerts,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(tail.communicate(), WAIT)
    assert tail.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert len(lines) == 3
    assert "FIRING" in lines[0] and "under_target" in lines[0] and "[4d2:under_target:v2]" in lines[0]
    assert "critical" in lines[1] and "DEFICIENCY of $1.00" in lines[1]
    assert "NOTICE" in lines[2] and "critical" in lines[2]
    assert lines[2].endswith("[4d2:disbursement_violation:evt-cli-disb]")
