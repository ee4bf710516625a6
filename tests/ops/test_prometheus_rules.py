"""deploy/prometheus: promtool check config / check rules / test rules, and what every alert must carry."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from segwatch.ops.stack import PROMETHEUS_DIR, rule_files, shorten_durations
from tests.ops.conftest import ROOT, run_tool, tool

RUNBOOK = ROOT / "docs" / "RUNBOOK.md"
TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
SEGMENT_ALERTS = {
    "SegwatchDeficiency",
    "SegwatchUnderTarget",
    "SegwatchMissingFx",
    "SegwatchStaleFx",
    "SegwatchNoTarget",
}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alerts() -> list[dict[str, Any]]:
    return [
        rule for path in rule_files() for group in load(path)["groups"] for rule in group["rules"] if "alert" in rule
    ]


def records() -> list[dict[str, Any]]:
    return [
        rule for path in rule_files() for group in load(path)["groups"] for rule in group["rules"] if "record" in rule
    ]


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-k8s.yml"])
def test_promtool_check_config(config: str) -> None:
    result = run_tool([tool("promtool"), "check", "config", str(PROMETHEUS_DIR / config)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_rules() -> None:
    result = run_tool([tool("promtool"), "check", "rules", *map(str, rule_files())])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts()) + len(records())} rules found" in result.stdout


def test_promtool_unit_tests() -> None:
    assert TESTS, "no promtool unit tests in deploy/prometheus/tests"
    result = run_tool([tool("promtool"), "test", "rules", *map(str, TESTS)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TESTS), result.stdout


def test_promtool_unit_tests_fail_on_a_wrong_rule(tmp_path: Path) -> None:
    """The unit tests are not vacuous: the deficiency threshold moved to `<= 0` makes them fail."""
    (tmp_path / "rules").mkdir()
    for path in rule_files():
        text = path.read_text(encoding="utf-8").replace("segwatch_excess_dollars < 0", "segwatch_excess_dollars <= 0")
        (tmp_path / "rules" / path.name).write_text(text, encoding="utf-8")
    (tmp_path / "tests").mkdir()
    for path in TESTS:
        (tmp_path / "tests" / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    result = run_tool([tool("promtool"), "test", "rules", *(str(tmp_path / "tests" / p.name) for p in TESTS)])
    assert result.returncode != 0
    assert "SegwatchDeficiency" in result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing() -> None:
    """Each alert has at least one promtool case where it fires (and one where it does not)."""
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TESTS:
        for case in load(path)["tests"]:
            for check in case.get("alert_rule_test") or []:
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - firing == set(), f"alerts never tested firing: {sorted(names - firing)}"
    assert names - quiet == set(), f"alerts never tested quiet: {sorted(names - quiet)}"
    assert firing <= names, f"tests of unknown alerts: {sorted(firing - names)}"


def test_every_recording_rule_is_tested_or_used() -> None:
    tested = {
        check["expr"] for path in TESTS for case in load(path)["tests"] for check in case.get("promql_expr_test") or []
    }
    for rule in records():
        used = any(rule["record"] in other["expr"] for other in alerts() + records() if other is not rule)
        assert rule["record"] in tested or used, rule["record"]


def test_alert_labels_and_annotations() -> None:
    runbook = anchors(RUNBOOK.read_text(encoding="utf-8"))
    assert len(alerts()) >= 7
    for rule in alerts():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, name
        path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert path == "docs/RUNBOOK.md" and anchor in runbook, (name, rule["annotations"]["runbook_url"])
        if name in SEGMENT_ALERTS:  # per segment: the segment label comes from the alerter's series
            assert "$labels.segment" in rule["annotations"]["summary"], name
    by_name = {rule["alert"]: rule for rule in alerts()}
    # The threshold first; then only "still firing while the figures are incomplete" (never resolved on them).
    assert by_name["SegwatchDeficiency"]["expr"].strip().startswith("segwatch_excess_dollars < 0\nor (")
    assert "segwatch_figures_incomplete == 1" in by_name["SegwatchDeficiency"]["expr"]
    assert by_name["SegwatchDeficiency"]["labels"]["severity"] == "critical"
    assert (
        by_name["SegwatchUnderTarget"]["expr"]
        .strip()
        .startswith("segwatch_excess_dollars < segwatch_target_dollars\nor (")
    )
    assert by_name["SegwatchMissingFx"]["labels"]["severity"] == "critical"
    assert by_name["SegwatchStaleFx"]["labels"]["severity"] == "warning"
    assert by_name["SegwatchNoTarget"]["labels"]["severity"] == "warning"
    assert by_name["SegwatchUnderTarget"]["labels"]["severity"] == "warning"
    assert "up{" in by_name["SegwatchServiceDown"]["expr"] and "== 0" in by_name["SegwatchServiceDown"]["expr"]
    assert "segwatch_ingest_source_last_seen_timestamp_seconds" in " ".join(r["expr"] for r in records())


def test_cadence_has_a_default_and_overrides() -> None:
    cadence = [rule for rule in records() if rule["record"].startswith("segwatch:input_cadence_seconds:")]
    defaults = [rule for rule in cadence if rule["record"].endswith(":default")]
    overrides = [rule for rule in cadence if rule["record"].endswith(":override")]
    assert len(defaults) == 1 and "labels" not in defaults[0]
    sources = [rule["labels"]["source"] for rule in overrides]
    assert len(sources) == len(set(sources)) >= 1, sources
    for rule in cadence:
        assert re.fullmatch(r"vector\(\d+\)", rule["expr"]), rule


def test_shortened_durations_keep_the_expressions() -> None:
    for path in rule_files():
        rules = load(path)
        short = shorten_durations(rules, "1s", keys=("for", "keep_firing_for"))
        for group, short_group in zip(rules["groups"], short["groups"], strict=True):
            for rule, short_rule in zip(group["rules"], short_group["rules"], strict=True):
                assert {k: v for k, v in short_rule.items() if k not in ("for", "keep_firing_for")} == {
                    k: v for k, v in rule.items() if k not in ("for", "keep_firing_for")
                }
                assert all(short_rule[k] == "1s" for k in ("for", "keep_firing_for") if k in rule)
        assert load(path) == rules  # the original is untouched
