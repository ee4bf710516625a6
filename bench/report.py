"""The results as a table with the targets, and the JSON result file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson


@dataclass(frozen=True)
class Target:
    name: str
    path: tuple[str, ...]  # where the value is in the results
    unit: str
    limit: float
    at_least: bool  # True: value >= limit; False: value <= limit

    def value(self, results: dict[str, Any]) -> float | None:
        node: Any = results
        for part in self.path:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return float(node) if isinstance(node, int | float) else None

    def met(self, value: float) -> bool:
        return value >= self.limit if self.at_least else value <= self.limit

    @property
    def text(self) -> str:
        return f"{'≥' if self.at_least else '≤'} {self.limit:,g} {self.unit}".strip()


TARGETS = (
    Target("calculator throughput", ("throughput", "events_per_second"), "events/s", 50_000, True),
    Target("calculator / bare aiokafka+orjson", ("throughput", "ratio_to_bare_orjson"), "", 0.5, True),
    Target("event → figures p50", ("latency", "event_to_figures_ms", "p50"), "ms", 50, False),
    Target("event → alert p99", ("latency", "event_to_alert_ms", "p99"), "ms", 200, False),
    Target("recovery after SIGKILL", ("recovery", "seconds"), "s", 15, False),
    Target("calculator peak RSS per account", ("memory", "peak_bytes_per_account"), "B", 2048, False),
    Target("ingest, NDJSON batches of 1,000", ("ingest", "events_per_second"), "events/s", 20_000, True),
    Target("ingest, single event p99", ("ingest", "single_event_ms", "p99"), "ms", 20, False),
)


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for t in TARGETS:
        value = t.value(results)
        missed = results.get("missed", {}).get(t.path[0])
        rows.append(
            {
                "name": t.name,
                "value": value,
                "unit": t.unit,
                "target": t.text,
                "met": (False if missed else None) if value is None else t.met(value),
                **({"missed": missed} if value is None and missed else {}),
            }
        )
    return rows


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        text = f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"
    else:
        text = f"{int(value):,}"
    return f"{text} {unit}".strip()


def table(results: dict[str, Any]) -> str:
    """Every measurement, one line each; the targeted ones with their target and whether it was met."""
    get: Callable[..., Any] = lambda *p: _get(results, *p)  # noqa: E731
    rows: list[tuple[str, str, str, str]] = []
    targets = {t.path: t for t in TARGETS}
    missed: dict[str, str] = results.get("missed", {})

    def row(name: str, path: tuple[str, ...], unit: str = "") -> None:
        value = get(*path)
        target = targets.get(path)
        if value is None and path[0] in missed:
            rows.append((name, "missed", target.text if target else "", "MISSED"))
        elif target is None or value is None:
            rows.append((name, _fmt(value, unit), "", ""))
        else:
            rows.append((name, _fmt(value, unit), target.text, "met" if target.met(float(value)) else "MISSED"))

    row("calculator: events → correct figures", ("throughput", "events_per_second"), "events/s")
    row("  the same, after the worker was ready", ("throughput", "events_per_second_after_ready"), "events/s")
    row("  calculator startup (launch → ready)", ("throughput", "startup_seconds"), "s")
    row("bare aiokafka consumer + orjson.loads", ("bare_aiokafka", "orjson", "events_per_second"), "events/s")
    row("bare aiokafka consumer + pydantic", ("bare_aiokafka", "pydantic", "events_per_second"), "events/s")
    row("Kafka ConsumerPerformance (fetch)", ("consumer_performance", "fetch_events_per_second"), "events/s")
    row("calculator / bare aiokafka+orjson", ("throughput", "ratio_to_bare_orjson"))
    row("calculator / bare aiokafka+pydantic", ("throughput", "ratio_to_bare_pydantic"))
    row("calculator / ConsumerPerformance", ("throughput", "ratio_to_consumer_performance"))
    row("event → figures p50", ("latency", "event_to_figures_ms", "p50"), "ms")
    row("event → figures p95", ("latency", "event_to_figures_ms", "p95"), "ms")
    row("event → figures p99", ("latency", "event_to_figures_ms", "p99"), "ms")
    row("event → alert p50", ("latency", "event_to_alert_ms", "p50"), "ms")
    row("event → alert p95", ("latency", "event_to_alert_ms", "p95"), "ms")
    row("event → alert p99", ("latency", "event_to_alert_ms", "p99"), "ms")
    row("  steady load sent", ("latency", "rate_sent"), "events/s")
    row("recovery after SIGKILL → correct figures", ("recovery", "seconds"), "s")
    row("  restarted worker ready", ("recovery", "ready_seconds"), "s")
    row("calculator peak RSS (VmHWM)", ("memory", "peak_mib"), "MiB")
    row("calculator peak RSS per account", ("memory", "peak_bytes_per_account"), "B")
    row("  per account, over the idle calculator", ("memory", "peak_bytes_per_account_over_idle"), "B")
    row("  idle calculator peak RSS", ("idle_calculator", "peak_mib"), "MiB")
    row("  peak RSS after recovery", ("memory_after_recovery", "peak_mib"), "MiB")
    row("ingest, NDJSON batches of 1,000", ("ingest", "events_per_second"), "events/s")
    row("ingest, single event p50", ("ingest", "single_event_ms", "p50"), "ms")
    row("ingest, single event p99", ("ingest", "single_event_ms", "p99"), "ms")
    widths = [max(len(r[i]) for r in [*rows, ("measurement", "result", "target", "")]) for i in range(4)]
    lines = [
        f"{'measurement':<{widths[0]}}  {'result':>{widths[1]}}  {'target':<{widths[2]}}  ",
        "-" * (sum(widths) + 6),
    ]
    lines += [f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows]
    if missed:
        lines.append("")
        lines += [f"missed: {phase}: {reason.splitlines()[0]}" for phase, reason in missed.items()]
    checks = results.get("checks", {})
    if checks:
        lines.append("")
        lines += [f"check: {name}: {'yes' if ok else 'NO'}" for name, ok in checks.items()]
    return "\n".join(line.rstrip() for line in lines)


def write(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps({**results, "targets": evaluate(results)}, option=orjson.OPT_INDENT_2))
