"""The ingest HTTP API with a fake publisher: auth, limits, validation, per-line results, dead letters, probes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.events import EVENT_ADAPTER, AccountBalance, FxRate
from segwatch.errors import InputError
from services.ingest.config import IngestConfig
from services.ingest.publisher import (
    KafkaPublisher,
    event_key,
    event_value,
    topic_for,
)
from tests.support.ingest import AUTH, JSON, NDJSON, TOKEN, FakePublisher, account, fx, serving


async def test_single_event_is_published_and_acknowledged() -> None:
    async with serving() as (client, publisher):
        response = await client.post("/v1/events", data=account("e-1"), headers=JSON)
        assert response.status == 202
        assert await response.json() == {"accepted": ["e-1"], "rejected": []}
        [event] = publisher.published
        assert isinstance(event, AccountBalance) and event.cash == Decimal("100.00")


async def test_number_amounts_are_exact() -> None:
    async with serving() as (client, publisher):
        response = await client.post("/v1/events", data=account("e-2", cash="0.1"), headers=JSON)
        assert response.status == 202
        assert publisher.published[0].cash == Decimal("0.10")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        ({"Content-Type": "application/json"}, 'Bearer realm="segwatch-ingest"'),
        ({"Content-Type": "application/json", "Authorization": "Bearer wrong"}, 'error="invalid_token"'),
        ({"Content-Type": "application/json", "Authorization": f"Basic {TOKEN}"}, 'error="invalid_token"'),
        ({"Content-Type": "application/json", "Authorization": "Bearer"}, 'error="invalid_token"'),
    ],
)
async def test_without_a_valid_token_401(headers: dict[str, str], challenge: str) -> None:
    async with serving() as (client, publisher):
        response = await client.post("/v1/events", data=account("e-1"), headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert challenge in response.headers["WWW-Authenticate"]
        assert publisher.published == [] and publisher.batches == []


async def test_any_configured_token_works_and_scheme_is_case_insensitive() -> None:
    config = IngestConfig(tokens=(b"first-token", b"second-token"))
    async with serving(config=config) as (client, _):
        for header in ("Bearer first-token", "bearer second-token"):
            response = await client.post(
                "/v1/events", data=fx("fx-1"), headers={"Authorization": header, "Content-Type": "application/json"}
            )
            assert response.status == 202, header


async def test_anonymous_mode_needs_no_token() -> None:
    async with serving(config=IngestConfig(allow_anonymous=True)) as (client, _):
        response = await client.post("/v1/events", data=fx("fx-1"), headers={"Content-Type": "application/json"})
        assert response.status == 202


def test_config_refuses_to_start_without_tokens(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        IngestConfig.from_env({})
    assert "SEGWATCH_INGEST_ALLOW_ANONYMOUS=1" in str(err.value)
    assert IngestConfig.from_env({"SEGWATCH_INGEST_ALLOW_ANONYMOUS": "1"}).authenticated is False
    assert IngestConfig.from_env({"SEGWATCH_INGEST_TOKENS": " a , b,,"}).tokens == (b"a", b"b")
    tokens = tmp_path / "tokens"
    tokens.write_text("# ingest clients\nledger-token\n\nbank-token\n")
    config = IngestConfig.from_env({"SEGWATCH_INGEST_TOKENS_FILE": str(tokens), "SEGWATCH_INGEST_TOKENS": "x"})
    assert config.tokens == (b"x", b"ledger-token", b"bank-token")
    with pytest.raises(InputError, match="SEGWATCH_INGEST_TOKENS_FILE"):
        IngestConfig.from_env({"SEGWATCH_INGEST_TOKENS_FILE": str(tmp_path / "missing")})
    with pytest.raises(InputError, match="SEGWATCH_INGEST_MAX_BYTES"):
        IngestConfig.from_env({"SEGWATCH_INGEST_TOKENS": "x", "SEGWATCH_INGEST_MAX_BYTES": "lots"})


@pytest.mark.parametrize("raw", ["0", "-1", "inf", "nan", "soon"])
def test_ack_timeout_must_be_a_finite_positive_number(raw: str) -> None:
    with pytest.raises(InputError, match="SEGWATCH_INGEST_ACK_TIMEOUT"):
        IngestConfig.from_env({"SEGWATCH_INGEST_TOKENS": "x", "SEGWATCH_INGEST_ACK_TIMEOUT": raw})
    config = IngestConfig.from_env({"SEGWATCH_INGEST_TOKENS": "x", "SEGWATCH_INGEST_ACK_TIMEOUT": "2.5"})
    assert config.ack_timeout == 2.5


async def test_mixed_batch_accepts_the_good_and_reports_each_bad_line() -> None:
    body = (
        "\n".join(
            [
                account("b-1", account="C-1"),
                account("b-2", cash='"1.234"'),
                "",  # blank lines are skipped but keep the numbering
                fx("b-4"),
                '{"type": "account_balance", "event_id": ',
                account("b-6", account="C-2"),
                fx("b-7", rate='"0"'),
            ]
        )
        + "\n"
    )
    async with serving() as (client, publisher):
        response = await client.post("/v1/events", data=body, headers=NDJSON)
        assert response.status == 202
        result = await response.json()
        assert result["accepted"] == ["b-1", "b-4", "b-6"]
        rejected = [(r["line"], r["field"]) for r in result["rejected"]]
        assert rejected == [(2, "cash"), (5, "(record)"), (7, "usd_per_unit")]
        assert "2 decimal places" in result["rejected"][0]["reason"]
        assert result["rejected"][1]["reason"].startswith("not valid JSON")
        assert "greater than 0" in result["rejected"][2]["reason"]
        assert [e.event_id for e in publisher.published] == ["b-1", "b-4", "b-6"]
        assert publisher.batches == [3]  # one publish call for the whole batch


async def test_all_bad_batch_is_422_and_publishes_nothing() -> None:
    body = account("x-1", cash='"abc"') + "\n" + '{"type": "margin_call"}' + "\n"
    async with serving() as (client, publisher):
        response = await client.post("/v1/events", data=body, headers=NDJSON)
        assert response.status == 422
        result = await response.json()
        assert result["accepted"] == []
        assert [(r["line"], r["field"]) for r in result["rejected"]] == [(1, "cash"), (2, "type")]
        assert "unknown event type 'margin_call'" in result["rejected"][1]["reason"]
        assert publisher.published == []


async def test_single_invalid_event_is_422_with_field_and_reason() -> None:
    async with serving() as (client, _):
        response = await client.post("/v1/events", data=account("e-1", currency='"usd"'), headers=JSON)
        assert response.status == 422
        [rejected] = (await response.json())["rejected"]
        assert rejected["line"] == 1 and rejected["field"] == "currency"


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        (JSON, b'{"type": "fx_rate", ', "malformed body: not valid JSON"),
        (JSON, b"", "malformed body: empty"),
        (JSON, b'{"type": "fx_rate", "source": "caf\xe9"}', "malformed body: not UTF-8"),
        (NDJSON, b"\n\n", "malformed body: no events"),
        (NDJSON, fx("ok").encode() + b"\n\xff\xfe\n", "malformed body: not UTF-8"),
    ],
)
async def test_malformed_body_400(headers: dict[str, str], body: bytes, message: str) -> None:
    async with serving() as (client, publisher):
        response = await client.post("/v1/events", data=body, headers=headers)
        assert response.status == 400
        assert (await response.json())["error"].startswith(message)
        assert publisher.published == []


async def test_other_content_types_415() -> None:
    async with serving() as (client, _):
        response = await client.post("/v1/events", data=fx("x"), headers={**AUTH, "Content-Type": "text/plain"})
        assert response.status == 415
        response = await client.post(
            "/v1/events", data=fx("x"), headers={**AUTH, "Content-Type": "application/json; charset=latin-1"}
        )
        assert response.status == 415


async def test_too_many_bytes_or_events_413() -> None:
    config = IngestConfig(tokens=(TOKEN.encode(),), max_bytes=2000, max_events=3)
    async with serving(config=config) as (client, publisher):
        big = "\n".join(fx(f"f-{i}") for i in range(20))
        response = await client.post("/v1/events", data=big, headers=NDJSON)
        assert response.status == 413
        assert "SEGWATCH_INGEST_MAX_BYTES" in (await response.json())["error"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while reading
            for i in range(20):
                yield (fx(f"c-{i}") + "\n").encode()

        response = await client.post("/v1/events", data=chunks(), headers=NDJSON)
        assert response.status == 413

        four = "\n".join(fx(f"g-{i}") for i in range(4))
        response = await client.post("/v1/events", data=four, headers=NDJSON)
        assert response.status == 413
        assert "at most 3" in (await response.json())["error"]

        three = "\n".join(fx(f"h-{i}") for i in range(3))
        response = await client.post("/v1/events", data=three, headers=NDJSON)
        assert response.status == 202
        assert [e.event_id for e in publisher.published] == ["h-0", "h-1", "h-2"]


async def test_unpublished_events_are_503_and_dead_lettered() -> None:
    publisher = FakePublisher(
        fail=lambda e: "not acknowledged by Kafka: KafkaTimeoutError" if e.event_id == "p-2" else None
    )
    body = "\n".join([fx("p-1"), fx("p-2"), account("p-3", cash='"x"')])
    async with serving(publisher) as (client, _):
        response = await client.post("/v1/events", data=body, headers=NDJSON)
        assert response.status == 503
        assert response.headers["Retry-After"]
        result = await response.json()
        assert result["accepted"] == ["p-1"]
        assert [r["line"] for r in result["rejected"]] == [3]
        assert result["failed"] == [
            {
                "line": 2,
                "event_id": "p-2",
                "dead_lettered": True,
                "reason": "not acknowledged by Kafka: KafkaTimeoutError",
            }
        ]
        [letter] = publisher.letters
        assert letter.stage == "ingest"
        assert letter.reason == "not acknowledged by Kafka: KafkaTimeoutError"
        assert json.loads(letter.payload)["event_id"] == "p-2"
        assert "line 2" in letter.source

        metrics = await (await client.get("/metrics")).text()
        assert 'segwatch_ingest_events_total{outcome="accepted"} 1.0' in metrics
        assert 'segwatch_ingest_events_total{outcome="rejected"} 1.0' in metrics
        assert 'segwatch_ingest_events_total{outcome="dead_lettered"} 1.0' in metrics


async def test_when_dead_lettering_fails_too_the_client_is_told() -> None:
    publisher = FakePublisher(fail=lambda e: "broker down", dead_letter_error="broker down")
    async with serving(publisher) as (client, _):
        response = await client.post("/v1/events", data=fx("q-1"), headers=JSON)
        assert response.status == 503
        assert (await response.json())["failed"][0]["dead_lettered"] is False


async def test_probes_and_metrics() -> None:
    publisher = FakePublisher(broker_up=False)
    async with serving(publisher) as (client, _):
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 503  # producer started, broker not reachable
        publisher.broker_up = True
        assert (await client.get("/readyz")).status == 200
        await client.post("/v1/events", data=fx("m-1"), headers=JSON)
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
        assert 'segwatch_ingest_events_total{outcome="accepted"} 1.0' in text
        assert "segwatch_ingest_request_seconds_count 1.0" in text
        assert "segwatch_ingest_publish_seconds_count 1.0" in text
    assert publisher.stopped  # app cleanup stops (flushes) the producer


async def test_two_apps_keep_separate_metrics() -> None:
    async with serving() as (first, _), serving() as (second, _):
        await first.post("/v1/events", data=fx("s-1"), headers=JSON)
        text = await (await second.get("/metrics")).text()
        assert 'segwatch_ingest_events_total{outcome="accepted"} 0.0' in text


def test_routing_key_and_value() -> None:
    acct = EVENT_ADAPTER.validate_json(account("r-1", account="C-77"))
    rate = EVENT_ADAPTER.validate_json(fx("r-2"))
    assert isinstance(acct, AccountBalance) and isinstance(rate, FxRate)
    assert (topic_for(acct), event_key(acct)) == ("segwatch.balances", b"acct|4d2|C-77")
    assert (topic_for(rate), event_key(rate)) == ("segwatch.settings", b"fx|EUR")
    assert event_value(acct) == acct.model_dump_json().encode()
    assert json.loads(event_value(acct))["cash"] == "100.00"  # amounts travel as decimal strings


async def test_kafka_publisher_not_started_reports_every_event() -> None:
    publisher = KafkaPublisher()
    rate = EVENT_ADAPTER.validate_json(fx("k-1"))
    assert publisher.started is False
    assert await publisher.reachable() is False
    [outcome] = await publisher.publish([rate])
    assert outcome is not None and "not started" in outcome
