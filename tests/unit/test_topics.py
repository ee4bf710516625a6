"""The topic declaration (segwatch.kafka.topics). No broker needed."""

from __future__ import annotations

import pytest

from segwatch.errors import InputError
from segwatch.kafka import topics as t

CHANGELOGS = (
    "segwatch-calculator-accounts-changelog",
    "segwatch-calculator-depositories-changelog",
    "segwatch-calculator-closing-changelog",
)
COMBINER_CHANGELOG = "segwatch-calculator-combiner-changelog"  # one partition: partials and settings


def test_every_topic_is_declared_once() -> None:
    names = [spec.name for spec in t.topics({})]
    assert len(names) == len(set(names))
    assert set(names) == {
        t.BALANCES,
        t.SETTINGS,
        t.PARTIALS,
        t.FIGURES,
        t.ALERTS,
        t.DEADLETTER,
        t.DISBURSEMENTS,
        t.STATEMENTS,
        *CHANGELOGS,
        COMBINER_CHANGELOG,
        "segwatch-alerter-alerts-changelog",
    }


def test_name_constants() -> None:
    assert t.BALANCES == "segwatch.balances"
    assert t.DISBURSEMENTS == "segwatch.disbursements"
    assert t.CALCULATOR_ACCOUNTS_CHANGELOG == t.changelog_topic("segwatch-calculator", "accounts") == CHANGELOGS[0]
    assert t.changelog_topic("segwatch-calculator", "depositories") == t.CALCULATOR_DEPOSITORIES_CHANGELOG
    assert t.ALERTER_ALERTS_CHANGELOG == "segwatch-alerter-alerts-changelog"


@pytest.mark.parametrize("env", [{}, {"SEGWATCH_BALANCE_PARTITIONS": "12"}])
def test_calculator_changelogs_are_copartitioned_with_balances(env: dict[str, str]) -> None:
    specs = t.by_name(env)
    balances = specs[t.BALANCES].partitions
    assert balances == int(env.get("SEGWATCH_BALANCE_PARTITIONS", t.DEFAULT_BALANCE_PARTITIONS))
    for name in CHANGELOGS:
        assert specs[name].partitions == balances
    for name in (
        t.SETTINGS,
        t.PARTIALS,
        t.FIGURES,
        t.ALERTS,
        t.DEADLETTER,
        t.DISBURSEMENTS,
        t.ALERTER_ALERTS_CHANGELOG,
        COMBINER_CHANGELOG,
    ):
        assert specs[name].partitions == 1


def test_compaction_and_retention() -> None:
    specs = t.by_name({})
    compacted = {name for name, spec in specs.items() if spec.compacted}
    assert compacted == {
        t.SETTINGS,
        t.PARTIALS,
        t.FIGURES,
        *CHANGELOGS,
        COMBINER_CHANGELOG,
        t.ALERTER_ALERTS_CHANGELOG,
        t.STATEMENTS,
    }
    day = 24 * 3600 * 1000
    assert specs[t.BALANCES].configs == {"cleanup.policy": "delete", "retention.ms": str(7 * day)}
    assert specs[t.ALERTS].configs == {"cleanup.policy": "delete", "retention.ms": str(30 * day)}
    assert specs[t.DEADLETTER].configs == {"cleanup.policy": "delete", "retention.ms": str(14 * day)}
    # Disbursements are compliance records (CBOT Rule 971.E notices are audited): kept more than a year.
    assert specs[t.DISBURSEMENTS].configs == {"cleanup.policy": "delete", "retention.ms": str(400 * day)}
    assert not specs[t.DISBURSEMENTS].compacted  # every disbursement kept, not only the latest per segment
    # The daily statements (Reg. 1.31): the latest version per day and segment, kept over five years.
    assert specs[t.STATEMENTS].configs == {"cleanup.policy": "compact,delete", "retention.ms": str(6 * 366 * day)}
    for name in compacted - {t.STATEMENTS}:
        assert specs[name].configs == {"cleanup.policy": "compact"}


def test_replication_override() -> None:
    assert {spec.replication for spec in t.topics({})} == {1}
    three = t.topics({"SEGWATCH_REPLICATION": "3"})
    assert {spec.replication for spec in three} == {3}
    assert all(spec.configs["min.insync.replicas"] == "2" for spec in three)


@pytest.mark.parametrize("var", ["SEGWATCH_BALANCE_PARTITIONS", "SEGWATCH_REPLICATION"])
@pytest.mark.parametrize("raw", ["0", "-1", "four"])
def test_bad_overrides_name_the_variable(var: str, raw: str) -> None:
    with pytest.raises(InputError) as caught:
        t.topics({var: raw})
    assert caught.value.field == var


def test_declaration_is_immutable() -> None:
    spec = t.topics({})[0]
    with pytest.raises(TypeError):
        spec.configs["cleanup.policy"] = "compact"  # type: ignore[index]
    with pytest.raises(AttributeError):
        spec.partitions = 9  # type: ignore[misc]
    assert all(spec.purpose for spec in t.topics({}))


def test_the_namespace_prefixes_the_disbursements_topic() -> None:
    assert t.namespaced(t.DISBURSEMENTS, "uat.") == "uat.segwatch.disbursements"


def test_keyed_topics_are_the_balances_and_their_co_partitioned_changelogs() -> None:
    keyed = {spec.name for spec in t.topics() if spec.keyed}
    assert keyed == {t.BALANCES, *(table.topic for table in t.TABLES if table.copartitioned)}
    assert t.CALCULATOR_ACCOUNTS_CHANGELOG in keyed and t.CALCULATOR_DEPOSITORIES_CHANGELOG in keyed
