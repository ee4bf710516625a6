"""`segwatch alerter serve|tail`: the alerting service, and alert records as they arrive.

serve   figures → alerts, disbursements → 25% decisions and notices (issue #13), on Kafka, with /metrics,
        /healthz, /readyz and POST /v1/what-if on HTTP; stops cleanly on SIGTERM/SIGINT (the batch in hand is
        finished: alerts acknowledged, offsets committed).
        Address: --host/--port, or SEGWATCH_ALERTER_HOST / SEGWATCH_ALERTER_PORT (default 127.0.0.1:8703).
tail    print alert records from the alert topic (one line each, or --json), from now or --from-beginning.

Kafka comes from KAFKA_BOOTSTRAP and the other KAFKA_* variables (segwatch/config.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from segwatch.cli import CliError
from segwatch.errors import InputError
from segwatch.kafka.topics import ALERTS


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port (0-65535), got {text!r}")
    return int(text)


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "alerter",
        help="figures → alerts and Prometheus metrics; tail the alert topic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="alerter_command", required=True, metavar="ACTION")

    serve = actions.add_parser("serve", help="run the alerter (Kafka consumer/producer and HTTP endpoints)")
    serve.add_argument("--host", default=None, help="HTTP address (default $SEGWATCH_ALERTER_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=None, help="HTTP port (default $SEGWATCH_ALERTER_PORT or 8703)")
    advanced = serve.add_argument_group("topics and group (defaults: the declared ones; for shadow runs and tests)")
    advanced.add_argument("--group", default=None, help="consumer group id (default segwatch-alerter)")
    advanced.add_argument("--figures-topic", default=None, help="figures topic to consume")
    advanced.add_argument(
        "--disbursements-topic",
        default=None,
        help="disbursements topic to consume ('' for none: no 25%% disbursement control)",
    )
    advanced.add_argument(
        "--statements-topic",
        default=None,
        help="statements topic to consume: the daily computations and filings ('' for none)",
    )
    advanced.add_argument("--alerts-topic", default=None, help="alert topic to publish to and recover from")
    advanced.add_argument("--state-topic", default=None, help="compacted alert-state topic ('' for none)")
    advanced.add_argument("--deadletter-topic", default=None, help="dead-letter topic")
    serve.set_defaults(func=cmd_serve)

    tail = actions.add_parser("tail", help="print alert records as they arrive")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest record kept")
    tail.add_argument("--json", action="store_true", help="print each record as JSON")
    tail.add_argument("--count", type=int, default=None, help="exit after this many records")
    tail.add_argument("--topic", default=ALERTS, help=f"the alert topic (default {ALERTS})")
    tail.set_defaults(func=cmd_tail)


def cmd_serve(args: argparse.Namespace) -> int:
    from segwatch.environment import load
    from segwatch.logs import configure
    from services.alerter.service import AlerterConfig, AlerterService
    from services.alerter.settings import AlerterSettings

    environment = load(AlerterSettings)  # every variable the service reads, checked once, now
    fields = environment.config_fields()  # every AlerterPart variable, by its AlerterConfig field name
    fields["host"] = args.host or environment.host
    fields["port"] = args.port if args.port is not None else environment.port
    settings = environment.kafka
    log = configure("alerter")
    overrides: dict[str, Any] = {
        name: value
        for name, value in (
            ("group_id", args.group),
            ("figures_topic", args.figures_topic),
            ("alerts_topic", args.alerts_topic),
            ("deadletter_topic", args.deadletter_topic),
        )
        if value
    }
    if args.state_topic is not None:
        overrides["state_topic"] = args.state_topic or None
    if args.disbursements_topic is not None:
        overrides["disbursements_topic"] = args.disbursements_topic or None
    if args.statements_topic is not None:
        overrides["statements_topic"] = args.statements_topic or None
    service = AlerterService(settings, AlerterConfig(**{**fields, **overrides}), logger=log)
    return asyncio.run(_serve(service, log))


async def _serve(service: Any, log: Any) -> int:
    from aiokafka.errors import KafkaError

    from services.alerter.recovery import RecoveryError

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await service.start()
        except (RecoveryError, KafkaError) as exc:
            raise CliError(str(exc) or type(exc).__name__, status=1) from None
        except OSError as exc:
            raise CliError(f"cannot listen on {service.config.host}:{service.config.port}: {exc}", 1) from None
        waiter = asyncio.create_task(stop.wait())
        worker = asyncio.create_task(service.wait())
        done, _ = await asyncio.wait({waiter, worker}, return_when=asyncio.FIRST_COMPLETED)
        failed = worker in done and worker.exception() is not None
        if failed:
            log.error("alerter stopping after a failure", error=str(worker.exception()))
        else:
            log.info("alerter stopping on signal")
        waiter.cancel()
        await service.stop()
        return 1 if failed else 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def cmd_tail(args: argparse.Namespace) -> int:
    from segwatch.config import KafkaSettings

    if args.count is not None and args.count < 1:
        raise InputError("--count", "must be at least 1")
    settings = KafkaSettings.from_env()
    return asyncio.run(_tail(settings, args))


def format_alert(raw: bytes) -> str:
    from pydantic import ValidationError

    from schemas.alerts import Alert

    try:
        alert = Alert.model_validate_json(raw)
    except ValidationError:
        return f"(not an alert record) {raw.decode('utf-8', 'replace')}"
    mark = {"firing": "FIRING  ", "resolved": "resolved", "notice": "NOTICE  "}[alert.state]
    version = f"v{alert.figures.version}" if alert.figures is not None else "v-"
    return (
        f"{alert.at.isoformat(timespec='seconds')} {mark} {alert.severity:<8} {alert.segment:<4} "
        f"{alert.rule:<12} {version} {alert.summary} [{alert.alert_id}]"
    )


async def _tail(settings: Any, args: argparse.Namespace) -> int:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaError

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    consumer = AIOKafkaConsumer(
        args.topic,
        **settings.aiokafka_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
        client_id="segwatch-alerter-tail",
    )
    seen = 0
    try:
        try:
            await asyncio.wait_for(consumer.start(), 30)
        except (KafkaError, TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise CliError(f"cannot reach Kafka at {settings.bootstrap_servers}: {reason}", 1) from None
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if record.value is None:
                        continue
                    line = record.value.decode("utf-8", "replace") if args.json else format_alert(record.value)
                    print(line, flush=True)
                    seen += 1
                    if args.count is not None and seen >= args.count:
                        return 0
        return 0
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        sys.stdout.flush()
