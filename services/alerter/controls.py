"""Controls before the money moves, wired into the alerter (issue #13): the 25% disbursement control, the
residual interest vs undermargined amounts rule, and the JAC 18-04 what-if (`POST /v1/what-if`).

Inputs (all consumed by the alerter's group; one partition each, so one member owns them all):

    segwatch.figures        every figures record: the live excess (CBOT Rule 971.E.1), the residual interest
    segwatch.statements     `StatementRecord` (the daily computation: a `Baseline` from its excess line
                            7190 / 7380 / 8730) and `DayStatus` (status "filed": the prior day's filing)
    segwatch.disbursements  `Disbursement`, `DisbursementApproval`, `UndermarginedAmounts` (and a
                            `StatementFiling`, should one be routed there)

Outputs, each acknowledged before the next step and before the input offset is committed:

    1. the notice (`disbursement_25pct`, `disbursement_violation`: critical, pages) on the alert topic,
       unless its alert id is already there (recovered): never paged twice
    2. the two `DisbursementNotice` records and the `DisbursementDecision` on the alerter's compacted state
       topic (keys `segment|notice|audience|event_id`, `segment|disbursement|event_id`)
    3. only then the decision is part of the state (`Controls.record`)

`residual_interest_undermargined` fires and resolves like the figures rules (alert topic, mirrored to the
state topic), evaluated on each figures record and on a timer (`AlerterConfig.controls_interval`, default 30 s)
with the service's injected clock, since 6 pm Eastern can pass with no input.

Recovery (every assignment): the statements topic (baselines, filings) and the disbursements topic
(approvals, undermargined amounts, filings) are read from the beginning, the decision and notice records
from the state topic, the latest figures from the figures topic; `Controls.restore` rebuilds the windows and
the decided ids, so a replayed disbursement is neither decided nor noticed twice.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import orjson
import structlog
from aiohttp import web
from pydantic import ValidationError

from schemas.alerts import Alert
from schemas.controls import Baseline, DisbursementDecision, DisbursementNotice, WhatIfRequest, WhatIfResponse
from schemas.errors import first_error
from schemas.events import (
    Disbursement,
    DisbursementApproval,
    EventBase,
    StatementApproval,
    StatementFiling,
    UndermarginedAmounts,
    parse_event_json,
)
from schemas.records import Figures
from schemas.statements import DayStatus, StatementRecord
from segwatch.core.calendar import BusinessCalendar, CalendarConfig
from segwatch.core.catalogue import SEGMENTS
from segwatch.core.controls import Controls, DecisionResult
from segwatch.core.proforma import what_if_from
from segwatch.core.residual import RULE as RESIDUAL_RULE
from segwatch.core.residual import ResidualInterest
from segwatch.core.rules import AlertStates
from segwatch.environment import load
from segwatch.errors import InputError
from services.alerter.periodic import Periodic

if TYPE_CHECKING:
    from services.alerter.service import AlerterService

TOKENS_ENV: Final = "SEGWATCH_INGEST_TOKENS"
TOKENS_FILE_ENV: Final = "SEGWATCH_INGEST_TOKENS_FILE"
ANONYMOUS_ENV: Final = "SEGWATCH_INGEST_ALLOW_ANONYMOUS"
REALM: Final = 'Bearer realm="segwatch-what-if"'
MAX_WHAT_IF_BYTES: Final = 1024 * 1024


def baseline_of(record: StatementRecord) -> Baseline:
    """The daily computation a statement stands for: its business day, cut-off, excess line and version."""
    line = SEGMENTS[record.segment].excess
    excess = record.lines.get(line)
    if excess is None:
        raise InputError(
            f"lines.{line}",
            f"the {record.segment} statement of {record.business_day} has no excess"
            f" line {line}: no daily computation of the excess to measure disbursements against",
        )
    return Baseline(
        segment=record.segment,
        business_day=record.business_day,
        cutoff=record.cutoff,
        excess=excess,
        version=record.version,
    )


@dataclass(frozen=True, slots=True)
class Filing:
    business_day: date
    filed_at: datetime | None
    confirmation: str | None
    via: str  # "statement_status" or "statement_filing"


@dataclass(slots=True)
class ControlsState:
    """What the alerter's controls know: pure and synchronous (the service does the Kafka side)."""

    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)
    controls: Controls = field(default_factory=Controls)
    residual: ResidualInterest = field(default_factory=ResidualInterest)
    figures: dict[str, Figures] = field(default_factory=dict)  # the latest of each segment
    filings: dict[date, Filing] = field(default_factory=dict)
    noticed: set[str] = field(default_factory=set)  # alert ids of the notices already on the alert topic

    # --- inputs ---------------------------------------------------------------------------------------

    def on_figures(self, figures: Figures) -> None:
        held = self.figures.get(figures.segment)
        if held is None or figures.version > held.version:
            self.figures[figures.segment] = figures
        self.controls.on_figures(figures)

    def on_statement(self, record: StatementRecord | DayStatus | StatementFiling | StatementApproval) -> bool:
        """One record of the statements topic: a statement (a baseline), a day's status or filing event (the
        prior day's filing), or a sign-off (not an input of the controls: the filing is what counts)."""
        if isinstance(record, StatementFiling):
            return self.on_filing(record)
        if isinstance(record, StatementApproval):
            return False
        if isinstance(record, DayStatus):
            if record.status != "filed":
                return False
            self.filings[record.business_day] = Filing(
                record.business_day, record.filed_at, record.confirmation, "statement_status"
            )
            return True
        return self.controls.on_baseline(baseline_of(record))

    def on_filing(self, ev: StatementFiling) -> bool:
        self.filings[ev.business_day] = Filing(ev.business_day, ev.filed_at, ev.confirmation, "statement_filing")
        return True

    def on_event(self, ev: EventBase) -> bool:
        """Approvals, undermargined amounts and filings (disbursements are decided with `decide`)."""
        if isinstance(ev, DisbursementApproval):
            return self.controls.on_approval(ev)
        if isinstance(ev, UndermarginedAmounts):
            return self.residual.on_amounts(ev)
        if isinstance(ev, StatementFiling):
            return self.on_filing(ev)
        raise InputError("type", f"a {type(ev).__name__} event is not an input of the controls")

    # --- decisions ------------------------------------------------------------------------------------

    def decide(self, ev: Disbursement, now: datetime) -> DecisionResult | None:
        return self.controls.decide(ev, now=now)

    def residual_changes(
        self, states: AlertStates, now: datetime, segments: Iterable[str] | None = None
    ) -> list[Alert]:
        """The residual_interest_undermargined state changes at `now` for the segments with figures."""
        out: list[Alert] = []
        for segment in sorted(self.figures if segments is None else segments):
            figures = self.figures.get(segment)
            if figures is None:
                continue
            change = self.residual.evaluate(
                figures,
                states.firing(segment, RESIDUAL_RULE),
                now=now,
                next_business_day=self.calendar.next_business_day,
            )
            if change is not None:
                out.append(change)
        return out

    # --- the what-if ----------------------------------------------------------------------------------

    def prior_day(self, now: datetime) -> date:
        """The business day before the one open at `now`: the statement JAC 18-04 wants filed first."""
        return self.calendar.previous_business_day(self.calendar.open_day(now))

    def what_if(self, request: WhatIfRequest, now: datetime) -> WhatIfResponse:
        prior = self.prior_day(now)
        filed = prior in self.filings
        figures = self.figures.get(request.segment)
        target = figures.target if figures is not None else None
        response = what_if_from(self.controls, request, target=target, prior_statement_filed=filed, now=now)
        if filed:
            return response
        # Say which statement, and whether segwatch has seen any filing at all (unknown is refused too).
        why = (
            f"the statement of {prior} has not been filed (no filing of it seen: a StatementFiling event or a"
            " filed DayStatus on the statements topic)"
            if self.filings
            else f"filing status UNKNOWN: segwatch has seen no filing of any statement, so it cannot show that the"
            f" statement of {prior} was filed; refused until it can"
        )
        reasons = [
            r.model_copy(update={"message": why}) if r.code == "prior_statement_not_filed" else r
            for r in response.reasons
        ]
        return response.model_copy(update={"reasons": reasons})


