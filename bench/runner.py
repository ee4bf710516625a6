"""The measurements, in order, on one isolated system (its own topic namespace on the broker).

1. preload: the workload's balance events (and then its settings) go to the balances (settings) topic before
   any consumer runs; the expected figures are computed here with `segwatch.core.book.Book`;
2. ceilings: the bare aiokafka consumer (its own process; orjson, then the pydantic adapter) and Kafka's
   ConsumerPerformance read the same balances topic;
3. throughput: the calculator starts (a process) on the preloaded topic; timed from its launch to the first
   figures record at which every segment's published figures equal the Book's (and the account counts);
4. memory: the calculator's peak RSS (VmHWM) once it holds every account;
5. recovery: SIGKILL, relaunch, and one changed balance per segment produced right after the launch; timed from
   the relaunch to the first figures record equal to the Book's with those changes;
6. latency: the alerter starts; a steady load of account restatements goes straight to Kafka (an aiokafka
   producer, acks=all) while every `dip_every` seconds a depository balance takes 4d(2) into a deficiency or
   back; event → figures and event → alert from Kafka timestamps; then the figures must equal the Book's;
7. ingest: calculator and alerter stop; the ingest service takes NDJSON batches from concurrent clients, then
   single-event POSTs one at a time;
8. idle calculator: a calculator with no state, in a second namespace, for its baseline RSS.
Every wait is bounded. The topics and consumer groups of both namespaces are deleted at the end.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import os
import secrets
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.javatool import consumer_performance
from bench.kafkaio import Follower, Producer, Seen, delete_namespace, first_match
from bench.procfs import Memory, machine, memory
from bench.stats import summary
from bench.workload import DIP, T0, Workload, check_wire
from segwatch.config import KafkaPart, KafkaSettings
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.environment import load
from segwatch.kafka import topics
from segwatch.kafka.broker import KAFKA_VERSION
from segwatch.system import LocalSystem, Service, answers_ready, free_port
from segwatch.waiting import WaitTimeout, wait_until

PHASES = ("ceilings", "throughput", "recovery", "latency", "ingest", "idle")
Out = Callable[[str], None]


@dataclass(frozen=True)
class BenchConfig:
    events: int = 1_000_000
    accounts: int = 100_000
    partitions: int = topics.DEFAULT_BALANCE_PARTITIONS
    rate: int = 2000  # events/s of the latency phase's steady load
    latency_seconds: float = 60.0
    dip_every: float = 0.5
    ingest_events: int = 200_000
    ingest_batch: int = 1000
    ingest_clients: int = 4
    single_posts: int = 2000
    seed: int = 7
    coalesce_ms: int | None = None  # the calculator's default (SEGWATCH_COALESCE_MS)
    phases: tuple[str, ...] = PHASES
    workdir: Path = Path("var/bench")
    keep_topics: bool = False
    label: str = "full"

    @classmethod
    def small(cls, **overrides: Any) -> BenchConfig:
        """Seconds, not minutes: for CI (tests/integration/test_bench_smoke.py)."""
        base = cls(
            events=20_000,
            accounts=2_000,
            rate=1000,
            latency_seconds=4.0,
            dip_every=0.4,
            ingest_events=5_000,
            single_posts=200,
            label="small",
        )
        return replace(base, **overrides)

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass
class Context:
    cfg: BenchConfig
    system: LocalSystem
    settings: KafkaSettings
    workload: Workload
    producer: Producer
    follower: Follower
    results: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)

    def topic(self, name: str) -> str:
        return self.system.topic(name)


class BenchError(Exception):
    """The benchmark could not measure something; the message says what."""


async def run(cfg: BenchConfig, out: Out = print) -> dict[str, Any]:
    """Every measurement of `cfg.phases`; returns the results (also what goes into the JSON file)."""
    stamp = time.strftime("%Y%m%d%H%M%S")
    namespace = f"bench{stamp}{secrets.token_hex(2)}."
    workdir = cfg.workdir / stamp
    workdir.mkdir(parents=True, exist_ok=True)
    extra_env = {
        "SEGWATCH_BALANCE_PARTITIONS": str(cfg.partitions),
        # Static group membership for the calculator (services/calculator/settings.py, instance_id): the worker
        # relaunched after SIGKILL takes its partitions back at once, as a StatefulSet pod would.
        "SEGWATCH_CALCULATOR_INSTANCE_ID": f"{namespace}calculator-0",
    }
    system = LocalSystem(
        namespace=namespace,
        workdir=workdir,
        run=(),
        coalesce_ms=cfg.coalesce_ms,
        out=out,
        keep_topics=True,
        extra_env=extra_env,
        # The workload's business day is the open one (its balances are T0 + milliseconds): the services' clock
        # starts 2 h after T0, so no day closes under the load. On the wall clock every balance would be a late
        # one amending the closed days it is older than (a replay of old days: see docs/PERFORMANCE.md).
        now=(T0 + timedelta(hours=2)).isoformat(),
    )
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine(), "kafka": KAFKA_VERSION},
        "config": cfg.to_json(),
        "namespace": namespace,
        "workdir": str(workdir),
    }
    out(f"bench: namespace {namespace!r}, service logs in {workdir}/")
    settings: KafkaSettings | None = None
    try:
        await system.start()
        settings = load(KafkaPart, kafka_bootstrap=system.bootstrap).kafka
        producer = Producer(settings)
        await producer.start()
        follower = Follower(
            settings, system.topic(topics.FIGURES), system.topic(topics.ALERTS), system.topic(topics.DEADLETTER)
        )
        ctx = Context(cfg, system, settings, Workload(cfg.accounts, cfg.events, cfg.seed), producer, follower, results)
        try:
            await preload(ctx, out)
            if "ceilings" in cfg.phases:
                await measure(ctx, "ceilings", ceilings, out)
            await follower.start()
            if {"throughput", "recovery", "latency"} & set(cfg.phases):
                await measure(ctx, "throughput", throughput, out)
            if "recovery" in cfg.phases:
                await measure(ctx, "recovery", recovery, out)
            if "latency" in cfg.phases:
                await measure(ctx, "latency", latency, out)
            results["dead_letters"] = len(follower.dead_letters)
            ctx.checks["no dead letters"] = not follower.dead_letters and not follower.unreadable
            if "ingest" in cfg.phases:
                await measure(ctx, "ingest", ingest, out)
        finally:
            await follower.stop()
            await producer.stop()
            for name in ("alerter", "calculator", "ingest"):
                if name in system.services:
                    await system.stop_service(name)
        if "idle" in cfg.phases:
            await idle_calculator(cfg, workdir, out, results)
        results["checks"] = ctx.checks
    finally:
        if settings is not None and not cfg.keep_topics:
            with contextlib.suppress(Exception):
                deleted = await delete_namespace(settings, namespace, [f"{namespace}consumer-performance"])
                out(f"bench: deleted {len(deleted)} topics of {namespace!r}")
        await system.stop()
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return results


# What ends one measurement without ending the run: it is reported as missed, with the reason.
MISSABLE: tuple[type[BaseException], ...] = (BenchError, TimeoutError, aiohttp.ClientError, OSError)


async def measure(ctx: Context, phase: str, step: Callable[[Context, Out], Awaitable[None]], out: Out) -> bool:
    """Run one phase; one it cannot finish (a time-out at a rate the machine cannot carry, a service that
    died) is recorded under `missed` with the reason and fails the run's checks, and the next phase goes on."""
    try:
        await step(ctx, out)
    except MISSABLE as exc:
        reason = (str(exc) or type(exc).__name__).strip()
        ctx.results.setdefault("missed", {})[phase] = reason
        ctx.checks[f"{phase}: measured"] = False
        out(f"{phase}: MISSED: {reason.splitlines()[0]}")
        return False
    return True


