"""Waiting for a condition and retrying a failing step: the one way segwatch does either.

`wait_until` (asyncio) and `wait_until_blocking` (threads, the broker launcher) poll a condition at a fixed
interval until it returns something truthy, which they return; past the deadline they raise WaitTimeout
naming what was awaited, for how long, and (from `detail`) what was still missing. An exception from the
condition itself (a process that exited, a refused request) ends the wait at once: that is not a timeout.

`backoff` gives the delays between retries: exponential with full jitter (each delay uniform between 0 and
the capped exponential step), so that many clients retrying against one broker do not retry in step.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar, overload

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """The awaited condition did not hold in time; the message names it and what was still missing."""


def _timeout(what: str, timeout: float, detail: Callable[[], str] | None) -> WaitTimeout:
    message = f"timed out after {timeout:g}s waiting for {what}"
    extra = detail() if detail is not None else ""
    return WaitTimeout(f"{message}: {extra}" if extra else message)


@overload
async def wait_until(  # an awaitable result is awaited, never returned
    condition: Callable[[], Awaitable[T]],
    *,
    what: str,
    timeout: float,
    interval: float = 0.1,
    detail: Callable[[], str] | None = None,
) -> T: ...


@overload
async def wait_until(
    condition: Callable[[], T],
    *,
    what: str,
    timeout: float,
    interval: float = 0.1,
    detail: Callable[[], str] | None = None,
) -> T: ...


async def wait_until(
    condition: Callable[[], Any],
    *,
    what: str,
    timeout: float,
    interval: float = 0.1,
    detail: Callable[[], str] | None = None,
) -> Any:
    """Poll `condition` (a plain or an async callable) every `interval` seconds until it returns a truthy
    value, and return that value; raise WaitTimeout after `timeout` seconds (checked once more at the end)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        value = await result if inspect.isawaitable(result) else result
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timeout(what, timeout, detail)
        await asyncio.sleep(min(interval, remaining))


def wait_until_blocking(
    condition: Callable[[], T],
    *,
    what: str,
    timeout: float,
    interval: float = 0.1,
    detail: Callable[[], str] | None = None,
) -> T:
    """`wait_until` for code that is not in an event loop (it sleeps the calling thread)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timeout(what, timeout, detail)
        time.sleep(min(interval, remaining))


def backoff(first: float = 0.5, cap: float = 15.0, *, rng: random.Random | None = None) -> Iterator[float]:
    """Endless retry delays: the n-th is uniform in [0, min(cap, first * 2**n)] (exponential, full jitter)."""
    draw = rng or random.Random()
    step = first
    while True:
        yield draw.uniform(0, step)
        step = min(cap, step * 2)
