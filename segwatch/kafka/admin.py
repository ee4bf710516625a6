"""Making a Kafka cluster match the topic declaration (segwatch.kafka.topics), with aiokafka's admin client.

`apply_topics` is idempotent: it creates missing topics, sets the declared configs of existing ones
(the declaration is the whole truth: dynamic configs it does not name are removed), adds partitions
when the declaration asks for more, and never removes partitions or changes the replication factor —
it reports those instead. A second run reports every topic "unchanged".

The partition count of a keyed topic (segwatch.balances and the changelogs co-partitioned with it) is never
changed: more partitions would send an account's new balances to another partition while its old balance
stays in the old one's changelog, and both would be summed. A declaration that differs from the cluster
there is refused before anything is changed (KafkaAdminError naming each topic and both counts); the
migration is a new namespace and a replay (docs/KAFKA.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from segwatch.config import KafkaSettings
from segwatch.kafka.topics import TopicSpec
from segwatch.waiting import WaitTimeout, wait_until

# DescribeConfigs config_source values (KIP-226).
_DYNAMIC_TOPIC_CONFIG = 1
_UNKNOWN_TOPIC_OR_PARTITION = 3
_TOPIC_ALREADY_EXISTS = 36

Action = Literal["created", "updated", "unchanged"]


class KafkaAdminError(Exception):
    """The cluster refused or failed an admin request; the message names the topic and the reason."""


@dataclass(frozen=True)
class TopicState:
    """A topic as the cluster has it. `configs` holds only the topic's own (dynamic) overrides."""

    name: str
    partitions: int
    replication: int
    configs: Mapping[str, str] = field(hash=False)


@dataclass(frozen=True)
class TopicResult:
    """What `apply_topics` did (or, with dry_run, would do) to one topic."""

    name: str
    action: Action
    changes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@contextlib.asynccontextmanager
async def admin_client(settings: KafkaSettings, *, timeout: float = 30.0) -> AsyncIterator[Any]:
    """A started AIOKafkaAdminClient for `settings`; fails with KafkaAdminError when unreachable."""
    from aiokafka.admin import AIOKafkaAdminClient

    client = AIOKafkaAdminClient(
        **settings.aiokafka_kwargs(), client_id="segwatch-admin", request_timeout_ms=int(timeout * 1000)
    )
    try:
        await asyncio.wait_for(client.start(), timeout)
    except Exception as exc:
        with contextlib.suppress(Exception):
            await client.close()
        raise KafkaAdminError(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {exc or type(exc).__name__}"
        ) from exc
    try:
        yield client
    finally:
        await client.close()


def _obj(response: Any) -> dict[str, Any]:
    result: dict[str, Any] = response.to_object()
    return result


def _check_topic_errors(response: Any, what: str, *, tolerate: Iterable[int] = ()) -> None:
    allowed = {0, *tolerate}
    for entry in _obj(response).get("topic_errors", []):
        if entry["error_code"] not in allowed:
            message = entry.get("error_message") or f"error code {entry['error_code']}"
            raise KafkaAdminError(f"{what} {entry['topic']}: {message}")


async def _dynamic_configs(client: Any, names: Sequence[str]) -> dict[str, dict[str, str]]:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    if not names:
        return {}
    responses = await client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
    found: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in _obj(response)["resources"]:
            if resource["error_code"]:
                raise KafkaAdminError(
                    f"describe configs of {resource['resource_name']}: "
                    f"{resource['error_message'] or 'error code ' + str(resource['error_code'])}"
                )
            configs: dict[str, str] = {}
            for entry in resource["config_entries"]:
                if "config_source" in entry:
                    dynamic = entry["config_source"] == _DYNAMIC_TOPIC_CONFIG
                else:  # DescribeConfigs v0 has only is_default
                    dynamic = not entry["is_default"] and not entry["read_only"]
                if dynamic and entry["config_value"] is not None:
                    configs[entry["config_names"]] = entry["config_value"]
            found[resource["resource_name"]] = configs
    return found