# -- 1. preload ----------------------------------------------------------------------------------------


async def preload(ctx: Context, out: Out) -> None:
    cfg, w = ctx.cfg, ctx.workload
    out(
        f"preload: {cfg.events:,} balance events over {w.accounts:,} accounts → {ctx.topic(topics.BALANCES)} "
        f"({cfg.partitions} partitions)"
    )
    started = time.perf_counter()
    sending = 0.0
    count = 0
    gc.disable()  # millions of short-lived containers, no cycles: the collector would only slow this down
    try:
        for chunk in w.balances():
            check_wire(chunk)
            t = time.perf_counter()
            await ctx.producer.send_many(ctx.topic(topics.BALANCES), chunk)
            sending += time.perf_counter() - t
            count += len(chunk)
        t = time.perf_counter()
        await ctx.producer.flush()
        settings = w.settings()
        check_wire(settings, 1)
        await ctx.producer.send_many(ctx.topic(topics.SETTINGS), settings)
        await ctx.producer.flush()
        sending += time.perf_counter() - t
    finally:
        gc.enable()
        gc.freeze()  # what was made so far stays; later collections skip it
    seconds = time.perf_counter() - started
    ctx.results["preload"] = {
        "events": count,
        "settings": len(settings),
        "accounts": w.accounts,
        "seconds": round(seconds, 2),
        "producing_seconds": round(sending, 2),
        "note": "seconds includes making the events and applying them to the Book; producing_seconds is the "
        "time spent in the producer (record batches, acks=all)",
    }
    out(f"preload: {count:,} events in {seconds:.1f}s ({sending:.1f}s producing)")


