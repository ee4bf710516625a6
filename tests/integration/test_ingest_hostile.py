"""Seeded hostile HTTP input against the real ingest service (`segwatch ingest serve`, the real broker, a
namespace of its own): bad encodings, oversized and slow bodies, odd numbers, wrong types, unknown fields.
Every answer is 2xx or 4xx naming the field or the header, never 5xx; every line of every request is
answered (accepted or rejected); every accepted id is on the topics; half-open connections are closed."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer

from segwatch.config import KafkaSettings
from segwatch.kafka.admin import admin_client, delete_topics
from segwatch.kafka.broker import run_sync
from segwatch.system import answers_ready
from segwatch.waiting import wait_until
from tests.support.kafka import unique_name

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 64 * 1024
ODD_VALUES: list[Any] = [
    "١٢٣",
    "１２",
    "1_000",
    "\u00a01",
    True,
    None,
    [],
    {},
    "1e999999999",
    1.5e300,
    "NaN",
    "-Infinity",
    "1.234",
    "",
    "x",
    10**20,
    -1,
    "0x10",
]
FIELDS = [
    "cash",
    "securities",
    "unrealized",
    "long_options",
    "short_options",
    "currency",
    "segment",
    "as_of",
    "account",
    "event_id",
    "source",
    "schema_version",
    "type",
]
HUGE_NUMBER = "9" * 5000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _account(event_id: str, rng: random.Random) -> dict[str, Any]:
    return {
        "type": "account_balance",
        "event_id": event_id,
        "source": rng.choice(["it-ledger", f"x-{rng.random()}"]),
        "as_of": "2026-11-20T22:00:00Z",
        "segment": "4d2",
        "account": f"H-{rng.randrange(50)}",
        "currency": "USD",
        "cash": f"{rng.randrange(-(10**6), 10**6)}.{rng.randrange(100):02d}",
        "securities": "0",
        "unrealized": "0",
        "long_options": "0",
        "short_options": "0",
    }


def _line(event_id: str, rng: random.Random) -> bytes:
    """One NDJSON line: a valid event, or one made odd in one way."""
    event = _account(event_id, rng)
    kind = rng.randrange(6)
    if kind == 1:
        event[rng.choice(FIELDS)] = rng.choice(ODD_VALUES)
    elif kind == 2:
        event[f"unknown_{rng.randrange(3)}"] = 1
    elif kind == 3:
        del event[rng.choice(FIELDS[:11])]
    elif kind == 4:
        return json.dumps(event).replace(f'"cash": "{event["cash"]}"', f'"cash": {HUGE_NUMBER}').encode()
    return json.dumps(event, ensure_ascii=rng.random() < 0.5).encode()


class Service:
    def __init__(self, port: int, token: str, log: Path) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.port = port
        self.token = token
        self.log = log


async def _wait_ready(session: aiohttp.ClientSession, service: Service, process: subprocess.Popen[bytes]) -> None:
    async def ready() -> bool:
        assert process.poll() is None, f"serve exited {process.returncode}:\n{service.log.read_text()}"
        return await answers_ready(session, f"{service.base}/readyz")

    await wait_until(
        ready, what="segwatch ingest serve to be ready", timeout=60, interval=0.2, detail=service.log.read_text
    )


async def _raw(service: Service, head: bytes, body: bytes) -> bytes:
    """Send a request head and part of its body, never the rest; what the server answers until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    try:
        writer.write(head + body)
        await writer.drain()
        answer = b""
        while chunk := await asyncio.wait_for(reader.read(4096), 30):
            answer += chunk
        return answer
    finally:
        writer.close()