async def describe_topics(client: Any, names: Sequence[str]) -> dict[str, TopicState]:
    """The state of those of `names` that exist (missing ones are left out, never auto-created)."""
    existing = set(await client.list_topics())  # all topics: a metadata request naming one could create it
    present = [name for name in names if name in existing]
    if not present:
        return {}
    metadata = await client.describe_topics(present)
    configs = await _dynamic_configs(client, present)
    states: dict[str, TopicState] = {}
    for topic in metadata:
        if topic["error_code"] == _UNKNOWN_TOPIC_OR_PARTITION:
            continue
        if topic["error_code"]:
            raise KafkaAdminError(f"describe {topic['topic']}: error code {topic['error_code']}")
        partitions = topic["partitions"]
        replication = max((len(p["replicas"]) for p in partitions), default=0)
        states[topic["topic"]] = TopicState(topic["topic"], len(partitions), replication, configs[topic["topic"]])
    return states


def _config_changes(declared: Mapping[str, str], actual: Mapping[str, str]) -> tuple[str, ...]:
    changes = []
    for key in sorted(declared.keys() | actual.keys()):
        want, have = declared.get(key), actual.get(key)
        if want == have:
            continue
        if have is None:
            changes.append(f"{key}={want} (was the broker default)")
        elif want is None:
            changes.append(f"{key}: {have} -> broker default (not declared)")
        else:
            changes.append(f"{key}: {have} -> {want}")
    return tuple(changes)


MIGRATION = 'docs/KAFKA.md, "Changing the number of balance partitions"'


def keyed_partition_changes(specs: Sequence[TopicSpec], states: Mapping[str, TopicState]) -> list[str]:
    """Each existing keyed topic whose declared partition count differs from the cluster's."""
    return [
        f"{spec.name} has {states[spec.name].partitions} partitions, declared {spec.partitions}"
        for spec in specs
        if spec.keyed and spec.name in states and states[spec.name].partitions != spec.partitions
    ]


async def apply_topics(
    settings: KafkaSettings, specs: Sequence[TopicSpec], *, dry_run: bool = False, timeout: float = 30.0
) -> list[TopicResult]:
    """Make the cluster match `specs`; returns one result per spec, in order."""
    async with admin_client(settings, timeout=timeout) as client:
        states = await describe_topics(client, [spec.name for spec in specs])
        _refuse_keyed_partition_changes(specs, states)
        missing = [spec for spec in specs if spec.name not in states]
        if missing and not dry_run:
            await _create_topics(client, missing, timeout)
        results = [_planned(spec, states.get(spec.name)) for spec in specs]
        if not dry_run:
            await _update_topics(client, [(spec, states[spec.name]) for spec in specs if spec.name in states], timeout)
        return results


def _refuse_keyed_partition_changes(specs: Sequence[TopicSpec], states: Mapping[str, TopicState]) -> None:
    refused = keyed_partition_changes(specs, states)
    if refused:
        raise KafkaAdminError(
            f"refusing to change the partition count of keyed topics ({'; '.join(refused)}; "
            "SEGWATCH_BALANCE_PARTITIONS): an account's new balances would land in another partition while "
            "its old balance stays in the old changelog, and both would be counted. Nothing was changed. "
            f"Keep the count, or move to a new SEGWATCH_NAMESPACE and replay the balances ({MIGRATION})"
        )


async def _create_topics(client: Any, specs: Sequence[TopicSpec], timeout: float) -> None:
    from aiokafka.admin import NewTopic

    response = await client.create_topics(
        [NewTopic(s.name, s.partitions, s.replication, topic_configs=dict(s.configs)) for s in specs],
        timeout_ms=int(timeout * 1000),
    )
    _check_topic_errors(response, "create")
    await wait_for_topics(client, [spec.name for spec in specs], timeout)