# -- 2. the ceilings -----------------------------------------------------------------------------------


async def ceilings(ctx: Context, out: Out) -> None:
    cfg, topic = ctx.cfg, ctx.topic(topics.BALANCES)
    bare: dict[str, Any] = {}
    for parse in ("orjson", "pydantic"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.bare",
            "--topic",
            topic,
            "--messages",
            str(cfg.events),
            "--parse",
            parse,
            env=ctx.system.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=max(120.0, cfg.events / 2000))
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise BenchError(f"the bare consumer ({parse}) did not finish") from None
        if proc.returncode != 0:
            raise BenchError(f"the bare consumer ({parse}) failed:\n{stderr.decode(errors='replace')[-2000:]}")
        bare[parse] = orjson.loads(stdout)
        out(
            f"bare aiokafka + {parse}: {bare[parse]['events_per_second']:,.0f} events/s "
            f"({bare[parse]['seconds']:.2f}s from process start)"
        )
    ctx.results["bare_aiokafka"] = bare
    tool = await consumer_performance(
        ctx.system.bootstrap, topic, cfg.events, f"{ctx.system.namespace}consumer-performance", ctx.system.workdir
    )
    ctx.results["consumer_performance"] = tool.to_json()
    out(
        f"Kafka ConsumerPerformance: {tool.fetch_events_per_second:,.0f} events/s fetching "
        f"({tool.events_per_second:,.0f} with the group join)"
    )


# -- 3./4. throughput and memory -----------------------------------------------------------------------


def add_service(system: LocalSystem, name: str) -> Service:
    port = free_port()
    argv = {
        "ingest": ["ingest", "serve", "--port", str(port)],
        "calculator": ["calculator", "worker", "--port", str(port)],
        "alerter": ["alerter", "serve", "--port", str(port)],
    }[name]
    svc = Service(name, argv, port, system.workdir / f"{name}.log")
    system.services[name] = svc
    return svc


async def ready_at(svc: Service, timeout: float) -> float | None:
    """time.time() when the service's /readyz first answers 200 (None: it did not within `timeout`)."""
    async with aiohttp.ClientSession() as http:

        async def ready() -> float | None:
            if await answers_ready(http, f"{svc.url}/readyz", timeout=1):
                return time.time()
            if svc.process is not None and svc.process.poll() is not None:
                raise ChildProcessError(svc.name)
            return None

        with contextlib.suppress(WaitTimeout, ChildProcessError):
            return await wait_until(ready, what=f"{svc.name} to be ready", timeout=timeout, interval=0.05)
    return None


def pid(svc: Service) -> int:
    if svc.process is None or svc.process.poll() is not None:
        raise BenchError(f"{svc.name} is not running:\n{svc.log_tail()}")
    return svc.process.pid


