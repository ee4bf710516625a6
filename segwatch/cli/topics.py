"""`segwatch topics`: the declared Kafka topics (list) and making a cluster match them (apply).

The declaration is segwatch/kafka/topics.py; the cluster comes from KAFKA_BOOTSTRAP and the other
KAFKA_* variables (segwatch/config.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from segwatch.cli import CliError
from segwatch.config import KafkaSettings
from segwatch.kafka.admin import KafkaAdminError, apply_topics
from segwatch.kafka.topics import topics


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "topics", help="list the declared Kafka topics, or create/update them on a cluster", description=__doc__
    )
    actions = parser.add_subparsers(dest="topics_command", required=True, metavar="ACTION")

    apply = actions.add_parser("apply", help="create missing topics and update configs (idempotent)")
    apply.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")
    apply.add_argument("--timeout", type=float, default=30.0, help="seconds per admin request (default 30)")
    apply.set_defaults(func=_apply)

    listing = actions.add_parser("list", help="print the topic declaration")
    listing.add_argument("--json", action="store_true", help="as JSON")
    listing.set_defaults(func=_list)


def _apply(args: argparse.Namespace) -> int:
    settings = KafkaSettings.from_env()
    specs = topics()
    try:
        results = asyncio.run(apply_topics(settings, specs, dry_run=args.dry_run, timeout=args.timeout))
    except KafkaAdminError as exc:
        raise CliError(str(exc), status=1) from None
    width = max(len(spec.name) for spec in specs)
    for result in results:
        action = f"would be {result.action}" if args.dry_run and result.action != "unchanged" else result.action
        detail = f"  {'; '.join(result.changes)}" if result.changes else ""
        print(f"{action:<10} {result.name:<{width}}{detail}".rstrip())
        for warning in result.warnings:
            print(f"{'warning':<10} {result.name:<{width}}  {warning}")
    counts = {action: sum(r.action == action for r in results) for action in ("created", "updated", "unchanged")}
    summary = ", ".join(f"{n} {action}" for action, n in counts.items())
    prefix = "dry run against" if args.dry_run else "applied to"
    print(f"{prefix} {settings.bootstrap_servers}: {summary}")
    return 0


def _list(args: argparse.Namespace) -> int:
    specs = topics()
    if args.json:
        rows = [
            {
                "name": s.name,
                "partitions": s.partitions,
                "replication": s.replication,
                "configs": dict(s.configs),
                "purpose": s.purpose,
            }
            for s in specs
        ]
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(spec.name) for spec in specs)
    print(f"{'TOPIC':<{width}}  PART  REPL  CONFIGS / PURPOSE")
    for spec in specs:
        configs = " ".join(f"{k}={v}" for k, v in sorted(spec.configs.items()))
        print(f"{spec.name:<{width}}  {spec.partitions:>4}  {spec.replication:>4}  {configs}")
        print(f"{'':<{width}}              {spec.purpose}")
    return 0
