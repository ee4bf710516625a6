"""The alerter's business day (services/alerter/business_day.py), the report of investments' deadline
(segwatch/core/report_deadlines.py), the test clock and the read API (services/alerter/record_api.py), without
Kafka: a fake producer records what would be published."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas.alerts import Alert
from schemas.events import InvestmentReportSubmitted, StatementApproval, StatementFiling
from schemas.records import Figures
from schemas.statements import DayStatus, StatementRecord
from segwatch.core.calendar import BusinessCalendar
from segwatch.core.deadlines import moved_lines
from segwatch.core.report_deadlines import ReportDeadlines
from segwatch.core.twin import Twin
from segwatch.environment import SettingsError, load
from segwatch.forms.parse import read_filing
from services.alerter import day_metrics as dm
from services.alerter.business_day import AlerterBusinessDay, DayBook, state_key
from services.alerter.clock import shifted
from services.alerter.controls import AlerterControls
from services.alerter.http import make_app
from services.alerter.metrics import AlerterMetrics
from services.alerter.record_api import RecordApi
from services.alerter.service import AlerterConfig
from services.alerter.settings import AlerterSettings
from tests.support.figures import real_figures

CHI = ZoneInfo("America/Chicago")
D = date(2026, 11, 16)  # a Monday; its statement is due by noon Tuesday 11-17, Chicago
CUT = datetime(2026, 11, 16, 23, 59, 59, 999999, tzinfo=CHI)


def chicago(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=CHI)


def statement(
    segment: str = "4d2", version: int = 1, *, day: date = D, delta: int = 0, previous: StatementRecord | None = None
) -> StatementRecord:
    lines = dict(real_figures(segment, funds_delta=delta, target=0).lines)
    return StatementRecord(
        business_day=day,
        segment=segment,  # type: ignore[arg-type]
        kind="INITIAL" if version == 1 else "AMENDMENT",
        version=version,
        cutoff=CUT if day == D else datetime.combine(day, datetime.max.time(), tzinfo=CHI),
        computed_at=chicago(17, 1) if version == 1 else chicago(17, 11, 30),
        lines=lines,
        moved=moved_lines(previous.lines, lines) if previous is not None else {},
    )


def filing(version: int | None = None, at: datetime | None = None, event: str = "fil-1") -> StatementFiling:
    at = at or chicago(17, 11)
    return StatementFiling(
        event_id=event,
        source="winjammer",
        as_of=at,
        business_day=D,
        version=version,
        filed_at=at,
        confirmation=f"WJ-{event}",
        filed_by="Pat Filer",
    )


def approval() -> StatementApproval:
    return StatementApproval(
        event_id="app-1",
        source="signoff",
        as_of=chicago(17, 9),
        business_day=D,
        approved_by="Jane Roe",
        role="cfo",
        approved_at=chicago(17, 9),
        reference="SO-1",
    )


def rules(alerts: list[Alert]) -> list[tuple[str, str, str]]:
    return [(a.rule, a.severity, a.state) for a in alerts]


# --- the deadlines, amendments and the record (DayBook) ------------------------------------------------------


def test_an_unfiled_statement_warns_at_ten_pages_at_noon_and_the_filing_resolves_it() -> None:
    book = DayBook(BusinessCalendar())
    for seg in ("4d2", "30.7", "4df"):
        assert book.on_statement(statement(seg))
    assert not book.on_statement(statement("4d2"))  # that version is held: nothing changes
    assert book.evaluate(chicago(17, 9, 59)) == []
    [warning] = book.evaluate(chicago(17, 10))
    assert (warning.rule, warning.severity, warning.page, warning.segment) == (
        "statement_not_filed",
        "warning",
        False,
        "4d2",
    )
    assert book.evaluate(chicago(17, 11)) == []  # still the same warning: not published twice
    noon = book.evaluate(chicago(17, 12), "tick")
    assert rules(noon) == [
        ("statement_not_filed", "warning", "resolved"),
        ("statement_not_filed", "critical", "firing"),
    ]
    assert noon[1].page and noon[1].alert_id == "2026-11-16|statement_not_filed|critical"
    assert book.status(D) is not None and book.status(D).status == "computed"  # type: ignore[union-attr]
    book.on_filing(filing(at=chicago(17, 12, 30)))
    done = book.evaluate(chicago(17, 12, 31), "fil-1")
    assert rules(done) == [
        ("statement_not_filed", "critical", "resolved"),
        ("statement_filed_late", "warning", "firing"),
    ]
    status = book.status(D)
    assert status is not None and (status.status, status.filed_by, status.filed_version, status.filed_late) == (
        "filed",
        "Pat Filer",
        1,
        True,
    )


def test_an_amendment_after_filing_needs_one_amendment_and_filing_it_resolves() -> None:
    book = DayBook(BusinessCalendar())
    first = statement("4d2")
    book.on_statement(first)
    book.on_approval(approval())
    assert book.status(D).status == "approved"  # type: ignore[union-attr]
    book.on_filing(filing(at=chicago(17, 11)))
    assert book.evaluate(chicago(17, 11, 5)) == []
    amended = statement("4d2", 2, delta=-500, previous=first)
    book.on_statement(amended)
    [needed] = book.evaluate(chicago(17, 11, 31), "late-balance")
    assert (needed.rule, needed.state, needed.alert_id) == ("amendment_needed", "firing", "2026-11-16|amendment_needed")
    assert "4d2 [" in needed.summary
    assert book.evaluate(chicago(17, 11, 40)) == []
    assert book.status(D).amendment_needed  # type: ignore[union-attr]
    book.on_filing(filing(version=2, at=chicago(17, 11, 45), event="fil-2"))
    assert rules(book.evaluate(chicago(17, 11, 46))) == [("amendment_needed", "warning", "resolved")]
    # Both versions are held: the first as filed, the amendment with the lines that moved.
    assert book.versions_of(D) == {"4d2": [1, 2]}
    v1, v2 = book.statement(D, "4d2", 1), book.statement(D, "4d2")
    assert v1 is not None and v2 is not None and (v1.kind, v2.kind, v2.version) == ("INITIAL", "AMENDMENT", 2)
    assert v2.moved and v1.lines != v2.lines


def test_the_status_is_published_only_when_it_changes() -> None:
    book = DayBook(BusinessCalendar())
    book.on_statement(statement())
    [computed] = book.changed_statuses([D])
    book.on_status(computed)
    assert book.changed_statuses([D]) == []
    book.on_filing(filing())
    [filed] = book.changed_statuses([D, date(2026, 11, 13)])  # a day without a statement has no status
    assert filed.status == "filed" and filed.key == "2026-11-16|status"


def test_restored_alerts_are_not_published_again_and_what_ended_meanwhile_resolves_once() -> None:
    before = DayBook(BusinessCalendar())
    before.on_statement(statement())
    fired = before.evaluate(chicago(17, 10))
    again = DayBook(BusinessCalendar())
    again.on_statement(statement())
    again.restore(fired)
    assert again.evaluate(chicago(17, 10, 30)) == []
    again.on_filing(filing(at=chicago(17, 11)))  # filed while the alerter was down
    assert rules(again.evaluate(chicago(17, 11, 1))) == [("statement_not_filed", "warning", "resolved")]
    assert state_key(fired[0]) == "4d2|statement_not_filed|2026-11-16|statement_not_filed|warning"


def test_an_old_unfiled_day_with_its_page_in_force_is_kept_past_the_days_retained() -> None:
    """Recovery restores the alerts first: a day whose page is still in force is not forgotten (and so not
    resolved) when later days' statements arrive."""
    first = DayBook(BusinessCalendar())
    first.on_statement(statement())
    page = [a for a in first.evaluate(chicago(30, 13)) if a.severity == "critical"]
    book = DayBook(BusinessCalendar())
    book.restore(page)
    cal = book.calendar
    day = D
    for _ in range(12):
        book.on_statement(statement(day=day))
        day = cal.next_business_day(day)
    late = [a for a in book.evaluate(chicago(30, 13)) if a.alert_id.startswith("2026-11-16|")]
    assert late == []  # still firing, not resolved nor fired again
    assert "2026-11-16|statement_not_filed|critical" in {a.alert_id for a in book.firing()}


