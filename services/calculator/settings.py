"""The calculator's settings from the environment: `CalculatorSettings`, read and checked once at start
(`segwatch calculator worker`). segwatch/environment.py says how the models work. To add a variable: a field in
`CalculatorPart` named as the `CalculatorConfig` field it sets (services/calculator/app.py); every `CalculatorPart`
field goes to CalculatorConfig (`config_fields`, also what `CalculatorConfig.from_env` uses)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segwatch.config import KafkaPart
from segwatch.environment import (
    CalendarPart,
    EnvSettings,
    EventsPart,
    FiguresPart,
    ListenPort,
    LoggingPart,
    NamespacePart,
    PositiveInt,
    Text,
    TopicsPart,
    env,
    load,
)
from services.calculator.defaults import BATCH_MAX, COALESCE_MS, FETCH_BYTES

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8702


class CalculatorPart(EnvSettings):
    """The calculator's own variables."""

    coalesce_ms: PositiveInt = env("SEGWATCH_COALESCE_MS", COALESCE_MS, "most a change waits for its figures (ms)")
    batch_max: PositiveInt = env("SEGWATCH_CALCULATOR_BATCH", BATCH_MAX, "balance records per fetch")
    fetch_bytes: PositiveInt = env("SEGWATCH_CALCULATOR_FETCH_BYTES", FETCH_BYTES, "bytes per partition per fetch")
    web_host: Text = env("SEGWATCH_BIND", DEFAULT_HOST, "address of the web endpoints")
    web_port: ListenPort = env("SEGWATCH_CALCULATOR_PORT", DEFAULT_PORT, "port of the web endpoints (or --port)")
    datadir: Text = env("SEGWATCH_CALCULATOR_DATADIR", "", "Faust's data directory")
    instance_id: Text = env("SEGWATCH_CALCULATOR_INSTANCE_ID", "", "static group membership id")


class CalculatorSettings(
    KafkaPart, LoggingPart, NamespacePart, TopicsPart, EventsPart, FiguresPart, CalendarPart, CalculatorPart
):
    """Everything the calculator worker reads from the environment."""

    def config_fields(self) -> dict[str, Any]:
        """The CalculatorConfig fields set from the environment."""
        return {
            "partitions": self.balance_partitions,
            **{name: getattr(self, name) for name in CalculatorPart.model_fields},
        }


def config_fields(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    return load(CalculatorSettings, env).config_fields()
