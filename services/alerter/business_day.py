"""The business day in the alerter (issue #12): the filing deadline, amendments, the record, and the report of
investments' deadline (issue #14).

Inputs, all on the statements topic (consumed by the alerter's group with the controls, which see the same
records for the 25% baselines):

    StatementRecord               the calculator's close of a day and each amendment (key `<day>|<segment>`)
    StatementApproval / Filing    the sign-off and the filing of a day's statement (ingest routes them here)
    DayStatus                     the day's status, as this module published it (key `<day>|status`)
    InvestmentReportSubmitted     a report of investments marked submitted (issue #14; ingest routes it here)
    investment_report             the report of investments itself (taken, not an input of the rules)

`DayBook` (pure, synchronous) holds each day's record (`DayRecord`, status), every statement version read
(kept compressed, for the read API), `DayAlerts` (statement_not_filed 10:00 warning / noon critical page,
statement_filed_late, amendment_needed) and `ReportDeadlines` (investment_report_overdue), and the current
day's figures history (from the figures topic) for `GET /v1/figures?at=`.

The rules run on every input (statements, figures) and on a timer (`AlerterConfig.day_interval`, default
15 s), with the service's clock (SEGWATCH_CLOCK_OFFSET_SECONDS shifts it: services/alerter/clock.py), so the
noon alert fires with no input at all.

Exactly once across restarts: each alert record goes to the alert topic (key "segment|rule"), is acknowledged,
then is mirrored to the alerter's compacted state topic under `segment|rule|<alert_id>` (one key per
incident: a day's alert never compacts another day's away). Recovery (every assignment) reads both topics
and the statements topic from their beginning and restores the alerts in force (`DayAlerts.restore`,
`ReportDeadlines.restore`), so an alert already published is never published again and one whose condition
ended while the alerter was down is resolved once. The day's status (`DayStatus`) is published to the
statements topic whenever it changes (compacted: the latest per day; a republished equal status is not sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
from pydantic import ValidationError

from schemas.alerts import Alert
from schemas.events import InvestmentReportSubmitted, StatementApproval, StatementFiling, parse_event_json
from schemas.records import Figures
from schemas.statements import DayStatus, StatementRecord
from segwatch.core.calendar import BusinessCalendar, CalendarConfig
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.day_alerts import RUNBOOK_ANCHORS, DayAlerts
from segwatch.core.deadlines import DayRecord
from segwatch.core.report_at_close import report_at_close
from segwatch.core.report_deadlines import RULE as REPORT_RULE
from segwatch.core.report_deadlines import ReportDeadlines
from services.alerter.day_metrics import DAYS_SHOWN
from services.alerter.periodic import Periodic

if TYPE_CHECKING:
    from services.alerter.service import AlerterService

DAY_RULES: Final = (*RUNBOOK_ANCHORS, REPORT_RULE)
FIGURES_HISTORY_MAX: Final = 50_000  # figures records kept per segment for the current day (compressed)
OWN_TYPES: Final = frozenset({"investment_report_submitted", "investment_report"})
DAY_TYPES: Final = frozenset({"statement", "statement_status", "statement_filing", "statement_approval"})


def state_key(alert: Alert) -> str:
    """The alert's key on the compacted state topic: one per incident (a day's, a report date's)."""
    return f"{alert.key}|{alert.alert_id}"


@dataclass(frozen=True, slots=True)
class HeldFigures:
    computed_at: datetime
    version: int
    packed: bytes  # zlib of the record's JSON

    def figures(self) -> Figures:
        return Figures.model_validate_json(zlib.decompress(self.packed))