async def test_hostile_requests_get_2xx_or_4xx_naming_the_problem_and_lose_nothing(
    kafka_bootstrap: str, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    rng = random.Random(20261120)
    namespace = unique_name("hostile") + "."
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SEGWATCH_NAMESPACE": namespace,
        "SEGWATCH_BALANCE_PARTITIONS": "2",
    }
    applied = subprocess.run(
        [sys.executable, "-m", "segwatch.cli", "topics", "apply"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    service = Service(_free_port(), "hostile-" + uuid.uuid4().hex, tmp_path / "serve.log")
    with open(service.log, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "segwatch.cli", "ingest", "serve", "--port", str(service.port)],
            env={
                **env,
                "SEGWATCH_INGEST_TOKENS": service.token,
                "SEGWATCH_LOG_FORMAT": "json",
                "SEGWATCH_INGEST_MAX_BYTES": str(MAX_BYTES),
                "SEGWATCH_INGEST_HEADER_TIMEOUT": "1",
                "SEGWATCH_INGEST_BODY_TIMEOUT": "1",
                "SEGWATCH_INGEST_SOURCES": "it-ledger",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    accepted: set[str] = set()
    statuses: list[int] = []
    try:
        async with aiohttp.ClientSession() as session:
            await _wait_ready(session, service, process)
            auth = {"Authorization": f"Bearer {service.token}"}
            for n in range(60):
                ids = [f"h-{namespace}{n}-{i}" for i in range(rng.randint(1, 6))]
                lines = [_line(event_id, rng) for event_id in ids]
                body = b"\n".join(lines)
                headers = {**auth, "Content-Type": "application/x-ndjson"}
                kind = rng.randrange(8)
                expect_header = None
                if kind == 0:
                    body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
                elif kind == 1:
                    body, headers["Content-Encoding"] = zlib.compress(body), "deflate"
                elif kind == 2:
                    headers["Content-Encoding"] = rng.choice(["gzip", "deflate"])
                    body = rng.choice([b"garbage", gzip.compress(body)[:-9], body])
                    expect_header = "Content-Encoding"
                elif kind == 3:
                    headers["Content-Encoding"] = rng.choice(["br", "zstd", "compress", "gzip, gzip"])
                    expect_header = "Content-Encoding"
                elif kind == 4:
                    body = body + b"\n" + b" " * (MAX_BYTES + 1)
                    expect_header = "SEGWATCH_INGEST_MAX_BYTES"
                elif kind == 5:
                    body, headers["Content-Encoding"] = gzip.compress(b"\n" * (4 * MAX_BYTES) + body), "gzip"
                    expect_header = "SEGWATCH_INGEST_MAX_BYTES"
                async with session.post(f"{service.base}/v1/events", data=body, headers=headers) as response:
                    status, text = response.status, await response.text()
                statuses.append(status)
                assert status < 500, (status, text)
                reply = json.loads(text)
                if expect_header is not None:
                    assert status in (400, 413, 415) and expect_header in reply["error"], (status, text)
                    continue
                assert status in (202, 422), (status, text)
                answered = len(reply["accepted"]) + len(reply["rejected"])
                assert answered == len(lines), reply  # every line answered
                assert all(r["field"] and r["reason"] for r in reply["rejected"]), reply
                assert all(r["field"] != "(record)" for r in reply["rejected"]), reply  # named fields only
                assert set(reply["accepted"]) <= set(ids)
                accepted |= set(reply["accepted"])

            # A slow body: 408 naming the setting. A half-open head: closed without an answer.
            head = (
                f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {service.token}\r\n"
                "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n"
            ).encode()
            slow = await _raw(service, head, b'{"type": ')
            assert slow.startswith(b"HTTP/1.1 408") and b"SEGWATCH_INGEST_BODY_TIMEOUT" in slow, slow
            assert await _raw(service, b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Le", b"") == b""

            async with session.get(f"{service.base}/metrics") as response:
                metrics = await response.text()
            sources = {
                line.split('source="')[1].split('"')[0]
                for line in metrics.splitlines()
                if line.startswith("segwatch_ingest_source_last_seen_timestamp_seconds{")
            }
            assert sources <= {"it-ledger", "other"} and sources, metrics
        assert accepted and 422 in statuses and 202 in statuses
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, service.log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    try:
        on_topic = await _all_ids(kafka_settings, f"{namespace}segwatch.balances", accepted)
        assert on_topic == accepted  # every accepted id is on the topic
    finally:
        run_sync(lambda: _delete_namespace(kafka_settings, namespace))
    assert "Traceback" not in service.log.read_text()


async def _all_ids(settings: KafkaSettings, topic: str, wanted: set[str], timeout: float = 30.0) -> set[str]:
    consumer = AIOKafkaConsumer(
        topic, **settings.aiokafka_kwargs(), auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    try:
        while not wanted <= seen and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                seen |= {json.loads(r.value)["event_id"] for r in records}
    finally:
        await consumer.stop()
    return seen


async def _delete_namespace(settings: KafkaSettings, namespace: str) -> None:
    async with admin_client(settings) as client:
        names = [name for name in await client.list_topics() if name.startswith(namespace)]
    await delete_topics(settings, names)
