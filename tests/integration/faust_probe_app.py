"""A tiny Faust app the integration tests run as a real worker against the real broker.

    python tests/integration/faust_probe_app.py worker -l info

Environment: PROBE_APP_ID (also the consumer group and the changelog prefix), PROBE_IN, PROBE_OUT,
PROBE_DATADIR, and the KAFKA_* connection variables (segwatch.config.KafkaSettings).

The agent `tally` reads {"amount": n} records keyed by an account name from PROBE_IN, adds them up in
the changelog-backed table `totals`, and publishes {"key": ..., "total": ...} to PROBE_OUT.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable
from typing import Any

import faust

from segwatch.config import KafkaSettings

APP_ID = os.environ.get("PROBE_APP_ID", "segwatch-probe")
TABLE = "totals"

app = faust.App(
    APP_ID,
    **KafkaSettings.from_env().faust_kwargs(),
    datadir=os.environ.get("PROBE_DATADIR", f"/tmp/{APP_ID}-data"),
    web_enabled=False,
    store="memory://",
    topic_partitions=1,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    broker_commit_every=1,
)

source = app.topic(os.environ.get("PROBE_IN", f"{APP_ID}.in"), key_serializer="raw", value_serializer="json")
sink = app.topic(os.environ.get("PROBE_OUT", f"{APP_ID}.out"), key_serializer="raw", value_serializer="json")
totals = app.Table(TABLE, default=int, partitions=1)


@app.agent(source)
async def tally(stream: AsyncIterable[Any]) -> None:
    async for event in stream.events():  # type: ignore[attr-defined]
        key = event.key.decode()
        totals[key] += int(event.value["amount"])
        await sink.send(key=event.key, value={"key": key, "total": totals[key]})


if __name__ == "__main__":
    app.main()
