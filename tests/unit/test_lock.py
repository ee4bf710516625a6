"""The lock files pin exactly what pyproject.toml asks for (scripts/lock refreshes them).

A dependency added to pyproject.toml without `scripts/lock` would install unpinned on nobody's machine but the
author's; these tests name it instead."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def pins(name: str) -> dict[str, str]:
    """package -> version of one lock file; every pin must carry at least one hash."""
    text = (ROOT / "requirements" / name).read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", text):
        match = re.match(r"([A-Za-z0-9_.\-\[\]]+)==(\S+)", block)
        if match is None:
            continue
        assert "--hash=sha256:" in block, f"{name}: {match.group(1)} is pinned without a hash"
        out[canonicalize_name(match.group(1).split("[")[0])] = match.group(2)
    return out


def requirements(extra: str | None) -> list[Requirement]:
    reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    if extra:
        reqs += [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"][extra]]
    return reqs


@pytest.mark.parametrize(("lock", "extra"), [("runtime.lock", None), ("dev.lock", "dev")])
def test_every_requirement_is_pinned_to_a_version_it_allows(lock: str, extra: str | None) -> None:
    pinned = pins(lock)
    for req in requirements(extra):
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is in pyproject.toml but not in requirements/{lock}: run scripts/lock"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"requirements/{lock} pins {req.name}=={pinned[name]}, outside {req.specifier}: run scripts/lock"
        )


def test_the_dev_lock_installs_the_runtime_versions() -> None:
    runtime, dev = pins("runtime.lock"), pins("dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime
