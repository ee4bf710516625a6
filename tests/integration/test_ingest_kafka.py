"""The ingest service against the real broker: HTTP batches and files end up on the topics, bad records on
the dead-letter topic. Topics are shared, so each test uses unique event ids and reads only from the offsets
the topics had when it started, keeping only what it produced."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2

from segwatch.config import KafkaSettings
from segwatch.kafka.admin import admin_client, describe_topics
from segwatch.kafka.topics import BALANCES, DEADLETTER, SETTINGS, TopicSpec
from segwatch.system import answers_ready
from segwatch.waiting import wait_until
from services.ingest.api import create_app, runner_options
from services.ingest.config import IngestConfig
from services.ingest.files import FileOptions, load_file, publish_parse
from services.ingest.publisher import InFlight, KafkaPublisher, PublisherError
from tests.support.kafka import NewTopic, unique_name

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "services" / "ingest" / "examples"
TOKEN = "integration-token-" + uuid.uuid4().hex


class Tail:
    """Reads `topics` from their end offsets at creation time: only records produced afterwards."""

    def __init__(self, settings: KafkaSettings, topics: Sequence[str]) -> None:
        self.settings = settings
        self.topics = topics
        self.consumer: Any = None

    async def __aenter__(self) -> Tail:
        async with admin_client(self.settings) as admin:
            states = await describe_topics(admin, list(self.topics))
        partitions = [TopicPartition(topic, p) for topic in self.topics for p in range(states[topic].partitions)]
        self.consumer = AIOKafkaConsumer(**self.settings.aiokafka_kwargs(), enable_auto_commit=False)
        await self.consumer.start()
        self.consumer.assign(partitions)
        ends = await self.consumer.end_offsets(partitions)
        for tp, offset in ends.items():
            self.consumer.seek(tp, offset)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def collect(
        self, keep: Callable[[Any], bool], done: Callable[[list[Any]], bool], timeout: float = 30.0
    ) -> list[Any]:
        """Records for which keep(record) holds, until done(records); fails after `timeout` seconds."""
        kept: list[Any] = []
        deadline = time.monotonic() + timeout
        while not done(kept):
            if time.monotonic() > deadline:
                pytest.fail(f"{self.topics}: gave up after {timeout:.0f}s with {len(kept)} records: {kept!r}")
            batch = await self.consumer.getmany(timeout_ms=300)
            for records in batch.values():
                kept.extend(r for r in records if keep(r))
        return kept


def _event_id(record: Any) -> str | None:
    try:
        value = json.loads(record.value)
    except ValueError:
        return None
    return value.get("event_id") if isinstance(value, dict) else None


def _account(event_id: str, account: str, as_of: str, cash: str) -> dict[str, Any]:
    return {
        "type": "account_balance",
        "event_id": event_id,
        "source": "it-ledger",
        "as_of": as_of,
        "segment": "4d2",
        "account": account,
        "currency": "USD",
        "cash": cash,
        "securities": "0",
        "unrealized": "-1.50",
        "long_options": "0",
        "short_options": "0",
    }


def _depository(event_id: str, depository: str, as_of: str, amount: str) -> dict[str, Any]:
    return {
        "type": "depository_balance",
        "event_id": event_id,
        "source": "it-bank",
        "as_of": as_of,
        "segment": "4d2",
        "depository": depository,
        "line": "7070",
        "currency": "USD",
        "location": "us",
        "amount": amount,
    }


async def _ready(client: TestClient[Any, Any], timeout: float = 30.0) -> None:
    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    await wait_until(ready, what="/readyz to answer 200", timeout=timeout, interval=0.2)


async def test_http_batch_lands_on_the_topics_keyed_and_partitioned_by_account(
    kafka_settings: KafkaSettings, kafka_topics: tuple[TopicSpec, ...]
) -> None:
    run = uuid.uuid4().hex[:12]
    events: list[dict[str, Any]] = []
    for a in range(6):
        for i in range(5):
            events.append(
                _account(f"it-{run}-a{a}-{i}", f"IT-{run}-{a}", f"2026-11-20T{10 + i:02d}:00:00Z", f"{1000 * a + i}.25")
            )
    for d in range(3):
        for i in range(2):
            events.append(
                _depository(
                    f"it-{run}-d{d}-{i}", f"IT-{run}-DEPO-{d}", f"2026-11-20T{12 + i}:00:00Z", f"{50000 + d}.00"
                )
            )
    events.append(
        {
            "type": "fx_rate",
            "event_id": f"it-{run}-fx",
            "source": "it-fx",
            "as_of": "2026-11-20T21:00:00Z",
            "currency": "CHF",
            "usd_per_unit": "1.1312",
        }
    )
    events.append(
        {
            "type": "management_target",
            "event_id": f"it-{run}-target",
            "source": "it-policy",
            "as_of": "2026-11-20T00:00:00Z",
            "segment": "4df",
            "amount": "10000000.00",
        }
    )
    lines = [json.dumps(e) for e in events]
    bad = _account(f"it-{run}-bad", f"IT-{run}-X", "2026-11-20T10:00:00Z", "1.005")
    lines.insert(3, json.dumps(bad))  # line 4
    single = _account(f"it-{run}-single", f"IT-{run}-0", "2026-11-20T20:00:00Z", "7.00")
    wanted = {e["event_id"]: e for e in [*events, single]}

    publisher = KafkaPublisher(kafka_settings)
    client = TestClient(TestServer(create_app(IngestConfig(tokens=(TOKEN.encode(),)), publisher)))
    await client.start_server()
    try:
        await _ready(client)
        async with Tail(kafka_settings, [BALANCES, SETTINGS]) as tail:
            response = await client.post(
                "/v1/events",
                data="\n".join(lines) + "\n",
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"},
            )
            assert response.status == 202, await response.text()
            body = await response.json()
            assert body["accepted"] == [e["event_id"] for e in events]
            assert [(r["line"], r["field"]) for r in body["rejected"]] == [(4, "cash")]

            response = await client.post(
                "/v1/events",
                data=json.dumps(single),
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            )
            assert response.status == 202 and (await response.json())["accepted"] == [single["event_id"]]

            records = await tail.collect(
                lambda r: _event_id(r) in wanted, lambda kept: {_event_id(r) for r in kept} >= set(wanted)
            )
        metrics = await (await client.get("/metrics")).text()
        assert f'segwatch_ingest_events_total{{outcome="accepted"}} {len(wanted)}.0' in metrics
        assert 'segwatch_ingest_events_total{outcome="rejected"} 1.0' in metrics
    finally:
        await client.close()
    assert not publisher.started  # the app's cleanup stopped (flushed) the producer

    assert len(records) == len(wanted)  # each exactly once
    balance_partitions = next(spec.partitions for spec in kafka_topics if spec.name == BALANCES)
    partitions_of: dict[bytes, set[int]] = {}
    for record in records:
        sent = wanted[_event_id(record)]
        value = json.loads(record.value)
        expected_topic = BALANCES if sent["type"] in ("account_balance", "depository_balance") else SETTINGS
        assert record.topic == expected_topic, sent
        key_of: dict[str, Callable[[dict[str, Any]], str]] = {
            "account_balance": lambda e: f"acct|4d2|{e['account']}",
            "depository_balance": lambda e: f"depo|4d2|{e['depository']}",
            "fx_rate": lambda e: "fx|CHF",
            "management_target": lambda e: "target|4df",
        }
        expected_key = key_of[sent["type"]](sent)
        assert record.key == expected_key.encode()
        for name, given in sent.items():
            assert value[name] == given, (name, value)  # amounts stay decimal strings, exactly as sent
        partitions_of.setdefault(record.key, set()).add(record.partition)
        if record.topic == BALANCES:  # the Java/Faust murmur2 partitioner: co-partitioned with the calculator
            assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % balance_partitions
    assert all(len(parts) == 1 for parts in partitions_of.values()), partitions_of
    per_account = [r for r in records if r.key == f"acct|4d2|IT-{run}-0".encode()]
    assert [_event_id(r) for r in per_account] == [f"it-{run}-a0-{i}" for i in range(5)] + [single["event_id"]]


def _unique_copy(src: Path, dest_dir: Path, run: str, rewrite_ids: bool) -> Path:
    dest = dest_dir / f"{run}-{src.name}"
    if not rewrite_ids:
        shutil.copy(src, dest)
        return dest
    text = src.read_text()
    text = text.replace('"event_id": "', f'"event_id": "{run}-').replace(",ledger-2026", f",{run}-ledger-2026")
    dest.write_text(text)
    return dest


def _ingest(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "segwatch.cli", "ingest", *args],
        env={**os.environ, "KAFKA_BOOTSTRAP": bootstrap},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


async def test_ingest_files_publish_events_and_dead_letter_bad_records(
    kafka_bootstrap: str, kafka_settings: KafkaSettings, kafka_topics: tuple[TopicSpec, ...], tmp_path: Path
) -> None:
    run = "it" + uuid.uuid4().hex[:10]
    ndjson = _unique_copy(EXAMPLES / "events.ndjson", tmp_path, run, rewrite_ids=True)
    ndjson_bad = _unique_copy(EXAMPLES / "errors" / "events-with-errors.ndjson", tmp_path, run, rewrite_ids=True)
    ledger = _unique_copy(EXAMPLES / "ledger.csv", tmp_path, run, rewrite_ids=False)  # ids derived from the name
    ledger_bad = _unique_copy(EXAMPLES / "errors" / "ledger-with-errors.csv", tmp_path, run, rewrite_ids=True)
    bank = _unique_copy(EXAMPLES / "bank.bai2", tmp_path, run, rewrite_ids=False)
    bank_unmapped = _unique_copy(EXAMPLES / "errors" / "bank-unmapped.bai2", tmp_path, run, rewrite_ids=False)
    bank_bad_totals = _unique_copy(EXAMPLES / "errors" / "bank-bad-totals.bai2", tmp_path, run, rewrite_ids=False)
    reference = str(EXAMPLES / "depositories.csv")
    bai2 = FileOptions(depositories=reference, source=f"bai2-{run}")  # the source makes the BAI2 ids unique
    bai2_args = ("--depositories", reference, "--source", f"bai2-{run}")
    runs: list[tuple[Path, tuple[str, ...], FileOptions, int]] = [
        (bank_bad_totals, bai2_args, bai2, 2),
        (ndjson, (), FileOptions(), 0),
        (ledger, (), FileOptions(), 0),
        (bank, bai2_args, bai2, 0),
        (ndjson_bad, (), FileOptions(), 1),
        (ledger_bad, (), FileOptions(), 1),
        (bank_unmapped, bai2_args, bai2, 1),
    ]
    # The events each file must produce, exactly: the same parse the command does, run here without Kafka.
    expected: dict[str, Any] = {}
    for path, _, options, status in runs:
        if status != 2:
            expected.update({p.event.event_id: p.event for p in load_file(str(path), options).events})
    assert len(expected) == 15 + 9 + 5 + 2 + 2 + 1
    expected_letters = (
        {f"{ndjson_bad}:{n}" for n in (2, 3, 4, 5, 6)}
        | {f"{ledger_bad}:{n}" for n in (3, 4, 5, 6, 7, 8)}
        | {f"{bank_unmapped}:{n}" for n in (5, 7, 9)}
    )

    async with Tail(kafka_settings, [BALANCES, SETTINGS, DEADLETTER]) as tail:
        outputs: dict[Path, subprocess.CompletedProcess[str]] = {}
        for path, extra, _, status in runs:
            done = await asyncio.to_thread(_ingest, kafka_bootstrap, str(path), *extra)
            assert done.returncode == status, f"{path.name}: exit {done.returncode}\n{done.stdout}{done.stderr}"
            assert "Traceback" not in done.stderr, done.stderr
            outputs[path] = done

        def ours(record: Any) -> bool:
            if record.topic == DEADLETTER:
                return str(json.loads(record.value).get("source", "")).startswith(str(tmp_path))
            return _event_id(record) in expected

        def complete(kept: list[Any]) -> bool:
            letters = {json.loads(r.value)["source"] for r in kept if r.topic == DEADLETTER}
            ids = {_event_id(r) for r in kept if r.topic != DEADLETTER}
            return ids >= set(expected) and letters >= expected_letters

        records = await tail.collect(ours, complete, timeout=60)

    assert "15 accepted, 0 dead-lettered" in outputs[ndjson].stdout
    assert "2 accepted, 5 dead-lettered to segwatch.deadletter" in outputs[ndjson_bad].stdout
    assert "1 accepted, 3 dead-lettered to segwatch.deadletter" in outputs[bank_unmapped].stdout
    assert "group control total is 38125000100" in outputs[bank_bad_totals].stderr
    assert f"{ledger_bad}:3: cash: Decimal input should have no more than 2 decimal places" in (
        outputs[ledger_bad].stderr
    )

    events = [r for r in records if r.topic != DEADLETTER]
    assert len(events) == len(expected)  # each exactly once
    for record in events:
        event = expected[_event_id(record)]  # type: ignore[index]
        assert record.topic == (BALANCES if event.type in ("account_balance", "depository_balance") else SETTINGS)
        assert record.key == event.key.encode()
        assert json.loads(record.value) == json.loads(event.model_dump_json())
    bank_amounts = sorted(
        (v["depository"], v["amount"]) for v in (json.loads(r.value) for r in events) if v["source"] == f"bai2-{run}"
    )
    assert bank_amounts == sorted(
        [
            ("JPMC-SEG-CASH", "131250000.00"),
            ("JPMC-SEG-TSY", "250000000.00"),
            ("JPMC-307-CASH", "42000000.00"),
            ("JPMC-CSW-CASH", "18500000.00"),
            ("JPMC-LDN-307-EUR", "3400000.00"),
            ("JPMC-SEG-CASH", "131250000.00"),  # the one good account of bank-unmapped.bai2
        ]
    )

    letters = {v["source"]: v for v in (json.loads(r.value) for r in records if r.topic == DEADLETTER)}
    assert set(letters) == expected_letters  # nothing from the file with bad totals, nothing twice
    assert all(v["stage"] == "ingest" for v in letters.values())

    def letter(path: Path, line: int) -> tuple[str, str]:
        v = letters[f"{path}:{line}"]
        return v["field"], v["reason"]

    assert letter(ndjson_bad, 2) == ("usd_per_unit", "Input should be greater than 0")
    assert letter(ndjson_bad, 3) == ("short_options", "required field is missing")
    assert letter(ndjson_bad, 4)[0] == "line"
    assert letter(ndjson_bad, 5) == ("type", "unknown event type 'margin_call'")
    assert letter(ndjson_bad, 6)[0] == "(record)" and letter(ndjson_bad, 6)[1].startswith("not valid JSON")
    assert letter(ledger_bad, 3)[0] == "cash"
    assert letter(ledger_bad, 8) == ("(record)", "expected 11 fields, got 10")
    assert letters[f"{ledger_bad}:3"]["payload"].startswith("4d2,C-100232,USD,")
    assert letter(bank_unmapped, 5)[0] == "account" and "000999999999 is not in" in letter(bank_unmapped, 5)[1]
    assert letter(bank_unmapped, 7)[0] == "currency" and "reports CAD" in letter(bank_unmapped, 7)[1]
    assert letter(bank_unmapped, 9) == ("amount", "bank account 000777000222: no amount of type code 015")
    assert letters[f"{bank_unmapped}:7"]["payload"] == "03,000555000111,CAD,015,4200000000,,/"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_serve_command_publishes_and_stops_cleanly_on_sigterm(
    kafka_bootstrap: str, kafka_settings: KafkaSettings, kafka_topics: tuple[TopicSpec, ...], tmp_path: Path
) -> None:
    port = _free_port()
    token = "serve-" + uuid.uuid4().hex
    event = _account(
        f"it-serve-{uuid.uuid4().hex[:12]}", f"IT-SERVE-{uuid.uuid4().hex[:8]}", "2026-11-20T22:00:00Z", "42.00"
    )
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "segwatch.cli", "ingest", "serve", "--port", str(port)],
            env={
                **os.environ,
                "KAFKA_BOOTSTRAP": kafka_bootstrap,
                "SEGWATCH_INGEST_TOKENS": token,
                "SEGWATCH_LOG_FORMAT": "json",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:

            async def ready() -> bool:
                assert process.poll() is None, f"serve exited {process.returncode}:\n{log_path.read_text()}"
                return await answers_ready(session, f"{base}/readyz")

            await wait_until(
                ready, what="segwatch ingest serve to be ready", timeout=30, interval=0.2, detail=log_path.read_text
            )
            async with session.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with Tail(kafka_settings, [BALANCES]) as tail:
                async with session.post(f"{base}/v1/events", json=event) as response:
                    assert response.status == 401  # no token
                async with session.post(
                    f"{base}/v1/events", json=event, headers={"Authorization": f"Bearer {token}"}
                ) as response:
                    assert response.status == 202, await response.text()
                [record] = await tail.collect(lambda r: _event_id(r) == event["event_id"], lambda kept: len(kept) >= 1)
            assert record.key == f"acct|4d2|{event['account']}".encode()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    logs = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    messages = [entry.get("event") for entry in logs if entry.get("service") == "ingest"]
    assert "ingest listening" in messages and "ingest stopping" in messages
    assert "kafka producer stopped (flushed)" in messages


async def test_refused_records_are_503_and_dead_lettered_with_the_reason(
    kafka_settings: KafkaSettings, kafka_topics: tuple[TopicSpec, ...], new_topic: NewTopic
) -> None:
    # A balances topic whose broker-side limit refuses every record: Kafka answers, but says no.
    tiny = new_topic("ingest-tiny", partitions=2, configs={"max.message.bytes": "120"})
    letters_topic = new_topic("ingest-dl", partitions=1)
    publisher = KafkaPublisher(kafka_settings, topic_map={BALANCES: tiny, DEADLETTER: letters_topic}, ack_timeout=20)
    run = uuid.uuid4().hex[:12]
    body = "\n".join(
        json.dumps(_account(f"rf-{run}-{i}", f"RF-{i % 2}", "2026-11-20T22:00:00Z", "1.00")) for i in range(20)
    )
    client = TestClient(TestServer(create_app(IngestConfig(tokens=(TOKEN.encode(),)), publisher)))
    await client.start_server()
    try:
        await _ready(client)
        async with Tail(kafka_settings, [letters_topic]) as tail:
            response = await client.post(
                "/v1/events",
                data=body,
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"},
            )
            assert response.status == 503, await response.text()
            result = await response.json()
            assert result["accepted"] == [] and result["rejected"] == []
            assert [f["line"] for f in result["failed"]] == list(range(1, 21))
            assert all(f["dead_lettered"] and "not acknowledged by Kafka" in f["reason"] for f in result["failed"])
            letters = await tail.collect(lambda r: True, lambda kept: len(kept) >= 20)
        metrics = await (await client.get("/metrics")).text()
        assert 'segwatch_ingest_events_total{outcome="dead_lettered"} 20.0' in metrics
    finally:
        await client.close()
    values = [json.loads(r.value) for r in letters]
    assert sorted(json.loads(v["payload"])["event_id"] for v in values) == sorted(f"rf-{run}-{i}" for i in range(20))
    assert all(r.key == b"ingest" and v["stage"] == "ingest" for r, v in zip(letters, values, strict=True))
    assert all("TooLarge" in v["reason"] for v in values), values[0]


async def test_missing_topics_keep_the_publisher_from_starting(
    kafka_settings: KafkaSettings, kafka_topics: tuple[TopicSpec, ...]
) -> None:
    missing = unique_name("never-created")
    publisher = KafkaPublisher(kafka_settings, topic_map={SETTINGS: missing})
    with pytest.raises(PublisherError, match="segwatch topics apply"):
        await publisher.start()
    assert not publisher.started
    async with admin_client(kafka_settings) as admin:  # and checking did not auto-create it
        assert missing not in await admin.list_topics()


async def test_events_still_in_flight_at_the_ack_timeout_are_followed_not_dead_lettered(
    kafka_settings: KafkaSettings, kafka_topics: tuple[TopicSpec, ...], new_topic: NewTopic
) -> None:
    # No broker acknowledges within a microsecond: every event is still in flight when the answer is due,
    # and Kafka then takes them all. None may be dead-lettered as "not published".
    balances = new_topic("ingest-late", partitions=2)
    letters_topic = new_topic("ingest-late-dl", partitions=1)
    publisher = KafkaPublisher(
        kafka_settings, topic_map={BALANCES: balances, DEADLETTER: letters_topic}, ack_timeout=1e-6
    )
    run = uuid.uuid4().hex[:12]
    ids = [f"late-{run}-{i}" for i in range(20)]
    body = "\n".join(
        json.dumps(_account(event_id, f"LT-{i % 3}", "2026-11-20T22:00:00Z", "1.00")) for i, event_id in enumerate(ids)
    )
    config = IngestConfig(tokens=(TOKEN.encode(),))
    server = TestServer(create_app(config, publisher))
    await server.start_server(**runner_options(config))
    client = TestClient(server)
    await client.start_server()
    try:
        await _ready(client)
        async with Tail(kafka_settings, [balances]) as tail:
            response = await client.post(
                "/v1/events",
                data=body,
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"},
            )
            assert response.status == 503, await response.text()
            failed = (await response.json())["failed"]
            assert [f["event_id"] for f in failed] == ids
            assert all(f["in_flight"] and not f["dead_lettered"] and "still in flight" in f["reason"] for f in failed)
            published = await tail.collect(lambda r: _event_id(r) in ids, lambda kept: len(kept) >= len(ids))

        async def late_counted() -> str | None:
            text = await (await client.get("/metrics")).text()
            return text if 'segwatch_ingest_events_total{outcome="published_late"} 20.0' in text else None

        metrics = await wait_until(late_counted, what="the 20 late publications to be counted", timeout=30)
        assert metrics is not None  # wait_until returns a truthy result only
        assert 'segwatch_ingest_events_total{outcome="dead_lettered"} 0.0' in metrics
        assert 'segwatch_ingest_events_total{outcome="failed"} 0.0' in metrics
    finally:
        await client.close()
    assert sorted(str(_event_id(r)) for r in published) == sorted(ids)  # each once
    async with admin_client(kafka_settings) as admin:
        assert (await describe_topics(admin, [letters_topic]))[letters_topic].partitions == 1
    consumer = AIOKafkaConsumer(**kafka_settings.aiokafka_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(letters_topic, 0)])
    finally:
        await consumer.stop()
    assert list(ends.values()) == [0]  # no dead letter at all


async def test_a_file_waits_for_the_final_answer_of_events_in_flight(
    kafka_settings: KafkaSettings, kafka_topics: tuple[TopicSpec, ...], new_topic: NewTopic
) -> None:
    balances = new_topic("ingest-late-file", partitions=2)
    letters_topic = new_topic("ingest-late-file-dl", partitions=1)
    publisher = KafkaPublisher(
        kafka_settings, topic_map={BALANCES: balances, DEADLETTER: letters_topic}, ack_timeout=1e-6
    )
    parse = load_file(str(EXAMPLES / "ledger.csv"), FileOptions())
    await publisher.start()
    try:
        outcomes = await publisher.publish([p.event for p in parse.events])
        assert outcomes and all(isinstance(o, InFlight) for o in outcomes)
        report = await publish_parse(parse, publisher, "ledger.csv")
    finally:
        await publisher.stop()
    assert len(report.accepted) == len(parse.events) and report.dead_lettered == [] and report.lost == []
