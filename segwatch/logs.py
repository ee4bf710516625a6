"""Structured logging: JSON lines in services, readable lines on a terminal. One call configures both."""

from __future__ import annotations

import logging
import sys

import structlog

from segwatch.environment import LoggingPart, load

_configured = False


def configure(service: str, *, json: bool | None = None, level: str | None = None) -> structlog.stdlib.BoundLogger:
    """Configure structlog once per process and return a logger bound to `service`.

    JSON unless on a terminal (override with SEGWATCH_LOG_FORMAT=json|console); level from SEGWATCH_LOG_LEVEL.
    The correlation id travels in contextvars: `structlog.contextvars.bind_contextvars(correlation_id=...)`.
    """
    global _configured
    settings = load(LoggingPart)
    fmt = settings.log_format
    as_json = json if json is not None else (fmt == "json" or (fmt != "console" and not sys.stderr.isatty()))
    lvl = getattr(logging, (level or settings.log_level).upper(), logging.INFO)
    if not _configured:
        processors: list[structlog.typing.Processor] = [
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
        ]
        renderer: structlog.typing.Processor = (
            structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
        )
        structlog.configure(
            processors=[*processors, renderer],
            wrapper_class=structlog.make_filtering_bound_logger(lvl),
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
            cache_logger_on_first_use=True,
        )
        # Libraries (aiokafka, faust, aiohttp) log through stdlib logging: keep them quieter, same stream.
        logging.basicConfig(
            stream=sys.stderr, level=max(lvl, logging.WARNING), format="%(levelname)s %(name)s %(message)s"
        )
        _configured = True
    logger: structlog.stdlib.BoundLogger = structlog.get_logger().bind(service=service)
    return logger
