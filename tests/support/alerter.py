"""The alerter's outputs as the tests read them: a running system's /metrics, and its decision records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
from aiokafka import ConsumerRecord, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from schemas.controls import DisbursementDecision
from segwatch.system import LocalSystem

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def alerter_metrics(system: LocalSystem) -> Samples:
    """Every sample of the alerter's /metrics, by (name, sorted labels)."""
    async with aiohttp.ClientSession() as http, http.get(f"{system.services['alerter'].url}/metrics") as r:
        text = await r.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def decisions_of(records: Sequence[Any]) -> list[DisbursementDecision]:
    """The disbursement decisions among the records of the alerter's state topic, in their order."""
    return [
        DisbursementDecision.model_validate_json(r.value)
        for r in records
        if r.value is not None and b'"type":"disbursement_decision"' in r.value
    ]


async def read_to_end(system: LocalSystem, name: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of one of the system's single-partition topics (e.g. the alerter's state), to its end."""
    topic = system.topic(name)
    tp = TopicPartition(topic, 0)
    async with system.consume(name) as consumer:
        end = (await consumer.end_offsets([tp]))[tp]
        out: list[ConsumerRecord[bytes, bytes]] = []
        while await consumer.position(tp) < end:  # the position, not a count: compaction leaves gaps
            batch = await consumer.getmany(tp, timeout_ms=1000)
            out += [r for r in batch.get(tp, ()) if r.offset < end]
        return out
