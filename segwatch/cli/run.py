"""`segwatch run`: the whole system locally on the sample business day, until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from pathlib import Path

from segwatch.cli.sample import add_sample_options


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="broker, topics, the three services and a replayed sample day; Ctrl-C stops")
    add_sample_options(p)
    p.add_argument("--pause", type=float, default=0.5, help="seconds between the day's phases (0.5)")
    p.add_argument("--workdir", default="var", help="where service logs go (var/)")
    p.add_argument("--exit", action="store_true", help="stop after the replay instead of waiting for Ctrl-C")
    for name, port in (("ingest", 8701), ("calculator", 8702), ("alerter", 8703)):
        p.add_argument(f"--{name}-port", type=int, default=port, help=f"{name} HTTP port ({port})")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    return asyncio.run(run(args))


async def run(args: argparse.Namespace) -> int:
    from segwatch.core import statement
    from segwatch.replay import Watcher, replay
    from segwatch.sample import END_DATE, OPEN, Day, closing_book
    from segwatch.system import LocalSystem

    system = LocalSystem(
        workdir=Path(args.workdir),
        ports={"ingest": args.ingest_port, "calculator": args.calculator_port, "alerter": args.alerter_port},
        # The sample day is in 2017: the services' clock starts at its opening, so that the day closes at the
        # ledger's end of day as it would live, not at once by the wall clock (SEGWATCH_NOW overrides it).
        now=os.environ.get("SEGWATCH_NOW") or OPEN.isoformat(),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"segwatch: starting the system (namespace {system.namespace!r}, logs in {args.workdir}/)")
    async with system:
        for svc in system.services.values():
            print(f"  {svc.name:<10} {svc.url}  (/healthz /readyz /metrics)")
        watcher = Watcher(system)
        await watcher.start()
        try:
            day = Day(args.accounts, args.events, args.seed)
            replaying = asyncio.create_task(replay(system, day, watcher, pause=args.pause))
            stopped = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({replaying, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if replaying not in done:
                replaying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await replaying
                print("segwatch: stopped during the replay")
                return 130
            replaying.result()
            await asyncio.sleep(1)  # let the last alerts arrive before the summary
            book = closing_book()
            mismatches = []
            for sid, lines in book.items():
                expected = statement.complete(sid, lines)
                published = watcher.figures[sid].lines
                mismatches += [f"{sid} [{c}]" for c, a in expected.items() if published.get(c) != a]
            total = sum(len(statement.complete(sid, lines)) for sid, lines in book.items())
            print()
            print(
                f"Closing statement for {END_DATE}: "
                + (
                    f"equals the reference filing, line by line ({total} lines)."
                    if not mismatches
                    else f"{len(mismatches)} lines differ: {', '.join(mismatches)}"
                )
            )
            print("Statements of the business day (segwatch.statements):")
            for rec in watcher.statements:
                print(
                    f"  {rec.business_day} {rec.segment:>4} {rec.kind:<9} v{rec.version}"
                    + (f"  moved {', '.join(sorted(rec.moved))}" if rec.moved else "")
                )
            print("Alerts during the day:")
            for alert in watcher.alerts:
                print(f"  {alert.segment:>4} {alert.rule:<13} {alert.state}")
            if not args.exit:
                print(f"\nMetrics stay up at {system.services['alerter'].url}/metrics until Ctrl-C.")
                await stop.wait()
            return 1 if mismatches else 0
        finally:
            await watcher.stop()
            print("segwatch: stopping everything it started")