StatementsRecord = StatementRecord | DayStatus | StatementFiling | StatementApproval


def parse_statement(value: bytes) -> StatementsRecord:
    """A record of the statements topic: the calculator's statements and the day's status, and the sign-off
    and filing events ingest routes there (services/ingest/publisher.py)."""
    raw = orjson.loads(value)
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "statement":
        return StatementRecord.model_validate(raw)
    if kind == "statement_status":
        return DayStatus.model_validate(raw)
    if kind in ("statement_filing", "statement_approval"):
        event = parse_event_json(value)
        assert isinstance(event, StatementFiling | StatementApproval)
        return event
    raise InputError(
        "type", f"expected a statement, statement_status, statement_filing or statement_approval record, got {kind!r}"
    )


class _Bad(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _statement_or_bad(value: bytes | None) -> StatementsRecord:
    if value is None:
        raise _Bad("(record)", "empty value (tombstone) where a statement was expected")
    try:
        return parse_statement(value)
    except ValidationError as exc:
        err = first_error(exc)
        raise _Bad(err.field, err.reason) from None
    except orjson.JSONDecodeError as exc:
        raise _Bad("(record)", f"not valid JSON ({exc})") from None
    except InputError as exc:
        raise _Bad(exc.field, exc.reason) from None


def _event_or_bad(value: bytes | None, topic: str) -> EventBase:
    if value is None:
        raise _Bad("(record)", "empty value (tombstone) where an event was expected")
    try:
        event: EventBase = parse_event_json(value)
    except ValidationError as exc:
        err = first_error(exc)
        raise _Bad(err.field, err.reason) from None
    if not isinstance(event, Disbursement | DisbursementApproval | UndermarginedAmounts | StatementFiling):
        kind = getattr(event, "type", "?")
        raise _Bad(
            "type",
            f"a {kind} event does not belong on {topic}: only disbursements, disbursement"
            " approvals, undermargined amounts and statement filings do",
        )
    return event


def tokens_from_env(env: Mapping[str, str] | None = None) -> tuple[bytes, ...]:
    """The ingest API's bearer tokens (SEGWATCH_INGEST_TOKENS, SEGWATCH_INGEST_TOKENS_FILE)."""
    from services.ingest.config import tokens_from_env as ingest_tokens

    return ingest_tokens(env)


class AlerterControls:
    """The controls of one alerter service: its inputs, its records, its recovery, its timer and the what-if."""

    def __init__(self, service: AlerterService) -> None:
        self.service = service
        self.log: Any = service.log
        self.state = ControlsState(calendar=BusinessCalendar(CalendarConfig.from_env()))
        # Who may call the what-if: read once, at start, by the settings model (services/ingest/config.py).
        from services.ingest.config import TokensPart

        self._access = load(TokensPart)
        self._timer: Periodic | None = None

    @property
    def config(self) -> Any:
        return self.service.config

    # --- the consumer side ----------------------------------------------------------------------------

    def owns(self, topic: str) -> bool:
        cfg = self.config
        return topic in (cfg.statements_topic, cfg.disbursements_topic)

    async def handle(self, record: Any, pending: list[asyncio.Future[Any]]) -> None:
        """One record of the statements or disbursements topic."""
        cfg = self.config
        try:
            if record.topic == cfg.statements_topic:
                statement = _statement_or_bad(record.value)
                try:
                    changed = self.state.on_statement(statement)
                except InputError as exc:
                    raise _Bad(exc.field, exc.reason) from None
                self.log.info(
                    "statement taken", business_day=str(statement.business_day), kind=statement.type, changed=changed
                )
                self._show()
                return
            event = _event_or_bad(record.value, record.topic)
        except _Bad as bad:
            await self._dead_letter(record, bad, pending)
            return
        with structlog.contextvars.bound_contextvars(correlation_id=event.event_id):
            if isinstance(event, Disbursement):
                await self._disbursement(event)
            else:
                changed = self.state.on_event(event)
                self.log.info("controls input taken", event_type=type(event).__name__, changed=changed)
                if isinstance(event, UndermarginedAmounts):
                    await self.evaluate_residual([event.segment])

    async def _dead_letter(self, record: Any, bad: _Bad, pending: list[asyncio.Future[Any]]) -> None:
        from services.alerter.service import _Unreadable

        await self.service._dead_letter(record, _Unreadable(bad.field, bad.reason), "controls record", pending)

    async def _disbursement(self, ev: Disbursement) -> None:
        svc = self.service
        now = svc.clock()
        result = self.state.decide(ev, now)
        if result is None:
            svc.metrics.duplicate_disbursement(ev.segment)
            self.log.info("disbursement duplicate ignored", segment=ev.segment)
            return
        if result.alert is not None and result.alert.alert_id not in self.state.noticed:
            await svc._publish([result.alert], None, mirror=False)
            self.state.noticed.add(result.alert.alert_id)
        await self.publish_state([*result.notices, result.decision])
        self.state.controls.record(result)
        d = result.decision
        svc.metrics.disbursement(d.segment, d.outcome)
        self._show()
        level = "error" if d.outcome == "violation" else "warning" if d.needs_approval else "info"
        getattr(self.log, level)(
            "disbursement decided",
            segment=d.segment,
            outcome=d.outcome,
            needs_approval=d.needs_approval,
            amount=str(d.amount),
            recipient=d.recipient,
            basis=d.basis,
            aggregate=str(d.aggregate),
            limit=str(d.limit) if d.limit is not None else None,
            decision=d.decision_id,
        )

    async def publish_state(self, records: Sequence[DisbursementDecision | DisbursementNotice]) -> None:
        topic = self.config.state_topic
        if topic is None or not records:
            return
        producer = self.service._producer
        sent = [await producer.send(topic, r.model_dump_json().encode(), key=r.key.encode()) for r in records]
        await asyncio.gather(*sent)

    async def on_figures(self, figures: Figures) -> None:
        """After the figures rules: the live excess, then the residual interest rule of its segment."""
        self.state.on_figures(figures)
        self._show()
        await self.evaluate_residual([figures.segment])

    async def evaluate_residual(self, segments: Iterable[str] | None = None) -> None:
        svc = self.service
        changes = self.state.residual_changes(svc.states, svc.clock(), segments)
        if changes:
            await svc._publish(changes, None)
            for alert in changes:
                svc.states = svc.states.with_alert(alert)

    def _show(self) -> None:
        for segment in SEGMENTS:
            self.service.metrics.show_window(self.state.controls.status(segment))

    # --- recovery -------------------------------------------------------------------------------------

    async def recover(
        self, latest: Sequence[Figures], decisions: Sequence[DisbursementDecision], notices: Sequence[Alert]
    ) -> None:
        from services.alerter.recovery import partition_counts, read_to_end

        cfg = self.config
        settings, timeout = self.service.settings, cfg.recovery_timeout
        statements: list[StatementsRecord] = []
        events: list[EventBase] = []
        topics = [t for t in (cfg.statements_topic, cfg.disbursements_topic) if t is not None]
        counts = await partition_counts(settings, topics, timeout=timeout) if topics else {}
        for topic in topics:
            for record in await read_to_end(settings, topic, counts[topic], timeout=timeout):
                try:
                    if topic == cfg.statements_topic:
                        statements.append(_statement_or_bad(record.value))
                    else:
                        events.append(_event_or_bad(record.value, topic))
                except _Bad:
                    continue  # the consumer dead-letters it when it gets there
        state = ControlsState(calendar=self.state.calendar)
        unusable = 0
        for statement in statements:
            try:
                state.on_statement(statement)
            except InputError:
                unusable += 1
        for f in latest:
            state.on_figures(f)
        for ev in events:
            if not isinstance(ev, Disbursement):
                state.on_event(ev)
        for d in decisions:
            state.controls.restore_decision(d)
        state.noticed = {a.alert_id for a in notices}
        self.state = state
        self._show()
        self.log.info(
            "controls recovered",
            baselines={s: str(b.business_day) for s, b in sorted(state.controls.baselines.items())},
            decided=len(state.controls.decided),
            approvals=len(state.controls.approvals),
            filings=sorted(str(d) for d in state.filings),
            notices=len(state.noticed),
            unusable_statements=unusable,
        )

    # --- the timer ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._timer is None:
            self._timer = Periodic(self.config.controls_interval, self.tick, "alerter controls timer", self.log)
        self._timer.start()

    async def stop(self) -> None:
        if self._timer is not None:
            await self._timer.stop()

    async def tick(self) -> None:
        """Evaluate the time-based rule now (under the service's lock, once its state is recovered)."""
        svc = self.service
        async with svc._lock:
            if svc._recovered and svc._producer is not None:
                await self.evaluate_residual()

    # --- POST /v1/what-if -----------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        app.router.add_post("/v1/what-if", self._what_if)

    def _tokens(self) -> tuple[bytes, ...] | None:
        """The accepted tokens; () when anonymous access is allowed, None when nothing is configured."""
        tokens: tuple[bytes, ...] = self.config.tokens if self.config.tokens is not None else self._access.tokens
        if tokens:
            return tokens
        return () if self._access.allow_anonymous else None

    async def _what_if(self, request: web.Request) -> web.Response:
        tokens = self._tokens()
        if tokens is None:
            return _json(
                503,
                {
                    "error": f"no bearer token is configured ({TOKENS_ENV} or {TOKENS_FILE_ENV}):"
                    " the what-if is refused to everyone"
                },
            )
        if tokens:
            header = request.headers.get("Authorization", "")
            scheme, _, given = header.strip().partition(" ")
            ok = False
            if scheme.lower() == "bearer" and given.strip():
                for token in tokens:
                    ok |= hmac.compare_digest(given.strip().encode(), token)
            if not ok:
                reason = "a bearer token is required" if not header else "the bearer token is not valid"
                return _json(401, {"error": reason}, {"WWW-Authenticate": REALM})
        if request.content_type.lower() != "application/json":
            return _json(415, {"error": f"unsupported Content-Type {request.content_type!r}: send application/json"})
        if request.content_length is not None and request.content_length > MAX_WHAT_IF_BYTES:
            return _json(413, {"error": f"the body is larger than {MAX_WHAT_IF_BYTES} bytes"})
        body = await request.read()
        try:
            # Amounts from their JSON text, never through a binary float.
            data = json.loads(body, parse_float=Decimal, parse_constant=Decimal)
        except ValueError as exc:
            return _json(400, {"error": f"not valid JSON ({exc})"})
        try:
            what = WhatIfRequest.model_validate(data)
        except ValidationError as exc:
            err = first_error(exc)
            return _json(422, {"error": f"{err.field}: {err.reason}", "field": err.field, "reason": err.reason})
        svc = self.service
        if not svc.ready:
            return _json(
                503, {"error": "not ready: recovering the state or waiting for the partitions"}, {"Retry-After": "5"}
            )
        now = svc.clock()
        async with svc._lock:
            answer = self.state.what_if(what, now)
        svc.metrics.what_if(answer.verdict)
        self.log.info(
            "what-if answered",
            segment=answer.segment,
            verdict=answer.verdict,
            proposal_id=answer.proposal_id,
            reasons=[r.code for r in answer.reasons],
        )
        return web.Response(status=200, body=answer.model_dump_json().encode(), content_type="application/json")


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)
