"""The running system and a watcher of its figures and alerts, for the end-to-end tests that need them."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from segwatch.replay import Watcher
from segwatch.system import LocalSystem


@pytest.fixture
async def system(kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalSystem]:
    """The three services on the test broker, in a namespace of their own; stopped after the test."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
    async with LocalSystem(workdir=tmp_path, out=lambda _: None) as running:
        yield running


@pytest.fixture
async def watcher(system: LocalSystem) -> AsyncIterator[Watcher]:
    """Follows the system's figures and alert topics from their start."""
    w = Watcher(system, out=None)
    await w.start()
    yield w
    await w.stop()
