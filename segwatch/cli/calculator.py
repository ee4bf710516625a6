"""`segwatch calculator worker`: run the Faust calculator until stopped."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("calculator", help="the faust-streaming calculator: balances → figures")
    cmds = parser.add_subparsers(dest="calculator_command", required=True, metavar="ACTION")
    p = cmds.add_parser("worker", help="run a calculator worker (Ctrl-C or SIGTERM stops it)")
    p.add_argument("--port", type=int, help="web port for /healthz, /readyz, /metrics (default 8702)")
    p.add_argument("--loglevel", default="warning", help="Faust's own log level (default warning)")
    p.set_defaults(func=cmd_worker)


def cmd_worker(args: argparse.Namespace) -> int:
    import dataclasses

    from segwatch.environment import load
    from services.calculator.settings import CalculatorSettings

    environment = load(CalculatorSettings)  # every variable the worker reads, checked once, before Faust starts

    from services.calculator.app import CalculatorConfig, create_app, run_worker

    cfg = CalculatorConfig(**environment.config_fields())
    if args.port:
        cfg = dataclasses.replace(cfg, web_port=args.port)
    run_worker(create_app(cfg, environment.kafka), loglevel=args.loglevel)
    return 0
