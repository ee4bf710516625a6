"""deploy/docker-compose.yml and deploy/Dockerfile (neither can be built here): they match the services' real
commands, ports and environment, and wire Prometheus, Alertmanager and Grafana to the files in deploy/."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from segwatch.cli import build_parser
from segwatch.ops.stack import ALERTMANAGER_CONFIG, load_yaml
from tests.ops.conftest import ROOT

DEPLOY = ROOT / "deploy"
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
PORTS = {"ingest": 8701, "calculator": 8702, "alerter": 8703}


def parse(argv: list[str]) -> Any:
    return build_parser(argv[0]).parse_args(argv)


def stages() -> dict[str, list[str]]:
    """Dockerfile stage name → its instruction lines (continuations joined)."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            current = match.group(1)
            out[current] = []
        elif current:
            out[current].append(line)
    return out


def instruction(stage: str, name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in stages()[stage] if line.split(None, 1)[0] == name]


@pytest.mark.parametrize("name", PORTS)
def test_compose_runs_each_service_as_its_cli_says(name: str) -> None:
    svc = SERVICES[name]
    port = PORTS[name]
    args = parse(svc["command"])
    assert args.command == name
    if name == "calculator":
        assert svc["environment"]["SEGWATCH_BIND"] == "0.0.0.0"
        assert svc["environment"].get("SEGWATCH_CALCULATOR_PORT", str(port)) == str(port)
    else:
        assert (args.host, args.port) == ("0.0.0.0", port)
    assert svc["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert svc["build"]["target"] == name and svc["build"]["dockerfile"] == "deploy/Dockerfile"
    assert svc["environment"]["KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert parse(SERVICES["topics"]["command"]).command == "topics"


def test_compose_ingest_requires_tokens() -> None:
    assert SERVICES["ingest"]["environment"]["SEGWATCH_INGEST_TOKENS"].startswith("${SEGWATCH_INGEST_TOKENS:?")


def test_compose_prometheus_scrapes_the_compose_services() -> None:
    prometheus = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in prometheus["scrape_configs"]}
    assert targets == {f"segwatch-{name}": [f"{name}:{port}"] for name, port in PORTS.items()}
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert "./prometheus:/etc/prometheus:ro" in SERVICES["prometheus"]["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in SERVICES["prometheus"]["command"]


def test_compose_alertmanager_gets_its_config_and_secrets() -> None:
    am = SERVICES["alertmanager"]
    assert "./alertmanager:/etc/alertmanager:ro" in am["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in am["command"]
    config = json.dumps(load_yaml(ALERTMANAGER_CONFIG))
    wanted = set(re.findall(r"/etc/alertmanager/secrets/[\w-]+", config))
    assert {s["target"] for s in am["secrets"]} == wanted
    assert {s["source"] for s in am["secrets"]} <= set(COMPOSE["secrets"])


def test_compose_mounts_exist() -> None:
    for svc in SERVICES.values():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), volume
            else:
                assert source in COMPOSE["volumes"], volume


def test_dockerfile_targets_run_as_non_root() -> None:
    names = stages()
    assert {"build", "runtime", "ingest", "calculator", "alerter", "cli"} <= set(names)
    assert list(names)[-1] == "cli"  # the default target is the plain `segwatch` command
    assert instruction("runtime", "USER") == ["10001:10001"]
    assert all("build-essential" not in r for r in instruction("runtime", "RUN"))  # no compilers at run time
    for line in stages()["build"]:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


@pytest.mark.parametrize("name", PORTS)
def test_dockerfile_service_stage(name: str) -> None:
    port = PORTS[name]
    [cmd] = instruction(name, "CMD")
    args = parse(json.loads(cmd))
    assert args.command == name
    if name == "calculator":
        [environment] = instruction(name, "ENV")
        assert "SEGWATCH_BIND=0.0.0.0" in environment.split() and f"SEGWATCH_CALCULATOR_PORT={port}" in environment
    else:
        assert (args.host, args.port) == ("0.0.0.0", port)
    assert instruction(name, "EXPOSE") == [str(port)]
    [health] = instruction(name, "HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/healthz" in health
    assert instruction(name, "USER") == []  # inherits the runtime stage's unprivileged user
