"""The alerter's Prometheus metrics reflect a figures record; amounts become floats only at that boundary."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from schemas.controls import Baseline
from segwatch.core.catalogue import SEGMENTS
from segwatch.core.controls import Controls
from segwatch.core.rules import AlertStates, evaluate
from services.alerter import metrics as m
from services.alerter.metrics import AlerterMetrics
from tests.support.figures import T0, real_figures

ROOT = Path(__file__).resolve().parents[2]


def value(metrics: AlerterMetrics, name: str, **labels: str) -> float | None:
    sample: float | None = metrics.registry.get_sample_value(name, labels)
    return sample


def test_the_gauges_show_a_figures_record() -> None:
    metrics = AlerterMetrics()
    figures = real_figures("4d2", 7, funds_delta=Decimal("-0.01"), missing_fx=["EUR", "JPY"])
    assert metrics.show_figures(figures)
    assert value(metrics, m.REQUIREMENT, segment="4d2") == 6783975916.0
    assert value(metrics, m.FUNDS, segment="4d2") == float(Decimal("7228197853.99"))
    assert value(metrics, m.EXCESS, segment="4d2") == float(figures.excess)
    assert value(metrics, m.TARGET, segment="4d2") == 316400000.0
    assert figures.excess_over_target is not None
    assert value(metrics, m.EXCESS_OVER_TARGET, segment="4d2") == float(figures.excess_over_target)
    assert value(metrics, m.FIGURES_VERSION, segment="4d2") == 7
    assert value(metrics, m.MISSING_FX, segment="4d2") == 2
    assert value(metrics, m.SOURCE_LAST_UPDATE, source="ledger") == figures.sources["ledger"].timestamp()
    # Every line of the catalogue the figures carry, by its code.
    for line in SEGMENTS["4d2"].lines:
        expected = figures.lines.get(line.code)
        got = value(metrics, m.STATEMENT_LINE, segment="4d2", line=line.code)
        assert got == (None if expected is None else float(expected)), line.code
    assert value(metrics, m.STATEMENT_LINE, segment="4d2", line="7070") == float(figures.lines["7070"])
    # Other segments are untouched until their figures arrive.
    assert value(metrics, m.EXCESS, segment="30.7") is None


def test_every_segment_exposes_every_catalogue_line_it_has() -> None:
    metrics = AlerterMetrics()
    for segment in SEGMENTS:
        metrics.show_figures(real_figures(segment))
    lines = {
        (s.labels["segment"], s.labels["line"])
        for family in text_string_to_metric_families(metrics.exposition().decode())
        if family.name == m.STATEMENT_LINE
        for s in family.samples
    }
    expected = {(seg.id, ln.code) for seg in SEGMENTS.values() for ln in seg.lines if not ln.summary_only}
    assert lines == expected


def test_an_older_version_does_not_overwrite_a_newer_one() -> None:
    metrics = AlerterMetrics()
    newer = real_figures("4df", 9)
    older = real_figures("4df", 8, funds_delta=-1_000_000)
    assert metrics.show_figures(newer)
    assert not metrics.show_figures(older)
    assert value(metrics, m.FIGURES_VERSION, segment="4df") == 9
    assert value(metrics, m.EXCESS, segment="4df") == float(newer.excess)
    assert metrics.show_figures(newer)  # the same version again is harmless


def test_counters_and_latency_histograms() -> None:
    metrics = AlerterMetrics()
    real = real_figures()
    ingested = T0
    figures = real_figures(version=2, funds_delta=-real.excess - 1, ingested_at=ingested)
    metrics.figures_evaluated(figures, ingested + timedelta(milliseconds=40))
    metrics.figures_evaluated(figures, None)  # no Kafka timestamp: counted, not timed
    assert value(metrics, m.FIGURES_TOTAL, segment="4d2") == 2
    assert value(metrics, m.EVENT_TO_FIGURES + "_count") == 1
    assert value(metrics, m.EVENT_TO_FIGURES + "_sum") == 0.04

    under, deficiency = evaluate(AlertStates(), figures, now=T0).changes
    metrics.alert_published(under, ingested + timedelta(seconds=1), ingested)
    metrics.alert_published(deficiency, ingested + timedelta(seconds=2), ingested)
    assert value(metrics, m.ALERTS_TOTAL, rule="deficiency", severity="critical", state="firing") == 1
    assert value(metrics, m.ALERTS_TOTAL, rule="under_target", severity="warning", state="firing") == 1
    assert value(metrics, m.ALERT_FIRING, segment="4d2", rule="deficiency") == 1
    assert value(metrics, m.ALERT_FIRING, segment="30.7", rule="deficiency") == 0
    assert value(metrics, m.EVENT_TO_ALERT + "_count") == 2
    assert value(metrics, m.EVENT_TO_ALERT + "_sum") == 3.0
    assert value(metrics, m.EVENT_TO_ALERT + "_bucket", le="1.0") == 1

    metrics.show_alert_states([])  # recovered state: nothing firing
    assert value(metrics, m.ALERT_FIRING, segment="4d2", rule="deficiency") == 0
    assert value(metrics, m.ALERTS_TOTAL, rule="deficiency", severity="critical", state="firing") == 1


def test_sources_keep_their_newest_time_across_segments() -> None:
    metrics = AlerterMetrics()
    late = datetime(2026, 1, 2, tzinfo=UTC)
    early = datetime(2026, 1, 1, tzinfo=UTC)
    metrics.show_sources({"ledger": late, "bank": early})
    metrics.show_sources({"ledger": early})
    assert value(metrics, m.SOURCE_LAST_UPDATE, source="ledger") == late.timestamp()
    assert value(metrics, m.SOURCE_LAST_UPDATE, source="bank") == early.timestamp()


def test_each_instance_has_its_own_registry_and_every_name_is_exposed() -> None:
    one, two = AlerterMetrics(), AlerterMetrics()
    one.show_figures(real_figures())
    one.figures_evaluated(real_figures(), None)
    one.stale_figures(real_figures())
    one.dead_letter()
    one.set_ready(True)
    controls = Controls()
    controls.on_baseline(Baseline(segment="4d2", business_day=T0.date(), cutoff=T0, excess=Decimal(100)))
    controls.on_figures(real_figures())
    one.show_window(controls.status("4d2"))
    one.what_if("allowed")
    one.alert_published(
        evaluate(AlertStates(), real_figures(version=1, funds_delta=-(10**10)), now=T0).changes[0], T0, T0
    )
    assert value(two, m.FIGURES_TOTAL, segment="4d2") is None
    exposed = one.exposition().decode()
    for name in m.METRIC_NAMES:
        assert re.search(rf"^{name}(_bucket)?[{{ ]", exposed, re.M), name
    assert len(set(m.METRIC_NAMES)) == len(m.METRIC_NAMES)


def test_floats_appear_only_at_the_prometheus_boundary() -> None:
    result = evaluate(AlertStates(), real_figures(version=1, funds_delta=-(10**10)), now=T0)
    for alert in result.changes:
        assert alert.figures is not None
        for amount in (alert.figures.excess, alert.figures.funds, alert.figures.requirement, alert.figures.target):
            assert isinstance(amount, Decimal)
    # No other module of the alerter path turns an amount into a float.
    sources = [ROOT / "segwatch/core/rules.py", *sorted((ROOT / "services/alerter").glob("*.py"))]
    for path in sources:
        text = path.read_text()
        if path.name == "metrics.py":
            assert text.count("float(") == 1 + text.count('float("-inf")'), "only dollars() converts"
        else:
            assert "float(" not in text, path
