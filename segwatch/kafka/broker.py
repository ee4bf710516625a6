"""The local development Kafka broker: a real Apache Kafka, single node, KRaft, no Docker.

`segwatch broker start|stop|status|logs|reset` and the integration-test fixture both use this module,
so there is one implementation of how the broker is fetched, configured, started and stopped:

* the jars of Apache Kafka `KAFKA_VERSION` come from Maven Central, fetched once with Maven from
  deploy/local/kafka-pom.xml into `<cache dir>/kafka-<version>/libs` (outside the repository);
* the broker's state lives in `<broker dir>`: server.properties, the KRaft log dirs under data/,
  broker.pid and broker.log;
* the broker is one JVM, `java -cp '<libs>/*' kafka.Kafka server.properties`, detached from the
  caller (its own session, reparented to init), so it outlives the command that started it;
* it counts as up only when a Kafka client gets cluster metadata from it, not when the port opens.

Environment (`BrokerPart`): SEGWATCH_CACHE_DIR, SEGWATCH_BROKER_DIR, SEGWATCH_BROKER_PORT,
SEGWATCH_BROKER_CONTROLLER_PORT, SEGWATCH_BROKER_START_TIMEOUT, SEGWATCH_BROKER_JAVA_OPTS, JAVA_HOME.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import model_validator

from segwatch.environment import EnvError, EnvSettings, Port, Seconds, Text, env, load
from segwatch.waiting import WaitTimeout, wait_until_blocking

KAFKA_VERSION = "3.9.1"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 19092
DEFAULT_START_TIMEOUT = 90.0
DEFAULT_STOP_TIMEOUT = 30.0
DEFAULT_JAVA_OPTS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)
LOG_TAIL_LINES = 60

DEPLOY_LOCAL = Path(__file__).resolve().parents[2] / "deploy" / "local"
POM_FILE = DEPLOY_LOCAL / "kafka-pom.xml"
LOG4J_FILE = DEPLOY_LOCAL / "log4j.properties"

_LOG_ROTATE_BYTES = 20 * 1024 * 1024
_MAVEN_TIMEOUT = 900.0

T = TypeVar("T")
Out = Callable[[str], None]


class BrokerError(Exception):
    """The local broker could not be fetched, started, reached or stopped; the message says why."""


def _quiet(_: str) -> None:
    return None


# -- configuration -------------------------------------------------------------------------------------


class BrokerPart(EnvSettings):
    """The local broker's variables (segwatch/environment.py: the settings models)."""

    cache_dir: Text | None = env("SEGWATCH_CACHE_DIR", None, "where the Kafka download is kept")
    xdg_cache_home: Text | None = env("XDG_CACHE_HOME", None, "the cache's parent when SEGWATCH_CACHE_DIR is unset")
    broker_dir: Text | None = env("SEGWATCH_BROKER_DIR", None, "the broker's state (default: <cache>/broker)")
    port: Port = env("SEGWATCH_BROKER_PORT", DEFAULT_PORT, "the broker's client port")
    controller_port: Port | None = env("SEGWATCH_BROKER_CONTROLLER_PORT", None, "its controller port")
    start_timeout: Seconds = env("SEGWATCH_BROKER_START_TIMEOUT", DEFAULT_START_TIMEOUT, "seconds to start")
    java_opts: Text | None = env("SEGWATCH_BROKER_JAVA_OPTS", None, "the JVM's options")
    java_home: Text | None = env("JAVA_HOME", None, "the Java to run (default: java on PATH)")

    @model_validator(mode="after")
    def _ports_differ(self) -> BrokerPart:
        if self.controller_port == self.port:
            raise EnvError("SEGWATCH_BROKER_CONTROLLER_PORT", f"must differ from SEGWATCH_BROKER_PORT ({self.port})")
        return self

    @property
    def cache(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        base = Path(self.xdg_cache_home).expanduser() if self.xdg_cache_home else Path.home() / ".cache"
        return base / "segwatch"


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """SEGWATCH_CACHE_DIR, else $XDG_CACHE_HOME/segwatch, else ~/.cache/segwatch."""
    return load(BrokerPart, env).cache


@dataclass(frozen=True)
class BrokerConfig:
    """Where the local broker keeps its jars and state, and how it listens."""

    cache_dir: Path
    broker_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    controller_port: int = DEFAULT_PORT + 1
    start_timeout: float = DEFAULT_START_TIMEOUT
    java_opts: tuple[str, ...] = DEFAULT_JAVA_OPTS
    java: str = "java"
    kafka_version: str = KAFKA_VERSION

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BrokerConfig:
        part = load(BrokerPart, env)
        cache_dir = part.cache
        broker_dir = Path(part.broker_dir).expanduser() if part.broker_dir else cache_dir / "broker"
        port = part.port
        controller_port = part.controller_port or (port + 1 if port < 65535 else port - 1)
        java_opts = tuple(shlex.split(part.java_opts)) if part.java_opts else DEFAULT_JAVA_OPTS
        java = str(Path(part.java_home) / "bin" / "java") if part.java_home else "java"
        return cls(
            cache_dir=cache_dir.absolute(),
            broker_dir=broker_dir.absolute(),
            port=port,
            controller_port=controller_port,
            start_timeout=part.start_timeout,
            java_opts=java_opts,
            java=java,
        )

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def libs_dir(self) -> Path:
        return self.cache_dir / f"kafka-{self.kafka_version}" / "libs"

    @property
    def data_dir(self) -> Path:
        return self.broker_dir / "data"

    @property
    def properties_file(self) -> Path:
        return self.broker_dir / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.broker_dir / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.broker_dir / "broker.pid"

    @property
    def lock_file(self) -> Path:
        return self.broker_dir / ".lock"

    def server_properties(self) -> dict[str, str]:
        """The broker's configuration: one node that is both KRaft controller and broker."""
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            # Our code creates its topics explicitly (segwatch topics apply); auto-creation stays on
            # for Faust's internal topics and ad-hoc experiments.
            "auto.create.topics.enable": "true",
            "delete.topic.enable": "true",
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
        }


