"""The alerter's controls (services/alerter/controls.py) without Kafka: baselines from StatementRecords, the
filing status the what-if needs, the residual interest rule on the clock, and `POST /v1/what-if`'s HTTP side."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas.controls import WhatIfRequest
from schemas.events import EVENT_ADAPTER, UndermarginedAmounts
from schemas.statements import DayStatus, StatementRecord
from segwatch.core.rules import AlertStates
from segwatch.errors import InputError
from services.alerter import metrics as m
from services.alerter.controls import AlerterControls, ControlsState, baseline_of
from services.alerter.http import make_app
from services.alerter.metrics import AlerterMetrics
from services.alerter.service import AlerterConfig
from tests.support.figures import real_figures

M = Decimal(1_000_000)
D = date(2026, 11, 20)  # a Friday
CUT = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)
MONDAY = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # the open day 11-23: the prior business day is 11-20


def record(excess: Decimal | None, version: int = 1) -> StatementRecord:
    return StatementRecord(
        business_day=D,
        segment="4d2",
        kind="INITIAL" if version == 1 else "AMENDMENT",
        version=version,
        cutoff=CUT,
        computed_at=CUT,
        lines={} if excess is None else {"7190": excess},
    )


def filed() -> DayStatus:
    return DayStatus(
        business_day=D,
        status="filed",
        segments=["4d2"],
        version=1,
        computed_at=CUT,
        filed_at=MONDAY - timedelta(hours=3),
        confirmation="WJ-7",
        due_at=MONDAY,
    )


def figures(excess: Decimal, version: int = 1, target: Decimal = Decimal(0)) -> Any:
    real = real_figures("4d2", target=0)
    return real_figures("4d2", version, funds_delta=excess - real.excess, target=target, event=f"f{version}")


def request(amount: Decimal) -> WhatIfRequest:
    return WhatIfRequest.model_validate(
        {"segment": "4d2", "withdrawals": [{"amount": str(amount), "recipient": "Holdco LLC", "purpose": "dividend"}]}
    )


def test_a_statement_record_is_the_baseline_and_an_amendment_replaces_its_excess() -> None:
    state = ControlsState()
    assert state.on_statement(record(100 * M))
    b = state.controls.baselines["4d2"]
    assert (b.business_day, b.cutoff, b.excess, b.version) == (D, CUT, 100 * M, 1)
    assert state.on_statement(record(90 * M, version=2)) and state.controls.baselines["4d2"].excess == 90 * M
    assert not state.on_statement(record(80 * M))  # an older version changes nothing
    assert baseline_of(record(Decimal("5.00"))).excess == Decimal("5.00")
    with pytest.raises(InputError) as exc:
        baseline_of(record(None))
    assert exc.value.field == "lines.7190" and "no excess line 7190" in exc.value.reason


def test_the_what_if_is_refused_while_the_filing_is_unknown_then_not_filed_then_answers() -> None:
    state = ControlsState()
    state.on_statement(record(100 * M))
    state.on_figures(figures(100 * M, target=10 * M))
    unknown = state.what_if(request(1 * M), MONDAY)
    assert unknown.verdict == "refused" and not unknown.prior_statement_filed
    [why] = [r for r in unknown.reasons if r.code == "prior_statement_not_filed"]
    assert "UNKNOWN" in why.message and "2026-11-20" in why.message
    state.on_statement(filed())
    answer = state.what_if(request(1 * M), MONDAY)
    assert (answer.verdict, answer.prior_statement_filed, answer.reasons) == ("allowed", True, [])
    crossing = state.what_if(request(95 * M), MONDAY)
    assert crossing.verdict == "refused" and {"under_target"} <= {r.code for r in crossing.reasons}


def test_residual_interest_fires_on_the_clock_once_the_deadline_passes() -> None:
    state = ControlsState()
    state.on_figures(figures(1 * M))
    amounts = EVENT_ADAPTER.validate_python(
        {
            "type": "undermargined_amounts",
            "event_id": "u1",
            "source": "risk",
            "as_of": CUT.isoformat(),
            "segment": "4d2",
            "business_day": D.isoformat(),
            "amount": str(2 * M),
        }
    )
    assert isinstance(amounts, UndermarginedAmounts) and state.on_event(amounts)
    deadline = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # 6 pm Eastern on Monday
    assert state.residual_changes(AlertStates(), deadline - timedelta(seconds=1)) == []
    [firing] = state.residual_changes(AlertStates(), deadline)
    assert (firing.rule, firing.state, firing.severity) == ("residual_interest_undermargined", "firing", "critical")
    states = AlertStates().with_alert(firing)
    assert state.residual_changes(states, deadline + timedelta(hours=1)) == []  # never twice
    state.on_figures(figures(3 * M, version=2))
    [resolved] = state.residual_changes(states, deadline + timedelta(hours=2))
    assert resolved.state == "resolved" and resolved.alert_id == firing.alert_id


class FakeService:
    """What AlerterControls asks of the service for the HTTP side."""

    def __init__(self, tokens: tuple[bytes, ...] | None) -> None:
        self.config = AlerterConfig(tokens=tokens)
        self.metrics = AlerterMetrics()
        self.log = _Log()
        self.clock = lambda: MONDAY
        self.ready = True
        self.healthy = True
        self._lock = asyncio.Lock()
        self.controls = AlerterControls(self)  # type: ignore[arg-type]
        self.http_routes = (self.controls.install,)


class _Log:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


async def post(service: FakeService, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    async with TestClient(TestServer(make_app(service))) as client:
        response = await client.post("/v1/what-if", json=body, headers=headers)
        return response.status, await response.json()


async def test_the_what_if_needs_a_token_and_names_a_bad_field(monkeypatch: pytest.MonkeyPatch) -> None:
    service = FakeService((b"secret",))
    service.controls.state.on_statement(record(100 * M))
    service.controls.state.on_figures(figures(100 * M, target=10 * M))
    service.controls.state.on_statement(filed())
    body = {"segment": "4d2", "withdrawals": [{"amount": "30000000.00", "recipient": "Holdco", "purpose": "div"}]}
    assert (await post(service, body, {}))[0] == 401
    assert (await post(service, body, {"Authorization": "Bearer wrong"}))[0] == 401
    status, answer = await post(service, body, {"Authorization": "Bearer secret"})
    assert status == 200 and answer["verdict"] == "needs_approval" and answer["needs_approval"]
    assert {r["code"] for r in answer["reasons"]} == {"exceeds_25pct_daily", "exceeds_25pct_live"}
    status, bad = await post(service, {**body, "segment": "9x"}, {"Authorization": "Bearer secret"})
    assert status == 422 and bad["field"] == "segment"
    assert service.metrics.registry.get_sample_value(m.WHAT_IF_TOTAL, {"verdict": "needs_approval"}) == 1
    # No token configured anywhere (and no anonymous mode): refused to everyone.
    monkeypatch.delenv("SEGWATCH_INGEST_TOKENS", raising=False)
    monkeypatch.delenv("SEGWATCH_INGEST_TOKENS_FILE", raising=False)
    monkeypatch.delenv("SEGWATCH_INGEST_ALLOW_ANONYMOUS", raising=False)
    assert (await post(FakeService(None), body, {"Authorization": "Bearer secret"}))[0] == 503
