"""The latency phase's arithmetic (bench/runner.py), on hand-made records: which figures record carries an
event, and which dip or cure an alert answers."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from bench.kafkaio import Seen
from bench.runner import alert_latencies, dip_alerts, figure_latencies
from bench.workload import DIP


def alert(state: str, kafka_ms: int, rule: str = "deficiency", segment: str = DIP[0]) -> Seen[SimpleNamespace]:
    return Seen(SimpleNamespace(rule=rule, segment=segment, state=state), kafka_ms, 0.0)


def figures(segment: str, ingested_ms: int | None, kafka_ms: int) -> Seen[SimpleNamespace]:
    at = None if ingested_ms is None else datetime.fromtimestamp(ingested_ms / 1000, UTC)
    return Seen(SimpleNamespace(segment=segment, ingested_at=at), kafka_ms, 0.0)


def test_only_the_dipped_segments_deficiency_alerts_count() -> None:
    mine = alert("firing", 10)
    others = [alert("firing", 11, segment="30.7"), alert("firing", 12, rule="under_target")]
    assert dip_alerts([others[0], mine, others[1]]) == [mine]


def test_one_alert_per_transition_is_paired_in_order() -> None:
    toggles = [(True, 1000), (False, 2000)]
    assert alert_latencies([alert("firing", 1100), alert("resolved", 2300)], toggles) == [0.1, 0.3]


def test_coalesced_dips_measure_each_alert_from_the_latest_transition_of_its_kind_before_it() -> None:
    toggles = [(True, 1000), (False, 2000), (True, 3000), (False, 4000)]
    # The calculator saw only the first dip and the last cure: a lower bound for each.
    assert alert_latencies([alert("firing", 1500), alert("resolved", 4200)], toggles) == [0.5, 0.2]
    assert alert_latencies([alert("resolved", 500)], toggles) == []  # nothing before it: not measured


def test_an_event_is_in_the_first_figures_record_of_its_segment_ingested_at_or_after_it() -> None:
    records = [
        figures("4d2", 1000, 1010),
        figures("4d2", None, 1015),  # not from a balance: carries no event
        figures("30.7", 1500, 1600),
        figures("4d2", 1200, 1250),
        figures("4d2", 1100, 1300),  # older than the newest already shown: the running newest counts
    ]
    sent = [("4d2", 900), ("4d2", 1000), ("4d2", 1150), ("30.7", 1500), ("4d2", 1250), ("4df", 1)]
    events, behind = figure_latencies(records, sent)
    assert sorted(events) == pytest.approx(sorted([0.11, 0.01, 0.1, 0.1]))  # 4d2 @1250 and 4df: not yet shown
    assert sorted(behind) == pytest.approx(sorted([0.01, 0.05, 0.2, 0.1]))
