"""The alerter's settings from the environment: `AlerterSettings`, read and checked once at start
(`segwatch alerter serve`). segwatch/environment.py says how the models work. To add a variable: a field in
`AlerterPart` named as the `AlerterConfig` field it sets (services/alerter/service.py); `segwatch alerter serve`
passes every `AlerterPart` field to AlerterConfig (`config_fields`). The service itself never reads os.environ."""

from __future__ import annotations

from typing import Any

from segwatch.config import KafkaPart
from segwatch.environment import (
    CalendarPart,
    EnvSettings,
    EventsPart,
    ListenPort,
    LoggingPart,
    NamespacePart,
    NonNegativeSeconds,
    Text,
    env,
)
from services.alerter.service import DEFAULT_HOST, DEFAULT_PORT
from services.ingest.config import TokensPart


class AlerterPart(EnvSettings):
    """The alerter's own variables."""

    host: Text = env("SEGWATCH_ALERTER_HOST", DEFAULT_HOST, "HTTP address (or --host)")
    port: ListenPort = env("SEGWATCH_ALERTER_PORT", DEFAULT_PORT, "HTTP port (or --port; 0: any free port)")
    # The business day (issue #12; services/alerter/business_day.py, docs/RECORD.md).
    day_interval: NonNegativeSeconds = env(
        "SEGWATCH_ALERTER_DAY_INTERVAL_SECONDS",
        15.0,
        "seconds between evaluations of the filing and report deadlines (0: on inputs only)",
    )
    clock_offset: float = env(
        "SEGWATCH_CLOCK_OFFSET_SECONDS",
        0.0,
        "seconds added to the alerter's clock (rehearsals and tests; never in production)",
    )
    firm_name: Text = env("SEGWATCH_FIRM_NAME", "segwatch FCM", "the firm in a statement's text header")


class AlerterSettings(KafkaPart, LoggingPart, NamespacePart, EventsPart, CalendarPart, TokensPart, AlerterPart):
    """Everything the alerter reads from the environment (TokensPart: the what-if's bearer tokens, the ingest
    API's)."""

    def config_fields(self) -> dict[str, Any]:
        """The AlerterConfig fields set from the environment."""
        return {name: getattr(self, name) for name in AlerterPart.model_fields}