@dataclass
class DayBook:
    """What the alerter knows of the business days: pure and synchronous (the service does the Kafka side)."""

    calendar: BusinessCalendar
    alerts: DayAlerts = field(init=False)
    reports: ReportDeadlines = field(init=False)
    records: dict[date, DayRecord] = field(default_factory=dict)  # every day, statements without their lines
    versions: dict[date, dict[str, dict[int, bytes]]] = field(default_factory=dict)  # day -> seg -> v -> zlib
    published: dict[date, DayStatus] = field(default_factory=dict)  # the latest status on the topic
    figures: dict[str, list[HeldFigures]] = field(default_factory=dict)  # segment -> current day, in order
    figures_from: dict[str, datetime] = field(default_factory=dict)  # history dropped before this (cap)
    investment_reports: dict[str, bytes] = field(default_factory=dict)  # report date -> the record (zlib)

    def __post_init__(self) -> None:
        self.alerts = DayAlerts(self.calendar)
        self.reports = ReportDeadlines(self.calendar)

    # --- inputs ---------------------------------------------------------------------------------------

    def on_statement(self, rec: StatementRecord) -> bool:
        """A statement (a close or an amendment). False when that version was already held."""
        held = self.versions.setdefault(rec.business_day, {}).setdefault(rec.segment, {})
        if rec.version in held:
            return False
        held[rec.version] = zlib.compress(rec.model_dump_json().encode())
        record = self._record(rec.business_day, rec.cutoff)
        light = rec.model_copy(update={"lines": {}, "by_currency": {}, "moved": {}})
        current = record.statements.get(rec.segment)
        if current is None or rec.version > current.version:
            record.statements[rec.segment] = light
            if current is not None and (record.filing is not None or record.approval is not None):
                record.amended_at = record.amended_at or rec.computed_at
        self.alerts.on_statement(rec)
        self.reports.on_statement(rec)
        return True

    def on_approval(self, ev: StatementApproval) -> None:
        self._record(ev.business_day).approve(ev)
        self.alerts.on_approval(ev)

    def on_filing(self, ev: StatementFiling) -> None:
        self._record(ev.business_day).file(ev)
        self.alerts.on_filing(ev)

    def on_status(self, status: DayStatus) -> None:
        self.published[status.business_day] = status

    def on_submitted(self, ev: InvestmentReportSubmitted) -> None:
        self.reports.on_submitted(ev)

    def on_investment_report(self, raw: dict[str, Any], value: bytes) -> None:
        day = raw.get("report_date")
        if isinstance(day, str):
            self.investment_reports[day] = zlib.compress(value)

    def take(
        self, record: StatementRecord | DayStatus | StatementApproval | StatementFiling | InvestmentReportSubmitted
    ) -> bool:
        """One parsed record of the statements topic; True when it may change a status or an alert."""
        if isinstance(record, StatementRecord):
            return self.on_statement(record)
        if isinstance(record, StatementApproval):
            self.on_approval(record)
        elif isinstance(record, StatementFiling):
            self.on_filing(record)
        elif isinstance(record, InvestmentReportSubmitted):
            self.on_submitted(record)
        else:
            self.on_status(record)
            return False
        return True

    def _record(self, day: date, cutoff: datetime | None = None) -> DayRecord:
        record = self.records.get(day)
        if record is None:
            record = self.records[day] = DayRecord(
                day, cutoff or self.calendar.cutoff(day), self.calendar.deadlines(day), self.calendar.segments_due(day)
            )
        return record

    # --- the rules ------------------------------------------------------------------------------------

    def evaluate(self, now: datetime, correlation_id: str | None = None) -> list[Alert]:
        return [*self.alerts.evaluate(now, correlation_id), *self.reports.evaluate(now, correlation_id)]

    def restore(self, alerts: Iterable[Alert]) -> None:
        """The alert records of the day rules, oldest first (the alert topic, then the state topic)."""
        mine = [a for a in alerts if a.rule in DAY_RULES]
        self.alerts.restore(a for a in mine if a.rule in RUNBOOK_ANCHORS)
        self.reports.restore(mine)

    def firing(self) -> list[Alert]:
        return [*self.alerts.firing.values(), *self.reports.firing.values()]

    # --- the record -----------------------------------------------------------------------------------

    def status(self, day: date) -> DayStatus | None:
        record = self.records.get(day)
        return record.status() if record is not None and record.statements else None

    def statuses(self, last: int | None = None) -> list[DayStatus]:
        """Each day's status, oldest first (`last`: only the newest that many days)."""
        days = sorted(d for d, r in self.records.items() if r.statements)
        chosen = days[-last:] if last else days
        return [s for s in (self.status(day) for day in chosen) if s is not None]

    def changed_statuses(self, days: Iterable[date]) -> list[DayStatus]:
        """The statuses of `days` that differ from the one last published."""
        out = []
        for day in sorted(set(days)):
            status = self.status(day)
            if status is not None and self.published.get(day) != status:
                out.append(status)
        return out

    def statement(self, day: date, segment: str, version: int | None = None) -> StatementRecord | None:
        held = self.versions.get(day, {}).get(segment, {})
        if not held:
            return None
        v = max(held) if version is None else version
        packed = held.get(v)
        return StatementRecord.model_validate_json(zlib.decompress(packed)) if packed is not None else None

    def versions_of(self, day: date) -> dict[str, list[int]]:
        return {seg: sorted(v) for seg, v in sorted(self.versions.get(day, {}).items())}

    # --- the current day's figures --------------------------------------------------------------------

    def day_start(self, now: datetime) -> datetime:
        """The start of the business day open at `now`: the previous business day's cut-off."""
        open_day = self.calendar.open_day(now)
        return self.calendar.cutoff(self.calendar.previous_business_day(open_day))

    def on_figures(self, figures: Figures, value: bytes, now: datetime) -> None:
        held = self.figures.setdefault(figures.segment, [])
        if held and figures.version <= held[-1].version:
            return  # a replay or a duplicate
        held.append(HeldFigures(figures.computed_at, figures.version, zlib.compress(value)))
        self.trim_figures(now)

    def trim_figures(self, now: datetime) -> None:
        """Keep the current day's records and the one in force at its start; at most FIGURES_HISTORY_MAX."""
        start = self.day_start(now)
        for segment, held in self.figures.items():
            first = 0
            while first + 1 < len(held) and held[first + 1].computed_at <= start:
                first += 1
            if len(held) - first > FIGURES_HISTORY_MAX:
                first = len(held) - FIGURES_HISTORY_MAX
                self.figures_from[segment] = held[first].computed_at
            if first:
                del held[:first]

    def figures_at(self, at: datetime) -> dict[str, Figures | None]:
        """Per segment, the figures record in force at `at` (the newest computed at or before it)."""
        out: dict[str, Figures | None] = {}
        for segment, held in sorted(self.figures.items()):
            found = None
            for h in reversed(held):
                if h.computed_at <= at:
                    found = h
                    break
            out[segment] = found.figures() if found is not None else None
        return out


