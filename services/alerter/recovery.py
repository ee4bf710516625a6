"""Reading a topic from its beginning to its end offsets, and rebuilding the alert state from the alert topic.

The alert and state topics hold three kinds of record: alert state changes (firing / resolved), which make
the alert state; one-off notices (`state="notice"`, CBOT Rule 971.E disbursements), which are not alert
state (`AlertStates` skips them) but say which disbursements were already noticed; and, on the state topic
only, the decision on each disbursement (`DisbursementDecision`: the 25% windows and the ids already decided)
and the notices it owed (`DisbursementNotice`). Check records of the alerter before issue #13 have the
decisions' keys, so compaction replaces them; they are skipped (counted unreadable).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from schemas.alerts import Alert
from schemas.controls import DisbursementDecision, DisbursementNotice
from segwatch.config import KafkaSettings
from segwatch.core.rules import AlertStates
from segwatch.kafka.admin import KafkaAdminError, admin_client, describe_topics


class RecoveryError(Exception):
    """The alert state could not be rebuilt (a topic is missing, or Kafka did not answer in time)."""


StateRecord = Annotated[Alert | DisbursementDecision | DisbursementNotice, Field(discriminator="type")]
STATE_RECORD: TypeAdapter[StateRecord] = TypeAdapter(StateRecord)


@dataclass(frozen=True, slots=True)
class Recovered:
    states: AlertStates
    records: int  # alert, notice, decision and notice records read
    unreadable: int  # records that are none of those (skipped, logged)
    seconds: float
    notices: tuple[Alert, ...] = ()  # the one-off notices (disbursements) published
    decisions: tuple[DisbursementDecision, ...] = ()  # the disbursements decided (state topic)


async def partition_counts(settings: KafkaSettings, topics: Sequence[str], *, timeout: float) -> dict[str, int]:
    """Each topic's partition count; RecoveryError naming any topic that does not exist."""
    try:
        async with admin_client(settings, timeout=timeout) as client:
            states = await describe_topics(client, list(topics))
    except KafkaAdminError as exc:
        raise RecoveryError(str(exc)) from exc
    missing = [t for t in topics if t not in states]
    if missing:
        raise RecoveryError(f"topic {', '.join(missing)} does not exist (run `segwatch topics apply`)")
    return {name: state.partitions for name, state in states.items()}


async def read_to_end(
    settings: KafkaSettings, topic: str, partitions: int, *, timeout: float, client_id: str = "segwatch-alerter"
) -> list[Any]:
    """Every record of `topic` from its beginning to the end offsets taken at the start (no consumer group)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        **settings.aiokafka_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id=f"{client_id}-recovery",
    )
    deadline = time.monotonic() + timeout
    records: list[Any] = []
    try:
        await asyncio.wait_for(consumer.start(), timeout)
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends: dict[Any, int] = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
            if not pending:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise RecoveryError(f"reading {topic} to its end took more than {timeout:g}s")
            batch = await consumer.getmany(*pending, timeout_ms=int(min(left, 1.0) * 1000))
            for tp, got in batch.items():
                records.extend(r for r in got if r.offset < ends[tp])
    except TimeoutError as exc:
        raise RecoveryError(f"Kafka did not answer within {timeout:g}s while reading {topic}") from exc
    finally:
        await consumer.stop()
    return records


def parse_records(records: Sequence[Any]) -> tuple[list[Alert], list[DisbursementDecision], int]:
    """The alert records (notices included) and the disbursement decisions among `records`, in order,
    and how many were neither (the `DisbursementNotice` records are read, not needed to rebuild)."""
    alerts: list[Alert] = []
    checks: list[DisbursementDecision] = []
    bad = 0
    for record in records:
        if record.value is None:  # a tombstone: nothing to rebuild from
            continue
        try:
            parsed = STATE_RECORD.validate_json(record.value)
        except ValidationError:
            bad += 1
            continue
        if isinstance(parsed, Alert):
            alerts.append(parsed)
        elif isinstance(parsed, DisbursementDecision):
            checks.append(parsed)
    return alerts, checks, bad


def parse_alerts(records: Sequence[Any]) -> tuple[list[Alert], int]:
    """The alert records among `records` (in order) and how many were not alerts (decisions aside)."""
    alerts, _, bad = parse_records(records)
    return alerts, bad


async def recover_states(settings: KafkaSettings, topics: Sequence[str], *, timeout: float = 60.0) -> Recovered:
    """The alert state the alert records on `topics` describe: per (segment, rule) the newest record wins.
    Also the notices published and the disbursement decisions (for the controls).

    `topics` is the alert topic, and optionally the alerter's compacted state topic, which keeps the latest
    record of every key after the alert topic's retention has dropped it, and every check record.
    """
    started = time.monotonic()
    counts = await partition_counts(settings, topics, timeout=timeout)
    alerts: list[Alert] = []
    checks: list[DisbursementDecision] = []
    unreadable = 0
    for topic in topics:
        left = max(1.0, timeout - (time.monotonic() - started))
        got, checked, bad = parse_records(await read_to_end(settings, topic, counts[topic], timeout=left))
        alerts.extend(got)
        checks.extend(checked)
        unreadable += bad
    return Recovered(
        AlertStates.from_alerts(alerts),
        len(alerts) + len(checks),
        unreadable,
        time.monotonic() - started,
        notices=tuple(a for a in alerts if a.is_notice),
        decisions=tuple(checks),
    )