# -- small helpers -------------------------------------------------------------------------------------


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a private event loop in a helper thread.

    Safe to call from synchronous code that may itself be running under an event loop
    (pytest-asyncio fixtures, the CLI), because the caller's loop is never touched.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="segwatch-run-sync", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _silenced(logger_name: str) -> Iterator[None]:
    """aiokafka logs every refused connection at ERROR; while probing a starting broker that is noise."""
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _pid_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it happens to be our child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _is_our_broker(pid: int, config: BrokerConfig) -> bool:
    if not Path("/proc/self/cmdline").exists():  # no /proc (macOS): trust the pid file
        return _pid_alive(pid)
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in argv and str(config.properties_file).encode() in argv


def _port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def log_tail(config: BrokerConfig | None = None, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of the broker log, or a note that there is none yet."""
    config = config or BrokerConfig.from_env()
    try:
        with open(config.log_file, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max(lines, 1) * 1024))
            data = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no broker log yet at {config.log_file})"
    return _tail_text(data, lines)


def _with_log(message: str, config: BrokerConfig) -> str:
    return f"{message}\n--- last {LOG_TAIL_LINES} lines of {config.log_file} ---\n{log_tail(config)}"


# -- readiness -----------------------------------------------------------------------------------------


async def _cluster_brokers(bootstrap: str, timeout: float) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="segwatch-broker-probe",
        request_timeout_ms=max(1000, int(timeout * 1000)),
    )
    try:
        await asyncio.wait_for(admin.start(), timeout)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    brokers = cluster.get("brokers") or []
    return len(brokers)


def is_ready(bootstrap: str, timeout: float = 5.0) -> bool:
    """True when a Kafka client can bootstrap from `bootstrap` and sees at least one broker."""
    host, _, port = bootstrap.rpartition(":")
    if not _port_open(host or DEFAULT_HOST, int(port), timeout=min(timeout, 1.0)):
        return False
    try:
        with _silenced("aiokafka"):
            return run_sync(lambda: _cluster_brokers(bootstrap, timeout)) > 0
    except Exception:
        return False


# -- fetching Kafka ------------------------------------------------------------------------------------


def _find_java(config: BrokerConfig) -> str:
    java = shutil.which(config.java)
    if java is None:
        raise BrokerError(
            f"java not found ({config.java}); the local broker needs a Java 17+ runtime "
            "(apt-get install openjdk-17-jre-headless, or set JAVA_HOME)"
        )
    return java


def ensure_kafka(config: BrokerConfig, out: Out = _quiet) -> Path:
    """The directory of Kafka's jars, fetched with Maven from Maven Central on first use."""
    libs = config.libs_dir
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            f"Apache Kafka {config.kafka_version} is not cached in {libs} and Maven (mvn) is not installed "
            "to fetch it from Maven Central (apt-get install maven; scripts/prereqs does this)"
        )
    if not POM_FILE.exists():
        raise BrokerError(f"{POM_FILE} is missing; the local broker runs from a segwatch source checkout")
    with _locked(libs.parent / ".lock"):
        if marker.exists():
            return libs
        partial = libs.parent / f"libs.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        out(f"fetching Apache Kafka {config.kafka_version} from Maven Central into {libs} (once)")
        started = time.monotonic()
        command = [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(POM_FILE),
            f"-Dkafka.version={config.kafka_version}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={partial}",
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=_MAVEN_TIMEOUT, cwd=libs.parent, check=False
            )
        except subprocess.TimeoutExpired:
            shutil.rmtree(partial, ignore_errors=True)
            raise BrokerError(f"mvn did not finish fetching Kafka within {_MAVEN_TIMEOUT:.0f}s") from None
        broker_jar = partial / f"kafka_2.13-{config.kafka_version}.jar"
        if done.returncode != 0 or not broker_jar.exists():
            shutil.rmtree(partial, ignore_errors=True)
            output = _tail_text(done.stdout + done.stderr, 40)
            raise BrokerError(
                f"mvn failed to fetch Apache Kafka {config.kafka_version} (exit {done.returncode}):\n"
                f"$ {shlex.join(command)}\n{output}"
            )
        if libs.exists():
            shutil.rmtree(libs)
        partial.rename(libs)
        marker.write_text(f"{config.kafka_version}\n")
        jars = sum(1 for _ in libs.glob("*.jar"))
        out(f"fetched {jars} jars in {time.monotonic() - started:.1f}s")
    return libs


