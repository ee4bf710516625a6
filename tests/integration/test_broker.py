"""The real Kafka broker: topics as code, a produce/consume round trip, and a real Faust worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from segwatch.config import KafkaSettings
from segwatch.kafka.admin import admin_client, apply_topics, delete_topics, describe_topics
from segwatch.kafka.broker import run_sync
from segwatch.kafka.topics import TopicSpec, changelog_topic
from segwatch.waiting import wait_until
from tests.support.kafka import NewTopic, unique_name

pytestmark = pytest.mark.kafka

PROBE_APP = Path(__file__).with_name("faust_probe_app.py")
ROOT = Path(__file__).resolve().parents[2]


def _cli(kafka_bootstrap: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "segwatch.cli", *args],
        env={**os.environ, "KAFKA_BOOTSTRAP": kafka_bootstrap},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, f"segwatch {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


def test_topics_apply_twice_changes_nothing_the_second_time(
    kafka_bootstrap: str, kafka_settings: KafkaSettings, kafka_topics: tuple[TopicSpec, ...]
) -> None:
    _cli(kafka_bootstrap, "topics", "apply")
    second = _cli(kafka_bootstrap, "topics", "apply")

    lines = second.strip().splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["unchanged"] * len(kafka_topics), second
    assert lines[-1].endswith(f"0 created, 0 updated, {len(kafka_topics)} unchanged"), second

    async def states() -> dict[str, Any]:
        async with admin_client(kafka_settings) as client:
            return await describe_topics(client, [spec.name for spec in kafka_topics])

    on_broker = run_sync(states)
    for spec in kafka_topics:
        state = on_broker[spec.name]
        assert dict(state.configs) == dict(spec.configs), spec.name
        assert state.partitions >= spec.partitions, spec.name
        assert state.replication == spec.replication, spec.name


def test_apply_creates_updates_grows_and_never_shrinks(kafka_settings: KafkaSettings) -> None:
    name = unique_name("apply")

    def spec(partitions: int, **configs: str) -> list[TopicSpec]:
        return [TopicSpec(name, partitions, 1, MappingProxyType(configs), "apply test")]

    def apply(specs: list[TopicSpec]) -> Any:
        return run_sync(lambda: apply_topics(kafka_settings, specs))

    try:
        [created] = apply(spec(1, **{"cleanup.policy": "compact"}))
        assert created.action == "created"

        [updated] = apply(spec(2, **{"cleanup.policy": "delete", "retention.ms": "3600000"}))
        assert updated.action == "updated"
        assert set(updated.changes) == {
            "cleanup.policy: compact -> delete",
            "retention.ms=3600000 (was the broker default)",
            "partitions: 1 -> 2",
        }

        [same] = apply(spec(2, **{"cleanup.policy": "delete", "retention.ms": "3600000"}))
        assert (same.action, same.changes, same.warnings) == ("unchanged", (), ())

        [fewer] = apply(spec(1, **{"cleanup.policy": "delete", "retention.ms": "3600000"}))
        assert fewer.action == "unchanged"
        assert fewer.warnings and "never removed" in fewer.warnings[0]

        async def state() -> Any:
            async with admin_client(kafka_settings) as client:
                return (await describe_topics(client, [name]))[name]

        final = run_sync(state)
        assert final.partitions == 2
        assert dict(final.configs) == {"cleanup.policy": "delete", "retention.ms": "3600000"}
    finally:
        run_sync(lambda: delete_topics(kafka_settings, [name]))


async def _consume(
    settings: KafkaSettings, topic: str, done: Callable[[list[Any]], bool], timeout: float = 20.0
) -> list[Any]:
    """Records of `topic` from the beginning until done(records) holds; fails after `timeout` seconds."""
    consumer = AIOKafkaConsumer(
        topic, **settings.aiokafka_kwargs(), auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while not done(records):
            if time.monotonic() > deadline:
                pytest.fail(f"{topic}: gave up after {timeout:.0f}s with {len(records)} records: {records!r}")
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


async def test_produce_and_consume_round_trip(kafka_settings: KafkaSettings, new_topic: NewTopic) -> None:
    topic = new_topic("roundtrip", partitions=1)
    sent = [(f"acct-{i}".encode(), json.dumps({"seq": i}).encode(), [("origin", b"test")]) for i in range(5)]
    producer = AIOKafkaProducer(**kafka_settings.aiokafka_kwargs(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value, headers in sent:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()

    received = await _consume(kafka_settings, topic, lambda records: len(records) >= len(sent))
    assert [(r.key, r.value, list(r.headers)) for r in received] == sent
    assert [r.offset for r in received] == list(range(len(sent)))


class _Worker:
    """The Faust probe app as a real worker process (`python faust_probe_app.py worker`)."""

    def __init__(self, app_id: str, source: str, sink: str, workdir: Path, bootstrap: str) -> None:
        self.log_path = workdir / f"worker-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP": bootstrap,
            "PROBE_APP_ID": app_id,
            "PROBE_IN": source,
            "PROBE_OUT": sink,
            "PROBE_DATADIR": str(workdir / "data"),
        }
        self.process = subprocess.Popen(
            [sys.executable, str(PROBE_APP), "worker", "-l", "info"],
            env=env,
            cwd=workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    async def ready(self, timeout: float = 60) -> None:
        """Until Faust logs that the worker is ready (its tables recovered, its partitions at their offsets)."""

        def logged_ready() -> bool:
            assert self.process.poll() is None, f"the Faust worker exited:\n{self.output()}"
            return "[^Worker]: Ready" in self.log_path.read_text(errors="replace")

        await wait_until(logged_ready, what="the Faust worker to be ready", timeout=timeout, detail=self.output)

    def stop(self) -> int:
        """SIGTERM (Faust commits and shuts down cleanly), SIGKILL after 15 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()
        return self.process.returncode


