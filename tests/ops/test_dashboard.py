"""The Grafana dashboard: the checked-in JSON is what the generator makes from the catalogue, every segment and
line is on it, and the provisioning loads it with the right datasource."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from segwatch.core.catalogue import SEGMENTS
from segwatch.ops import dashboard
from tests.ops.conftest import ROOT

GRAFANA = ROOT / "deploy" / "grafana"


def panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in model["panels"] if p["type"] != "row"]


def test_checked_in_json_is_the_generated_one() -> None:
    assert dashboard.OUTPUT.read_text(encoding="utf-8") == dashboard.render(), (
        "deploy/grafana/dashboards/segwatch.json drifted from segwatch/ops/dashboard.py: "
        "run python -m segwatch.ops.dashboard"
    )


def test_check_mode_detects_drift(tmp_path: Path) -> None:
    out = tmp_path / "segwatch.json"
    argv = [sys.executable, "-m", "segwatch.ops.dashboard", "--output", str(out)]
    assert subprocess.run([*argv, "--check"], capture_output=True, check=False).returncode == 1  # missing
    assert subprocess.run(argv, capture_output=True, check=False).returncode == 0
    assert json.loads(out.read_text()) == dashboard.build()
    assert subprocess.run([*argv, "--check"], capture_output=True, check=False).returncode == 0
    out.write_text(out.read_text().replace("segwatch_excess_dollars", "segwatch_excess"))
    assert subprocess.run([*argv, "--check"], capture_output=True, check=False).returncode == 1


def test_every_segment_has_its_panels() -> None:
    model = dashboard.build()
    titles = [p["title"] for p in panels(model)]
    for seg in SEGMENTS.values():
        for what in ("excess against management target", "requirement against funds held", "statement lines"):
            assert sum(t.startswith(f"{seg.id} ") and t.endswith(what) for t in titles) == 1, (seg.id, what)
    for title in (
        "Alerter: alert states per segment",
        "Prometheus: segwatch alerts",
        "Services up",
        "Throughput: events ingested and applied per second",
        "Consumer lag: balance records not yet applied",
        "Latency: event → figures (p50, p95, p99)",
        "Latency: event → alert (p50, p95, p99)",
    ):
        assert title in titles
    assert any(t.startswith("Input freshness") for t in titles)


def test_latency_panels_have_p50_p95_p99() -> None:
    for panel in panels(dashboard.build()):
        if panel["title"].startswith("Latency"):
            assert [t["legendFormat"] for t in panel["targets"]] == ["p50", "p95", "p99"]
            assert all(
                t["expr"].startswith(f"histogram_quantile({q}, ")
                for t, q in zip(panel["targets"], ("0.5", "0.95", "0.99"), strict=True)
            )


def test_statement_tables_label_every_line_from_the_catalogue() -> None:
    model = dashboard.build()
    for seg in SEGMENTS.values():
        [table] = [p for p in panels(model) if p["title"] == f"{dashboard.segment_name(seg)}: statement lines"]
        assert table["type"] == "table" and table["targets"][0]["instant"] is True
        assert f'segment="{seg.id}"' in table["targets"][0]["expr"]
        overrides = {
            o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]}
            for o in table["fieldConfig"]["overrides"]
        }
        numbers = overrides["number"]["mappings"][0]["options"]
        labels = overrides["label"]["mappings"][0]["options"]
        assert {code: m["text"] for code, m in numbers.items()} == {ln.code: ln.number for ln in seg.lines}
        assert {code: m["text"] for code, m in labels.items()} == {ln.code: ln.label for ln in seg.lines}
        assert overrides["number"]["displayName"] == "Line" and overrides["label"]["displayName"] == "Label"


def test_alert_annotations() -> None:
    anns = dashboard.build()["annotations"]["list"]
    exprs = [a.get("expr", "") for a in anns]
    assert any(e.startswith("ALERTS{") for e in exprs)
    assert any(e.startswith("segwatch_alert_firing") for e in exprs)


def test_every_query_uses_the_provisioned_datasource() -> None:
    [datasource] = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "segwatch.yml").read_text())[
        "datasources"
    ]
    assert datasource["uid"] == dashboard.DATASOURCE_UID and datasource["type"] == "prometheus"
    model = dashboard.build()
    for panel in panels(model):
        assert panel["datasource"] == dashboard.DATASOURCE, panel["title"]
        assert all(t["datasource"] == dashboard.DATASOURCE for t in panel["targets"]), panel["title"]
    for ann in model["annotations"]["list"]:
        if "expr" in ann:
            assert ann["datasource"] == dashboard.DATASOURCE


def test_layout_has_no_overlaps_and_fits_the_grid() -> None:
    model = dashboard.build()
    cells: set[tuple[int, int]] = set()
    for panel in model["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not mine & cells, panel["title"]
        cells |= mine
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))


def test_provisioning_points_at_the_dashboard() -> None:
    [provider] = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "segwatch.yml").read_text())["providers"]
    assert provider["type"] == "file"
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    mounts = dict(
        v.rsplit(":", 1)[0].split(":", 1) for v in compose["services"]["grafana"]["volumes"] if v.startswith("./")
    )
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == compose["services"]["grafana"]["environment"]["GF_PATHS_PROVISIONING"]
    assert (ROOT / "deploy" / "grafana" / "dashboards" / dashboard.OUTPUT.name).is_file()
    home = compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{dashboard.OUTPUT.name}"
