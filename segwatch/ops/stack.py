"""Prometheus and Alertmanager as local processes, configured from deploy/prometheus and deploy/alertmanager.

For the end-to-end alerting test (tests/ops/test_alerting_e2e.py) and for trying the rules against a running
`LocalSystem`. The configurations are the real files with only what differs on this machine changed:
- Prometheus: the scrape targets (the services' actual ports), the Alertmanager address, the scrape and
  evaluation interval, and absolute rule-file paths. The rule files are used as they are, or copied with
  only durations shortened (by default `keep_firing_for`; the expressions are never changed).
- Alertmanager: the same routing tree, inhibit rules and templates; group_wait/group_interval shortened;
  each receiver's endpoints pointed at a local sink (PagerDuty API URL, webhook URL) and each secret file
  (routing key, chat webhook URL) written under a directory of the caller's.

Binaries: `prometheus` and Alertmanager (`/usr/bin/prometheus-alertmanager` on Debian, else `alertmanager`),
or SEGWATCH_PROMETHEUS / SEGWATCH_ALERTMANAGER. Every process listens on 127.0.0.1 at a free port.
"""

from __future__ import annotations

import asyncio
import copy
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import yaml
from aiohttp import web

from segwatch.environment import EnvSettings, Text, env, load, value_of
from segwatch.ops.metrics import JOBS
from segwatch.system import Service, answers_ready, free_port
from segwatch.waiting import wait_until

ROOT: Final = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR: Final = ROOT / "deploy" / "prometheus"
ALERTMANAGER_DIR: Final = ROOT / "deploy" / "alertmanager"
PROMETHEUS_CONFIG: Final = PROMETHEUS_DIR / "prometheus.yml"
ALERTMANAGER_CONFIG: Final = ALERTMANAGER_DIR / "alertmanager.yml"
SECRETS_DIR: Final = "/etc/alertmanager/secrets/"  # where alertmanager.yml expects its secret files


class MissingBinary(RuntimeError):
    pass


class ToolsPart(EnvSettings):
    """The binaries tests/ops runs (segwatch/environment.py: the settings models)."""

    prometheus: Text = env("SEGWATCH_PROMETHEUS", "", "the Prometheus binary (default: prometheus on PATH)")
    alertmanager: Text = env("SEGWATCH_ALERTMANAGER", "", "the Alertmanager binary (default: the Debian one)")


def find_binary(env_var: str, *candidates: str) -> str:
    """The first candidate on PATH (or the one named by env_var); MissingBinary says how to get it."""
    explicit = str(value_of(load(ToolsPart), env_var))
    for name in (explicit,) if explicit else candidates:
        found = shutil.which(name)
        if found:
            return found
    raise MissingBinary(
        f"{explicit or ' / '.join(candidates)} not found: install the Debian packages prometheus and "
        f"prometheus-alertmanager (scripts/prereqs) or set {env_var}"
    )


def prometheus_binary() -> str:
    return find_binary("SEGWATCH_PROMETHEUS", "prometheus")


def alertmanager_binary() -> str:
    return find_binary(
        "SEGWATCH_ALERTMANAGER", "/usr/bin/prometheus-alertmanager", "prometheus-alertmanager", "alertmanager"
    )


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top")
    return data


def rule_files() -> list[Path]:
    """The rule files deploy/prometheus/prometheus.yml loads."""
    cfg = load_yaml(PROMETHEUS_CONFIG)
    return sorted(path for pattern in cfg["rule_files"] for path in PROMETHEUS_DIR.glob(pattern))


def shorten_durations(
    rules: dict[str, Any], longest: str, keys: Sequence[str] = ("keep_firing_for",)
) -> dict[str, Any]:
    """A rule file with the durations named by `keys` (`for`, `keep_firing_for`) set to `longest`; the
    expressions, labels and annotations are untouched."""
    out = copy.deepcopy(rules)
    for group in out["groups"]:
        for rule in group["rules"]:
            for key in keys:
                if key in rule:
                    rule[key] = longest
    return out


