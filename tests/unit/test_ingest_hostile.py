"""Hostile or careless HTTP input: Content-Encodings, slow and half-open connections, client-chosen sources."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import pytest
from prometheus_client.parser import text_string_to_metric_families

from segwatch.errors import InputError
from services.ingest.config import DEFAULT_MAX_SOURCES, IngestConfig
from tests.support.ingest import JSON, NDJSON, TOKEN, account, serving

BODY = account("e-1").encode()


@pytest.mark.parametrize(
    ("encoding", "body", "status", "says"),
    [
        ("gzip", gzip.compress(BODY), 202, None),
        ("x-gzip", gzip.compress(BODY), 202, None),
        ("deflate", zlib.compress(BODY), 202, None),
        ("deflate", zlib.compress(BODY)[2:-4], 202, None),  # raw deflate, as some clients send it
        ("identity", BODY, 202, None),
        ("GZIP", gzip.compress(BODY), 202, None),
        ("gzip", b"garbage, not gzip", 400, "Content-Encoding gzip: the body cannot be decoded"),
        ("deflate", b"\x00\x01garbage", 400, "Content-Encoding deflate: the body cannot be decoded"),
        ("gzip", gzip.compress(BODY)[:-12], 400, "truncated"),
        ("gzip", gzip.compress(BODY) + b"trailing", 400, "data follows the end"),
        ("gzip", b"", 400, "Content-Encoding gzip"),
        ("br", BODY, 415, "Content-Encoding 'br' is not supported"),
        ("zstd", BODY, 415, "Content-Encoding 'zstd' is not supported"),
        ("compress", BODY, 415, "Content-Encoding 'compress'"),
        ("gzip, gzip", gzip.compress(gzip.compress(BODY)), 415, "Content-Encoding 'gzip, gzip'"),
        ("\u00e9t\u00e9", BODY, 415, "Content-Encoding"),
    ],
)
async def test_content_encoding_is_decoded_or_refused_naming_the_header(
    encoding: str,
    body: bytes,
    status: int,
    says: str | None,
) -> None:
    async with serving() as (client, publisher):
        response = await client.post("/v1/events", data=body, headers={**JSON, "Content-Encoding": encoding})
        text = await response.text()
        assert response.status == status, text
        if says is None:
            assert [e.event_id for e in publisher.published] == ["e-1"]
        else:
            assert says in text and publisher.published == []


async def test_a_compressed_body_is_bounded_once_decoded() -> None:
    config = IngestConfig(tokens=(TOKEN.encode(),), max_bytes=64 * 1024)
    bomb = gzip.compress(b"\n" * (10 * 1024 * 1024) + BODY)
    assert len(bomb) < config.max_bytes
    async with serving(config=config) as (client, publisher):
        response = await client.post("/v1/events", data=bomb, headers={**NDJSON, "Content-Encoding": "gzip"})
        assert response.status == 413
        assert "once decoded" in await response.text() and publisher.published == []


async def _closed_by_server(reader: asyncio.StreamReader, within: float = 10.0) -> bytes:
    """What the server sent before closing the connection (fails if it never closes it)."""
    return await asyncio.wait_for(reader.read(), within)


async def test_a_half_open_connection_is_closed_after_the_header_timeout() -> None:
    config = IngestConfig(tokens=(TOKEN.encode(),), header_timeout=0.3)
    async with serving(config=config) as (client, _):
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-")  # and never the rest of the head
        await writer.drain()
        assert await _closed_by_server(reader) == b""
        writer.close()
        silent_reader, silent = await asyncio.open_connection(client.host, client.port)  # sends nothing at all
        assert await _closed_by_server(silent_reader) == b""
        silent.close()


async def test_a_slow_body_gets_408_naming_the_setting() -> None:
    config = IngestConfig(tokens=(TOKEN.encode(),), body_timeout=0.3)
    async with serving(config=config) as (client, publisher):
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(
            f"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n".encode()
            + BODY[:10]
        )
        await writer.drain()
        answer = b""
        while b"SEGWATCH_INGEST_BODY_TIMEOUT" not in answer:  # the answer, before the rest is ever sent
            chunk = await asyncio.wait_for(reader.read(4096), 10)
            assert chunk, answer
            answer += chunk
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"SEGWATCH_INGEST_BODY_TIMEOUT" in answer and publisher.published == []


def test_timeouts_and_sources_from_the_environment() -> None:
    env = {
        "SEGWATCH_INGEST_TOKENS": "t",
        "SEGWATCH_INGEST_HEADER_TIMEOUT": "2.5",
        "SEGWATCH_INGEST_BODY_TIMEOUT": "30",
        "SEGWATCH_INGEST_SOURCES": "ledger, bai2:021000021,,fx",
    }
    config = IngestConfig.from_env(env)
    assert (config.header_timeout, config.body_timeout) == (2.5, 30.0)
    assert config.sources == frozenset({"ledger", "bai2:021000021", "fx"})
    defaults = IngestConfig.from_env({"SEGWATCH_INGEST_TOKENS": "t"})
    assert (defaults.header_timeout, defaults.body_timeout, defaults.sources) == (15.0, 60.0, None)
    for var, value in (
        ("SEGWATCH_INGEST_HEADER_TIMEOUT", "0"),
        ("SEGWATCH_INGEST_BODY_TIMEOUT", "inf"),
        ("SEGWATCH_INGEST_SOURCES", "other"),
        ("SEGWATCH_INGEST_SOURCES", "x" * 65),
    ):
        with pytest.raises(InputError) as info:
            IngestConfig.from_env({"SEGWATCH_INGEST_TOKENS": "t", var: value})
        assert info.value.field == var


def event(event_id: str, source: str) -> str:
    return account(event_id).replace('"source": "ledger"', f'"source": "{source}"')


async def labels(client) -> set[str]:  # type: ignore[no-untyped-def]
    text = await (await client.get("/metrics")).text()
    return {
        s.labels["source"]
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "segwatch_ingest_source_last_seen_timestamp_seconds"
    }


async def test_only_configured_sources_get_a_label() -> None:
    config = IngestConfig(tokens=(TOKEN.encode(),), sources=frozenset({"ledger"}))
    async with serving(config=config) as (client, _):
        body = "\n".join(event(f"e-{i}", source) for i, source in enumerate(["ledger", "x1", "x2", "other"]))
        assert (await client.post("/v1/events", data=body, headers=NDJSON)).status == 202
        assert await labels(client) == {"ledger", "other"}


async def test_without_configuration_the_label_is_bounded() -> None:
    async with serving() as (client, _):
        sources = [f"src-{i}" for i in range(DEFAULT_MAX_SOURCES + 30)]
        body = "\n".join(event(f"e-{i}", source) for i, source in enumerate(sources))
        assert (await client.post("/v1/events", data=body, headers=NDJSON)).status == 202
        seen = await labels(client)
        assert len(seen) == DEFAULT_MAX_SOURCES + 1 and "other" in seen
        assert seen - {"other"} <= set(sources)