def test_the_figures_in_force_at_a_time_of_the_current_day() -> None:
    book = DayBook(BusinessCalendar())
    now = chicago(17, 15)
    records = [
        real_figures("4d2", v, computed_at=at)
        for v, at in ((1, chicago(16, 20)), (2, chicago(17, 9)), (3, chicago(17, 11)))
    ]
    for f in records:
        book.on_figures(f, f.model_dump_json().encode(), now)
    book.on_figures(records[1], records[1].model_dump_json().encode(), now)  # a replay changes nothing
    assert book.day_start(now) == CUT
    at = book.figures_at(chicago(17, 10))["4d2"]
    assert at is not None and at.version == 2
    start = book.figures_at(chicago(17, 0, 1))["4d2"]
    assert start is not None and start.version == 1  # in force at the start of the day: the last of the day before
    later = chicago(18, 15)  # the next day: the history before its start goes, but the record in force stays
    book.trim_figures(later)
    assert [h.version for h in book.figures["4d2"]] == [3]


# --- the report of investments' deadline --------------------------------------------------------------------

R = date(2026, 10, 15)  # a Thursday: the report of investments as of the 15th is due by the close of 10-16


def report_close(segment: str, day: date = R) -> StatementRecord:
    return statement(segment, day=day)


def submitted(segment: str | None, at: datetime, event: str = "sub-1") -> InvestmentReportSubmitted:
    return InvestmentReportSubmitted(
        event_id=event,
        source="nfa",
        as_of=at,
        report_date=R,
        segment=segment,  # type: ignore[arg-type]
        submitted_at=at,
        reference="SIDR-1",
    )


