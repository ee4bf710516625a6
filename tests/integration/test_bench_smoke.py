"""`segwatch bench --small` in CI: every measurement is produced and every figure checked is correct.

No timing is asserted: the numbers depend on the machine (docs/PERFORMANCE.md has them). The second test
guards what the calculator's throughput rests on: its fast reading of balance events answers exactly as the
pydantic models do, dead letters included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bench.report import TARGETS
from schemas.events import AccountBalance, DepositoryBalance, parse_event_json
from segwatch.core.ledger import held_of
from services.calculator.fastparse import read_balance
from tests.conftest import ROOT

MEASURED = [
    ("preload", "events"),
    ("bare_aiokafka", "orjson", "events_per_second"),
    ("bare_aiokafka", "pydantic", "events_per_second"),
    ("consumer_performance", "fetch_events_per_second"),
    ("throughput", "events_per_second"),
    ("throughput", "ratio_to_bare_orjson"),
    ("throughput", "ratio_to_consumer_performance"),
    ("memory", "peak_bytes_per_account"),
    ("memory", "peak_bytes_per_account_over_idle"),
    ("recovery", "seconds"),
    ("memory_after_recovery", "peak_mib"),
    ("latency", "event_to_figures_ms", "p50"),
    ("latency", "event_to_figures_ms", "p99"),
    ("latency", "event_to_alert_ms", "p50"),
    ("latency", "event_to_alert_ms", "p99"),
    ("ingest", "events_per_second"),
    ("ingest", "single_event_ms", "p99"),
    ("idle_calculator", "peak_mib"),
]


def at(results: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = results
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


@pytest.mark.kafka
@pytest.mark.timeout(600)
def test_small_bench_measures_everything_and_the_figures_are_correct(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "segwatch.cli",
            "bench",
            "--small",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
        ],
        env={**os.environ, "KAFKA_BOOTSTRAP": kafka_bootstrap},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=560,
    )
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    results = json.loads(out.read_text())
    missing = [".".join(path) for path in MEASURED if not isinstance(at(results, path), int | float)]
    assert not missing, f"not measured: {missing}"
    assert all(at(results, t.path) is not None for t in TARGETS)
    # Correct figures at the end of the throughput, recovery and latency phases, an alert for every dip and
    # every cure, nothing dead-lettered.
    assert results["checks"] and all(results["checks"].values()), results["checks"]
    assert results["throughput"]["events"] == results["preload"]["events"] == 20_000
    assert (
        results["latency"]["dips"] > 0
        and results["latency"]["event_to_alert_ms"]["count"] == results["latency"]["dips"]
    )
    assert results["ingest"]["batch_events"] > 0
    # The benchmark deleted what it created.
    assert "deleted" in proc.stdout


# -- the calculator's fast reading of balances equals pydantic's ------------------------------------------

ACCOUNT = {
    "schema_version": 1,
    "event_id": "e1",
    "source": "ledger",
    "as_of": "2026-11-20T21:00:00Z",
    "type": "account_balance",
    "segment": "4d2",
    "account": "A1",
    "currency": "USD",
    "cash": "1.50",
    "securities": "0",
    "unrealized": "-3.00",
    "long_options": "0",
    "short_options": "-0.10",
    "offset_securities": "0.00",
}
DEPOSITORY = {
    "schema_version": 1,
    "event_id": "d1",
    "source": "bank",
    "as_of": "2026-11-20T21:00:00.5+01:00",
    "type": "depository_balance",
    "segment": "4d2",
    "depository": "B1",
    "line": "7070",
    "currency": "USD",
    "location": "us",
    "instrument": "cash",
    "amount": "100.00",
}
VALUES: list[object] = [
    None,
    1,
    1.0,
    1.5,
    -1,
    True,
    "",
    " ",
    "0",
    "-0",
    "0.00",
    "-0.00",
    "1.5",
    "1.50",
    "1.505",
    "00.1",
    "+1",
    "1e2",
    "1E-2",
    "12345678901234567",
    "123456789012345.12",
    "-123456789012345.12",
    "1234567890123456.1",
    " 1.00",
    "1.00 ",
    "NaN",
    "Infinity",
    "-1.00",
    "abc",
    "A1",
    "a b",
    "a|b",
    " A1",
    "A1 ",
    "é",
    "x" * 128,
    "x" * 129,
    "x" * 64,
    "x" * 65,
    'a"b',
    "a\\b",
    "a{b}",
    "a\tb",
    "a\x01b",
    "USD",
    "usd",
    "XXX",
    "EUR",
    "ZZZ",
    "4d2",
    "30.7",
    "4df",
    "4D2",
    "2026-11-20T21:00:00Z",
    "2026-11-20T21:00:00+00:00",
    "2026-11-20T21:00:00-05:00",
    "2026-11-20T21:00:00.123Z",
    "2026-11-20T21:00:00.1234567Z",
    "2026-11-20 21:00:00Z",
    "2026-11-20t21:00:00z",
    "2026-11-20T21:00:00",
    "2026-02-30T21:00:00Z",
    "2026-11-20T24:00:00Z",
    "2026-11-20T21:00:60Z",
    "2026-11-20T21:00:00+24:00",
    "2026-11-20T21:00:00+23:59",
    "2026-11-20T21:00Z",
    "0000-01-01T00:00:00Z",
    "7070",
    "7100",
    "7132",
    "7133",
    "7500",
    "7610",
    "7615",
    "8600",
    "8670",
    "8680",
    "7010",
    "9999",
    "707",
    "us",
    "non_us",
    "US",
    "cash",
    "other",
    "bonds",
    "municipal",
    "account_balance",
    "depository_balance",
    "fx_rate",
    "management_target",
    [],
    {},
]


@st.composite
def wire_events(draw: st.DrawFn) -> bytes:
    """A balance event as ingest publishes it, then a few fields changed, dropped or added, maybe reordered,
    maybe re-serialized with blanks."""
    event = dict(draw(st.sampled_from([ACCOUNT, DEPOSITORY])))
    fields = [*event, "extra"]
    for _ in range(draw(st.integers(0, 3))):
        field = draw(st.sampled_from(fields))
        if draw(st.integers(0, 9)) == 0:
            event.pop(field, None)
        else:
            event[field] = draw(st.sampled_from(VALUES))
    if draw(st.booleans()):
        items = list(event.items())
        order = draw(st.permutations(range(len(items))))
        event = dict(items[i] for i in order)
    return json.dumps(event).encode() if draw(st.integers(0, 9)) == 0 else orjson.dumps(event)


def outcome(read: Any) -> Any:
    try:
        result = read()
    except ValidationError as exc:
        return ("rejected", [(e["type"], e["loc"], e["msg"]) for e in exc.errors()])
    if isinstance(result, tuple):
        key, held_key, held = result
        return (
            "balance",
            key,
            held_key,
            held.as_of,
            held.as_of.utcoffset(),
            held.event_id,
            held.segment,
            held.currency,
            held.source,
            held.codes,
            [str(a) for a in held.amounts],
        )
    return ("other", result)


def reference(raw: bytes) -> Any:
    event = parse_event_json(raw)
    if isinstance(event, AccountBalance | DepositoryBalance):
        held_key, held = held_of(event)
        return event.key, held_key, held
    return event


@given(wire_events())
def test_the_calculators_fast_reading_answers_as_pydantic_does(raw: bytes) -> None:
    assert outcome(lambda: read_balance(raw)) == outcome(lambda: reference(raw))