# --- parsing the statements topic -----------------------------------------------------------------------

DayInput = StatementRecord | DayStatus | StatementApproval | StatementFiling | InvestmentReportSubmitted


class Unreadable(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def kind_of(value: bytes | None) -> tuple[str | None, dict[str, Any] | None]:
    """The record's `type` and its JSON object, or (None, None) when it is not a JSON object."""
    if value is None:
        return None, None
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(raw, dict):
        return None, None
    kind = raw.get("type")
    return (kind if isinstance(kind, str) else None), raw


def parse_day_input(kind: str, raw: dict[str, Any], value: bytes) -> DayInput:
    """A record of the statements topic whose type is one of DAY_TYPES or investment_report_submitted."""
    try:
        if kind == "statement":
            return StatementRecord.model_validate(raw)
        if kind == "statement_status":
            return DayStatus.model_validate(raw)
        event = parse_event_json(value)
    except ValidationError as exc:
        from schemas.errors import first_error

        err = first_error(exc)
        raise Unreadable(err.field, err.reason) from None
    if not isinstance(event, StatementApproval | StatementFiling | InvestmentReportSubmitted):
        raise Unreadable("type", f"a {kind} event does not belong on the statements topic")
    return event


# --- the service side -----------------------------------------------------------------------------------


class AlerterBusinessDay:
    """The business day of one alerter service: its inputs, alerts, status records, recovery and timer."""

    def __init__(self, service: AlerterService) -> None:
        self.service = service
        self.log: Any = service.log
        self.book = DayBook(BusinessCalendar(CalendarConfig.from_env()))
        self._timer: Periodic | None = None

    @property
    def config(self) -> Any:
        return self.service.config

    # --- the consumer side ----------------------------------------------------------------------------

    async def handle(self, record: Any, pending: list[asyncio.Future[Any]]) -> bool:
        """One record of any input topic. True when it was this module's alone (the caller stops there);
        False when the controls (statements) or the figures rules take it as well."""
        cfg = self.config
        if record.topic != cfg.statements_topic:
            await self.evaluate(None)  # time passes with every input
            return False
        kind, raw = kind_of(record.value)
        if kind == "investment_report" and raw is not None:
            self.book.on_investment_report(raw, record.value)
            self.log.info("investment report taken", report_date=raw.get("report_date"))
            return True
        if kind not in DAY_TYPES and kind != "investment_report_submitted":
            return False  # the controls dead-letter what nobody reads
        assert raw is not None
        try:
            parsed = parse_day_input(kind, raw, record.value)
        except Unreadable as bad:
            if kind == "investment_report_submitted":  # the controls do not know it: dead-letter it here
                from services.alerter.service import _Unreadable

                await self.service._dead_letter(record, _Unreadable(bad.field, bad.reason), "day record", pending)
                return True
            return False  # the controls dead-letter it
        changed = self.book.take(parsed)
        correlation = getattr(parsed, "event_id", None)
        self.log.info(
            "day record taken", kind=kind, business_day=str(getattr(parsed, "business_day", "")), changed=changed
        )
        await self.evaluate(correlation)
        if changed and not isinstance(parsed, InvestmentReportSubmitted):
            await self.publish_statuses([parsed.business_day])
        if isinstance(parsed, StatementRecord):
            self.service.metrics.day.show_statement(parsed)
            if changed:
                await self.publish_investment_report(parsed)
        self.show()
        return kind == "investment_report_submitted"

    async def publish_investment_report(self, rec: StatementRecord) -> None:
        """A report date's close owes the report of investments (CBOT Rule 971.D): from the figures in force
        at its cut-off, once per report date (a restarted alerter has read the ones already published)."""
        topic = self.config.statements_topic
        if topic is None or rec.business_day.isoformat() in self.book.investment_reports:
            return
        in_force = self.book.figures_at(rec.cutoff)
        if not any(in_force.values()):
            # Every figures record held was computed after the cut-off (a day replayed or backfilled): the
            # figures as the close arrives are those the close was computed from. Said, not hidden.
            in_force = self.book.figures_at(datetime.max.replace(tzinfo=UTC))
            self.log.warning(
                "investment report from the figures as the close arrived: none computed by its cut-off",
                report_date=rec.business_day.isoformat(),
                cutoff=rec.cutoff.isoformat(),
            )
        report = report_at_close(rec, in_force, self.book.calendar)
        if report is None:
            return
        value = report.model_dump_json().encode()
        await (await self.service._producer.send(topic, value, key=report.key.encode()))
        self.book.on_investment_report({"report_date": rec.business_day.isoformat()}, value)
        self.log.info(
            "investment report published", report_date=rec.business_day.isoformat(), pools=sorted(report.pools)
        )

    def on_figures(self, figures: Figures, value: bytes | None) -> None:
        if value is not None:
            self.book.on_figures(figures, value, self.service.clock())

    async def evaluate(self, correlation_id: str | None) -> None:
        svc = self.service
        changes = self.book.evaluate(svc.clock(), correlation_id)
        if changes:
            await self.publish(changes)

    async def publish(self, alerts: Sequence[Alert]) -> None:
        """To the alert topic, acknowledged; then mirrored to the state topic, one key per incident."""
        svc, cfg = self.service, self.config
        producer = svc._producer
        sent = [await producer.send(cfg.alerts_topic, a.model_dump_json().encode(), key=a.key.encode()) for a in alerts]
        await asyncio.gather(*sent)
        acknowledged_at = svc.clock()
        if cfg.state_topic is not None:
            mirrored = [
                await producer.send(cfg.state_topic, a.model_dump_json().encode(), key=state_key(a).encode())
                for a in alerts
            ]
            await asyncio.gather(*mirrored)
        for alert in alerts:
            svc.metrics.alert_published(alert, acknowledged_at, None)
            level = (
                "critical"
                if alert.page and alert.state == "firing"
                else ("warning" if alert.state == "firing" else "info")
            )
            getattr(self.log, level)(
                f"alert {alert.state}",
                alert_id=alert.alert_id,
                rule=alert.rule,
                segment=alert.segment,
                severity=alert.severity,
                page=alert.page,
                summary=alert.summary,
                runbook=alert.runbook,
            )
        self.show_firing()

    async def publish_statuses(self, days: Iterable[date]) -> None:
        topic = self.config.statements_topic
        changed = self.book.changed_statuses(days)
        if topic is None or not changed:
            return
        producer = self.service._producer
        sent = [await producer.send(topic, s.model_dump_json().encode(), key=s.key.encode()) for s in changed]
        await asyncio.gather(*sent)
        for status in changed:
            self.book.on_status(status)
            self.log.info(
                "day status published",
                business_day=str(status.business_day),
                status=status.status,
                version=status.version,
                filed_version=status.filed_version,
            )

    # --- metrics --------------------------------------------------------------------------------------

    def show(self) -> None:
        book, cal = self.book, self.book.calendar
        self.service.metrics.day.show_days(
            (s, cal.deadlines(s.business_day).warning.timestamp()) for s in book.statuses(DAYS_SHOWN)
        )
        self.service.metrics.day.show_reports(
            (r.report_date, r.segment, r.due_at.timestamp(), r.submitted is not None) for r in book.reports.due.values()
        )
        self.show_firing()

    def show_firing(self) -> None:
        """segwatch_alert_firing of the day rules: 1 while any day's (report date's) alert of it fires."""
        gauge = self.service.metrics.alert_firing
        firing = {(a.segment, a.rule) for a in self.book.firing()}
        for segment in SEGMENT_IDS:
            for rule in DAY_RULES:
                gauge.labels(segment=segment, rule=rule).set(1 if (segment, rule) in firing else 0)

    # --- recovery -------------------------------------------------------------------------------------

    async def recover(self) -> None:
        """Rebuild from the statements topic, the alert and state topics and the figures topic; then
        publish what changed while the alerter was down (resolutions, firings, statuses)."""
        from services.alerter.recovery import parse_records, partition_counts, read_to_end

        cfg, svc = self.config, self.service
        settings, timeout = svc.settings, cfg.recovery_timeout
        book = DayBook(self.book.calendar)
        topics = [
            t for t in (cfg.statements_topic, cfg.alerts_topic, cfg.state_topic, cfg.figures_topic) if t is not None
        ]
        counts = await partition_counts(settings, topics, timeout=timeout)
        # The alerts in force first, so a day with one is never dropped while the statements are taken; the
        # newest record of each incident wins (by `at`: a record mirrored to the state topic equals its original).
        alerts: list[Alert] = []
        for topic in [t for t in (cfg.alerts_topic, cfg.state_topic) if t is not None]:
            got, _, _ = parse_records(await read_to_end(settings, topic, counts[topic], timeout=timeout))
            alerts.extend(got)
        book.restore(sorted(alerts, key=lambda a: a.at))
        unreadable = 0
        if cfg.statements_topic is not None:
            for record in await read_to_end(
                settings, cfg.statements_topic, counts[cfg.statements_topic], timeout=timeout
            ):
                kind, raw = kind_of(record.value)
                if kind == "investment_report" and raw is not None:
                    book.on_investment_report(raw, record.value)
                    continue
                if raw is None or (kind not in DAY_TYPES and kind != "investment_report_submitted"):
                    continue
                try:
                    book.take(parse_day_input(kind, raw, record.value))
                except Unreadable:
                    unreadable += 1
        now = svc.clock()
        for record in await read_to_end(settings, cfg.figures_topic, counts[cfg.figures_topic], timeout=timeout):
            if record.value is None:
                continue
            with contextlib.suppress(ValidationError):
                book.on_figures(Figures.model_validate_json(record.value), record.value, now)
        self.book = book
        for day in sorted(book.versions):
            for segment in book.versions[day]:
                rec = book.statement(day, segment)
                if rec is not None:
                    svc.metrics.day.show_statement(rec)
        self.show()
        self.log.info(
            "business day recovered",
            days=len(book.records),
            firing=sorted(a.alert_id for a in book.firing()),
            unreadable=unreadable,
            figures={s: len(h) for s, h in book.figures.items()},
        )

    async def after_recovery(self) -> None:
        """What changed while the alerter was down: alerts and statuses (the producer is up)."""
        await self.evaluate(None)
        await self.publish_statuses(self.book.records)

    # --- the timer ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._timer is None:
            self._timer = Periodic(self.config.day_interval, self.tick, "alerter business day timer", self.log)
        self._timer.start()

    async def stop(self) -> None:
        if self._timer is not None:
            await self._timer.stop()

    async def tick(self) -> None:
        """Evaluate the deadlines now (under the service's lock, once its state is recovered)."""
        svc = self.service
        async with svc._lock:
            if svc._recovered and svc._producer is not None:
                self.book.trim_figures(svc.clock())
                await self.evaluate(None)


__all__ = ["DAY_RULES", "AlerterBusinessDay", "DayBook", "state_key"]
