"""Topics as code: every Kafka topic segwatch uses, declared once.

`segwatch topics apply` makes a cluster match `topics()`; `segwatch topics list` prints it.
Code that produces or consumes imports the name constants below instead of repeating strings.

Per environment: SEGWATCH_BALANCE_PARTITIONS (default 4) sets the partitions of segwatch.balances and
of every table changelog co-partitioned with it; SEGWATCH_REPLICATION (default 1) the replication
factor of all of them (3 or more also sets min.insync.replicas=2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from segwatch.environment import NamespacePart, TopicsPart, load

# SEGWATCH_NAMESPACE prefixes every topic, app id and consumer group, so several segwatch systems (or test
# runs) can share one cluster without seeing each other's records. Read once, at import, by the model every
# service reads (segwatch/environment.py): the names below are constants every module imports, so a process has
# one namespace for its life; another namespace's names come from `namespaced`.
NAMESPACE = load(NamespacePart).namespace

BALANCES = f"{NAMESPACE}segwatch.balances"
SETTINGS = f"{NAMESPACE}segwatch.settings"
PARTIALS = f"{NAMESPACE}segwatch.partials"
FIGURES = f"{NAMESPACE}segwatch.figures"
ALERTS = f"{NAMESPACE}segwatch.alerts"
DEADLETTER = f"{NAMESPACE}segwatch.deadletter"
DISBURSEMENTS = f"{NAMESPACE}segwatch.disbursements"
STATEMENTS = f"{NAMESPACE}segwatch.statements"

CALCULATOR_APP_ID = f"{NAMESPACE}segwatch-calculator"
ALERTER_APP_ID = f"{NAMESPACE}segwatch-alerter"


def namespaced(name: str, namespace: str) -> str:
    """`name` (a constant above) as it is called under another namespace."""
    return namespace + name.removeprefix(NAMESPACE)


DEFAULT_BALANCE_PARTITIONS: int = TopicsPart.model_fields["balance_partitions"].default
DEFAULT_REPLICATION: int = TopicsPart.model_fields["replication"].default

DISBURSEMENT_RETENTION_DAYS = 400  # compliance records: more than a year, for the audit of any notice

_DAY_MS = 24 * 60 * 60 * 1000
# Reg. 1.31: books and records kept five years; a year to spare for leap days and audits in progress.
STATEMENT_RETENTION_DAYS = 6 * 366


def changelog_topic(app_id: str, table: str) -> str:
    """The changelog topic Faust uses for `table` of the app `app_id`."""
    return f"{app_id}-{table}-changelog"


@dataclass(frozen=True)
class TableChangelog:
    """A Faust table whose changelog topic we create ahead of the app (so it is never auto-created)."""

    app_id: str
    table: str
    copartitioned: bool  # True: keyed like segwatch.balances, so it must have the same partition count
    purpose: str

    @property
    def topic(self) -> str:
        return changelog_topic(self.app_id, self.table)


# Faust tables of our apps. Add a line here when an app gains a table.
TABLES: tuple[TableChangelog, ...] = (
    TableChangelog(CALCULATOR_APP_ID, "accounts", True, "calculator table: latest balance per account"),
    TableChangelog(CALCULATOR_APP_ID, "depositories", True, "calculator table: latest balance per depository"),
    TableChangelog(CALCULATOR_APP_ID, "combiner", False, "calculator table: partials, settings, versions"),
    TableChangelog(CALCULATOR_APP_ID, "closing", True, "calculator table: each partition's closed business days"),
    TableChangelog(ALERTER_APP_ID, "alerts", False, "alerter table: current state of every alert"),
)

CALCULATOR_ACCOUNTS_CHANGELOG = changelog_topic(CALCULATOR_APP_ID, "accounts")
CALCULATOR_DEPOSITORIES_CHANGELOG = changelog_topic(CALCULATOR_APP_ID, "depositories")
ALERTER_ALERTS_CHANGELOG = changelog_topic(ALERTER_APP_ID, "alerts")


@dataclass(frozen=True)
class TopicSpec:
    """One topic as it should exist on the cluster."""

    name: str
    partitions: int
    replication: int
    configs: Mapping[str, str] = field(hash=False)
    purpose: str
    # Keyed like segwatch.balances, with state per partition: its partition count is fixed once created
    # (more partitions re-home keys while their old records stay behind). `topics apply` refuses to change it.
    keyed: bool = False

    @property
    def compacted(self) -> bool:
        return "compact" in self.configs.get("cleanup.policy", "delete").split(",")


def topics(env: Mapping[str, str] | None = None) -> tuple[TopicSpec, ...]:
    """The declaration: every topic, with partitions and replication for this environment."""
    part = load(TopicsPart, env)
    balance_partitions, replication = part.balance_partitions, part.replication

    def spec(name: str, partitions: int, configs: dict[str, str], purpose: str, keyed: bool = False) -> TopicSpec:
        if replication >= 3:
            configs = {**configs, "min.insync.replicas": "2"}
        return TopicSpec(name, partitions, replication, MappingProxyType(dict(configs)), purpose, keyed)

    compact = {"cleanup.policy": "compact"}

    def delete_after(days: int) -> dict[str, str]:
        return {"cleanup.policy": "delete", "retention.ms": str(days * _DAY_MS)}

    return (
        spec(
            BALANCES,
            balance_partitions,
            delete_after(7),
            "input: account and depository balance events, keyed by entity",
            keyed=True,
        ),
        spec(SETTINGS, 1, compact, "management targets, FX rates and the 30.7 foreign requirement"),
        spec(PARTIALS, 1, compact, "calculator-internal partial sums, one per balances partition"),
        spec(FIGURES, 1, compact, "the figures record of each segment"),
        spec(ALERTS, 1, delete_after(30), "alert state changes"),
        spec(DEADLETTER, 1, delete_after(14), "what could not be processed, with the reason"),
        spec(
            DISBURSEMENTS,
            1,
            delete_after(DISBURSEMENT_RETENTION_DAYS),
            "input: disbursements from the segments (CBOT Rule 971.E), compliance records kept 400 days",
        ),
        spec(
            STATEMENTS,
            1,
            # compact: every version of each (day, segment) (its own key), every sign-off and filing, the latest
            # status of each day; delete: after the retention, never before it
            {"cleanup.policy": "compact,delete", "retention.ms": str(STATEMENT_RETENTION_DAYS * _DAY_MS)},
            "the daily statements (INITIAL, AMENDMENT) and each day's status, keyed by business day and segment; "
            "kept over five years (Reg. 1.31)",
        ),
        *(
            spec(
                table.topic,
                balance_partitions if table.copartitioned else 1,
                compact,
                table.purpose,
                keyed=table.copartitioned,
            )
            for table in TABLES
        ),
    )


def by_name(env: Mapping[str, str] | None = None) -> dict[str, TopicSpec]:
    return {spec.name: spec for spec in topics(env)}
