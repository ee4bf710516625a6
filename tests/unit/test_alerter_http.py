"""The alerter's HTTP endpoints: /metrics (Prometheus text), /healthz and /readyz."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp

from services.alerter.http import HttpServer
from services.alerter.metrics import EXCESS, AlerterMetrics
from tests.support.figures import real_figures


@dataclass
class FakeService:
    metrics: AlerterMetrics = field(default_factory=AlerterMetrics)
    healthy: bool = True
    ready: bool = False


async def test_endpoints_answer_on_a_free_port() -> None:
    service = FakeService()
    service.metrics.show_figures(real_figures("30.7", 3))
    server = HttpServer(service, "127.0.0.1", 0)
    await server.start()
    try:
        assert server.port > 0
        base = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                body = await response.text()
            assert f'{EXCESS}{{segment="30.7"}} 1.94525781e+08' in body
            headers = {"Accept": "application/openmetrics-text; version=1.0.0"}
            async with http.get(f"{base}/metrics", headers=headers) as response:
                assert response.headers["Content-Type"].startswith("application/openmetrics-text")
                assert (await response.text()).endswith("# EOF\n")

            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 503
            service.ready = True
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
            service.healthy = False
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 503
    finally:
        await server.stop()
