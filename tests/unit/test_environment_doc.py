"""docs/OPERATIONS.md's table of environment variables (and docs/KAFKA.md's, for the local broker) against the
settings models: every variable a model reads is in the table, and every variable in the table is read by one."""

from __future__ import annotations

import re
from pathlib import Path

import segwatch.cli.settings
import segwatch.config
import segwatch.kafka.broker
import segwatch.ops.stack
import services.alerter.settings
import services.calculator.settings
import services.ingest.config
from segwatch.environment import EnvSettings, variables
from segwatch.kafka.broker import BrokerPart

DOCS = Path(__file__).resolve().parents[2] / "docs"
# Read by docker compose (deploy/compose), never by segwatch: the Alertmanager's secret files.
COMPOSE_ONLY = frozenset({"PAGERDUTY_ROUTING_KEY", "COMPLIANCE_CHAT_WEBHOOK_URL", "OPS_CHAT_WEBHOOK_URL"})
SERVICE_MODELS = (
    services.ingest.config.IngestSettings,
    services.calculator.settings.CalculatorSettings,
    services.alerter.settings.AlerterSettings,
    segwatch.cli.settings.CliSettings,
    segwatch.ops.stack.ToolsPart,
    segwatch.config.KafkaPart,
)


def every_model() -> set[type[EnvSettings]]:
    """Every settings model segwatch defines (not those tests define for themselves)."""
    found: set[type[EnvSettings]] = set()
    todo = list(EnvSettings.__subclasses__())
    while todo:
        model = todo.pop()
        if model not in found:
            found.add(model)
            todo.extend(model.__subclasses__())
    return {model for model in found if model.__module__.split(".")[0] in ("segwatch", "services", "schemas", "bench")}


def table_variables(doc: str, heading: str | None) -> set[str]:
    """The variables named in the first column of the table after `heading` (or the first table with a
    Variable column)."""
    text = (DOCS / doc).read_text()
    if heading is not None:
        text = text[text.index(heading) :]
    names: set[str] = set()
    in_table = False
    for line in text.splitlines():
        if line.startswith("|"):
            first = line.split("|")[1]
            if first.strip().lower() == "variable":
                in_table = True
            elif in_table:
                names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first))
        elif in_table:
            break
    return names


def read_by(models: set[type[EnvSettings]]) -> set[str]:
    return {var for model in models for var in variables(model)}


def test_every_model_is_composed_into_a_service_or_documented() -> None:
    """A part no service model includes would never be checked at start."""
    composed = {base for model in (*SERVICE_MODELS, BrokerPart) for base in model.__mro__}
    orphans = {model.__name__ for model in every_model() if model not in composed and variables(model)}
    assert not orphans, f"settings parts no service model includes: {sorted(orphans)}"


def test_the_operations_table_names_every_variable_the_models_read_and_no_other() -> None:
    documented = table_variables("OPERATIONS.md", "## Environment variables") - COMPOSE_ONLY
    read = read_by(every_model() - {BrokerPart})
    assert sorted(read - documented) == [], "read by a settings model, missing from docs/OPERATIONS.md"
    assert sorted(documented - read) == [], "in docs/OPERATIONS.md, read by no settings model"


def test_the_broker_table_names_every_variable_of_the_broker_part() -> None:
    documented = table_variables("KAFKA.md", None)
    assert documented == set(variables(BrokerPart))


def test_the_table_reader_sees_the_rows() -> None:
    # The check above must not pass on an empty table.
    assert {"KAFKA_BOOTSTRAP", "SEGWATCH_INGEST_PORT", "SEGWATCH_ALERTER_PORT"} <= table_variables(
        "OPERATIONS.md", "## Environment variables"
    )
