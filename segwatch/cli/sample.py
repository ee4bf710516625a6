"""`segwatch sample`: the synthetic FCM's business day as NDJSON events."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from segwatch.cli import CliError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sample", help="write a synthetic FCM's business day as NDJSON balance events")
    add_sample_options(p)
    p.add_argument("--out", help="write to this file instead of standard output")
    p.add_argument("--phases", action="store_true", help="list the day's phases and event counts instead")
    p.set_defaults(func=cmd_sample)


def add_sample_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accounts", type=int, default=3000, help="customer accounts across the segments (3000)")
    p.add_argument("--events", type=int, default=6000, help="intraday account updates (6000)")
    p.add_argument("--seed", type=int, default=7, help="random seed; the same seed gives the same day (7)")


def cmd_sample(args: argparse.Namespace) -> int:
    from segwatch.sample import Day

    if args.accounts < 90 or args.events < 0:
        raise CliError("--accounts must be at least 90 (30 per segment) and --events at least 0")
    day = Day(args.accounts, args.events, args.seed)
    if args.phases:
        for name, events in day.phases():
            print(f"{len(events):8d}  {name}")
        return 0
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(Path(args.out).open("w", encoding="utf-8")) if args.out else sys.stdout
        for event in day.events():
            out.write(event.model_dump_json() + "\n")
    return 0
