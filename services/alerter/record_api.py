"""The record over HTTP (issue #12): the alerter's read API on the business days, their statements and status,
and the figures in force at a time of the current day. Documented in docs/RECORD.md.

    GET /v1/days[?from=&to=]                           every business day held, with its status (from/to:
                                                       every statement day of the calendar in the range)
    GET /v1/days/{day}                                 the day's status (DayStatus) and the versions held
    GET /v1/days/{day}/statement?segment=&version=&format=json|text|filing
                                                       the statement (default: every segment, latest version)
    GET /v1/figures?at=ISO-8601                        each segment's figures record in force at `at`
                                                       (the current business day; default now)

Bearer tokens as ingest's (SEGWATCH_INGEST_TOKENS, SEGWATCH_INGEST_TOKENS_FILE; SEGWATCH_INGEST_ALLOW_ANONYMOUS):
401 without a valid one, 503 when none is configured or while the alerter recovers. Bad input is a 400 that
names the parameter (`{"error", "field", "reason"}`); what is not held is a 404 saying what is.
"""

from __future__ import annotations

import hmac
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiohttp import web

from schemas.statements import StatementRecord
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.forms.render import FilingHeader, to_filing_json, to_filing_text
from services.alerter.controls import TOKENS_ENV, TOKENS_FILE_ENV

if TYPE_CHECKING:
    from services.alerter.service import AlerterService

REALM: Final = 'Bearer realm="segwatch-record"'
DEFAULT_FIRM: Final = "segwatch FCM"
FORMATS: Final = ("json", "text", "filing")
MAX_RANGE_DAYS: Final = 6 * 366  # /v1/days?from=&to=: at most the record's retention


class BadParameter(Exception):
    def __init__(self, field: str, reason: str, status: int = 400) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.status = status


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)


def _error(exc: BadParameter) -> web.Response:
    return _json(exc.status, {"error": f"{exc.field}: {exc.reason}", "field": exc.field, "reason": exc.reason})


def parse_day(text: str, field: str = "day") -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadParameter(field, f"expected a date YYYY-MM-DD, got {text!r}") from None


