"""The import graph points one way (README, "How it is built"), and developer tooling stays out of the service
images: every module sits in a layer and imports only its own layer or those below; nothing a service image
installs imports the developer tools deploy/Dockerfile removes, or a package only the dev lock installs."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "segwatch", "services", "bench")

# Bottom to top. "x." is the package x and everything in it; "x" alone is that one module. A new module fails
# test_every_module_has_a_layer until it is placed here (and in the README's table).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("wire models", ("schemas.", "segwatch", "segwatch.errors", "segwatch.environment")),
    ("pure core", ("segwatch.core.",)),
    (
        "adapters",
        (
            "segwatch.config",
            "segwatch.logs",
            "segwatch.waiting",
            "segwatch.ndjson",
            "segwatch.deadletter",
            "segwatch.kafka.",
            "segwatch.forms.",
            "segwatch.sample",
            "segwatch.calendar_snapshot",
        ),
    ),
    ("services", ("services.",)),
    (
        "entry points and developer tools",
        (
            "segwatch.cli.",
            "segwatch.system",
            "segwatch.replay",
            "segwatch.ops.",
            "bench.",
        ),
    ),
)

# The developer tools deploy/Dockerfile removes before it builds the wheel (bench/ it never copies).
DEV_TOOLS = (
    "segwatch/kafka/broker.py",
    "segwatch/cli/broker.py",
    "segwatch/system.py",
    "segwatch/replay.py",
    "segwatch/cli/run.py",
    "segwatch/cli/bench.py",
    "segwatch/ops",
)


@dataclass(frozen=True, slots=True)
class Import:
    module: str  # the importing module
    target: str  # the project module imported
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


MODULES = project_modules()


def imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every module named by an import statement anywhere in the file (functions too), absolute."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            yield base, node.lineno
            for alias in node.names:  # `from package import module`
                yield f"{base}.{alias.name}", node.lineno


def project_imports() -> list[Import]:
    out = []
    for module, path in MODULES.items():
        for target, line in imports(module, path):
            if target in MODULES:
                out.append(Import(module, target, line))
    return out


def layer(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (length of the matching entry, layer)
    for index, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            package = entry.removesuffix(".")
            matches = module == package or (entry.endswith(".") and module.startswith(entry))
            if matches and (best is None or len(entry) > best[0]):
                best = (len(entry), index)
    return None if best is None else best[1]


def test_every_module_has_a_layer() -> None:
    assert [m for m in MODULES if layer(m) is None] == []


def test_imports_point_down() -> None:
    upward = []
    for imp in project_imports():
        mine, theirs = layer(imp.module), layer(imp.target)
        assert mine is not None and theirs is not None
        if theirs > mine:
            upward.append(f"{imp.module}:{imp.line} ({LAYERS[mine][0]}) imports {imp.target} ({LAYERS[theirs][0]})")
    assert upward == []


def test_the_pure_core_and_the_wire_models_never_import_kafka_or_http() -> None:
    io = {"aiokafka", "faust", "mode", "aiohttp", "prometheus_client", "structlog"}
    found = [
        f"{module}:{line} imports {target}"
        for module, path in MODULES.items()
        if layer(module) in (0, 1)
        for target, line in imports(module, path)
        if target.split(".")[0] in io
    ]
    assert found == []


def dev_tool(module: str) -> bool:
    path = MODULES[module].relative_to(ROOT).as_posix()
    return module.split(".")[0] == "bench" or any(path == t or path.startswith(t + "/") for t in DEV_TOOLS)


def test_the_dockerfile_removes_the_developer_tools() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    [removed] = re.findall(r"^RUN rm -r (.+)$", text, flags=re.MULTILINE)
    assert sorted(removed.split()) == sorted(DEV_TOOLS)
    assert all((ROOT / path).exists() for path in DEV_TOOLS)
    copied = re.findall(r"^COPY (\S+) \./", text, flags=re.MULTILINE)
    assert "bench" not in copied and "tests" not in copied


def test_nothing_in_the_image_imports_a_developer_tool() -> None:
    found = [
        f"{imp.module}:{imp.line} imports {imp.target}"
        for imp in project_imports()
        if not dev_tool(imp.module) and dev_tool(imp.target)
    ]
    assert found == []


def locked(name: str) -> set[str]:
    text = (ROOT / "requirements" / name).read_text(encoding="utf-8")
    return {re.sub(r"[-_.]+", "-", m.lower()) for m in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", text, re.M)}


def test_nothing_in_the_image_imports_a_dev_only_package() -> None:
    dev_only = locked("dev.lock") - locked("runtime.lock")
    assert "grafana-foundation-sdk" in dev_only and "pyyaml" in dev_only
    owners = {
        name: {re.sub(r"[-_.]+", "-", d.lower()) for d in dists} for name, dists in packages_distributions().items()
    }
    found = [
        f"{module}:{line} imports {target}"
        for module, path in MODULES.items()
        if not dev_tool(module)
        for target, line in imports(module, path)
        if owners.get(target.split(".")[0]) and owners[target.split(".")[0]] <= dev_only
    ]
    assert found == []


BLOCK = """
import importlib.abc, sys
DEV = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in DEV or name.split(".")[0] == "bench" or name.startswith("segwatch.ops"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
from segwatch.cli import main
sys.exit(main(sys.argv[2:]))
"""


def without_dev_tools(*argv: str) -> subprocess.CompletedProcess[str]:
    """The `segwatch` command as a service image has it: the developer tools cannot be imported."""
    dev = ",".join(m for m in MODULES if dev_tool(m))
    return subprocess.run(
        [sys.executable, "-c", BLOCK, dev, *argv],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
    )


def test_the_command_without_the_developer_tools_lists_the_rest() -> None:
    done = without_dev_tools("--help")
    assert done.returncode == 0, done.stderr
    commands = re.findall(r"^    ([a-z]+)\b", done.stdout, flags=re.MULTILINE)
    assert commands == ["statement", "report", "topics", "ingest", "calculator", "alerter", "sample", "replay"]


@pytest.mark.parametrize("command", ["broker", "run", "bench"])
def test_a_developer_command_without_its_tools_says_so(command: str) -> None:
    done = without_dev_tools(command, "status")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"segwatch: error: `segwatch {command}` is a developer command, not installed "
        "here (a service image leaves developer tooling out)"
    )
