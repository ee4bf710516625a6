"""Memory of a process from /proc (psutil is not a dependency): VmHWM is the peak resident set, VmRSS the
current one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Memory:
    peak_bytes: int  # VmHWM
    rss_bytes: int  # VmRSS

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / 2**20

    @property
    def rss_mib(self) -> float:
        return self.rss_bytes / 2**20


def memory(pid: int) -> Memory:
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            amount, unit = value.split()
            fields[name] = int(amount) * {"kB": 1024, "mB": 2**20}[unit]
    return Memory(peak_bytes=fields["VmHWM"], rss_bytes=fields["VmRSS"])


def machine() -> dict[str, object]:
    """nproc, CPU model, memory, and the load average when asked."""
    import os
    import platform

    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    mem_total = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "memory_gib": round(mem_total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in load],
    }
