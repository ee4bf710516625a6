"""The whole system on this machine: broker, topics and the three services, wired in one place.

`segwatch run` and the end-to-end tests both use `LocalSystem`. Each system gets its own namespace (a prefix
on every topic, app id and consumer group), so runs and tests never see each other's records.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer

from schemas.alerts import Alert
from schemas.events import EventBase
from schemas.records import Figures
from segwatch.config import KafkaPart
from segwatch.environment import load
from segwatch.kafka import broker, topics
from segwatch.kafka.admin import delete_topics
from segwatch.waiting import wait_until

SERVICES = ("ingest", "calculator", "alerter")


async def answers_ready(http: aiohttp.ClientSession, url: str, timeout: float = 2.0) -> bool:
    """True when `url` answers 200 now; a refused or slow connection is simply not ready yet."""
    with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            return response.status == 200
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Service:
    name: str
    argv: list[str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class LocalSystem:
    """Start with `await system.start()`, stop with `await system.stop()` (or `async with`)."""

    namespace: str = field(default_factory=lambda: f"run{time.strftime('%Y%m%d%H%M%S')}{secrets.token_hex(2)}.")
    workdir: Path = field(default_factory=lambda: Path("var"))
    ports: dict[str, int] = field(default_factory=dict)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    coalesce_ms: int | None = None  # None: the calculator's default
    now: str | None = None  # SEGWATCH_NOW for the services: a fixed clock (ISO instant); None: the wall clock
    keep_topics: bool = False
    run: tuple[str, ...] = SERVICES  # which services to start
    out: Callable[[str], None] = print
    services: dict[str, Service] = field(default_factory=dict)
    bootstrap: str = ""
    started_broker: bool = False
    # More variables for the services and commands it starts (the benchmark's partitions, instance id): the
    # children's environment, never this process's os.environ.
    extra_env: dict[str, str] = field(default_factory=dict)
    _offset: float | None = field(default=None, init=False, repr=False)

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "SEGWATCH_NAMESPACE": self.namespace,
                "KAFKA_BOOTSTRAP": self.bootstrap,
                "SEGWATCH_INGEST_TOKENS": self.token,
                "SEGWATCH_LOG_FORMAT": "json",
                "SEGWATCH_CALCULATOR_DATADIR": str(self.workdir / "calculator-data"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.coalesce_ms is not None:
            env["SEGWATCH_COALESCE_MS"] = str(self.coalesce_ms)
        if self.now is not None:
            env["SEGWATCH_NOW"] = self.now
            # The alerter's deadline timers need a clock that runs: the same instant at the system's start,
            # then the wall clock's pace (one offset for every launch, so a restarted alerter goes on from it).
            env.setdefault("SEGWATCH_CLOCK_OFFSET_SECONDS", f"{self._clock_offset():.3f}")
        env.update(self.extra_env)
        return env

    def _clock_offset(self) -> float:
        if self._offset is None:
            assert self.now is not None
            self._offset = (datetime.fromisoformat(self.now) - datetime.now(UTC)).total_seconds()
        return self._offset

    def topic(self, name: str) -> str:
        return topics.namespaced(name, self.namespace)

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bootstrap = load(KafkaPart).kafka_bootstrap or ""
        if not self.bootstrap:
            status = await asyncio.to_thread(broker.status)
            if not status.ready:
                result = await asyncio.to_thread(broker.start, None, out=self.out)
                self.started_broker = not result.already_running
                self.out(f"broker started in {result.seconds:.1f}s at {result.bootstrap}")
            self.bootstrap = broker.BrokerConfig.from_env().bootstrap
        await self._run(["topics", "apply"])
        for name in self.run:
            port = self.ports.get(name) or free_port()
            argv = {
                "ingest": ["ingest", "serve", "--port", str(port)],
                "calculator": ["calculator", "worker", "--port", str(port)],
                "alerter": ["alerter", "serve", "--port", str(port)],
            }[name]
            self.services[name] = Service(name, argv, port, self.workdir / f"{name}.log")
        for svc in self.services.values():
            self.launch(svc)
        await self.wait_ready()

    def launch(self, svc: Service) -> None:
        log = svc.log.open("ab")
        svc.process = subprocess.Popen(
            [sys.executable, "-m", "segwatch.cli", *svc.argv],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    async def _run(self, argv: Sequence[str]) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "segwatch.cli",
            *argv,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"segwatch {' '.join(argv)} failed:\n{output.decode(errors='replace')}")

    async def wait_ready(self, names: Iterable[str] | None = None, timeout: float = 90.0) -> None:
        """Until every named service answers /readyz with 200; fails at once when one of them exits."""
        pending = set(names or self.services)
        async with aiohttp.ClientSession() as http:

            async def all_ready() -> bool:
                for name in sorted(pending):
                    svc = self.services[name]
                    if svc.process and svc.process.poll() is not None:
                        raise RuntimeError(f"{name} exited with {svc.process.returncode}:\n{svc.log_tail()}")
                    if await answers_ready(http, f"{svc.url}/readyz"):
                        pending.discard(name)
                return not pending

            def tails() -> str:
                return ", ".join(sorted(pending)) + "".join(
                    f"\n\n== {n}\n{self.services[n].log_tail()}" for n in sorted(pending)
                )

            await wait_until(all_ready, what="the services to be ready", timeout=timeout, interval=0.25, detail=tails)

    async def stop_service(self, name: str, timeout: float = 20.0) -> None:
        svc = self.services[name]
        proc = svc.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 5)

    async def restart_service(self, name: str) -> None:
        await self.stop_service(name)
        self.launch(self.services[name])
        await self.wait_ready([name])

    async def stop(self) -> None:
        for name in reversed(SERVICES):
            if name in self.services:
                await self.stop_service(name)
        if not self.keep_topics and self.bootstrap:
            with contextlib.suppress(Exception):
                settings = load(KafkaPart, kafka_bootstrap=self.bootstrap).kafka
                await delete_topics(settings, [self.topic(spec.name) for spec in topics.topics(self.env)])
        if self.started_broker:
            await asyncio.to_thread(broker.stop)
            self.out("broker stopped")

    async def __aenter__(self) -> LocalSystem:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # Talking to the running system.
    async def post(self, http: aiohttp.ClientSession, events: Sequence[EventBase], batch: int = 1000) -> list[str]:
        """POST events to ingest as NDJSON batches; returns the accepted ids (raises on any rejection)."""
        accepted: list[str] = []
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/x-ndjson"}
        url = f"{self.services['ingest'].url}/v1/events"
        for start in range(0, len(events), batch):
            body = "\n".join(ev.model_dump_json() for ev in events[start : start + batch]) + "\n"
            async with http.post(url, data=body.encode(), headers=headers) as response:
                reply = await response.json()
                if response.status != 202 or reply.get("rejected"):
                    raise RuntimeError(f"ingest answered {response.status}: {reply}")
                accepted.extend(reply["accepted"])
        return accepted

    @contextlib.asynccontextmanager
    async def consume(self, *names: str, from_beginning: bool = True) -> AsyncIterator[AIOKafkaConsumer]:
        consumer = AIOKafkaConsumer(
            *(self.topic(n) for n in names),
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest" if from_beginning else "latest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            yield consumer
        finally:
            await consumer.stop()


def parse_output(topic: str, value: bytes) -> Figures | Alert:
    return Alert.model_validate_json(value) if topic.endswith("alerts") else Figures.model_validate_json(value)
