"""SIGKILL the calculator within milliseconds after a balance that flips a segment: after the restart, the
alert transition arrives once, with no other input after it, and the figures are exact (issue #11, finding 1:
a change whose changelog record was written but whose partial had not gone out was stranded)."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from segwatch.kafka import topics
from segwatch.replay import Watcher
from segwatch.system import LocalSystem
from tests.e2e.faults import FlipBook, assert_each_transition_once, produce, sigkill_and_restart, wait_transitions

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(420)]

TRIALS = 6


async def seen_in_changelog(consumer: AIOKafkaConsumer, event_id: str, timeout: float = 30.0) -> None:
    """Until the calculator's accounts changelog holds the balance `event_id` (it was applied and written)."""
    deadline = time.monotonic() + timeout
    needle = event_id.encode()
    while time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=2)
        if any(needle in (r.value or b"") for records in batch.values() for r in records):
            return
    raise TimeoutError(f"{event_id} never reached the accounts changelog")


async def test_a_calculator_killed_right_after_a_flip_publishes_it_once_after_restart(
    kafka_bootstrap: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
    # Static membership, as the StatefulSet runs it: the restarted worker takes its partitions back at once.
    monkeypatch.setenv("SEGWATCH_CALCULATOR_INSTANCE_ID", "calculator-0")
    rng = random.Random(1107)
    flips = FlipBook()
    expected = []
    delays = []
    async with LocalSystem(workdir=tmp_path, run=("calculator", "alerter"), out=lambda _: None) as system:
        watcher = Watcher(system, out=None)
        await watcher.start()
        producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap, acks="all", linger_ms=0)
        await producer.start()
        changelog = AIOKafkaConsumer(
            system.topic(topics.CALCULATOR_ACCOUNTS_CHANGELOG),
            bootstrap_servers=system.bootstrap,
            auto_offset_reset="latest",
            enable_auto_commit=False,
        )
        await changelog.start()
        try:
            opening = flips.opening()
            await produce(system, producer, *opening)
            flips.sent(*opening)
            await watcher.wait_for(lambda: watcher.figures_equal(flips.expected_lines()), 60, "the opening figures")
            await asyncio.sleep(1)
            baseline = len(watcher.alerts)  # the opening's own (a target before the balances: under target)
            await changelog.getmany(timeout_ms=500)  # position at the end
            for trial in range(TRIALS):
                # A change just before makes the next partial wait for the throttle (up to half the coalescing
                # interval): the window in which the flip is durable in the changelog but not yet published.
                noise = flips.noise()
                await produce(system, producer, noise)
                flip, transitions = flips.flip()
                await produce(system, producer, flip)
                flips.sent(noise, flip)
                expected += transitions
                if trial % 2 == 0:
                    await seen_in_changelog(changelog, flip.event_id)  # kill the moment it was written
                else:
                    await asyncio.sleep(rng.choice([0.0, 0.002, 0.005, 0.01, 0.02]))
                killed = time.monotonic()
                await sigkill_and_restart(system, "calculator")
                # No input after the flip: the restarted calculator alone must publish it.
                await wait_transitions(
                    watcher, expected, f"the alert of flip {trial + 1} after the kill", baseline=baseline
                )
                delays.append(time.monotonic() - killed)
                await watcher.wait_for(
                    lambda: watcher.figures_equal(flips.expected_lines()), 60, f"the figures after flip {trial + 1}"
                )
            await asyncio.sleep(1.5)  # nothing more may follow
            assert_each_transition_once(watcher, expected, baseline)
            assert watcher.figures["4d2"].lines == flips.expected_lines()["4d2"]
            versions = [f.version for f in watcher.figures_seen if f.segment == "4d2"]
            assert versions == sorted(set(versions)), versions  # never a version twice, never backwards
            print(f"\nkill -> alert after restart, seconds: {[round(d, 2) for d in delays]}")
        finally:
            await changelog.stop()
            await producer.stop()
            await watcher.stop()
