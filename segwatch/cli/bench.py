"""`segwatch bench`: throughput, latency, recovery, memory and ingest of the real pipeline on this machine."""

from __future__ import annotations

import argparse
from collections.abc import Coroutine
from typing import Any


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark the pipeline (starts the broker if needed; an isolated namespace, deleted after)",
        description="Preloads balance events, then measures the calculator's throughput (against a bare aiokafka "
        "consumer and Kafka's ConsumerPerformance on the same topic), its memory, its recovery after SIGKILL, "
        "event → figures and event → alert latency under a steady load, and ingest over HTTP. Prints a table "
        "and writes the results as JSON. See docs/PERFORMANCE.md.",
    )
    p.add_argument(
        "--small",
        action="store_true",
        help="a run of seconds (20,000 events over 2,000 accounts, a 4 s latency phase), as CI runs it",
    )
    p.add_argument("--events", type=int, help="balance events preloaded (1,000,000)")
    p.add_argument("--accounts", type=int, help="customer accounts they restate (100,000)")
    p.add_argument("--partitions", type=int, help="balances partitions (4)")
    p.add_argument("--rate", type=int, help="events/s of the latency phase's steady load (2,000)")
    p.add_argument("--latency-seconds", type=float, help="length of the latency phase (60)")
    p.add_argument("--dip-every", type=float, help="seconds between the 4d(2) dips and cures (0.5)")
    p.add_argument("--ingest-events", type=int, help="events posted in NDJSON batches (200,000)")
    p.add_argument("--ingest-clients", type=int, help="concurrent HTTP clients posting batches (4)")
    p.add_argument("--single-posts", type=int, help="single-event POSTs, one at a time (2,000)")
    p.add_argument("--seed", type=int, help="the workload's random seed (7)")
    p.add_argument("--coalesce-ms", type=int, help="the calculator's coalescing interval (its default, 50)")
    p.add_argument(
        "--skip",
        default="",
        help="comma-separated phases to leave out: ceilings, throughput, recovery, latency, ingest, idle",
    )
    p.add_argument("--workdir", default="var/bench", help="where service logs go (var/bench/<timestamp>/)")
    p.add_argument("--out", help="the JSON result file (bench/results/<timestamp>.json)")
    p.add_argument("--keep-topics", action="store_true", help="leave the benchmark's topics on the broker")
    p.set_defaults(func=cmd_bench)


async def _until_signalled(work: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run `work`; SIGTERM or SIGINT cancels it, so its cleanup (services, topics) still runs."""
    import asyncio
    import signal

    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        from segwatch.cli import CliError

        raise CliError("interrupted; the benchmark's services were stopped and its topics deleted", 130) from None


def cmd_bench(args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses
    import time
    from pathlib import Path

    from bench import report
    from bench.runner import PHASES, BenchConfig, run
    from segwatch.cli import CliError

    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - set(PHASES)
    if unknown:
        raise CliError(f"--skip: unknown phase(s) {', '.join(sorted(unknown))}; phases: {', '.join(PHASES)}")
    overrides = {
        name: getattr(args, name)
        for name in (
            "events",
            "accounts",
            "partitions",
            "rate",
            "latency_seconds",
            "dip_every",
            "ingest_events",
            "ingest_clients",
            "single_posts",
            "seed",
            "coalesce_ms",
        )
        if getattr(args, name) is not None
    }
    for name, value in overrides.items():
        if value <= 0:
            raise CliError(f"--{name.replace('_', '-')} must be positive")
    overrides["phases"] = tuple(p for p in PHASES if p not in skip)
    overrides["workdir"] = Path(args.workdir)
    overrides["keep_topics"] = args.keep_topics
    cfg = BenchConfig.small(**overrides) if args.small else dataclasses.replace(BenchConfig(), **overrides)
    if cfg.events < cfg.accounts or cfg.accounts < 30:
        raise CliError("--events must be at least --accounts, and --accounts at least 30")
    results = asyncio.run(_until_signalled(run(cfg)))
    out = Path(args.out) if args.out else Path("bench/results") / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    report.write(results, out)
    print()
    print(report.table(results))
    print(f"\nresults: {out}")
    return 0 if all(results.get("checks", {}).values()) else 1
