"""/metrics of the three services, served by prometheus_client's own aiohttp handler: Prometheus text by default,
OpenMetrics when asked, gzip when the scraper accepts it."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from segwatch.config import KafkaSettings
from services.alerter.http import make_app
from services.alerter.metrics import AlerterMetrics
from services.calculator.app import Calculator, CalculatorConfig
from services.ingest.api import METRICS, create_app
from services.ingest.config import IngestConfig
from tests.support.ingest import FakePublisher

Client = TestClient[web.Request, web.Application]


@dataclass
class FakeAlerter:
    metrics: AlerterMetrics = field(default_factory=AlerterMetrics)
    healthy: bool = True
    ready: bool = True


def ingest_app(_: Path) -> tuple[web.Application, str]:
    app = create_app(IngestConfig(tokens=(b"t",)), FakePublisher())
    app[METRICS].events.labels("accepted").inc(3)
    return app, 'segwatch_ingest_events_total{outcome="accepted"} 3.0'


def calculator_app(tmp: Path) -> tuple[web.Application, str]:
    # Never started: the Faust app's web server is an aiohttp application with the calculator's pages on it.
    calculator = Calculator(CalculatorConfig(datadir=str(tmp / "calculator")), KafkaSettings())
    calculator.metrics.figures.labels("4d2").inc()
    web_app: web.Application = calculator.app.web.web_app  # type: ignore[attr-defined]  # the aiohttp driver's
    return web_app, 'segwatch_calculator_figures_total{segment="4d2"} 1.0'


def alerter_app(_: Path) -> tuple[web.Application, str]:
    service = FakeAlerter()
    service.metrics.dead_letter()
    return make_app(service), "segwatch_alerter_dead_letters_total 1.0"


SERVICES: dict[str, Callable[[Path], tuple[web.Application, str]]] = {
    "ingest": ingest_app,
    "calculator": calculator_app,
    "alerter": alerter_app,
}


@pytest.fixture(params=sorted(SERVICES))
async def scraped(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Client, str]]:
    app, sample = SERVICES[request.param](tmp_path)
    client = TestClient(TestServer(app), auto_decompress=False)  # to see the bytes as sent
    await client.start_server()
    try:
        yield client, sample
    finally:
        await client.close()


async def test_metrics_answer_in_the_prometheus_text_format(scraped: tuple[Client, str]) -> None:
    client, sample = scraped
    response = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "Content-Encoding" not in response.headers
    text = (await response.read()).decode()
    assert sample in text.splitlines()
    assert list(text_string_to_metric_families(text))  # parses as the text format


async def test_metrics_answer_gzip_when_asked(scraped: tuple[Client, str]) -> None:
    client, sample = scraped
    response = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert response.status == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert sample in gzip.decompress(await response.read()).decode().splitlines()


async def test_metrics_answer_openmetrics_when_asked(scraped: tuple[Client, str]) -> None:
    client, _ = scraped
    headers = {"Accept": "application/openmetrics-text; version=1.0.0", "Accept-Encoding": "identity"}
    response = await client.get("/metrics", headers=headers)
    assert response.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert (await response.read()).decode().endswith("# EOF\n")