def test_an_unsubmitted_report_of_investments_fires_after_the_next_business_day_and_submission_resolves() -> None:
    deadlines = ReportDeadlines(BusinessCalendar())
    assert not deadlines.on_statement(report_close("4d2", date(2026, 10, 14)))  # not a report date
    assert deadlines.on_statement(report_close("4d2")) and deadlines.on_statement(report_close("30.7"))
    due = datetime(2026, 10, 16, 23, 59, 59, 999999, tzinfo=CHI)
    assert deadlines.evaluate(due - timedelta(seconds=1)) == []
    fired = deadlines.evaluate(due)
    assert [(a.segment, a.rule, a.state) for a in fired] == [
        ("30.7", "investment_report_overdue", "firing"),
        ("4d2", "investment_report_overdue", "firing"),
    ]
    assert fired[1].alert_id == "4d2|investment_report_overdue|2026-10-15" and not fired[1].page
    deadlines.on_submitted(submitted("4d2", due + timedelta(hours=9)))
    [resolved] = deadlines.evaluate(due + timedelta(hours=10))
    assert (resolved.segment, resolved.state) == ("4d2", "resolved") and "SIDR-1" in resolved.summary
    deadlines.on_submitted(submitted(None, due + timedelta(hours=11), "sub-2"))  # every pool
    assert [(a.segment, a.state) for a in deadlines.evaluate(due + timedelta(hours=12))] == [("30.7", "resolved")]
    # A submission before the close is known still counts when the close arrives.
    early = ReportDeadlines(BusinessCalendar())
    early.on_submitted(submitted(None, due - timedelta(hours=5)))
    early.on_statement(report_close("4df"))
    assert early.evaluate(due + timedelta(days=3)) == []


