"""The `segwatch` command. Each subcommand lives in its own module with a `register` function."""

from __future__ import annotations

import argparse
import csv
import importlib
import sys
from collections.abc import Sequence

from segwatch.errors import InputError

# Subcommand → module, in the order `segwatch --help` lists them. Only the module of the command being
# run is imported, so `segwatch statement` starts fast and never loads Kafka clients.
COMMANDS = {
    "statement": "segwatch.cli.statement",
    "report": "segwatch.cli.report",
    "broker": "segwatch.cli.broker",
    "topics": "segwatch.cli.topics",
    "ingest": "segwatch.cli.ingest",
    "calculator": "segwatch.cli.calculator",
    "alerter": "segwatch.cli.alerter",
    "sample": "segwatch.cli.sample",
    "replay": "segwatch.cli.replay",
    "run": "segwatch.cli.run",
    "bench": "segwatch.cli.bench",
}


class CliError(Exception):
    """A failure the user can act on; printed as one line, exit status 2 unless given."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segwatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command, module in COMMANDS.items():
        if only is None or command == only:
            try:
                importlib.import_module(module).register(sub)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
                # A developer command (broker, run, bench): the service images leave developer tooling out.
                if only is not None:
                    _not_installed(sub, command)
    return parser


def _not_installed(sub: argparse._SubParsersAction[argparse.ArgumentParser], command: str) -> None:
    def fail(args: argparse.Namespace) -> int:
        raise CliError(
            f"`segwatch {command}` is a developer command, not installed here (a service image "
            "leaves developer tooling out)"
        )

    parser = sub.add_parser(command, add_help=False)
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    parser.set_defaults(func=fail)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    except InputError as exc:  # a setting read as a module loads (SEGWATCH_NAMESPACE: segwatch/kafka/topics.py)
        print(f"segwatch: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except InputError as exc:
        print(f"segwatch: error: {exc}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"segwatch: error: {exc}", file=sys.stderr)
        return exc.status
    except BrokenPipeError:
        return 1
    except (ValueError, ArithmeticError, RecursionError, MemoryError, UnicodeError, csv.Error, OSError) as exc:
        # Input no reader anticipated (a number past Python's limits, nesting past the recursion limit, ...):
        # still one line naming the problem and exit 2, never a traceback.
        print(f"segwatch: error: {args.command}: cannot process the input: {_describe(exc)}", file=sys.stderr)
        return 2
    return status


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    text = str(exc) or type(exc).__name__
    text = text if len(text) <= 300 else text[:300] + "..."
    return f"{type(exc).__name__}: {text}"
