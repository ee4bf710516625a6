"""Operations tests: deploy/ configuration checked with the real tools (promtool, amtool, Kubernetes schemas),
the dashboard against its generator, and the alerting path end to end with real Prometheus and Alertmanager.
A missing tool FAILS these tests; it never skips them (scripts/prereqs installs the tools)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

__all__ = ["ROOT", "run_tool", "tool"]

ROOT = Path(__file__).resolve().parents[2]


def tool(name: str) -> str:
    """The path of a required command-line tool; fails the test (never skips) when it is missing."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not installed: run scripts/prereqs (Debian packages prometheus, prometheus-alertmanager)",
            pytrace=False,
        )
    return found


def run_tool(argv: Sequence[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