async def throughput(ctx: Context, out: Out) -> None:
    cfg, w = ctx.cfg, ctx.workload
    expected, accounts = w.expected(), w.expected_accounts()
    svc = add_service(ctx.system, "calculator")
    launched = time.time()
    ctx.system.launch(svc)
    ready = asyncio.create_task(ready_at(svc, 120))
    timeout = max(120.0, cfg.events / 4000)
    try:
        match = await ctx.follower.wait_for(
            lambda: first_match(ctx.follower.figures, expected, accounts),
            timeout,
            f"the calculator's figures to equal the Book's ({svc.log})",
        )
    except TimeoutError as exc:
        raise BenchError(f"{exc}\n{svc.log_tail()}") from None
    mem = memory(pid(svc))
    ready_time = await ready
    seconds = match.at - launched
    ctx.checks["throughput: figures equal the Book's"] = True
    result: dict[str, Any] = {
        "events": cfg.events,
        "seconds": round(seconds, 3),
        "events_per_second": round(cfg.events / seconds),
        "startup_seconds": round(ready_time - launched, 3) if ready_time else None,
        "figures_records": len(ctx.follower.figures),
        "note": "from the calculator's launch (a new process, a new consumer group) to the Kafka timestamp of "
        "the figures record that completed the correct figures of every segment",
    }
    if ready_time:
        result["events_per_second_after_ready"] = round(cfg.events / (match.at - ready_time))
    bare = ctx.results.get("bare_aiokafka", {})
    for parse, measured in bare.items():
        result[f"ratio_to_bare_{parse}"] = round(result["events_per_second"] / measured["events_per_second"], 3)
    tool = ctx.results.get("consumer_performance")
    if tool:
        result["ratio_to_consumer_performance"] = round(
            result["events_per_second"] / tool["fetch_events_per_second"], 3
        )
    ctx.results["throughput"] = result
    ctx.results["memory"] = memory_result(mem, w.accounts)
    out(
        f"calculator: {cfg.events:,} events → correct figures in {seconds:.2f}s = "
        f"{result['events_per_second']:,} events/s (startup {result['startup_seconds']}s); "
        f"peak RSS {mem.peak_mib:.0f} MiB = {ctx.results['memory']['peak_bytes_per_account']:,} B/account"
    )


def memory_result(mem: Memory, accounts: int) -> dict[str, Any]:
    return {
        "accounts": accounts,
        "peak_mib": round(mem.peak_mib, 1),
        "rss_mib": round(mem.rss_mib, 1),
        "peak_bytes_per_account": round(mem.peak_bytes / accounts),
        "rss_bytes_per_account": round(mem.rss_bytes / accounts),
    }


# -- 5. recovery ---------------------------------------------------------------------------------------


async def recovery(ctx: Context, out: Out) -> None:
    w = ctx.workload
    svc = ctx.system.services["calculator"]
    assert svc.process is not None
    svc.process.kill()  # SIGKILL: no clean shutdown, no final commit
    await asyncio.to_thread(svc.process.wait, 10)
    changes = [w.account_event(next(c for c in w.customers if c.segment == sid)) for sid in SEGMENT_IDS]
    check_wire(changes, 1)
    expected, accounts = w.expected(), w.expected_accounts()
    since = len(ctx.follower.figures)
    launched = time.time()
    ctx.system.launch(svc)
    await ctx.producer.send_many(ctx.topic(topics.BALANCES), changes)
    await ctx.producer.flush()
    ready = asyncio.create_task(ready_at(svc, 120))
    try:
        match = await ctx.follower.wait_for(
            lambda: first_match(ctx.follower.figures, expected, accounts, since=since),
            180,
            "the restarted calculator's figures",
        )
    except TimeoutError as exc:
        raise BenchError(f"{exc}\n{svc.log_tail()}") from None
    ready_time = await ready
    mem = memory(pid(svc))
    ctx.checks["recovery: figures equal the Book's"] = True
    ctx.results["recovery"] = {
        "accounts": w.accounts,
        "seconds": round(match.at - launched, 3),
        "ready_seconds": round(ready_time - launched, 3) if ready_time else None,
        "note": "SIGKILL, then from the relaunch to the Kafka timestamp of the first figures record equal to the "
        "Book's with one changed balance per segment (produced right after the relaunch)",
    }
    ctx.results["memory_after_recovery"] = memory_result(mem, w.accounts)
    out(
        f"recovery: {ctx.results['recovery']['seconds']:.2f}s to correct figures after SIGKILL "
        f"(ready after {ctx.results['recovery']['ready_seconds']}s); peak RSS {mem.peak_mib:.0f} MiB"
    )


