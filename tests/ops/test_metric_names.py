"""Every metric name operations use is one a service really exports, and the ingest freshness gauge works."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from schemas.events import EventBase
from segwatch.ops import dashboard
from segwatch.ops import metrics as m
from services.alerter.metrics import AlerterMetrics
from services.calculator.app import Metrics as CalculatorMetrics
from services.ingest.api import IngestMetrics, create_app
from services.ingest.config import IngestConfig
from tests.ops.conftest import ROOT

NAME = re.compile(r"\b(segwatch_[a-z0-9_]+)")


def exported(registry: CollectorRegistry) -> set[str]:
    """The sample names a registry exposes (counters with _total, histograms with _bucket/_sum/_count)."""
    names: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names |= {f"{family.name}_total"}
        elif family.type == "histogram":
            names |= {family.name, *(f"{family.name}_{s}" for s in ("bucket", "sum", "count"))}
        else:
            names.add(family.name)
    return names


def all_exported() -> set[str]:
    return (
        exported(IngestMetrics().registry)
        | exported(CalculatorMetrics().registry)
        | exported(AlerterMetrics().registry)
    )


def constants() -> Iterable[str]:
    return (v for k, v in vars(m).items() if k.isupper() and isinstance(v, str))


def test_every_constant_is_exported() -> None:
    names = all_exported() | {"up", "ALERTS"}
    missing = sorted(name for name in constants() if name not in names)
    assert not missing, f"segwatch/ops/metrics.py names no service exports: {missing}"


def test_rules_and_dashboard_use_only_exported_names() -> None:
    names = all_exported()
    used = set(NAME.findall(dashboard.render()))
    for path in (ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"):
        used |= set(NAME.findall(path.read_text(encoding="utf-8")))
    assert used, "no metric names found"
    assert sorted(used - names) == [], "names used in rules/dashboard that no service exports"


class AcceptAll:
    """A publisher that Kafka always 'acknowledges'."""

    started = True

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def reachable(self) -> bool:
        return True

    async def publish(self, events: list[EventBase]) -> list[str | None]:
        return [None] * len(events)

    async def dead_letter(self, letters: list[object]) -> list[str | None]:
        return [None] * len(letters)


def event(event_id: str, source: str, cash: str = '"1.00"') -> str:
    return (
        f'{{"type": "account_balance", "event_id": "{event_id}", "source": "{source}", '
        f'"as_of": "2017-11-06T12:00:00Z", "segment": "4d2", "account": "A-1", "currency": "USD", '
        f'"cash": {cash}, "securities": "0", "unrealized": "0", "long_options": "0", "short_options": "0"}}'
    )


async def last_seen(client: TestClient[Any, Any]) -> dict[str, float]:
    text = await (await client.get("/metrics")).text()
    return {
        s.labels["source"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == m.INGEST_SOURCE_LAST_SEEN
    }


async def test_ingest_source_last_seen_moves_with_accepted_events_only() -> None:
    app = create_app(IngestConfig(tokens=(b"t",)), AcceptAll())  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        headers = {"Authorization": "Bearer t", "Content-Type": "application/x-ndjson"}
        assert await last_seen(client) == {}
        before = time.time()
        body = "\n".join([event("e1", "ledger"), event("e2", "bai2:021000021"), event("e3", "dco", '"x"')])
        response = await client.post("/v1/events", data=body, headers=headers)
        assert response.status == 202, await response.text()
        seen = await last_seen(client)
        assert set(seen) == {"ledger", "bai2:021000021"}  # the rejected dco event does not count
        assert all(before <= t <= time.time() for t in seen.values())
        await asyncio.sleep(0.01)
        response = await client.post("/v1/events", data=event("e4", "ledger"), headers=headers)
        assert response.status == 202
        rejected = await client.post("/v1/events", data=event("e5", "bai2:021000021", '"x"'), headers=headers)
        assert rejected.status == 422
        after = await last_seen(client)
        assert after["ledger"] > seen["ledger"] and after["bai2:021000021"] == seen["bai2:021000021"]