# -- starting and stopping -----------------------------------------------------------------------------


def _write_properties(config: BrokerConfig) -> None:
    lines = [
        "# Written by `segwatch broker start` (segwatch/kafka/broker.py); rewritten on every start.",
        *(f"{key}={value}" for key, value in config.server_properties().items()),
    ]
    config.properties_file.write_text("\n".join(lines) + "\n")


def _cluster_id() -> str:
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):  # Kafka's own rule: it would read as a command-line flag
            return candidate


def _log4j_opts() -> list[str]:
    return [f"-Dlog4j.configuration=file:{LOG4J_FILE}"] if LOG4J_FILE.exists() else []


def _format_storage(config: BrokerConfig, java: str) -> None:
    if (config.data_dir / "meta.properties").exists():
        return
    config.data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        java,
        "-Xmx256m",
        *_log4j_opts(),
        "-cp",
        f"{config.libs_dir}/*",
        "kafka.tools.StorageTool",
        "format",
        "--cluster-id",
        _cluster_id(),
        "--config",
        str(config.properties_file),
        "--ignore-formatted",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    output = done.stdout + done.stderr
    with open(config.log_file, "a") as log:  # without the dump of every config value
        kept = [line for line in output.splitlines() if line and not line.startswith(("\t", " (kafka."))]
        log.write(f"$ {shlex.join(command)}\n" + "".join(f"{line}\n" for line in kept[-20:]))
    if done.returncode != 0:
        raise BrokerError(
            f"formatting the KRaft storage in {config.data_dir} failed (exit {done.returncode}):\n"
            f"{_tail_text(output, 40)}"
        )


def _rotate_log(config: BrokerConfig) -> None:
    with contextlib.suppress(FileNotFoundError):
        if config.log_file.stat().st_size > _LOG_ROTATE_BYTES:
            config.log_file.replace(config.log_file.with_suffix(".log.1"))


def _launch(config: BrokerConfig, java: str) -> int:
    """Start the JVM detached (new session, reparented to init); returns its pid."""
    command = [
        java,
        *config.java_opts,
        *_log4j_opts(),
        "-cp",
        f"{config.libs_dir}/*",
        "kafka.Kafka",
        str(config.properties_file),
    ]
    with open(config.log_file, "a") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n===== segwatch broker start {stamp} =====\n$ {shlex.join(command)}\n")
    # The shell backgrounds the JVM and exits at once, so the JVM is nobody's child here: no zombie,
    # no Popen object to keep, and it survives the caller (a CLI invocation or a pytest session).
    script = '"$@" >>"$SEGWATCH_BROKER_LOG" 2>&1 </dev/null & echo $!'
    done = subprocess.run(
        ["/bin/sh", "-c", script, "segwatch-broker", *command],
        env={**os.environ, "SEGWATCH_BROKER_LOG": str(config.log_file)},
        cwd=config.broker_dir,
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,
        check=False,
    )
    try:
        pid = int(done.stdout.strip())
    except ValueError:
        raise BrokerError(f"could not launch the broker: {done.stdout}{done.stderr}".strip()) from None
    config.pid_file.write_text(f"{pid}\n")
    return pid


