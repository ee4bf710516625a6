"""Two calculator workers share the balances partitions; the combined figures are still exact."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from segwatch.core.book import Book
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.replay import Watcher
from segwatch.sample import Day
from segwatch.system import LocalSystem, Service, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


async def test_two_calculator_workers_split_the_partitions_and_agree_with_the_core(
    kafka_bootstrap: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
    async with LocalSystem(workdir=tmp_path, run=("ingest", "calculator"), out=lambda _: None) as system:
        port = free_port()
        second = Service(
            "calculator-2", ["calculator", "worker", "--port", str(port)], port, tmp_path / "calculator-2.log"
        )
        system.services[second.name] = second
        system.launch(second)
        await system.wait_ready([second.name])
        watcher = Watcher(system, out=None)
        await watcher.start()
        try:
            book = Book()
            async with aiohttp.ClientSession() as http:
                for _, events in Day(accounts=400, events=300, seed=21).phases():
                    await system.post(http, events)
                    book.apply_all(events)
            expected = {sid: book.consolidated(sid).lines for sid in SEGMENT_IDS}
            await watcher.wait_for(lambda: watcher.figures_equal(expected), 90, "the closing figures")
        finally:
            await watcher.stop()
            await system.stop_service(second.name)
        # Both workers took part: each logged loading the state of the partitions it was given.
        logs = [(tmp_path / f"{name}.log").read_text() for name in ("calculator", "calculator-2")]
        assert all("partition_state_loaded" in log for log in logs), "one worker got no balances partition"