def _planned(spec: TopicSpec, state: TopicState | None) -> TopicResult:
    """What applying `spec` does to the topic as it is (`state`; None: missing, so created): the changes made,
    and the differences left alone with a warning (partitions are never removed, replication is not changed)."""
    if state is None:
        return TopicResult(spec.name, "created", (f"partitions {spec.partitions}, replication {spec.replication}",))
    changes = list(_config_changes(spec.configs, state.configs))
    warnings: list[str] = []
    if spec.partitions > state.partitions:
        changes.append(f"partitions: {state.partitions} -> {spec.partitions}")
    elif spec.partitions < state.partitions:
        warnings.append(
            f"has {state.partitions} partitions, declared {spec.partitions}; "
            "partitions are never removed (recreate the topic to shrink it)"
        )
    if spec.replication != state.replication:
        warnings.append(
            f"replication factor is {state.replication}, declared {spec.replication}; "
            "not changed here (reassign partitions to change it)"
        )
    return TopicResult(spec.name, "updated" if changes else "unchanged", tuple(changes), tuple(warnings))


async def _update_topics(client: Any, existing: Sequence[tuple[TopicSpec, TopicState]], timeout: float) -> None:
    """Alter the configs that differ from the declared ones, then add the partitions declared beyond the count."""
    from aiokafka.admin import NewPartitions
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    alterations = [
        ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=dict(spec.configs))
        for spec, state in existing
        if _config_changes(spec.configs, state.configs)
    ]
    grow = {spec.name: NewPartitions(spec.partitions) for spec, state in existing if spec.partitions > state.partitions}
    if alterations:
        for response in await client.alter_configs(alterations):
            for resource in _obj(response)["resources"]:
                if resource["error_code"]:
                    raise KafkaAdminError(
                        f"alter configs of {resource['resource_name']}: "
                        f"{resource['error_message'] or 'error code ' + str(resource['error_code'])}"
                    )
    if grow:
        _check_topic_errors(await client.create_partitions(grow, timeout_ms=int(timeout * 1000)), "add partitions to")


async def create_topic(
    settings: KafkaSettings,
    name: str,
    partitions: int = 1,
    configs: Mapping[str, str] | None = None,
    *,
    replication: int = 1,
) -> None:
    """Create one topic; an existing one is fine."""
    from aiokafka.admin import NewTopic

    async with admin_client(settings) as client:
        new_topic = NewTopic(name, partitions, replication, topic_configs=dict(configs or {}))
        response = await client.create_topics([new_topic])
        _check_topic_errors(response, "create", tolerate=[_TOPIC_ALREADY_EXISTS])
        await wait_for_topics(client, [name])


async def wait_for_topics(client: Any, names: Sequence[str], timeout: float = 20.0) -> None:
    """Return once every topic is in the cluster's metadata with a leader for each partition.

    CreateTopics returns when the controller has the topic; brokers learn of it a moment later, and a client
    that asks in between is told it does not exist (seen under load).
    """
    pending = list(names)

    async def all_led() -> bool:
        existing = set(await client.list_topics())
        ready = set()
        present = [name for name in pending if name in existing]
        if present:
            for topic in await client.describe_topics(present):
                if not topic["error_code"] and all(p["leader"] >= 0 for p in topic["partitions"]):
                    ready.add(topic["topic"])
        pending[:] = [name for name in pending if name not in ready]
        return not pending

    try:
        await wait_until(
            all_led,
            what="the new topics to have a leader for each partition",
            timeout=timeout,
            detail=lambda: f"not ready: {', '.join(pending)}",
        )
    except WaitTimeout as exc:
        raise KafkaAdminError(str(exc)) from None


async def delete_topics(settings: KafkaSettings, names: Sequence[str]) -> None:
    """Delete topics; ones that do not exist are ignored."""
    if not names:
        return
    async with admin_client(settings) as client:
        existing = set(await client.list_topics())
        doomed = [name for name in names if name in existing]
        if doomed:
            await client.delete_topics(doomed)
