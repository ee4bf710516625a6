"""A task that runs an action every `interval` seconds until stopped: the alerter's time-based rules (the 6 pm
residual-interest check, the filing deadlines) must fire with no input at all."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any


class Periodic:
    def __init__(self, interval: float, action: Callable[[], Awaitable[None]], name: str, log: Any) -> None:
        self.interval = interval
        self.action = action
        self.name = name
        self.log = log
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start ticking (an interval of 0 or less: never; the rules then run on inputs only)."""
        if self._task is None and self.interval > 0:
            self._task = asyncio.create_task(self._forever(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.action()
            except Exception as exc:  # the next tick retries; the consumer loop is what fails the service
                self.log.error(f"{self.name} failed", error=str(exc) or type(exc).__name__)