def parse_version(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not text.isdigit() or int(text) < 1:
        raise BadParameter("version", f"expected a statement version (1, 2, …), got {text!r}")
    return int(text)


def parse_segment(text: str | None) -> str | None:
    if text is None or text == "":
        return None
    if text not in SEGMENT_IDS:
        raise BadParameter("segment", f"expected one of {', '.join(SEGMENT_IDS)}, got {text!r}")
    return text


def parse_format(text: str | None) -> str:
    fmt = text or "json"
    if fmt not in FORMATS:
        raise BadParameter("format", f"expected one of {', '.join(FORMATS)}, got {text!r}")
    return fmt


def parse_at(text: str | None, now: datetime) -> datetime:
    if text is None or text == "":
        return now
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise BadParameter("at", f"expected an ISO-8601 time with its offset, got {text!r}") from None
    if at.tzinfo is None:
        raise BadParameter("at", f"a timezone offset is required (e.g. {now.isoformat()}), got {text!r}")
    return at


class RecordApi:
    """The handlers of one alerter service (they read its `business_day.book` under the service's lock)."""

    def __init__(self, service: AlerterService) -> None:
        self.service = service

    def install(self, app: web.Application) -> None:
        app.router.add_get("/v1/days", self._guard(self.days))
        app.router.add_get("/v1/days/{day}", self._guard(self.day))
        app.router.add_get("/v1/days/{day}/statement", self._guard(self.statement))
        app.router.add_get("/v1/figures", self._guard(self.figures))

    # --- access ---------------------------------------------------------------------------------------

    def _refused(self, request: web.Request) -> web.Response | None:
        # The what-if's tokens (the ingest API's; () when anonymous access is allowed, None when none is set).
        tokens = self.service.controls._tokens()
        if tokens is None:
            return _json(
                503,
                {
                    "error": f"no bearer token is configured ({TOKENS_ENV} or {TOKENS_FILE_ENV}):"
                    " the record is refused to everyone"
                },
            )
        if not tokens:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.strip().partition(" ")
        ok = False
        if scheme.lower() == "bearer" and given.strip():
            for token in tokens:
                ok |= hmac.compare_digest(given.strip().encode(), token)
        if ok:
            return None
        reason = "a bearer token is required" if not header else "the bearer token is not valid"
        return _json(401, {"error": reason}, {"WWW-Authenticate": REALM})

    def _guard(self, handler: Any) -> Any:
        async def guarded(request: web.Request) -> web.StreamResponse:
            refused = self._refused(request)
            if refused is not None:
                return refused
            if not self.service.ready:
                return _json(
                    503,
                    {"error": "not ready: recovering the record or waiting for the partitions"},
                    {"Retry-After": "5"},
                )
            try:
                async with self.service._lock:
                    response: web.StreamResponse = handler(request)
                    return response
            except BadParameter as exc:
                return _error(exc)

        return guarded

    @property
    def book(self) -> Any:
        return self.service.business_day.book

    # --- the handlers (synchronous: the state is in memory) ---------------------------------------------

    def days(self, request: web.Request) -> web.Response:
        """The days held; with `from` (and `to`, default today): every statement day of the calendar in that
        range, a day without a statement held saying so (`status` null), so a missing close shows."""
        book = self.book
        first, last = request.query.get("from"), request.query.get("to")
        if first is None and last is None:
            days = [s.business_day for s in book.statuses()]
        else:
            if not first:
                raise BadParameter("from", "required with `to` (YYYY-MM-DD)")
            start = parse_day(first, "from")
            end = parse_day(last, "to") if last else self.service.clock().astimezone(book.calendar.tz).date()
            if end < start or (end - start).days > MAX_RANGE_DAYS:
                raise BadParameter("to", f"expected a day from {start} to {MAX_RANGE_DAYS} days after it, got {end}")
            days = book.calendar.statement_days(start, end)
        out = []
        for day in days:
            status = book.status(day)
            row: dict[str, Any] = (
                status.model_dump(mode="json")
                if status is not None
                else {"business_day": day.isoformat(), "status": None}
            )
            row["versions"] = book.versions_of(day)
            out.append(row)
        return _json(200, {"days": out})

    def day(self, request: web.Request) -> web.Response:
        day = parse_day(request.match_info["day"])
        status = self.book.status(day)
        if status is None:
            raise BadParameter("day", f"no statement of {day} is held", 404)
        body = status.model_dump(mode="json")
        body["versions"] = self.book.versions_of(day)
        return _json(200, body)

    def statement(self, request: web.Request) -> web.Response:
        q = request.query
        day = parse_day(request.match_info["day"])
        segment = parse_segment(q.get("segment"))
        version = parse_version(q.get("version"))
        fmt = parse_format(q.get("format"))
        held = self.book.versions_of(day)
        if not held:
            raise BadParameter("day", f"no statement of {day} is held", 404)
        segments = [segment] if segment is not None else [s for s in SEGMENT_IDS if s in held]
        if segment is not None and segment not in held:
            raise BadParameter("segment", f"no {segment} statement of {day} is held (held: {', '.join(held)})", 404)
        if version is not None and not any(version in held[s] for s in segments):
            have = "; ".join(f"{s}: {', '.join(map(str, held[s]))}" for s in segments)
            raise BadParameter(
                "version", f"version {version} of the statement of {day} is not held (versions held: {have})", 404
            )
        records: dict[str, StatementRecord] = {}
        for s in segments:
            # Each segment counts its own versions: version N of the day shows a segment's latest up to N.
            v = None if version is None else max((x for x in held[s] if x <= version), default=None)
            if version is not None and v is None:
                continue
            rec = self.book.statement(day, s, v)
            if rec is not None:
                records[s] = rec
        if fmt == "json":
            return _json(
                200,
                {
                    "business_day": day.isoformat(),
                    "kind": "AMENDMENT" if any(r.kind == "AMENDMENT" for r in records.values()) else "INITIAL",
                    "statements": {s: r.model_dump(mode="json") for s, r in records.items()},
                },
            )
        header = self._header(day, records)
        lines = {s: dict(r.lines) for s, r in records.items()}
        if fmt == "filing":
            return _json(200, to_filing_json(lines, header))
        return web.Response(status=200, text=to_filing_text(lines, header), content_type="text/plain")

    def _header(self, day: date, records: dict[str, StatementRecord]) -> FilingHeader:
        book = self.book
        status = book.status(day)
        cal = book.calendar
        submit = (
            status.filed_at.astimezone(cal.tz).date()
            if status is not None and status.filed_at is not None
            else cal.next_business_day(day)
        )
        kind = "AMENDMENT" if any(r.kind == "AMENDMENT" for r in records.values()) else "INITIAL"
        firm = self.service.config.firm_name or DEFAULT_FIRM
        return FilingHeader(firm, day, submit, kind)

    def figures(self, request: web.Request) -> web.Response:
        now = self.service.clock()
        at = parse_at(request.query.get("at"), now)
        book = self.book
        start = book.day_start(now)
        if at < start:
            raise BadParameter(
                "at",
                f"{at.isoformat()} is before the current business day, which began at"
                f" {start.isoformat()} (the history held is the current day's)",
            )
        if at > now:
            raise BadParameter("at", f"{at.isoformat()} is in the future (now {now.isoformat()})")
        found = book.figures_at(at)
        return _json(
            200,
            {
                "at": at.isoformat(),
                "business_day": book.calendar.open_day(now).isoformat(),
                "day_started_at": start.isoformat(),
                "figures": {s: (f.model_dump(mode="json") if f is not None else None) for s, f in found.items()},
            },
        )