def test_the_twin_replays_the_report_deadline() -> None:
    from segwatch.core.twin import Record
    from segwatch.core.twin_reports import InvestmentReports

    stage = InvestmentReports()
    twin = Twin(stages=[stage])
    late = datetime(2026, 10, 19, 9, tzinfo=CHI)
    stage.on_record(twin, Record("segwatch.statements", report_close("4d2")), late)
    [fired] = stage.on_event(twin, submitted("30.7", late, "other-pool"), late)
    assert isinstance(fired.value, Alert) and (fired.value.rule, fired.value.state) == (
        "investment_report_overdue",
        "firing",
    )
    [resolved] = stage.on_event(twin, submitted("4d2", late, "sub-4d2"), late)
    assert isinstance(resolved.value, Alert) and resolved.value.state == "resolved"


# --- the test clock ---------------------------------------------------------------------------------------


def test_the_clock_offset_shifts_the_running_clock_and_a_bad_one_is_named() -> None:
    settings = load(
        AlerterSettings, {"SEGWATCH_CLOCK_OFFSET_SECONDS": "-86400.5", "SEGWATCH_ALERTER_DAY_INTERVAL_SECONDS": "0.5"}
    )
    config = AlerterConfig(**settings.config_fields())
    assert (config.clock_offset, config.day_interval, config.firm_name) == (-86400.5, 0.5, "segwatch FCM")
    clock = shifted(lambda: datetime.now(UTC), config.clock_offset)
    gap = datetime.now(UTC) - clock()
    assert timedelta(days=1) < gap < timedelta(days=1, seconds=5)
    with pytest.raises(SettingsError) as exc:
        load(AlerterSettings, {"SEGWATCH_CLOCK_OFFSET_SECONDS": "noon"})
    assert "SEGWATCH_CLOCK_OFFSET_SECONDS" in str(exc.value)


# --- the service side with a fake producer ------------------------------------------------------------------


@dataclass
class Sent:
    topic: str
    value: bytes
    key: bytes


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[Sent] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        self.sent.append(Sent(topic, value, key))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class _Log:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class FakeService:
    def __init__(self, now: datetime, tokens: tuple[bytes, ...] | None = (b"secret",)) -> None:
        self.config = AlerterConfig(tokens=tokens)
        self.metrics = AlerterMetrics()
        self.log = _Log()
        self.now = now
        self.clock = lambda: self.now
        self.ready = True
        self.healthy = True
        self._lock = asyncio.Lock()
        self._producer = FakeProducer()
        self.dead: list[str] = []
        self.controls = AlerterControls(self)  # type: ignore[arg-type]
        self.business_day = AlerterBusinessDay(self)  # type: ignore[arg-type]
        self.record_api = RecordApi(self)  # type: ignore[arg-type]
        self.http_routes = (self.record_api.install,)

    async def _dead_letter(self, record: Any, bad: Any, what: str, pending: list[Any]) -> None:
        self.dead.append(bad.field)


@dataclass
class KafkaRecord:
    topic: str
    value: bytes | None
    key: bytes = b""
    partition: int = 0
    offset: int = 0


def on_topic(service: FakeService, model: Any) -> KafkaRecord:
    return KafkaRecord(service.config.statements_topic or "", model.model_dump_json().encode())