@pytest.fixture
def workers(tmp_path: Path, kafka_bootstrap: str) -> Iterator[Callable[..., _Worker]]:
    started: list[_Worker] = []

    def start(app_id: str, source: str, sink: str) -> _Worker:
        worker = _Worker(app_id, source, sink, tmp_path, kafka_bootstrap)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


async def test_faust_worker_table_is_changelog_backed(
    kafka_settings: KafkaSettings, new_topic: NewTopic, workers: Callable[..., _Worker]
) -> None:
    app_id = unique_name("faust").replace(".", "-")
    source = new_topic("faust-in")
    sink = new_topic("faust-out")
    changelog = changelog_topic(app_id, "totals")

    async def send(*events: tuple[str, int]) -> None:
        producer = AIOKafkaProducer(**kafka_settings.aiokafka_kwargs(), acks="all")
        await producer.start()
        try:
            for key, amount in events:
                await producer.send_and_wait(source, json.dumps({"amount": amount}).encode(), key=key.encode())
        finally:
            await producer.stop()

    def totals(records: list[Any]) -> dict[str, int]:
        latest: dict[str, int] = {}
        for record in records:
            value = json.loads(record.value)
            latest[value["key"]] = value["total"]
        return latest

    try:
        worker = workers(app_id, source, sink)
        await worker.ready()
        await send(("a", 1), ("b", 2), ("a", 3))
        try:
            out = await _consume(kafka_settings, sink, lambda r: totals(r) == {"a": 4, "b": 2})
        except BaseException:
            print(worker.output())
            raise
        assert [json.loads(r.value)["total"] for r in out] == [1, 2, 4]

        # The table's writes are in its changelog topic: key and value as Faust's json serializer writes them.
        logged = await _consume(kafka_settings, changelog, lambda r: len(r) >= 3)
        assert [(r.key, r.value) for r in logged] == [(b'"a"', b"1"), (b'"b"', b"2"), (b'"a"', b"4")]
        assert worker.stop() == 0, worker.output()

        # A new worker restores the table from the changelog (the store is in memory) and carries on. The
        # record goes in once it is ready: faust-streaming can drop a record that arrives while a worker is
        # still recovering (faust-streaming/faust#596; seen here about one run in six).
        worker = workers(app_id, source, sink)
        await worker.ready()
        await send(("a", 10))
        try:
            out = await _consume(kafka_settings, sink, lambda r: len(r) >= 4)
        except BaseException:
            print(worker.output())
            raise
        assert json.loads(out[3].value) == {"key": "a", "total": 14}, worker.output()
    finally:
        faust_topics = [changelog, f"{app_id}-__assignor-__leader"]
        await delete_topics(kafka_settings, faust_topics)


def test_apply_refuses_to_change_the_partition_count_of_keyed_topics(
    kafka_bootstrap: str, kafka_settings: KafkaSettings
) -> None:
    namespace = unique_name("parts") + "."

    def apply(partitions: int) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP": kafka_bootstrap,
            "SEGWATCH_NAMESPACE": namespace,
            "SEGWATCH_BALANCE_PARTITIONS": str(partitions),
        }
        return subprocess.run(
            [sys.executable, "-m", "segwatch.cli", "topics", "apply"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=False,
        )

    balances = f"{namespace}segwatch.balances"
    keyed = [
        balances,
        changelog_topic(f"{namespace}segwatch-calculator", "accounts"),
        changelog_topic(f"{namespace}segwatch-calculator", "depositories"),
    ]

    async def partitions() -> dict[str, int]:
        async with admin_client(kafka_settings) as client:
            names = [n for n in await client.list_topics() if n.startswith(namespace)]
            return {name: state.partitions for name, state in (await describe_topics(client, names)).items()}

    try:
        first = apply(2)
        assert first.returncode == 0, first.stderr
        before = run_sync(partitions)
        assert all(before[name] == 2 for name in keyed), before
        for count in (3, 1):
            refused = apply(count)
            assert refused.returncode == 1, refused.stdout + refused.stderr
            for name in keyed:
                assert f"{name} has 2 partitions, declared {count}" in refused.stderr
            assert "SEGWATCH_NAMESPACE" in refused.stderr and "docs/KAFKA.md" in refused.stderr
            assert "Traceback" not in refused.stderr
            assert run_sync(partitions) == before  # nothing changed, on any topic
        assert apply(2).returncode == 0
    finally:
        run_sync(lambda: delete_topics(kafka_settings, list(run_sync(partitions))))
