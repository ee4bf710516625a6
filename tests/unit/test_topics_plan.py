"""What `segwatch topics apply` plans for a topic as the cluster has it (no broker): config differences and
more partitions are changes; fewer partitions or another replication factor are warnings, never changed."""

from __future__ import annotations

from segwatch.kafka.admin import TopicResult, TopicState, _planned
from segwatch.kafka.topics import TopicSpec


def spec(partitions: int = 3, replication: int = 1, **configs: str) -> TopicSpec:
    return TopicSpec(name="t", partitions=partitions, replication=replication, configs=configs, purpose="test")


def state(partitions: int = 3, replication: int = 1, **configs: str) -> TopicState:
    return TopicState(name="t", partitions=partitions, replication=replication, configs=configs)


def test_a_missing_topic_is_created() -> None:
    assert _planned(spec(), None) == TopicResult("t", "created", ("partitions 3, replication 1",))


def test_a_topic_as_declared_is_unchanged() -> None:
    assert _planned(spec(retention_ms="1"), state(retention_ms="1")) == TopicResult("t", "unchanged")


def test_config_differences_and_more_partitions_are_updates() -> None:
    result = _planned(spec(partitions=6, retention_ms="2", cleanup_policy="compact"), state(retention_ms="1", x="y"))
    assert result.action == "updated"
    assert result.changes == (
        "cleanup_policy=compact (was the broker default)",
        "retention_ms: 1 -> 2",
        "x: y -> broker default (not declared)",
        "partitions: 3 -> 6",
    )
    assert result.warnings == ()


def test_fewer_partitions_or_another_replication_factor_only_warn() -> None:
    result = _planned(spec(partitions=2, replication=3), state(partitions=4, replication=1))
    assert (result.action, result.changes) == ("unchanged", ())
    assert [w.split(";")[0] for w in result.warnings] == [
        "has 4 partitions, declared 2",
        "replication factor is 1, declared 3",
    ]