async def test_the_service_publishes_each_alert_once_mirrored_per_incident_and_the_status() -> None:
    service = FakeService(chicago(17, 12, 5))
    day = service.business_day
    sent = service._producer.sent
    for seg in ("4d2", "30.7", "4df"):
        assert not await day.handle(on_topic(service, statement(seg)), [])  # the controls take them as well
    alerts = [s for s in sent if s.topic == service.config.alerts_topic]
    assert [Alert.model_validate_json(s.value).severity for s in alerts] == ["critical"]  # noon has passed
    [mirror] = [s for s in sent if s.topic == service.config.state_topic]
    assert mirror.key == b"4d2|statement_not_filed|2026-11-16|statement_not_filed|critical"
    statuses = [DayStatus.model_validate_json(s.value) for s in sent if s.topic == service.config.statements_topic]
    assert [s.status for s in statuses][-1] == "computed" and {s.version for s in statuses} == {1}
    registry = service.metrics.registry
    assert registry.get_sample_value(dm.STATEMENT_STATUS, {"business_day": "2026-11-16", "status": "computed"}) == 1
    assert registry.get_sample_value(dm.STATEMENT_VERSION, {"business_day": "2026-11-16", "segment": "30.7"}) == 1
    assert registry.get_sample_value(dm.LAST_CLOSE) == CUT.timestamp()
    assert registry.get_sample_value("segwatch_alert_firing", {"segment": "4d2", "rule": "statement_not_filed"}) == 1
    sent.clear()
    await day.evaluate(None)
    assert sent == []  # the timer publishes nothing new
    await day.handle(on_topic(service, filing()), [])
    assert [(Alert.model_validate_json(s.value).state) for s in sent if s.topic == service.config.alerts_topic] == [
        "resolved"
    ]
    [filed] = [DayStatus.model_validate_json(s.value) for s in sent if s.topic == service.config.statements_topic]
    assert filed.status == "filed" and filed.confirmation == "WJ-fil-1"
    assert registry.get_sample_value(dm.STATEMENT_STATUS, {"business_day": "2026-11-16", "status": "filed"}) == 1
    # The status record read back (the alerter consumes the topic it publishes to) changes nothing.
    sent.clear()
    await day.handle(on_topic(service, filed), [])
    assert sent == []
    # A submission that cannot be read is dead-lettered here (the controls do not know the type).
    bad = KafkaRecord(service.config.statements_topic or "", b'{"type": "investment_report_submitted"}')
    assert await day.handle(bad, [])
    assert service.dead == ["event_id"]


# --- the read API ------------------------------------------------------------------------------------------


