"""Fixtures for tests against a real Kafka broker (a pytest plugin: tests/conftest.py loads it for the suite).

`kafka_bootstrap` is the broker: the cluster named by KAFKA_BOOTSTRAP (with the other KAFKA_* connection
variables) when that is set, otherwise the local broker, started here with the same code as
`segwatch broker start` (and stopped at the end of the session if this session started it).
A broker that cannot be reached FAILS the tests that need it, with the broker log; it never skips them.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator, Mapping

import pytest

from segwatch.config import KafkaSettings
from segwatch.errors import InputError
from segwatch.kafka import broker
from segwatch.kafka.admin import KafkaAdminError, admin_client, apply_topics, create_topic, delete_topics
from segwatch.kafka.broker import BrokerConfig, BrokerError, run_sync
from segwatch.kafka.topics import TopicSpec, topics

TEST_TOPIC_PREFIX = "segwatch-test"


def unique_name(prefix: str = "t") -> str:
    """A throwaway topic / app id that no other test (or test run) uses."""
    return f"{TEST_TOPIC_PREFIX}.{prefix}.{uuid.uuid4().hex[:12]}"


def _explicit_bootstrap() -> str | None:
    return (os.environ.get("KAFKA_BOOTSTRAP") or os.environ.get("SEGWATCH_KAFKA_BOOTSTRAP") or "").strip() or None


async def _cluster_reachable(settings: KafkaSettings) -> None:
    async with admin_client(settings, timeout=15) as client:
        await client.describe_cluster()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """host:port of a Kafka broker that serves clients for the whole session."""
    explicit = _explicit_bootstrap()
    failure: str | None = None
    if explicit is not None:
        try:
            settings = KafkaSettings.from_env()
            run_sync(lambda: _cluster_reachable(settings))
        except (InputError, KafkaAdminError) as exc:
            failure = f"KAFKA_BOOTSTRAP={explicit}: Kafka is not reachable: {exc}"
        if failure:
            pytest.fail(failure, pytrace=False)
        yield settings.bootstrap_servers
        return

    config = BrokerConfig.from_env()
    started_here = False
    if not broker.status(config).ready:
        try:
            result = broker.start(config, out=lambda line: print(f"[kafka] {line}"))
        except BrokerError as exc:
            failure = f"the local Kafka broker did not come up:\n{exc}"
        if failure:
            pytest.fail(failure, pytrace=False)
        started_here = not result.already_running
        print(f"[kafka] broker started in {result.seconds:.1f}s at {result.bootstrap}")
    yield config.bootstrap
    if started_here:
        broker.stop(config)


@pytest.fixture(scope="session")
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Connection settings for `kafka_bootstrap` (KAFKA_* security settings apply to an explicit cluster)."""
    settings = KafkaSettings.from_env() if _explicit_bootstrap() else KafkaSettings()
    return dataclasses.replace(settings, bootstrap=tuple(kafka_bootstrap.split(",")))


@pytest.fixture(scope="session")
def kafka_topics(kafka_settings: KafkaSettings) -> tuple[TopicSpec, ...]:
    """The declared segwatch topics, applied to the broker once per session."""
    specs = topics()
    try:
        run_sync(lambda: apply_topics(kafka_settings, specs))
    except KafkaAdminError as exc:
        pytest.fail(f"applying the topic declaration failed: {exc}", pytrace=False)
    return specs


NewTopic = Callable[..., str]


@pytest.fixture
def new_topic(kafka_settings: KafkaSettings) -> Iterator[NewTopic]:
    """new_topic(prefix="t", partitions=1, configs=None) -> name: a fresh topic, deleted after the test."""
    created: list[str] = []

    def make(prefix: str = "t", partitions: int = 1, configs: Mapping[str, str] | None = None) -> str:
        name = unique_name(prefix)
        run_sync(lambda: create_topic(kafka_settings, name, partitions, configs))
        created.append(name)
        return name

    yield make
    run_sync(lambda: delete_topics(kafka_settings, created))
