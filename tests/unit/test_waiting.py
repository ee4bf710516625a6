"""segwatch.waiting: polling a condition to a deadline, and jittered retry delays."""

from __future__ import annotations

import random
from itertools import islice

import pytest

from segwatch.waiting import WaitTimeout, backoff, wait_until, wait_until_blocking


async def test_wait_until_returns_the_conditions_first_truthy_value() -> None:
    calls: list[int] = []

    def third_time() -> str:
        calls.append(1)
        return "done" if len(calls) == 3 else ""

    assert await wait_until(third_time, what="three calls", timeout=5, interval=0.001) == "done"
    assert len(calls) == 3


async def test_wait_until_awaits_an_async_condition() -> None:
    seen: list[int] = []

    async def grows() -> list[int] | None:
        seen.append(len(seen))
        return seen if len(seen) >= 2 else None

    assert await wait_until(grows, what="two", timeout=5, interval=0.001) == [0, 1]


async def test_wait_until_times_out_naming_what_and_what_is_missing() -> None:
    with pytest.raises(WaitTimeout, match=r"timed out after 0.05s waiting for the moon: still 3 to go"):
        await wait_until(lambda: False, what="the moon", timeout=0.05, interval=0.01, detail=lambda: "still 3 to go")
    with pytest.raises(TimeoutError):  # a WaitTimeout is a TimeoutError
        await wait_until(lambda: 0, what="zero", timeout=0)


async def test_an_error_in_the_condition_ends_the_wait_at_once() -> None:
    def exited() -> bool:
        raise RuntimeError("the service exited with 1")

    with pytest.raises(RuntimeError, match="exited with 1"):
        await wait_until(exited, what="a dead service", timeout=60)


def test_wait_until_blocking_is_the_same_without_an_event_loop() -> None:
    calls: list[int] = []

    def second_time() -> bool:
        calls.append(1)
        return len(calls) == 2

    assert wait_until_blocking(second_time, what="two", timeout=5, interval=0.001) is True
    with pytest.raises(WaitTimeout, match="waiting for never"):
        wait_until_blocking(lambda: None, what="never", timeout=0.02, interval=0.005)


def test_backoff_grows_exponentially_to_its_cap_with_full_jitter() -> None:
    delays = list(islice(backoff(0.5, 4.0, rng=random.Random(7)), 200))
    caps = [min(4.0, 0.5 * 2**n) for n in range(200)]
    assert all(0 <= d <= cap for d, cap in zip(delays, caps, strict=True))
    assert max(delays[4:]) > 2.0  # the cap is reached, not just the first step
    assert len(set(delays)) == len(delays)  # jittered: no two clients in step
    assert delays == list(islice(backoff(0.5, 4.0, rng=random.Random(7)), 200))  # seeded: reproducible
