"""The Python client's ceiling: a bare aiokafka consumer that reads a topic from the beginning and parses each
value, nothing else. Run as its own process (`python -m bench.bare ...`), so it starts as cold as the
calculator does; prints one JSON object.

    --parse orjson    orjson.loads of each value (the cheapest full JSON parse)
    --parse pydantic  schemas.events.EVENT_ADAPTER.validate_json of each value (full validation to models)
    --parse none      no parsing: the fetch alone

The cluster is the one KAFKA_BOOTSTRAP (and the other KAFKA_* variables) name. No consumer group: the
partitions are assigned directly and read from their first offsets. The fetch size per partition and the
records per poll are the calculator's (services/calculator/defaults.py).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from segwatch.config import KafkaSettings
from services.calculator.defaults import BATCH_MAX, FETCH_BYTES

FETCH = {"max_partition_fetch_bytes": FETCH_BYTES, "max_poll_records": BATCH_MAX}


def parser(kind: str) -> Callable[[bytes], Any]:
    if kind == "orjson":
        return orjson.loads
    if kind == "pydantic":
        from schemas.events import EVENT_ADAPTER

        return EVENT_ADAPTER.validate_json
    if kind == "none":
        return len
    raise ValueError(f"unknown parser {kind!r}")


async def consume(topic: str, messages: int, parse: str, timeout: float) -> dict[str, Any]:
    decode = parser(parse)
    started = time.perf_counter()
    consumer = AIOKafkaConsumer(
        **KafkaSettings.from_env().aiokafka_kwargs(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="segwatch-bench-bare",
        **FETCH,
    )
    await asyncio.wait_for(consumer.start(), 30)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ready = time.perf_counter()
        count = size = 0
        first: float | None = None
        deadline = time.monotonic() + timeout
        while count < messages:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {count} of {messages} records in {timeout:.0f}s")
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batch.values():
                if first is None and records:
                    first = time.perf_counter()
                for record in records:
                    decode(record.value)
                    size += len(record.value)
                count += len(records)
        done = time.perf_counter()
    finally:
        await consumer.stop()
    return {
        "parse": parse,
        "messages": count,
        "bytes": size,
        "seconds": done - started,
        "seconds_after_start": done - ready,
        "events_per_second": count / (done - started),
        "events_per_second_after_start": count / (done - ready),
        "first_record_after": (first or done) - started,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__)
    p.add_argument("--topic", required=True)
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--parse", default="orjson", choices=("orjson", "pydantic", "none"))
    p.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args(argv)
    result = asyncio.run(consume(args.topic, args.messages, args.parse, args.timeout))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