# -- 6. latency ----------------------------------------------------------------------------------------


@dataclass
class SteadyLoad:
    """What the latency phase sent: (segment, Kafka timestamp in ms) of each steady event, (into deficiency,
    timestamp) of each dip or cure, and the seconds it took."""

    sent: list[tuple[str, int]] = field(default_factory=list)
    toggles: list[tuple[bool, int]] = field(default_factory=list)
    elapsed: float = 0.0


async def latency(ctx: Context, out: Out) -> None:
    cfg, w, follower = ctx.cfg, ctx.workload, ctx.follower
    alerter = add_service(ctx.system, "alerter")
    ctx.system.launch(alerter)
    await ctx.system.wait_ready(["alerter"], timeout=60)
    await asyncio.sleep(1.0)  # the alerter evaluates the figures so far (no alert: every segment is ok)
    figures_from, alerts_from = len(follower.figures), len(follower.alerts)
    out(
        f"latency: {cfg.rate:,} events/s for {cfg.latency_seconds:.0f}s straight to Kafka, a 4d(2) dip "
        f"every {cfg.dip_every}s"
    )
    load = await steady_load(ctx)
    sent, toggles = load.sent, load.toggles
    expected, accounts = w.expected(), w.expected_accounts()
    await follower.wait_for(
        lambda: first_match(follower.figures, expected, accounts, since=figures_from),
        60,
        "the figures after the steady load",
    )
    ctx.checks["latency: figures equal the Book's after the load"] = True

    with contextlib.suppress(TimeoutError):  # fewer: a calculator behind the load coalesced a dip with its cure
        await follower.wait_for(
            lambda: True if len(dip_alerts(follower.alerts[alerts_from:])) >= len(toggles) else None,
            30,
            f"{len(toggles)} deficiency alert transitions",
        )
    alerts = dip_alerts(follower.alerts[alerts_from:])
    ctx.checks["latency: one deficiency alert per dip and per cure"] = [
        a.item.state == ("firing" if into else "resolved") for a, (into, _) in zip(alerts, toggles, strict=False)
    ] == [True] * len(toggles) and len(alerts) == len(toggles)
    alert_latency = alert_latencies(alerts, toggles)
    figure_latency, per_record = figure_latencies(follower.figures[figures_from:], sent)
    ctx.results["latency"] = {
        "via": "Kafka (aiokafka producer, acks=all, explicit timestamps); ingest is measured on its own",
        "rate_target": cfg.rate,
        "rate_sent": round((len(sent) + len(toggles)) / load.elapsed),
        "seconds": round(load.elapsed, 1),
        "events": len(sent),
        "dips": len(toggles),
        "event_to_figures_ms": summary(figure_latency),
        "figures_record_behind_newest_event_ms": summary(per_record),
        "event_to_alert_ms": summary(alert_latency),
        "alert_transitions": {"expected": len(toggles), "seen": len(alerts)},
        "other_alerts": dict(
            sorted(
                Counter(
                    f"{a.item.segment} {a.item.rule} {a.item.state}"
                    for a in follower.alerts[alerts_from:]
                    if not (a.item.rule == "deficiency" and a.item.segment == DIP[0])
                ).items()
            )
        ),
        "note": "event → figures: per steady event, the Kafka timestamp of the first figures record of its "
        "segment whose ingested_at is at or after the event's timestamp, minus that timestamp; event → "
        "alert: per dip or cure, the Kafka timestamp of the deficiency alert it caused minus its own",
    }
    lat = ctx.results["latency"]
    out(
        f"latency: event → figures p50 {lat['event_to_figures_ms'].get('p50')} ms "
        f"p99 {lat['event_to_figures_ms'].get('p99')} ms; event → alert p50 {lat['event_to_alert_ms'].get('p50')} "
        f"ms p99 {lat['event_to_alert_ms'].get('p99')} ms ({len(alert_latency)} alerts)"
    )


