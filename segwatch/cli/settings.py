"""What the commands that are not services read from the environment: `CliSettings`.
segwatch/environment.py says how the models work and how to add a variable."""

from __future__ import annotations

from segwatch.cli.dayclose import DEFAULT_FIRM
from segwatch.config import KafkaPart
from segwatch.environment import (
    CalendarPart,
    EnvSettings,
    EventsPart,
    FiguresPart,
    LoggingPart,
    NamespacePart,
    Text,
    TopicsPart,
    env,
)


class CliPart(EnvSettings):
    firm_name: Text = env("SEGWATCH_FIRM_NAME", DEFAULT_FIRM, "the firm in a filing's text header (or --firm)")


class CliSettings(KafkaPart, LoggingPart, NamespacePart, TopicsPart, EventsPart, FiguresPart, CalendarPart, CliPart):
    """The commands that are not services (statement, report, topics, sample, replay, run, bench). Each reads the
    parts it uses when it uses them: `segwatch statement` never fails on a Kafka setting it does not need."""