def _wait_ready(config: BrokerConfig, pid: int | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout

    def accepts_clients() -> bool:
        if pid is not None and not _pid_alive(pid):
            raise BrokerError(_with_log(f"the broker (pid {pid}) exited while starting", config))
        return is_ready(config.bootstrap, timeout=max(1.0, min(5.0, deadline - time.monotonic())))

    try:
        wait_until_blocking(
            accepts_clients,
            what=f"the broker to accept Kafka clients at {config.bootstrap}",
            timeout=timeout,
            interval=0.25,
        )
    except WaitTimeout as exc:
        raise BrokerError(_with_log(str(exc), config)) from None


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM, wait up to `timeout`, then SIGKILL. True when it had to be killed."""

    def gone() -> bool:
        return not _pid_alive(pid)

    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(WaitTimeout):
        wait_until_blocking(gone, what=f"the broker (pid {pid}) to stop", timeout=timeout)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    try:
        wait_until_blocking(gone, what=f"the broker (pid {pid}) to die of SIGKILL", timeout=10)
    except WaitTimeout:
        raise BrokerError(f"the broker (pid {pid}) survived SIGKILL") from None
    return True


def _running_pid(config: BrokerConfig) -> int | None:
    try:
        pid = int(config.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _pid_alive(pid) and _is_our_broker(pid, config) else None


@dataclass(frozen=True)
class StartResult:
    bootstrap: str
    pid: int | None
    seconds: float
    already_running: bool


@dataclass(frozen=True)
class StopResult:
    was_running: bool
    seconds: float
    killed: bool = False


@dataclass(frozen=True)
class BrokerStatus:
    bootstrap: str
    pid: int | None
    ready: bool

    @property
    def running(self) -> bool:
        return self.pid is not None


def start(config: BrokerConfig | None = None, *, out: Out = _quiet, timeout: float | None = None) -> StartResult:
    """Start the local broker and wait until it serves clients; a no-op when it already runs."""
    config = config or BrokerConfig.from_env()
    timeout = config.start_timeout if timeout is None else timeout
    started = time.monotonic()
    config.broker_dir.mkdir(parents=True, exist_ok=True)
    with _locked(config.lock_file):
        pid = _running_pid(config)
        if pid is not None:
            _wait_ready(config, pid, timeout)
            return StartResult(config.bootstrap, pid, time.monotonic() - started, already_running=True)
        config.pid_file.unlink(missing_ok=True)
        for port in (config.port, config.controller_port):
            if _port_open(config.host, port):
                raise BrokerError(
                    f"{config.host}:{port} is already taken by another process (not the segwatch broker "
                    f"of {config.broker_dir}); stop it or choose SEGWATCH_BROKER_PORT / "
                    "SEGWATCH_BROKER_CONTROLLER_PORT"
                )
        java = _find_java(config)
        ensure_kafka(config, out)
        _rotate_log(config)
        _write_properties(config)
        _format_storage(config, java)
        pid = _launch(config, java)
        try:
            _wait_ready(config, pid, timeout)
        except BrokerError:
            with contextlib.suppress(BrokerError):
                _terminate(pid, 10)
            config.pid_file.unlink(missing_ok=True)
            raise
    return StartResult(config.bootstrap, pid, time.monotonic() - started, already_running=False)


def stop(config: BrokerConfig | None = None, *, timeout: float = DEFAULT_STOP_TIMEOUT) -> StopResult:
    """Stop the local broker: SIGTERM (a clean shutdown), then SIGKILL after `timeout` seconds."""
    config = config or BrokerConfig.from_env()
    started = time.monotonic()
    config.broker_dir.mkdir(parents=True, exist_ok=True)
    with _locked(config.lock_file):
        pid = _running_pid(config)
        if pid is None:
            config.pid_file.unlink(missing_ok=True)
            return StopResult(was_running=False, seconds=0.0)
        killed = _terminate(pid, timeout)
        config.pid_file.unlink(missing_ok=True)
    return StopResult(was_running=True, seconds=time.monotonic() - started, killed=killed)


def status(config: BrokerConfig | None = None, *, timeout: float = 5.0) -> BrokerStatus:
    """Whether the local broker process runs, and whether it serves Kafka clients right now."""
    config = config or BrokerConfig.from_env()
    pid = _running_pid(config)
    ready = pid is not None and is_ready(config.bootstrap, timeout=timeout)
    return BrokerStatus(config.bootstrap, pid, ready)


def reset(config: BrokerConfig | None = None, *, timeout: float = DEFAULT_STOP_TIMEOUT) -> StopResult:
    """Stop the broker and delete its data (every topic and offset); the jar cache is kept."""
    config = config or BrokerConfig.from_env()
    result = stop(config, timeout=timeout)
    with _locked(config.lock_file):
        shutil.rmtree(config.data_dir, ignore_errors=True)
    return result