async def steady_load(ctx: Context) -> SteadyLoad:
    """`cfg.rate` account restatements a second for `cfg.latency_seconds`, straight to Kafka with explicit
    timestamps, a 4d(2) dip (or its cure) every `cfg.dip_every` seconds; ends cured, every record acknowledged."""
    cfg, w = ctx.cfg, ctx.workload
    balances = ctx.topic(topics.BALANCES)
    load = SteadyLoad()
    acks: list[asyncio.Future[Any]] = []
    started = time.monotonic()
    next_dip = started + cfg.dip_every
    dipped = False
    count = 0
    while (now := time.monotonic()) - started < cfg.latency_seconds:
        while count < cfg.rate * (now - started):
            count += 1
            if now >= next_dip:
                dipped = not dipped
                record = w.dip(dipped)
                ts = int(time.time() * 1000)
                load.toggles.append((dipped, ts))
                next_dip += cfg.dip_every
            else:
                record = w.update()
                ts = int(time.time() * 1000)
                load.sent.append((record.event.segment, ts))  # type: ignore[attr-defined]
            acks.append(await ctx.producer.send_at(balances, record, ts))
        if len(acks) > 1000:
            await asyncio.wait_for(asyncio.gather(*acks), 30)
            acks = []
        await asyncio.sleep(0.002)
    if dipped:  # end cured
        record = w.dip(False)
        ts = int(time.time() * 1000)
        load.toggles.append((False, ts))
        acks.append(await ctx.producer.send_at(balances, record, ts))
    await asyncio.wait_for(asyncio.gather(*acks), 30)
    load.elapsed = time.monotonic() - started
    return load


def dip_alerts(alerts: Sequence[Seen[Any]]) -> list[Seen[Any]]:
    """The dipped segment's deficiency alerts only: the steady load's restatements can take another segment's
    thin excess across zero now and then (a real deficiency of the workload's book, reported apart)."""
    return [a for a in alerts if a.item.rule == "deficiency" and a.item.segment == DIP[0]]


def alert_latencies(alerts: Sequence[Seen[Any]], toggles: Sequence[tuple[bool, int]]) -> list[float]:
    """Seconds from each dip or cure to its alert. One alert per transition: pairwise. Fewer (a calculator
    behind the load coalesced a dip with its cure): each alert against the latest dip (or cure) before it, a
    lower bound."""
    if len(alerts) == len(toggles):
        return [(a.kafka_ms - ts) / 1000 for a, (_, ts) in zip(alerts, toggles, strict=False)]
    out: list[float] = []
    for a in alerts:
        into = a.item.state == "firing"
        before = [ts for d, ts in toggles if d == into and ts <= a.kafka_ms]
        if before:
            out.append((a.kafka_ms - before[-1]) / 1000)
    return out


def figure_latencies(figures: Sequence[Seen[Any]], sent: Sequence[tuple[str, int]]) -> tuple[list[float], list[float]]:
    """Event → figures, in seconds: an event is in the first figures record of its segment whose ingested_at
    (the Kafka timestamp of the newest balance behind it) is at or after the event's own timestamp. Also, per
    figures record, how far its Kafka timestamp is behind its ingested_at."""
    records = [f for f in figures if f.item.ingested_at is not None]
    figure_latency: list[float] = []
    per_record: list[float] = []
    for sid in SEGMENT_IDS:
        mine = [f for f in records if f.item.segment == sid]
        highest: list[int] = []
        top = -1
        for f in mine:
            assert f.item.ingested_at is not None
            ingested = int(f.item.ingested_at.timestamp() * 1000)
            per_record.append((f.kafka_ms - ingested) / 1000)
            top = max(top, ingested)
            highest.append(top)
        for segment, ts in sent:
            if segment == sid:
                i = bisect.bisect_left(highest, ts)
                if i < len(mine):
                    figure_latency.append((mine[i].kafka_ms - ts) / 1000)
    return figure_latency, per_record


# -- 7. ingest -----------------------------------------------------------------------------------------


