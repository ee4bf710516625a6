"""The broker's ceiling: Kafka's own consumer performance tool (org.apache.kafka.tools.ConsumerPerformance,
from the kafka-tools jar the local broker's classpath already holds; deploy/local/kafka-pom.xml)."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segwatch.kafka.broker import BrokerConfig

# The tool's own logging: warnings and errors to stderr, nothing else (written next to the service logs).
LOG4J = """log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
"""


@dataclass(frozen=True)
class ToolResult:
    """ConsumerPerformance's summary line. `fetch_events_per_second` leaves out the group join (rebalance)."""

    messages: int
    megabytes: float
    seconds: float
    events_per_second: float
    fetch_events_per_second: float
    rebalance_ms: int
    fetch_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "megabytes": self.megabytes,
            "seconds": self.seconds,
            "events_per_second": self.events_per_second,
            "fetch_events_per_second": self.fetch_events_per_second,
            "rebalance_ms": self.rebalance_ms,
            "fetch_ms": self.fetch_ms,
        }


def tool_jar(config: BrokerConfig | None = None) -> Path | None:
    config = config or BrokerConfig.from_env()
    jars = sorted(config.libs_dir.glob("kafka-tools-[0-9]*.jar"))
    return jars[0] if jars else None


def parse_output(text: str) -> ToolResult:
    """The CSV line after the header: start.time, end.time, data.consumed.in.MB, MB.sec,
    data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec."""
    lines = [line for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("start.time") and i + 1 < len(lines):
            header = [h.strip() for h in line.split(",")]
            values = dict(zip(header, (v.strip() for v in lines[i + 1].split(",")), strict=False))
            fetch_ms = int(values["fetch.time.ms"])
            return ToolResult(
                messages=int(values["data.consumed.in.nMsg"]),
                megabytes=float(values["data.consumed.in.MB"]),
                seconds=(int(values["rebalance.time.ms"]) + fetch_ms) / 1000,
                events_per_second=float(values["nMsg.sec"]),
                fetch_events_per_second=float(values["fetch.nMsg.sec"]),
                rebalance_ms=int(values["rebalance.time.ms"]),
                fetch_ms=fetch_ms,
            )
    raise ValueError(f"no ConsumerPerformance summary in its output:\n{text[-2000:]}")


async def consumer_performance(
    bootstrap: str, topic: str, messages: int, group: str, workdir: Path, timeout: float = 300.0
) -> ToolResult:
    """Run the tool in a JVM (the broker's java and jars) and read its summary."""
    config = BrokerConfig.from_env()
    log4j = workdir / "log4j-tools.properties"
    log4j.write_text(LOG4J)
    if tool_jar(config) is None:
        raise FileNotFoundError(f"no kafka-tools jar in {config.libs_dir} (deploy/local/kafka-pom.xml lists it)")
    java = config.java if "/" in config.java else shutil.which(config.java) or config.java
    proc = await asyncio.create_subprocess_exec(
        java,
        f"-Dlog4j.configuration=file:{log4j.absolute()}",
        "-Xms256m",
        "-Xmx512m",
        "-cp",
        f"{config.libs_dir}/*",
        "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--messages",
        str(messages),
        "--group",
        group,
        "--timeout",
        "30000",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise TimeoutError(f"ConsumerPerformance did not finish in {timeout:.0f}s") from None
    text = output.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"ConsumerPerformance exited with {proc.returncode}:\n{text[-2000:]}")
    return parse_output(text)
