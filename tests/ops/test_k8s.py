"""deploy/k8s: every manifest validates against the Kubernetes JSON schemas (kubernetes-validate, offline), and
the workloads (Deployments; the calculator's StatefulSet) match the services: commands, ports, probes, config,
secrets, scrape annotations."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from segwatch.cli import build_parser
from segwatch.config import KafkaSettings
from segwatch.kafka import topics
from services.ingest.config import IngestConfig
from tests.ops.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
VERSIONS = ("1.29.0", "1.33.0")  # oldest and newest minor a cluster is expected to run
PORTS = {"ingest": 8701, "calculator": 8702, "alerter": 8703}
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def docs(*paths: Path) -> list[dict[str, Any]]:
    return [d for p in paths for d in yaml.safe_load_all(p.read_text(encoding="utf-8")) if d]


def kind(k: str, paths: list[Path] = MANIFESTS) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs(*paths) if d["kind"] == k}


def workload(name: str) -> dict[str, Any]:
    """The Deployment, or for the calculator the StatefulSet, that runs a service."""
    return {**kind("Deployment"), **kind("StatefulSet")}[name]


def container(name: str) -> dict[str, Any]:
    [c] = workload(name)["spec"]["template"]["spec"]["containers"]
    out: dict[str, Any] = c
    return out


def env(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network: any connection or DNS lookup fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("version", VERSIONS)
def test_manifests_validate_against_the_schemas_offline(version: str, offline: None) -> None:
    validated = 0
    for doc in docs(*MANIFESTS):
        kubernetes_validate.validate(doc, version, strict=True)
        validated += 1
    assert validated >= 12


def test_the_validator_rejects_a_wrong_manifest(offline: None) -> None:
    deployment = kind("Deployment")["ingest"]
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/healthz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS if p.name != "secrets.example.yaml")
    images = {i["name"] for i in kustomization["images"]}
    assert images == {container(name)["image"] for name in PORTS}


def test_the_calculator_is_a_statefulset_whose_pod_name_is_its_group_instance_id() -> None:
    """Static group membership: a killed calculator takes its partitions back at once, instead of after the
    dead member's session timeout (dynamic membership, a Deployment's random pod names)."""
    calculator = kind("StatefulSet")["calculator"]
    assert "calculator" not in kind("Deployment")
    assert calculator["spec"]["serviceName"] == "calculator-pods" and "calculator-pods" in kind("Service")
    [instance] = [e for e in container("calculator")["env"] if e["name"] == "SEGWATCH_CALCULATOR_INSTANCE_ID"]
    assert instance["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def parse_args(argv: list[str]) -> argparse.Namespace:
    return build_parser(argv[0]).parse_args(argv)


@pytest.mark.parametrize("name", PORTS)
def test_deployment_runs_the_service(name: str) -> None:
    c = container(name)
    port = PORTS[name]
    args = parse_args(c["args"])
    assert args.command == name
    if name == "calculator":
        assert args.calculator_command == "worker"
        assert env(c)["SEGWATCH_BIND"] == "0.0.0.0" and env(c)["SEGWATCH_CALCULATOR_PORT"] == str(port)
    else:
        assert (args.host, args.port) == ("0.0.0.0", port)
    assert c["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert set(c["resources"]["requests"]) == set(c["resources"]["limits"]) == {"cpu", "memory"}
    assert c["envFrom"] == [{"configMapRef": {"name": "segwatch-config"}}]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    pod = workload(name)["spec"]["template"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }


def mounted_secret_files(name: str) -> dict[str, tuple[str, str]]:
    """env var → (Secret name, key) for each *_FILE variable pointing into a mounted Secret."""
    c = container(name)
    volumes = {v["name"]: v for v in workload(name)["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
    out = {}
    for var, value in env(c).items():
        if var.endswith("_FILE"):
            directory, _, key = value.rpartition("/")
            out[var] = (mounts[directory]["secret"]["secretName"], key)
    return out


def test_secrets_come_from_secrets_as_files() -> None:
    example = kind("Secret", [K8S / "secrets.example.yaml"])
    for name in PORTS:
        files = mounted_secret_files(name)
        assert files["KAFKA_SASL_PASSWORD_FILE"] == ("segwatch-kafka", "sasl-password")
        for secret, key in files.values():
            assert key in example[secret]["stringData"], (secret, key)
    assert mounted_secret_files("ingest")["SEGWATCH_INGEST_TOKENS_FILE"] == ("segwatch-ingest-tokens", "tokens")
    config = kind("ConfigMap")["segwatch-config"]["data"]
    assert not any("PASSWORD" in k or "TOKEN" in k for k in config)


def test_config_is_what_the_services_read(tmp_path: Path) -> None:
    """The ConfigMap plus the mounted secret files make valid settings for segwatch's own parsers."""
    config = dict(kind("ConfigMap")["segwatch-config"]["data"])
    password = tmp_path / "sasl-password"
    password.write_text("pw\n")
    tokens = tmp_path / "tokens"
    tokens.write_text("a-long-token\n")
    settings = KafkaSettings.from_env({**config, "KAFKA_SASL_PASSWORD_FILE": str(password)})
    assert settings.security_protocol == "SASL_SSL" and settings.sasl_password == "pw"
    specs = {s.name: s for s in topics.topics(config)}
    assert specs[topics.BALANCES].partitions == int(config["SEGWATCH_BALANCE_PARTITIONS"])
    assert IngestConfig.from_env({**config, "SEGWATCH_INGEST_TOKENS_FILE": str(tokens)}).tokens == (b"a-long-token",)


@pytest.mark.parametrize("name", PORTS)
def test_services_select_the_pods(name: str) -> None:
    labels = workload(name)["spec"]["template"]["metadata"]["labels"]
    services = kind("Service")
    for svc in (services[name], services[f"{name}-pods"]):
        assert svc["spec"]["selector"].items() <= labels.items()
        assert svc["spec"]["ports"][0]["port"] == PORTS[name] and svc["spec"]["ports"][0]["targetPort"] == "http"
    assert services[f"{name}-pods"]["spec"]["clusterIP"] == "None"
    assert services[f"{name}-pods"]["spec"]["publishNotReadyAddresses"] is True


def test_prometheus_k8s_scrapes_the_headless_services() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus-k8s.yml").read_text())
    for job in config["scrape_configs"]:
        service = job["job_name"].removeprefix("segwatch-")
        [sd] = job["dns_sd_configs"]
        assert sd["names"] == [f"{service}-pods.segwatch.svc.cluster.local"] and sd["port"] == PORTS[service]