async def ingest(ctx: Context, out: Out) -> None:
    cfg, w, system = ctx.cfg, ctx.workload, ctx.system
    for name in ("alerter", "calculator"):
        if name in system.services:
            await system.stop_service(name)
    svc = add_service(system, "ingest")
    system.launch(svc)
    await system.wait_ready(["ingest"], timeout=60)
    url = f"{svc.url}/v1/events"
    auth = {"Authorization": f"Bearer {system.token}"}
    bodies = []
    for _ in range(max(1, cfg.ingest_events // cfg.ingest_batch)):
        bodies.append(b"\n".join(w.update().value for _ in range(cfg.ingest_batch)) + b"\n")
    singles = [w.update().value for _ in range(cfg.single_posts)]
    accepted = 0
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal accepted
        headers = {**auth, "Content-Type": "application/x-ndjson"}
        while not queue.empty():
            body = queue.get_nowait()
            async with http.post(url, data=body, headers=headers) as r:
                reply = await r.json()
                if r.status != 202 or reply.get("rejected"):
                    raise BenchError(f"ingest answered {r.status}: {str(reply)[:500]}")
                accepted += len(reply["accepted"])

    timeout = aiohttp.ClientTimeout(total=60)
    out(
        f"ingest: {len(bodies) * cfg.ingest_batch:,} events in NDJSON batches of {cfg.ingest_batch:,} from "
        f"{cfg.ingest_clients} clients, then {cfg.single_posts:,} single-event POSTs one at a time"
    )
    async with aiohttp.ClientSession(timeout=timeout) as http:
        warm = b"\n".join(w.update().value for _ in range(cfg.ingest_batch)) + b"\n"  # connections, JIT paths
        async with http.post(url, data=warm, headers={**auth, "Content-Type": "application/x-ndjson"}) as r:
            await r.read()
        started = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(client(http) for _ in range(cfg.ingest_clients))), max(60.0, cfg.ingest_events / 1000)
        )
        batch_seconds = time.perf_counter() - started
        single: list[float] = []
        headers = {**auth, "Content-Type": "application/json"}
        for body in singles:
            t = time.perf_counter()
            async with http.post(url, data=body, headers=headers) as r:
                await r.read()
                if r.status != 202:
                    raise BenchError(f"ingest answered {r.status} to a single event")
            single.append(time.perf_counter() - t)
    ctx.results["ingest"] = {
        "batch_events": accepted,
        "batch_size": cfg.ingest_batch,
        "clients": cfg.ingest_clients,
        "batch_seconds": round(batch_seconds, 3),
        "events_per_second": round(accepted / batch_seconds),
        "single_event_ms": summary(single),
        "note": "accepted = acknowledged by Kafka (acks=all) before the 202; the calculator and alerter were "
        "stopped; the HTTP clients run in the benchmark's process on the same machine",
    }
    r_ = ctx.results["ingest"]
    out(
        f"ingest: {r_['events_per_second']:,} events/s in batches; single event p50 "
        f"{r_['single_event_ms']['p50']} ms p99 {r_['single_event_ms']['p99']} ms"
    )


# -- 8. the idle calculator ----------------------------------------------------------------------------


async def idle_calculator(cfg: BenchConfig, workdir: Path, out: Out, results: dict[str, Any]) -> None:
    namespace = f"benchidle{time.strftime('%Y%m%d%H%M%S')}{secrets.token_hex(2)}."
    system = LocalSystem(namespace=namespace, workdir=workdir / "idle", run=(), out=out, keep_topics=True)
    try:
        await system.start()
        svc = add_service(system, "calculator")
        system.launch(svc)
        await system.wait_ready(["calculator"], timeout=60)
        await asyncio.sleep(2.0)
        mem = memory(pid(svc))
        results["idle_calculator"] = {"peak_mib": round(mem.peak_mib, 1), "rss_mib": round(mem.rss_mib, 1)}
        held = results.get("memory")
        if held:
            held["peak_bytes_per_account_over_idle"] = round(
                (held["peak_mib"] - mem.peak_mib) * 2**20 / held["accounts"]
            )
        out(f"idle calculator: peak RSS {mem.peak_mib:.0f} MiB")
    finally:
        if "calculator" in system.services:
            await system.stop_service("calculator")
        if system.bootstrap:
            with contextlib.suppress(Exception):
                await delete_namespace(load(KafkaPart, kafka_bootstrap=system.bootstrap).kafka, namespace)
        await system.stop()