async def get(service: FakeService, path: str, token: str | None = "secret") -> tuple[int, Any, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with TestClient(TestServer(make_app(service))) as client:
        response = await client.get(path, headers=headers)
        text = await response.text()
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body, text


async def test_the_read_api_serves_the_days_statements_and_figures_behind_a_token() -> None:
    service = FakeService(chicago(17, 15))
    book = service.business_day.book
    first = statement("4d2")
    for rec in (first, statement("30.7"), statement("4df"), statement("4d2", 2, delta=-700, previous=first)):
        book.on_statement(rec)
    book.on_filing(filing(version=1))
    f = real_figures("4d2", 7, computed_at=chicago(17, 9))
    book.on_figures(f, f.model_dump_json().encode(), service.now)

    assert (await get(service, "/v1/days", token=None))[0] == 401
    assert (await get(service, "/v1/days", token="wrong"))[0] == 401
    status, days, _ = await get(service, "/v1/days")
    assert status == 200 and [(d["business_day"], d["status"], d["versions"]) for d in days["days"]] == [
        ("2026-11-16", "filed", {"30.7": [1], "4d2": [1, 2], "4df": [1]})
    ]
    status, listed, _ = await get(service, "/v1/days?from=2026-11-13&to=2026-11-17")
    assert status == 200 and [(d["business_day"], d["status"]) for d in listed["days"]] == [
        ("2026-11-13", None),
        ("2026-11-16", "filed"),
        ("2026-11-17", None),
    ]  # the weekend has no statement
    status, day, _ = await get(service, "/v1/days/2026-11-16")
    assert status == 200 and day["filed_by"] == "Pat Filer" and day["amendment_needed"] and day["version"] == 2

    status, latest, _ = await get(service, "/v1/days/2026-11-16/statement?segment=4d2")
    assert status == 200 and latest["kind"] == "AMENDMENT" and latest["statements"]["4d2"]["version"] == 2
    assert Decimal(latest["statements"]["4d2"]["lines"]["7190"]) == first.lines["7190"] - 700
    status, v1, _ = await get(service, "/v1/days/2026-11-16/statement?version=1")
    assert status == 200 and v1["kind"] == "INITIAL" and sorted(v1["statements"]) == ["30.7", "4d2", "4df"]
    assert Decimal(v1["statements"]["4d2"]["lines"]["7190"]) == first.lines["7190"]
    status, _, text = await get(service, "/v1/days/2026-11-16/statement?format=text&version=1")
    assert status == 200 and "**INITIAL**" in text and "End Date:11/16/2026" in text
    parsed = read_filing(text).statements
    assert parsed["4d2"]["7190"] == first.lines["7190"].quantize(Decimal(1))
    status, filed, _ = await get(service, "/v1/days/2026-11-16/statement?format=filing")
    assert status == 200 and filed["kind"] == "AMENDMENT" and filed["submit_date"] == "2026-11-17"

    for path, field in (
        ("/v1/days/16-11-2026", "day"),
        ("/v1/days?from=2026-13-01", "from"),
        ("/v1/days?to=2026-11-17", "from"),
        ("/v1/days?from=2026-11-17&to=2026-11-16", "to"),
        ("/v1/days/2026-11-16/statement?version=0", "version"),
        ("/v1/days/2026-11-16/statement?segment=5x", "segment"),
        ("/v1/days/2026-11-16/statement?format=pdf", "format"),
        ("/v1/figures?at=yesterday", "at"),
        ("/v1/figures?at=2026-11-17T09:00:00", "at"),
        ("/v1/figures?at=2026-11-15T09:00:00-06:00", "at"),
        ("/v1/figures?at=2026-11-17T16:00:00-06:00", "at"),
    ):
        status, body, _ = await get(service, path)
        assert (status, body["field"]) == (400, field), path
    for path, field in (("/v1/days/2026-11-13", "day"), ("/v1/days/2026-11-16/statement?version=3", "version")):
        status, body, _ = await get(service, path)
        assert (status, body["field"]) == (404, field), path

    status, at, _ = await get(service, "/v1/figures?at=2026-11-17T10:00:00-06:00")
    assert status == 200 and at["figures"]["4d2"]["version"] == 7 and at["business_day"] == "2026-11-17"
    status, early, _ = await get(service, "/v1/figures?at=2026-11-17T08:00:00-06:00")
    assert status == 200 and early["figures"]["4d2"] is None
    Figures.model_validate(at["figures"]["4d2"])


async def test_the_read_api_refuses_everyone_without_a_configured_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SEGWATCH_INGEST_TOKENS", "SEGWATCH_INGEST_TOKENS_FILE", "SEGWATCH_INGEST_ALLOW_ANONYMOUS"):
        monkeypatch.delenv(var, raising=False)
    assert (await get(FakeService(chicago(17, 15), tokens=None), "/v1/days"))[0] == 503
    monkeypatch.setenv("SEGWATCH_INGEST_ALLOW_ANONYMOUS", "1")
    assert (await get(FakeService(chicago(17, 15), tokens=None), "/v1/days", token=None))[0] == 200


def test_ingest_routes_a_report_submission_to_the_statements_topic_and_names_a_bad_field() -> None:
    from pydantic import ValidationError

    from schemas.errors import first_error
    from schemas.events import parse_event_json
    from segwatch.kafka.topics import STATEMENTS
    from services.ingest.publisher import event_key, topic_for

    ev = submitted("4d2", datetime(2026, 10, 16, 9, tzinfo=CHI))
    assert topic_for(ev) == STATEMENTS
    assert event_key(ev) == b"investment_report|2026-10-15|submitted|4d2"
    assert parse_event_json(ev.model_dump_json()) == ev
    with pytest.raises(ValidationError) as exc:
        parse_event_json(ev.model_dump_json().replace('"2026-10-15"', '"15/10/2026"'))
    assert first_error(exc.value).field == "report_date"
