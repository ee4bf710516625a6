"""`segwatch ingest FILE` and `segwatch ingest serve`: balances and settings in, validated, published to Kafka."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from segwatch.cli import CliError
from segwatch.kafka.topics import DEADLETTER

if TYPE_CHECKING:
    from services.ingest.records import Parse

DESCRIPTION = """\
segwatch ingest FILE       publish the events of FILE (NDJSON events, a CSV ledger extract or a BAI2 bank
                           file) to Kafka; every record that cannot be processed goes to the dead-letter topic
segwatch ingest serve      run the HTTP API (POST /v1/events, /healthz, /readyz, /metrics)

exit status (FILE): 0 every record published; 1 some records dead-lettered (each listed on stderr with its
line, field and reason); 2 unusable input (missing file, unknown format, bad header or reference file, BAI2
totals that do not match: nothing is published); 3 Kafka unavailable (records neither published nor
dead-lettered are listed; re-running the same file is harmless, event ids are deterministic).
See docs/INGEST.md."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ingest",
        help="publish balances from a file (NDJSON, CSV, BAI2) or serve the ingest HTTP API",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE|serve", help="the file to ingest (- for stdin), or `serve`")
    files = p.add_argument_group("file ingestion")
    files.add_argument(
        "--format",
        choices=("auto", "ndjson", "csv", "bai2"),
        default=None,
        help="the file's format (default auto: told from its first line)",
    )
    files.add_argument(
        "--depositories",
        metavar="REF.csv",
        help="the depository reference file: BAI2 bank accounts to depository lines, and depository "
        "reference data (kind, country, acknowledgment letter), published as "
        "depository_reference events",
    )
    files.add_argument(
        "--source",
        metavar="NAME",
        help="the events' source (default: ledger-csv for CSV, bai2:<bank id> for BAI2; "
        "NDJSON events carry their own, this fills it in where missing)",
    )
    files.add_argument(
        "--timezone",
        metavar="ZONE",
        default=None,
        help="BAI2: time zone of the as-of date/time (default America/New_York)",
    )
    files.add_argument(
        "--bai2-type-code",
        metavar="CODE",
        default=None,
        help="BAI2: the balance type code to read (default 015, closing ledger)",
    )
    files.add_argument(
        "--dry-run", action="store_true", help="validate only: print the events as NDJSON on stdout, publish nothing"
    )
    serve = p.add_argument_group("serve")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=None, help="port to listen on (default SEGWATCH_INGEST_PORT or 8701)"
    )
    p.set_defaults(func=cmd_ingest)


FILE_OPTIONS = ("format", "depositories", "source", "timezone", "bai2_type_code")


def cmd_ingest(args: argparse.Namespace) -> int:
    if args.file == "serve":
        given = [f"--{name.replace('_', '-')}" for name in FILE_OPTIONS if getattr(args, name) is not None]
        if args.dry_run:
            given.append("--dry-run")
        if given:
            raise CliError(f"{', '.join(given)}: only for ingesting a file, not with `serve`")
        return cmd_serve(args)
    if args.host is not None or args.port is not None:
        raise CliError("--host/--port: only with `segwatch ingest serve` (to ingest a file named serve, say ./serve)")
    return cmd_file(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from segwatch.environment import load
    from segwatch.logs import configure
    from services.ingest.api import create_app, serve
    from services.ingest.config import IngestSettings
    from services.ingest.publisher import KafkaPublisher

    environment = load(IngestSettings)  # every variable the service reads, checked once, now
    config, settings = environment.config, environment.kafka
    port = args.port if args.port is not None else environment.port
    if not 0 <= port <= 65535:
        raise CliError(f"--port: {port} is not a port number")
    host = args.host or "127.0.0.1"
    log = configure("ingest")
    if not config.authenticated:
        log.warning("ingest API runs WITHOUT authentication (SEGWATCH_INGEST_ALLOW_ANONYMOUS=1)")
    publisher = KafkaPublisher(settings, ack_timeout=config.ack_timeout, linger_ms=config.linger_ms)
    app = create_app(config, publisher, log=log)
    try:
        asyncio.run(serve(app, host, port))
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return 0


def cmd_file(args: argparse.Namespace) -> int:
    from services.ingest.files import DEFAULT_TIMEZONE, FileOptions, load_file

    options = FileOptions(
        format=args.format or "auto",
        depositories=args.depositories,
        source=args.source,
        timezone=args.timezone or DEFAULT_TIMEZONE,
        type_code=args.bai2_type_code or "015",
    )
    where = "stdin" if args.file == "-" else args.file
    parse = load_file(args.file, options)  # InputError: unusable input, exit 2, nothing published
    refs = None
    if args.depositories:  # issue #14: the reference file's depository_reference events go first
        from services.ingest.files import reference_parsed
        from services.ingest.records import Parse as Parsing

        refs = Parsing("reference", reference_parsed(args.depositories))
    if args.dry_run:
        out = sys.stdout.buffer
        for parsed in [*(refs.events if refs else []), *parse.events]:
            out.write(parsed.event.model_dump_json().encode() + b"\n")
        out.flush()
        for bad in parse.bad:
            print(f"{where}:{bad.line}: {bad.field}: {bad.reason}", file=sys.stderr)
        print(
            f"{where} ({parse.format}): {len(parse.events)} valid, {len(parse.bad)} bad (dry run: nothing published)",
            file=sys.stderr,
        )
        return 1 if parse.bad else 0
    return asyncio.run(_publish_file(parse, where, refs, args.depositories))


async def _publish_file(parse: Parse, where: str, refs: Parse | None = None, refs_where: str = "") -> int:
    from segwatch.logs import configure
    from services.ingest.files import publish_parse
    from services.ingest.publisher import KafkaPublisher, PublisherError

    configure("ingest")
    publisher = KafkaPublisher()
    try:
        await publisher.start()
    except PublisherError as exc:
        raise CliError(f"{exc}; nothing from {where} was published", status=3) from None
    try:
        if refs is not None and refs.events:  # the depository reference data first, on its own line
            ref_report = await publish_parse(refs, publisher, refs_where)
            print(
                f"{refs_where} (depository reference data): {len(ref_report.accepted)} depository_reference"
                f" events accepted, {len(ref_report.dead_lettered) + len(ref_report.lost)} not",
                file=sys.stderr,
            )
            if ref_report.exit_status:
                return ref_report.exit_status
        report = await publish_parse(parse, publisher, where)
    finally:
        await publisher.stop()
    for bad in report.dead_lettered:
        print(f"{where}:{bad.line}: {bad.field}: {bad.reason}", file=sys.stderr)
    for bad in report.lost:
        print(f"{where}:{bad.line}: NOT PUBLISHED: {bad.field}: {bad.reason}", file=sys.stderr)
    summary = f"{where} ({report.format}): {len(report.accepted)} accepted, {len(report.dead_lettered)} dead-lettered"
    summary += f" to {DEADLETTER}" if report.dead_lettered else ""
    if report.lost:
        summary += f", {len(report.lost)} neither published nor dead-lettered"
    print(summary)
    return report.exit_status