def prometheus_config(
    targets: Mapping[str, str],
    alertmanager: str,
    interval: str = "1s",
    rules_dir: Path | None = None,
    longest: str = "1s",
    keys: Sequence[str] = ("keep_firing_for",),
) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml for this machine. `targets`: service name (ingest, calculator,
    alerter) → host:port; `alertmanager`: host:port. With `rules_dir`, the rule files are copied there with
    the durations named by `keys` shortened to `longest` (see shorten_durations); without it they are used
    as they are."""
    cfg = load_yaml(PROMETHEUS_CONFIG)
    cfg["global"].update(scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval)
    if rules_dir is None:
        cfg["rule_files"] = [str(path) for path in rule_files()]
    else:
        rules_dir.mkdir(parents=True, exist_ok=True)
        cfg["rule_files"] = [
            str(write_yaml(rules_dir / path.name, shorten_durations(load_yaml(path), longest, keys)))
            for path in rule_files()
        ]
    cfg["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    by_job = {job: service for service, job in JOBS.items()}
    jobs = {job["job_name"] for job in cfg["scrape_configs"]}
    if jobs != set(by_job) or set(targets) != set(JOBS):
        raise ValueError(f"scrape jobs {sorted(jobs)} / targets {sorted(targets)} do not match {JOBS}")
    for job in cfg["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[by_job[job["job_name"]]]]}]
    return cfg


@dataclass(frozen=True)
class Endpoints:
    """Where the test's receivers are: `base` is the sink's URL; each receiver gets its own paths."""

    base: str
    routing_key: str = "segwatch-test-routing-key"

    def pagerduty(self, receiver: str) -> str:
        return f"{self.base}/pagerduty/{receiver}"

    def webhook(self, receiver: str) -> str:
        return f"{self.base}/webhook/{receiver}"

    def chat(self, receiver: str) -> str:
        return f"{self.base}/chat/{receiver}"


def _timing(route: dict[str, Any], group_wait: str, group_interval: str, root: bool = True) -> None:
    """Shorten the timing on the root route and wherever a child route sets its own (the rest inherit)."""
    for key, value in (("group_wait", group_wait), ("group_interval", group_interval)):
        if root or key in route:
            route[key] = value
    for child in route.get("routes") or []:
        _timing(child, group_wait, group_interval, root=False)


def alertmanager_config(
    secrets: Path, endpoints: Endpoints, group_wait: str = "1s", group_interval: str = "1s"
) -> dict[str, Any]:
    """deploy/alertmanager/alertmanager.yml for this machine: the same routes, inhibitions and templates."""
    cfg = copy.deepcopy(load_yaml(ALERTMANAGER_CONFIG))
    cfg["templates"] = [str(ALERTMANAGER_DIR / pattern) for pattern in cfg.get("templates") or []]
    _timing(cfg["route"], group_wait, group_interval)
    secrets.mkdir(parents=True, exist_ok=True)

    def secret_file(path: str, content: str) -> str:
        if not path.startswith(SECRETS_DIR):
            raise ValueError(f"secret file {path} is not under {SECRETS_DIR}")
        local = secrets / path.removeprefix(SECRETS_DIR)
        local.write_text(content + "\n", encoding="utf-8")
        return str(local)

    for receiver in cfg["receivers"]:
        name = receiver["name"]
        for pd in receiver.get("pagerduty_configs") or []:
            pd["routing_key_file"] = secret_file(pd["routing_key_file"], endpoints.routing_key)
            pd["url"] = endpoints.pagerduty(name)
        for hook in receiver.get("webhook_configs") or []:
            hook["url"] = endpoints.webhook(name)
        for chat in receiver.get("slack_configs") or []:
            chat["api_url_file"] = secret_file(chat["api_url_file"], endpoints.chat(name))
    return cfg


class Process(Service):
    """A server process: started with `start`, ready when GET <url>/-/ready answers 200, stopped by SIGTERM."""

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
                return await answers_ready(http, f"{self.url}/-/ready")

            await wait_until(
                ready, what=f"{self.name} to be ready", timeout=timeout, interval=0.2, detail=self.log_tail
            )

    async def stop(self, timeout: float = 10.0) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 5)


def write_yaml(path: Path, data: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False), encoding="utf-8")
    return path


def prometheus_process(workdir: Path, config: Mapping[str, Any], port: int | None = None) -> Process:
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    cfg = write_yaml(workdir / "prometheus.yml", config)
    argv = [
        prometheus_binary(),
        f"--config.file={cfg}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    return Process("prometheus", argv, port, workdir / "prometheus.log")


def alertmanager_process(workdir: Path, config: Mapping[str, Any], port: int | None = None) -> Process:
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    cfg = write_yaml(workdir / "alertmanager.yml", config)
    argv = [
        alertmanager_binary(),
        f"--config.file={cfg}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    return Process("alertmanager", argv, port, workdir / "alertmanager.log")


# ---------------------------------------------------------------------------------------------------------------
# The receiving end: an HTTP sink that records every notification.


@dataclass(frozen=True)
class Notification:
    kind: str  # pagerduty | webhook | chat
    receiver: str
    body: dict[str, Any]
    at: float


@dataclass
class Sink:
    """An aiohttp server on 127.0.0.1 recording POST /<kind>/<receiver> JSON bodies."""

    port: int = field(default_factory=free_port)
    received: list[Notification] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{kind}/{receiver}", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.json()
        async with self._changed:
            self.received.append(
                Notification(request.match_info["kind"], request.match_info["receiver"], body, time.monotonic())
            )
            self._changed.notify_all()
        if request.match_info["kind"] == "pagerduty":  # the Events v2 API's answer
            return web.json_response({"status": "success", "message": "Event processed", "dedup_key": "k"}, status=202)
        return web.Response(text="ok")

    async def wait_for(self, predicate: Callable[[Notification], bool], timeout: float, what: str) -> Notification:
        """The first notification (already received or arriving within `timeout`) that satisfies `predicate`."""

        def found() -> Notification | None:
            return next((n for n in self.received if predicate(n)), None)

        async def waiter() -> Notification:
            async with self._changed:
                await self._changed.wait_for(lambda: found() is not None)
                hit = found()
                assert hit is not None
                return hit

        try:
            return await asyncio.wait_for(waiter(), timeout)
        except TimeoutError:
            seen = "\n".join(f"  {n.kind}/{n.receiver}: {str(n.body)[:300]}" for n in self.received) or "  nothing"
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; received:\n{seen}") from None


# ---------------------------------------------------------------------------------------------------------------
# Prometheus' HTTP API.


class PromQLError(RuntimeError):
    pass


async def promql(
    http: aiohttp.ClientSession,
    base: str,
    expr: str,
    *,
    start: float | None = None,
    end: float | None = None,
    step: float = 1.0,
) -> list[dict[str, Any]]:
    """An instant query (no `start`) or a range query; the result list (vector or matrix)."""
    if start is None:
        url, params = f"{base}/api/v1/query", {"query": expr}
    else:
        url = f"{base}/api/v1/query_range"
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{(end or time.time()):.3f}", "step": str(step)}
    async with http.get(url, params=params, timeout=aiohttp.ClientTimeout(total=10)) as response:
        reply = await response.json()
    if reply.get("status") != "success":
        raise PromQLError(f"{expr}: {reply.get('errorType')}: {reply.get('error')}")
    result: list[dict[str, Any]] = reply["data"]["result"]
    return result


async def alertmanager_alerts(http: aiohttp.ClientSession, base: str, *matchers: str) -> list[dict[str, Any]]:
    """GET /api/v2/alerts with filters like 'alertname="X"' (active, silenced and inhibited alike)."""
    params: Sequence[tuple[str, str]] = [("filter", m) for m in matchers]
    async with http.get(f"{base}/api/v2/alerts", params=params, timeout=aiohttp.ClientTimeout(total=10)) as r:
        alerts: list[dict[str, Any]] = await r.json()
    return alerts
