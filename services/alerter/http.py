"""The alerter's HTTP side (aiohttp): /metrics for Prometheus, /healthz (liveness), /readyz (readiness), and
the service's own endpoints (`http_routes`: POST /v1/what-if, services/alerter/controls.py)."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from services.alerter.metrics import AlerterMetrics


class Probed(Protocol):
    """What the endpoints ask of the service."""

    metrics: AlerterMetrics

    @property
    def healthy(self) -> bool: ...

    @property
    def ready(self) -> bool: ...


def make_app(service: Probed) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        if service.healthy:
            return web.Response(text="ok\n")
        return web.Response(status=503, text="failed\n")

    async def readyz(_: web.Request) -> web.Response:
        if service.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready: recovering alert state or waiting for the figures partition\n")

    app = web.Application()
    # prometheus_client's own handler: Prometheus text or OpenMetrics as the scraper asks, gzip when accepted.
    app.router.add_get("/metrics", make_aiohttp_handler(service.metrics.registry))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    for install in getattr(service, "http_routes", ()):  # the service's own endpoints (POST /v1/what-if)
        install(app)
    return app


class HttpServer:
    """The endpoints on host:port; port 0 takes any free port (read it back from `port`)."""

    def __init__(self, service: Probed, host: str, port: int) -> None:
        self.service = service
        self.host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        if self._runner is not None:
            return
        runner = web.AppRunner(make_app(self.service), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self._port = int(address[1])
                break

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
