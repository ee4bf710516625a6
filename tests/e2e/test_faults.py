"""Faults mid-stream: SIGKILL each service right after an acknowledged event that flips a segment, and restart
the broker; every alert transition arrives once, with no other input after it, and the figures are exact.

The broker restart needs a broker of this test's own (its own directory and ports): other tests and other
runs share the session's broker, and it is never touched here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from segwatch.kafka import broker
from segwatch.kafka.broker import BrokerConfig
from segwatch.replay import Watcher
from segwatch.system import LocalSystem, free_port
from segwatch.waiting import wait_until
from tests.e2e.faults import FlipBook, assert_each_transition_once, sigkill_and_restart, wait_transitions

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[BrokerConfig]:
    """A single-node broker of this test's own (the jars are the shared cache's)."""
    config = dataclasses.replace(
        BrokerConfig.from_env(), broker_dir=tmp_path / "broker", port=free_port(), controller_port=free_port()
    )
    broker.start(config)
    try:
        yield config
    finally:
        broker.stop(config, timeout=10)


async def restart_broker(config: BrokerConfig) -> None:
    """SIGKILL the broker (no clean shutdown) and start it again on the same data."""
    pid = int(config.pid_file.read_text().strip())
    os.kill(pid, signal.SIGKILL)

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    await wait_until(gone, what=f"the broker (pid {pid}) to die of SIGKILL", timeout=30, interval=0.05)
    await asyncio.to_thread(broker.start, config)


async def relaunch_exited(system: LocalSystem) -> list[str]:
    """What a supervisor (Kubernetes' restartPolicy) does: start again a service that exited."""
    exited = [name for name, svc in system.services.items() if svc.process and svc.process.poll() is not None]
    for name in exited:
        system.launch(system.services[name])
    if exited:
        await system.wait_ready(exited, timeout=120)
    return exited


async def test_every_service_killed_and_the_broker_restarted_mid_stream(
    private_broker: BrokerConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", private_broker.bootstrap)
    monkeypatch.setenv("SEGWATCH_CALCULATOR_INSTANCE_ID", "calculator-0")
    flips = FlipBook()
    expected = []
    timings: list[tuple[str, float, list[str]]] = []
    async with LocalSystem(workdir=tmp_path / "system", out=lambda _: None) as system, aiohttp.ClientSession() as http:
        watcher = Watcher(system, out=None)
        await watcher.start()
        try:
            opening = flips.opening()
            await system.post(http, opening)
            flips.sent(*opening)
            await watcher.wait_for(lambda: watcher.figures_equal(flips.expected_lines()), 60, "the opening figures")
            await asyncio.sleep(1)
            baseline = len(watcher.alerts)
            for fault in ("ingest", "calculator", "alerter", "broker"):
                noise = flips.noise()
                flip, transitions = flips.flip()
                await system.post(http, [noise, flip])  # 202: Kafka acknowledged both
                flips.sent(noise, flip)
                expected += transitions
                started = time.monotonic()
                relaunched: list[str] = []
                if fault == "broker":
                    await restart_broker(private_broker)
                    relaunched = await relaunch_exited(system)
                else:
                    await sigkill_and_restart(system, fault)
                # No input after the flip: what was acknowledged must come out by itself.
                await wait_transitions(
                    watcher, expected, f"the alerts after the {fault} fault", timeout=120, baseline=baseline
                )
                await watcher.wait_for(
                    lambda: watcher.figures_equal(flips.expected_lines()), 120, f"the figures after the {fault} fault"
                )
                timings.append((fault, round(time.monotonic() - started, 2), relaunched))
            await asyncio.sleep(2)  # nothing more may follow
            assert_each_transition_once(watcher, expected, baseline)
            assert watcher.figures["4d2"].lines == flips.expected_lines()["4d2"]
            versions = [f.version for f in watcher.figures_seen if f.segment == "4d2"]
            assert versions == sorted(set(versions)), versions
            print(f"\nfault -> alerts and exact figures (seconds, services relaunched): {timings}")
        finally:
            await watcher.stop()
