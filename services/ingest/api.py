"""The ingest HTTP API (aiohttp): events in over HTTP, validated, published to Kafka before the answer.

POST /v1/events   Content-Type application/json: one event; application/x-ndjson: a batch, one per line.
                  202 {"accepted": [event ids], "rejected": [{"line", "field", "reason"}]} once Kafka has
                  acknowledged every accepted event; 422 (same body) when nothing was accepted; 503 when a
                  valid event could not be published (listed under "failed", sent to the dead-letter
                  topic); 400 malformed body or a body its Content-Encoding cannot decode; 401 no valid
                  bearer token; 408 body not received within SEGWATCH_INGEST_BODY_TIMEOUT; 413 too large
                  (compressed or not); 415 other types, charsets or Content-Encodings (gzip, deflate only).
GET /healthz      200 while the process runs.
GET /readyz       200 when the producer is started and Kafka (with segwatch's topics) reachable, else 503.
GET /metrics      Prometheus: segwatch_ingest_events_total{outcome}, segwatch_ingest_request_seconds,
                  segwatch_ingest_publish_seconds, segwatch_ingest_source_last_seen_timestamp_seconds{source}.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import signal
import time
import zlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.aiohttp import make_aiohttp_handler

from segwatch.deadletter import dead_letter
from segwatch.waiting import backoff
from services.ingest.config import DEFAULT_MAX_SOURCES, OTHER_SOURCE, IngestConfig
from services.ingest.publisher import InFlight, Publisher, PublisherError, final_outcome
from services.ingest.records import Bad, Parsed, parse_event

JSON_TYPES = frozenset(("application/json",))
NDJSON_TYPES = frozenset(("application/x-ndjson", "application/ndjson", "application/jsonl"))
OUTCOMES = ("accepted", "rejected", "dead_lettered", "failed", "published_late")
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
REALM = 'Bearer realm="segwatch-ingest"'
# Input freshness for operations: wall-clock time ingest last accepted an event from each source (the event's
# `source`). Unlike the alerter's as-of based freshness, this moves with real time, so "no update within the
# source's cadence" can be alerted on (deploy/prometheus/rules/segwatch.rules.yml, alert SegwatchInputStale).
SOURCE_LAST_SEEN = "segwatch_ingest_source_last_seen_timestamp_seconds"
RETRY_AFTER_SECONDS = "5"
# Content-Encodings ingest decodes itself (aiohttp's own decoding is off, see runner_options): zlib window bits.
ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def runner_options(config: IngestConfig) -> dict[str, Any]:
    """How the app must be served (AppRunner / TestServer keyword arguments).

    - Bodies are decoded by the handler, not by aiohttp, so an undecodable or unknown Content-Encoding is a
      4xx naming the header, and a compressed body is bounded by SEGWATCH_INGEST_MAX_BYTES once decoded.
    - aiohttp closes a connection that has not sent a whole request head within its keep-alive timeout of
      connecting or of its previous response: that is the header-read timeout for half-open and slow
      connections (SEGWATCH_INGEST_HEADER_TIMEOUT).
    """
    return {"auto_decompress": False, "keepalive_timeout": config.header_timeout}


class IngestMetrics:
    """The service's Prometheus metrics, in a registry of its own (several apps can live in one process).

    The `source` label is bounded: clients choose `source`, so only the configured sources (or, without a
    configuration, the first DEFAULT_MAX_SOURCES seen) get a label of their own; any other is `other`."""

    def __init__(self, sources: frozenset[str] | None = None) -> None:
        self._known = sources
        self._labelled: set[str] = set()
        self._overflow_logged = False
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "segwatch_ingest_events",
            "Events received over HTTP, by outcome (accepted: acknowledged by Kafka; "
            "rejected: invalid; dead_lettered: valid but not published, on the dead-letter topic; failed: "
            "neither published nor dead-lettered; published_late: acknowledged only after the answer said "
            "503)",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self.events.labels(outcome)
        self.request_seconds = Histogram(
            "segwatch_ingest_request_seconds",
            "Time to answer a POST /v1/events request",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "segwatch_ingest_publish_seconds",
            "Time from sending a request's events to Kafka's acknowledgement",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.source_last_seen = Gauge(
            SOURCE_LAST_SEEN,
            "When ingest last accepted (Kafka acknowledged) an event from the source (Unix time)",
            ["source"],
            registry=self.registry,
        )

    def source_label(self, source: str) -> str:
        if self._known is not None:
            return source if source in self._known else OTHER_SOURCE
        if source in self._labelled:
            return source
        if len(self._labelled) < DEFAULT_MAX_SOURCES and source != OTHER_SOURCE:
            self._labelled.add(source)
            return source
        if not self._overflow_logged:
            self._overflow_logged = True
            structlog.get_logger().bind(service="ingest").warning(
                "more sources than metric labels; the rest are counted as other (set SEGWATCH_INGEST_SOURCES)",
                labels=DEFAULT_MAX_SOURCES,
                source=source[:64],
            )
        return OTHER_SOURCE

    def accepted_from(self, sources: Iterable[str]) -> None:
        now = time.time()
        for label in {self.source_label(source) for source in sources}:
            self.source_last_seen.labels(label).set(now)


CONFIG = web.AppKey("config", IngestConfig)
PUBLISHER = web.AppKey("publisher", Publisher)
METRICS = web.AppKey("metrics", IngestMetrics)
LOG = web.AppKey("log", structlog.stdlib.BoundLogger)
LATE = web.AppKey("late", set[asyncio.Task[None]])  # events in flight after their answer, followed to the end


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json(status, {"error": reason}, headers)


def _authorized(config: IngestConfig, header: str | None) -> bool | None:
    """True: a configured token; None: no credentials given; False: credentials given but wrong."""
    if not config.authenticated:
        return True
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return False
    given = credentials.strip().encode()
    ok = False
    for token in config.tokens:  # every token compared, each in constant time
        ok |= hmac.compare_digest(given, token)
    return ok


def _unauthorized(config: IngestConfig, header: str | None) -> web.Response | None:
    verdict = _authorized(config, header)
    if verdict:
        return None
    challenge = REALM if verdict is None else f'{REALM}, error="invalid_token"'
    reason = "a bearer token is required" if verdict is None else "the bearer token is not valid"
    return _error(401, reason, {"WWW-Authenticate": challenge})


async def post_events(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    started = time.perf_counter()
    try:
        return await _post_events(request)
    finally:
        metrics.request_seconds.observe(time.perf_counter() - started)


async def _post_events(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    denied = _unauthorized(config, request.headers.get("Authorization"))
    if denied is not None:
        return denied
    batch = _is_batch(request)
    if isinstance(batch, web.Response):
        return batch
    encoding = _encoding(request.headers.getall("Content-Encoding", []))
    if isinstance(encoding, web.Response):
        return encoding
    body = await _read_body(request, config, encoding)
    if isinstance(body, web.Response):
        return body
    parsed = _parse_batch(body, config) if batch else _parse_single(body)
    if isinstance(parsed, web.Response):
        return parsed
    return await _publish(request, *parsed)


def _is_batch(request: web.Request) -> bool | web.Response:
    """True for an NDJSON batch, False for one JSON event; or the 415 answer (another type or charset)."""
    content_type = request.content_type.lower()
    if content_type in JSON_TYPES:
        batch = False
    elif content_type in NDJSON_TYPES:
        batch = True
    else:
        return _error(
            415,
            f"unsupported Content-Type {content_type!r}: send application/json (one event) "
            "or application/x-ndjson (a batch, one event per line)",
        )
    charset = (request.charset or "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        return _error(415, f"unsupported charset {charset!r}: send UTF-8")
    return batch


async def _read_body(request: web.Request, config: IngestConfig, encoding: str | None) -> bytes | web.Response:
    """The body, within the size limit and time, its Content-Encoding undone, checked to be UTF-8; or the 4xx."""
    too_large = f"the body is larger than {config.max_bytes} bytes (SEGWATCH_INGEST_MAX_BYTES)"
    if request.content_length is not None and request.content_length > config.max_bytes:
        return _error(413, too_large)
    try:
        async with asyncio.timeout(config.body_timeout):
            body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, too_large)
    except TimeoutError:
        return _error(
            408,
            f"the body was not received within {config.body_timeout:g}s (SEGWATCH_INGEST_BODY_TIMEOUT)",
            {"Connection": "close"},
        )
    if len(body) > config.max_bytes:
        return _error(413, too_large)
    if encoding is not None:
        decoded = _decode(body, encoding, config.max_bytes)
        if isinstance(decoded, web.Response):
            return decoded
        body = decoded
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _error(400, f"malformed body: not UTF-8 (byte {exc.start})")
    return body


def _parse_batch(body: bytes, config: IngestConfig) -> tuple[list[Parsed], list[Bad]] | web.Response:
    """An NDJSON batch's events and its rejected lines (numbered from 1, blank lines skipped); or the 4xx
    answer for a batch with no events or too many."""
    lines = [(number, line.rstrip(b"\r")) for number, line in enumerate(body.split(b"\n"), start=1) if line.strip()]
    if not lines:
        return _error(400, "malformed body: no events (an NDJSON batch has one JSON event per line)")
    if len(lines) > config.max_events:
        return _error(
            413, f"{len(lines)} events in one batch; at most {config.max_events} (SEGWATCH_INGEST_MAX_EVENTS)"
        )
    events: list[Parsed] = []
    rejected: list[Bad] = []
    for number, line in lines:
        result = parse_event(number, line)
        if isinstance(result, Bad):
            rejected.append(result)
        else:
            events.append(result)
    return events, rejected


def _parse_single(body: bytes) -> tuple[list[Parsed], list[Bad]] | web.Response:
    """One JSON event: published, or rejected (422 with its field); a body that is not JSON at all is a 400."""
    if not body.strip():
        return _error(400, "malformed body: empty (expected one JSON event)")
    result = parse_event(1, body)
    if isinstance(result, Bad):
        if result.malformed:
            return _error(400, f"malformed body: {result.reason}")
        return [], [result]
    return [result], []


def _encoding(values: list[str]) -> str | web.Response | None:
    """The one Content-Encoding to undo (None: none), or the 415 answer."""
    codings = [c.strip().lower() for value in values for c in value.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in ENCODINGS:
        return codings[0]
    given = ", ".join(codings)
    return _error(
        415,
        f"Content-Encoding {given[:100]!r} is not supported: send the body as is (identity), "
        "or with one of gzip, deflate",
    )


def _decode(body: bytes, encoding: str, limit: int) -> bytes | web.Response:
    """The body with its Content-Encoding undone, never more than `limit` bytes of it; or the 4xx answer."""
    wbits = ENCODINGS[encoding]
    attempts = (wbits, -zlib.MAX_WBITS) if encoding == "deflate" else (wbits,)  # deflate: zlib, or raw as sent
    reason = ""
    for bits in attempts:
        decoder = zlib.decompressobj(bits)
        try:
            out = decoder.decompress(body, limit + 1)
        except zlib.error as exc:
            reason = str(exc)
            continue
        if len(out) > limit:
            return _error(
                413,
                f"the body is larger than {limit} bytes once decoded (Content-Encoding {encoding}; "
                "SEGWATCH_INGEST_MAX_BYTES)",
            )
        if not decoder.eof:
            reason = "the compressed data is truncated"
            continue
        if decoder.unused_data.strip(b"\0"):
            reason = "data follows the end of the compressed stream"
            continue
        return out
    return _error(400, f"Content-Encoding {encoding}: the body cannot be decoded ({reason})")


async def _publish(request: web.Request, events: list[Parsed], rejected: list[Bad]) -> web.Response:
    app = request.app
    publisher, metrics, log = app[PUBLISHER], app[METRICS], app[LOG]
    accepted: list[str] = []
    failed: list[tuple[Parsed, str]] = []
    sources: set[str] = set()
    if events:
        started = time.perf_counter()
        outcomes = await publisher.publish([p.event for p in events])
        metrics.publish_seconds.observe(time.perf_counter() - started)
        for parsed, error in zip(events, outcomes, strict=True):
            if error is None:
                accepted.append(parsed.event.event_id)
                sources.add(parsed.event.source)
                log.debug("event accepted", correlation_id=parsed.event.event_id, line=parsed.line)
            else:
                failed.append((parsed, error))
        metrics.accepted_from(sources)
    for bad in rejected:
        log.debug("event rejected", line=bad.line, field=bad.field, reason=bad.reason)

    body: dict[str, Any] = {"accepted": accepted, "rejected": [bad.as_dict() for bad in rejected]}
    metrics.events.labels("accepted").inc(len(accepted))
    metrics.events.labels("rejected").inc(len(rejected))
    in_flight = [(parsed, error) for parsed, error in failed if isinstance(error, InFlight)]
    refused = [(parsed, error) for parsed, error in failed if not isinstance(error, InFlight)]
    if failed:
        body["failed"] = await _dead_letter_failed(request, refused) if refused else []
        for parsed, error in in_flight:
            # Not dead-lettered now: Kafka may still take it. Followed in the background: a dead letter only
            # if Kafka finally refuses it.
            task = asyncio.create_task(_follow_late(app, parsed, error, request.remote or "unknown"))
            app[LATE].add(task)
            task.add_done_callback(app[LATE].discard)
            body["failed"].append(
                {
                    "line": parsed.line,
                    "event_id": parsed.event.event_id,
                    "reason": error,
                    "dead_lettered": False,
                    "in_flight": True,
                }
            )
        body["failed"].sort(key=lambda f: f["line"])
        return _json(503, body, {"Retry-After": RETRY_AFTER_SECONDS})
    return _json(202 if accepted else 422, body)


async def _follow_late(app: web.Application, parsed: Parsed, error: str, client: str) -> None:
    publisher, metrics, log = app[PUBLISHER], app[METRICS], app[LOG]
    event_id = parsed.event.event_id
    final = await final_outcome(error)
    if final is None:
        metrics.events.labels("published_late").inc()
        metrics.accepted_from([parsed.event.source])
        log.warning("event acknowledged by Kafka after its answer (503); not dead-lettered", correlation_id=event_id)
        return
    [dl_error] = await publisher.dead_letter(
        [dead_letter("ingest", f"http {client} line {parsed.line}", final, parsed.raw)]
    )
    if dl_error is None:
        metrics.events.labels("dead_lettered").inc()
        log.warning("event not published; dead-lettered", correlation_id=event_id, reason=final)
    else:
        metrics.events.labels("failed").inc()
        log.error(
            "event neither published nor dead-lettered",
            correlation_id=event_id,
            reason=final,
            dead_letter_error=dl_error,
        )


async def _dead_letter_failed(request: web.Request, failed: list[tuple[Parsed, str]]) -> list[dict[str, Any]]:
    """Valid events Kafka did not acknowledge: to the dead-letter topic with the reason, and told to the client."""
    app = request.app
    publisher, metrics, log = app[PUBLISHER], app[METRICS], app[LOG]
    client = request.remote or "unknown"
    letters = [
        dead_letter("ingest", f"http {client} line {parsed.line}", error, parsed.raw) for parsed, error in failed
    ]
    outcomes = await publisher.dead_letter(letters)
    out = []
    for (parsed, error), dl_error in zip(failed, outcomes, strict=True):
        event_id = parsed.event.event_id
        if dl_error is None:
            metrics.events.labels("dead_lettered").inc()
            log.warning("event not published; dead-lettered", correlation_id=event_id, reason=error)
        else:
            metrics.events.labels("failed").inc()
            log.error(
                "event neither published nor dead-lettered",
                correlation_id=event_id,
                reason=error,
                dead_letter_error=dl_error,
                payload=parsed.raw.decode("utf-8", "replace") if isinstance(parsed.raw, bytes) else parsed.raw,
            )
        out.append({"line": parsed.line, "event_id": event_id, "reason": error, "dead_lettered": dl_error is None})
    return out


async def healthz(request: web.Request) -> web.Response:
    return _json(200, {"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    publisher = request.app[PUBLISHER]
    if not publisher.started:
        return _json(503, {"status": "not ready", "reason": "the Kafka producer is not started"})
    if not await publisher.reachable():
        return _json(503, {"status": "not ready", "reason": "Kafka (or segwatch's topics) not reachable"})
    return _json(200, {"status": "ready"})


async def _keep_starting(publisher: Publisher, log: structlog.stdlib.BoundLogger) -> None:
    """Start the producer, retrying with jittered backoff while Kafka is unreachable (readiness stays 503
    meanwhile)."""
    delays = backoff(0.5, 15.0)
    while not publisher.started:
        try:
            await publisher.start()
        except PublisherError as exc:
            delay = next(delays)
            log.warning("kafka not available; retrying", reason=str(exc), retry_in_seconds=round(delay, 3))
            await asyncio.sleep(delay)
        else:
            log.info("kafka producer started")


def create_app(
    config: IngestConfig, publisher: Publisher, *, log: structlog.stdlib.BoundLogger | None = None
) -> web.Application:
    """The ingest app. On startup it starts `publisher` (retrying in the background); on cleanup it stops
    it, which flushes whatever is still pending."""
    app = web.Application(client_max_size=config.max_bytes)
    app[CONFIG] = config
    app[PUBLISHER] = publisher
    app[METRICS] = IngestMetrics(config.sources)
    app[LOG] = log if log is not None else structlog.get_logger().bind(service="ingest")
    app[LATE] = set()
    app.router.add_post("/v1/events", post_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    # prometheus_client's own handler: Prometheus text or OpenMetrics as the scraper asks, gzip when accepted.
    app.router.add_get("/metrics", make_aiohttp_handler(app[METRICS].registry))

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        starter = asyncio.create_task(_keep_starting(publisher, app[LOG]))
        yield
        starter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starter
        late: set[asyncio.Task[None]] = app[LATE]
        if late:  # their final answers (and any dead letter) before the producer goes
            await asyncio.wait(list(late), timeout=config.ack_timeout)
        await publisher.stop()
        app[LOG].info("kafka producer stopped (flushed)")

    app.cleanup_ctx.append(lifecycle)
    return app


async def serve(app: web.Application, host: str, port: int, *, shutdown_timeout: float = 10.0) -> None:
    """Serve `app` until SIGTERM or SIGINT, then stop accepting, finish in-flight requests and flush Kafka."""
    log = app[LOG]
    runner = web.AppRunner(app, access_log=None, handle_signals=False, **runner_options(app[CONFIG]))
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, host, port, shutdown_timeout=shutdown_timeout, backlog=1024)
        await site.start()
        log.info("ingest listening", host=host, port=port, authenticated=app[CONFIG].authenticated)
        await stop.wait()
        log.info("ingest stopping")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
