"""deploy/alertmanager: amtool check-config, the routing cases of deploy/alertmanager/tests/routes.yml with
`amtool config routes test --verify.receivers`, the inhibit rule, secrets as files, and the templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from segwatch.ops.stack import ALERTMANAGER_CONFIG, ALERTMANAGER_DIR, Endpoints, alertmanager_config, load_yaml
from tests.ops.conftest import ROOT, run_tool, tool

ROUTES = yaml.safe_load((ALERTMANAGER_DIR / "tests" / "routes.yml").read_text(encoding="utf-8"))


def routes_test(receivers: list[str], labels: dict[str, str]) -> Any:
    return run_tool(
        [
            tool("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--verify.receivers={','.join(receivers)}",
            *(f"{k}={v}" for k, v in labels.items()),
        ]
    )


def test_amtool_check_config() -> None:
    result = run_tool([tool("amtool"), "check-config", str(ALERTMANAGER_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "1 inhibit rules" in result.stdout and "1 templates" in result.stdout


@pytest.mark.parametrize("case", ROUTES, ids=[case["name"] for case in ROUTES])
def test_route(case: dict[str, Any]) -> None:
    result = routes_test(case["receivers"], case["labels"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == ",".join(case["receivers"])


def test_route_verification_can_fail() -> None:
    """amtool really verifies: a deficiency does not go to the platform's chat alone."""
    result = routes_test(["ops-chat"], {"alertname": "SegwatchDeficiency", "severity": "critical", "segment": "4d2"})
    assert result.returncode != 0


def test_every_receiver_and_alert_has_a_route_case() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    receivers = {r["name"] for r in config["receivers"]}
    assert {name for case in ROUTES for name in case["receivers"]} == receivers
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules" / "segwatch.rules.yml").read_text())
    alerts = {
        (rule["alert"], rule["labels"]["severity"])
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    cases = {(case["labels"]["alertname"], case["labels"].get("severity")) for case in ROUTES}
    assert alerts <= cases, f"alerts without a routing case: {sorted(alerts - cases)}"


def test_grouping_inhibition_and_secrets() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    assert config["route"]["group_by"] == ["alertname", "segment"]
    [inhibit] = config["inhibit_rules"]
    assert inhibit == {
        "source_matchers": ['alertname="SegwatchDeficiency"'],
        "target_matchers": ['alertname="SegwatchUnderTarget"'],
        "equal": ["segment"],
    }
    [page] = [r for r in config["receivers"] if r["name"] == "oncall-page"]
    [pagerduty] = page["pagerduty_configs"]
    assert pagerduty["routing_key_file"].startswith("/etc/alertmanager/secrets/")
    assert "routing_key" not in pagerduty and "service_key" not in pagerduty
    assert page["webhook_configs"][0]["send_resolved"] is True
    for receiver in config["receivers"]:
        for chat in receiver.get("slack_configs") or []:
            assert "api_url" not in chat and chat["api_url_file"].startswith("/etc/alertmanager/secrets/")


def test_local_config_keeps_the_routing_tree(tmp_path: Path) -> None:
    """What the e2e test runs: the same routes, matchers and inhibitions; endpoints and secrets local."""
    real = load_yaml(ALERTMANAGER_CONFIG)
    local = alertmanager_config(tmp_path, Endpoints("http://127.0.0.1:1"), "1s", "2s")

    def tree(route: dict[str, Any]) -> Any:
        return (
            route["receiver"],
            route.get("matchers"),
            route.get("continue"),
            route.get("group_by"),
            [tree(child) for child in route.get("routes") or []],
        )

    assert tree(local["route"]) == tree(real["route"])
    assert local["inhibit_rules"] == real["inhibit_rules"]
    assert local["route"]["group_wait"] == "1s" and local["route"]["routes"][0]["group_wait"] == "1s"
    assert local["route"]["group_interval"] == "2s"
    assert (tmp_path / "pagerduty-routing-key").read_text().strip() == "segwatch-test-routing-key"
    assert (tmp_path / "ops-chat-webhook-url").read_text().strip() == "http://127.0.0.1:1/chat/ops-chat"
    path = tmp_path / "am.yml"
    path.write_text(yaml.safe_dump(local), encoding="utf-8")
    result = run_tool([tool("amtool"), "check-config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def render(data: dict[str, Any], tmp_path: Path) -> str:
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = run_tool(
        [
            tool("amtool"),
            "template",
            "render",
            f"--template.glob={ALERTMANAGER_DIR / 'templates' / '*.tmpl'}",
            '--template.text={{ template "segwatch.title" . }}\n{{ template "segwatch.text" . }}',
            f"--template.data={path}",
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def alert(status: str, summary: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {
            "alertname": "SegwatchDeficiency",
            "segment": "4d2",
            "severity": "critical",
            "job": "segwatch-alerter",
        },
        "annotations": {
            "summary": summary,
            "description": "Under-segregated.",
            "runbook_url": "docs/RUNBOOK.md#deficiency",
        },
        "startsAt": "2017-11-06T15:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": "f",
    }


def test_templates_render_firing_and_resolved(tmp_path: Path) -> None:
    common = {"alertname": "SegwatchDeficiency", "segment": "4d2", "severity": "critical"}
    summary = "4d2 DEFICIENCY: excess -5.00 USD"
    firing = render(
        {
            "receiver": "oncall-page",
            "status": "firing",
            "alerts": [alert("firing", summary)],
            "groupLabels": {"alertname": "SegwatchDeficiency", "segment": "4d2"},
            "commonLabels": common,
            "commonAnnotations": {},
            "externalURL": "http://am",
        },
        tmp_path,
    )
    assert firing.startswith("[FIRING:1] SegwatchDeficiency segment 4d2 (critical)\n")
    assert "FIRING: 4d2 DEFICIENCY: excess -5.00 USD\nUnder-segregated.\nRunbook: docs/RUNBOOK.md#deficiency" in firing
    resolved = render(
        {
            "receiver": "oncall-page",
            "status": "resolved",
            "alerts": [alert("resolved", summary)],
            "groupLabels": {},
            "commonLabels": common,
            "commonAnnotations": {},
            "externalURL": "http://am",
        },
        tmp_path,
    )
    assert resolved.startswith("[RESOLVED] SegwatchDeficiency segment 4d2 (critical)\n")
    assert f"RESOLVED: SegwatchDeficiency segment 4d2 (segwatch-alerter) (was: {summary})" in resolved
    assert "FIRING" not in resolved
