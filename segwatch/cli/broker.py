"""`segwatch broker`: the local development Kafka broker (start, stop, status, logs, reset).

The work is done by segwatch.kafka.broker; this module only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from segwatch.cli import CliError
from segwatch.kafka import broker
from segwatch.kafka.broker import BrokerConfig, BrokerError


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "broker",
        help="run a local Apache Kafka broker for development and tests",
        description=__doc__,
    )
    actions = parser.add_subparsers(dest="broker_command", required=True, metavar="ACTION")

    start = actions.add_parser("start", help="start the broker (fetches Kafka once) and wait until it serves")
    start.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait for the broker (default 90, or env)"
    )
    start.set_defaults(func=_start)

    stop = actions.add_parser("stop", help="stop the broker (SIGTERM, then SIGKILL after --timeout)")
    stop.add_argument("--timeout", type=float, default=broker.DEFAULT_STOP_TIMEOUT)
    stop.set_defaults(func=_stop)

    status = actions.add_parser("status", help="exit 0 when the broker runs and serves clients")
    status.add_argument("--bootstrap", action="store_true", help="print only the bootstrap address")
    status.set_defaults(func=_status)

    logs = actions.add_parser("logs", help="print the tail of the broker log")
    logs.add_argument("-n", "--lines", type=int, default=broker.LOG_TAIL_LINES)
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (Ctrl-C ends)")
    logs.set_defaults(func=_logs)

    reset = actions.add_parser("reset", help="stop the broker and delete its data (all topics); keeps the jars")
    reset.set_defaults(func=_reset)


def _config() -> BrokerConfig:
    return BrokerConfig.from_env()


def _start(args: argparse.Namespace) -> int:
    config = _config()
    try:
        result = broker.start(config, out=lambda line: print(line, flush=True), timeout=args.timeout)
    except BrokerError as exc:
        raise CliError(f"broker start failed: {exc}", status=1) from None
    if result.already_running:
        print(f"broker already running at {result.bootstrap} (pid {result.pid})")
    else:
        print(f"broker started in {result.seconds:.1f}s at {result.bootstrap}")
        print(f"  Apache Kafka {config.kafka_version}, pid {result.pid}, log {config.log_file}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    try:
        result = broker.stop(_config(), timeout=args.timeout)
    except BrokerError as exc:
        raise CliError(f"broker stop failed: {exc}", status=1) from None
    if not result.was_running:
        print("broker was not running")
    else:
        how = "killed after the SIGTERM timeout" if result.killed else "stopped"
        print(f"broker {how} in {result.seconds:.1f}s")
    return 0


def _status(args: argparse.Namespace) -> int:
    config = _config()
    state = broker.status(config)
    if state.ready:
        print(state.bootstrap if args.bootstrap else f"broker running at {state.bootstrap} (pid {state.pid})")
        return 0
    if state.running:
        print(f"broker process {state.pid} runs but does not serve clients at {state.bootstrap}", file=sys.stderr)
    else:
        print(f"broker not running (state in {config.broker_dir})", file=sys.stderr)
    return 1


def _logs(args: argparse.Namespace) -> int:
    config = _config()
    print(broker.log_tail(config, args.lines), flush=True)
    if not args.follow:
        return 0
    try:
        with open(config.log_file, errors="replace") as handle:
            handle.seek(0, 2)
            while True:
                line = handle.readline()
                if line:
                    print(line, end="", flush=True)
                else:
                    time.sleep(0.5)
    except FileNotFoundError:
        raise CliError(f"no broker log at {config.log_file}", status=1) from None
    except KeyboardInterrupt:
        return 0


def _reset(args: argparse.Namespace) -> int:
    config = _config()
    try:
        broker.reset(config)
    except BrokerError as exc:
        raise CliError(f"broker reset failed: {exc}", status=1) from None
    print(f"broker stopped and its data deleted ({config.data_dir}); `segwatch broker start` begins afresh")
    return 0
