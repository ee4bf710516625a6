"""The benchmark's arithmetic: nearest-rank percentiles, the summary, and targets met or missed."""

from __future__ import annotations

import pytest

from bench.report import TARGETS, Target, evaluate, table
from bench.stats import percentile, summary


def test_nearest_rank_percentiles() -> None:
    samples = list(range(1, 101))  # 1..100
    assert percentile(samples, 50) == 50
    assert percentile(samples, 99) == 99
    assert percentile(samples, 100) == 100
    assert percentile(samples, 0) == 1
    assert percentile([7.0], 99) == 7.0


def test_percentile_ignores_order() -> None:
    assert percentile([3, 1, 2], 50) == 2


def test_no_samples_is_an_error_not_a_zero() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    assert summary([]) == {"count": 0}


def test_summary_in_milliseconds() -> None:
    assert summary([0.001, 0.002, 0.010]) == {"count": 3, "p50": 2.0, "p95": 10.0, "p99": 10.0, "max": 10.0}


def test_a_target_is_met_on_its_own_side_of_the_limit() -> None:
    at_least = Target("rate", ("r",), "events/s", 50_000, True)
    at_most = Target("p99", ("p",), "ms", 200, False)
    assert at_least.met(50_000) and not at_least.met(49_999)
    assert at_most.met(200) and not at_most.met(200.5)


def test_missing_measurements_are_neither_met_nor_missed() -> None:
    rows = evaluate({"throughput": {"events_per_second": 60_000}})
    by_name = {r["name"]: r for r in rows}
    assert by_name["calculator throughput"]["met"] is True
    assert all(r["met"] is None for r in rows if r["name"] != "calculator throughput")
    assert len(rows) == len(TARGETS)


def test_the_table_marks_a_missed_target() -> None:
    text = table({"throughput": {"events_per_second": 40_000}, "checks": {"figures equal": True}})
    line = next(x for x in text.splitlines() if x.startswith("calculator: events → correct figures"))
    assert "40,000 events/s" in line and line.endswith("MISSED")
    assert "check: figures equal: yes" in text


def test_a_phase_that_could_not_finish_is_missed_with_its_reason() -> None:
    results = {
        "throughput": {"events_per_second": 60_000},
        "missed": {"latency": "timed out after 30s waiting for 4 deficiency alert transitions"},
        "checks": {"latency: measured": False},
    }
    by_name = {r["name"]: r for r in evaluate(results)}
    assert by_name["event → alert p99"]["met"] is False
    assert by_name["event → alert p99"]["missed"].startswith("timed out after 30s")
    assert by_name["recovery after SIGKILL"]["met"] is None  # not run, not missed
    text = table(results)
    line = next(x for x in text.splitlines() if x.startswith("event → alert p99"))
    assert "missed" in line and line.endswith("MISSED")
    assert "missed: latency: timed out after 30s waiting for 4 deficiency alert transitions" in text
    assert "check: latency: measured: NO" in text


async def test_measure_records_a_timeout_as_missed_and_goes_on() -> None:
    from types import SimpleNamespace

    from bench.runner import measure

    ctx = SimpleNamespace(results={}, checks={})
    said: list[str] = []

    async def times_out(ctx: object, out: object) -> None:
        raise TimeoutError("timed out after 60s waiting for the figures after the steady load")

    async def works(ctx: object, out: object) -> None:
        said.append("ran")

    assert await measure(ctx, "latency", times_out, said.append) is False  # type: ignore[arg-type]
    assert await measure(ctx, "ingest", works, said.append) is True  # type: ignore[arg-type]
    assert ctx.results["missed"] == {"latency": "timed out after 60s waiting for the figures after the steady load"}
    assert ctx.checks == {"latency: measured": False}
    assert said == ["latency: MISSED: timed out after 60s waiting for the figures after the steady load", "ran"]
