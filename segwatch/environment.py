"""Settings from the environment: one pydantic-settings model per service, composed of shared parts.

Every environment variable segwatch reads is a field of a model here or in a service's settings module:

    segwatch/environment.py          the rules (`Port`, `ListenPort`, `Seconds`, `Flag`, ...) and the shared parts:
                                     LoggingPart, NamespacePart, TopicsPart, EventsPart, FiguresPart, CalendarPart
    segwatch/config.py               KafkaPart (KAFKA_*), which gives the clients' `KafkaSettings`
    services/ingest/config.py        IngestSettings        (`segwatch ingest serve`)
    services/calculator/settings.py  CalculatorSettings    (`segwatch calculator worker`)
    services/alerter/settings.py     AlerterSettings       (`segwatch alerter serve`)
    segwatch/cli/settings.py         CliSettings           (the other commands)
    segwatch/kafka/broker.py         BrokerPart            (`segwatch broker`, the local development broker)
    segwatch/ops/stack.py            ToolsPart             (the Prometheus and Alertmanager binaries of tests/ops)

A service's model is read and validated once, at start, by `load(Model)` (`load(Model, env)` with a mapping in
tests): every variable's mistake is reported at once (the checks across variables, as Kafka's SASL and TLS, once
each variable is valid) in one `SettingsError` (an `InputError`) naming each variable and why, which the CLI prints
as one line without a traceback. An unset or blank variable takes the default. Code below the services (the event
models' clock skew, the figures' FX age, the business calendar) asks `load(ItsPart)` where it needs the value:
the same part, so the same rule, and since every service's model includes it a wrong value has already stopped
the service at start; a repeated `load` of the same variables is a dictionary look-up.

The same rule everywhere: a port is a whole number 1–65535 (`Port`; `ListenPort` also takes 0, "any free port",
for the HTTP endpoints); a duration is a finite number of seconds more than 0 (`Seconds`; `nan`, `inf`, 0 and
negatives are refused); a switch is 1/0, true/false, yes/no, y/n or on/off (`Flag`), anything else refused.

Adding a variable is one line in the part or service model it belongs to, a field with its rule, default and
meaning, e.g. in services/alerter/settings.py's `AlerterPart`:

    read_port: ListenPort = env("SEGWATCH_ALERTER_READ_PORT", 8704, "port of the read API (0: any free port)")

and a row in docs/OPERATIONS.md's table (tests/unit/test_environment_doc.py fails until it is there). The service
gets the value from the model it loaded at start, never from os.environ: the alerter's and the calculator's own
parts are passed whole to AlerterConfig / CalculatorConfig (`config_fields`), so a field named as the config's
field needs nothing more. A rule of its own is an `Annotated` type with a validator that raises ValueError
(the message says why; `load` names the variable); a check across variables raises `EnvError(var, why)` in a
`model_validator` (KafkaPart shows how).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import datetime
from functools import cache
from typing import Annotated, Any, ClassVar, TypeVar, cast

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from segwatch.errors import InputError

# -- the rules ------------------------------------------------------------------------------------------------


def _integer(raw: object) -> object:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return raw  # pydantic refuses it, naming the type
    text = str(raw).strip()
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ValueError(f"must be a whole number, got {text!r}")
    return int(text)


def _number(raw: object) -> object:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return raw
    text = str(raw).strip()
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value):  # nan, inf: never a duration
        raise ValueError(f"must be a finite number of seconds, got {text!r}")
    return value


def _at_least(low: float, what: str = "") -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value < low:
            raise ValueError(f"must be at least {low}{what}, got {value}")
        return value

    return check


def _more_than_zero(value: float) -> float:
    if not value > 0:
        raise ValueError(f"must be more than 0 seconds, got {value}")
    return value


def _port(low: int) -> Callable[[int], int]:
    def check(value: int) -> int:
        if not low <= value <= 65535:
            raise ValueError(f"must be a TCP port ({low}-65535), got {value}")
        return value

    return check


TRUE: frozenset[str] = frozenset({"1", "true", "yes", "y", "on"})
FALSE: frozenset[str] = frozenset({"0", "false", "no", "n", "off"})


def _flag(raw: object) -> object:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"must be 1 or 0 (true/false, yes/no, on/off), got {str(raw).strip()!r}")


def _strip(raw: object) -> object:
    return raw.strip() if isinstance(raw, str) else raw


Port = Annotated[int, BeforeValidator(_integer), AfterValidator(_port(1))]
"""A TCP port to connect to or to listen on at a fixed address: 1–65535."""
ListenPort = Annotated[int, BeforeValidator(_integer), AfterValidator(_port(0))]
"""A port an HTTP endpoint listens on: 0–65535, 0 taking any free port."""
PositiveInt = Annotated[int, BeforeValidator(_integer), AfterValidator(_at_least(1))]
NonNegativeInt = Annotated[int, BeforeValidator(_integer), AfterValidator(_at_least(0))]
Seconds = Annotated[float, BeforeValidator(_number), AfterValidator(_more_than_zero)]
"""A duration: a finite number of seconds more than 0."""
NonNegativeSeconds = Annotated[float, BeforeValidator(_number), AfterValidator(_at_least(0, " seconds"))]
"""A margin that may be none: a finite number of seconds, 0 or more."""
WholeSeconds = Annotated[int, BeforeValidator(_integer), AfterValidator(_at_least(1, " second"))]
Flag = Annotated[bool, BeforeValidator(_flag)]
Text = Annotated[str, BeforeValidator(_strip)]


def _instant(raw: str) -> str:
    if raw:
        try:
            at = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError("not an ISO 8601 instant (e.g. 2026-11-30T12:00:00+00:00)") from None
        if at.tzinfo is None:
            raise ValueError("an instant needs its UTC offset (e.g. +00:00)")
    return raw


# An ISO 8601 instant with its offset, kept as text ("" when unset).
Instant = Annotated[str, BeforeValidator(_strip), AfterValidator(_instant)]


def env(var: str | tuple[str, ...], default: Any, meaning: str, **kwargs: Any) -> Any:
    """A field read from the environment variable `var` (a tuple: the first of them that is set)."""
    alias: str | AliasChoices = var if isinstance(var, str) else AliasChoices(*var)
    return Field(default, validation_alias=alias, description=meaning, **kwargs)


# -- reading --------------------------------------------------------------------------------------------------


class SettingsError(InputError):
    """One or more variables are wrong: `problems` holds (variable, reason) for each, `field` the first."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__(problems[0][0], problems[0][1])
        self.args = ("; ".join(f"{var}: {reason}" for var, reason in problems),)

    def __str__(self) -> str:
        return str(self.args[0])


class EnvError(ValueError):
    """Raised inside a model's validators when a check spans variables: names the variable at fault."""

    def __init__(self, var: str, reason: str) -> None:
        super().__init__(f"{var}: {reason}")
        self.var = var
        self.reason = reason


M = TypeVar("M", bound="EnvSettings")
_given: ContextVar[Mapping[str, str] | None] = ContextVar("segwatch_environment", default=None)


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over the mapping given to `load` (else os.environ). A blank value
    counts as unset; a set value is passed as it is (the rules strip white space; a password keeps it)."""

    def __init__(self, settings_cls: type[BaseSettings], given: Mapping[str, str]) -> None:
        self._mapping = {name: value for name, value in given.items() if value.strip()}
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:  # the hook pydantic-settings' dotenv source uses too
        return parse_env_vars(self._mapping, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class EnvSettings(BaseSettings):
    """The base of every settings part and model. Field names are for code (`Model(port=0)` in tests); the
    environment is read by each field's variable name only, exactly as spelt."""

    model_config = SettingsConfigDict(
        case_sensitive=True,
        extra="ignore",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
    )
    # Variables whose values an error message must never repeat.
    SECRET: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        given = _given.get()
        return init_settings, _Environment(settings_cls, os.environ if given is None else given)


def load(model: type[M], env: Mapping[str, str] | None = None, **values: Any) -> M:
    """`model` read from `env` (default os.environ) and validated; `values` (by field name) win over it.
    Raises SettingsError naming every variable at fault."""
    if env is None and not values:
        # The same variables give the same (frozen) settings: the pure core asks for its part where it needs it
        # (a Book's FX age), so a read is a dictionary look-up, not a validation, once the process has started.
        key = (model, tuple(os.environ.get(var) for var in _names(model)))
        held = _loaded.get(key)
        if held is None:
            held = _loaded[key] = _load(model, os.environ, values)
        return cast(M, held)
    return _load(model, os.environ if env is None else env, values)


_loaded: dict[tuple[type[EnvSettings], tuple[str | None, ...]], EnvSettings] = {}


@cache
def _names(model: type[EnvSettings]) -> tuple[str, ...]:
    return tuple(variables(model))


def _load(model: type[M], env: Mapping[str, str], values: dict[str, Any]) -> M:
    token = _given.set(env)
    try:
        return model(**values)
    except ValidationError as exc:
        raise SettingsError([_problem(model, error) for error in exc.errors()]) from None
    finally:
        _given.reset(token)


def _problem(model: type[EnvSettings], error: Any) -> tuple[str, str]:
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, EnvError):
        return cause.var, cause.reason
    loc = error.get("loc") or ()
    var = str(loc[0]) if loc else model.__name__
    if var in model.model_fields and variables_of(model.model_fields[var]):  # given by field name
        var = variables_of(model.model_fields[var])[0]
    given = error.get("input")
    if isinstance(cause, ValueError):
        reason = str(cause)
    else:
        message = str(error.get("msg", "is not valid"))
        reason = message if "input" not in error else f"{message}, got {given!r}"
    if var in model.SECRET and isinstance(given, str) and given.strip():
        reason = reason.replace(given.strip(), "<redacted>").replace(given, "<redacted>")
    return var, reason


def variables_of(field: FieldInfo) -> tuple[str, ...]:
    alias = field.validation_alias
    if isinstance(alias, str):
        return (alias,)
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    return ()


def value_of(settings: EnvSettings, var: str) -> Any:
    """The value `settings` holds for the variable `var`."""
    for name, field in type(settings).model_fields.items():
        if var in variables_of(field):
            return getattr(settings, name)
    raise KeyError(var)


def variables(model: type[EnvSettings]) -> dict[str, FieldInfo]:
    """Every variable `model` reads, with its field (default, description)."""
    return {var: field for field in model.model_fields.values() for var in variables_of(field)}


# -- shared parts ---------------------------------------------------------------------------------------------

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, got {raw.strip()!r}")
    return level


def _log_format(raw: str) -> str:
    fmt = raw.strip().lower()
    if fmt not in ("json", "console"):
        raise ValueError(f"must be json or console, got {raw.strip()!r}")
    return fmt


class LoggingPart(EnvSettings):
    log_format: Annotated[str | None, AfterValidator(lambda v: v if v is None else _log_format(v))] = env(
        "SEGWATCH_LOG_FORMAT", None, "json or console; unset: json unless on a terminal"
    )
    log_level: Annotated[str, AfterValidator(_log_level)] = env("SEGWATCH_LOG_LEVEL", "INFO", "log level")


_TOPIC_CHARS = re.compile(r"[A-Za-z0-9._-]*")


def _namespace(raw: str) -> str:
    text = raw.strip()
    if not _TOPIC_CHARS.fullmatch(text) or len(text) > 100:
        raise ValueError(f"is a prefix of topic names: letters, digits, '.', '_', '-' (at most 100), got {text!r}")
    return text


class NamespacePart(EnvSettings):
    namespace: Annotated[str, AfterValidator(_namespace)] = env(
        "SEGWATCH_NAMESPACE", "", "prefix of every topic, app id and consumer group"
    )


class TopicsPart(EnvSettings):
    balance_partitions: PositiveInt = env(
        "SEGWATCH_BALANCE_PARTITIONS", 4, "partitions of segwatch.balances (and its changelogs)"
    )
    replication: PositiveInt = env("SEGWATCH_REPLICATION", 1, "replication factor of every topic")


class EventsPart(EnvSettings):
    max_clock_skew: NonNegativeSeconds = env(
        "SEGWATCH_MAX_CLOCK_SKEW_SECONDS", 300.0, "how far in the future an event's as_of may be"
    )


class FiguresPart(EnvSettings):
    fx_max_age: WholeSeconds = env(
        "SEGWATCH_FX_MAX_AGE_SECONDS", 26 * 3600, "a rate older than this behind the newest balance is stale"
    )
    count_unacknowledged: Flag = env(
        "SEGWATCH_COUNT_UNACKNOWLEDGED", False, "count funds at a depository without its acknowledgment letter"
    )


class CalendarPart(EnvSettings):
    """The business day (segwatch/core/calendar.py parses and checks the values: CalendarConfig.from_env)."""

    calendar: Text | None = env("SEGWATCH_CALENDAR", None, "pandas_market_calendars calendar (CME_TradeDate)")
    timezone: Text | None = env("SEGWATCH_TIMEZONE", None, "the FCM's time zone (America/Chicago)")
    cutoff: Text | None = env("SEGWATCH_CUTOFF", None, "end, close or HH:MM[:SS]")
    extra_307_days: Text | None = env("SEGWATCH_307_DAYS", None, "NFA-requested 30.7-only statement days")
    filing_warning: Text | None = env("SEGWATCH_FILING_WARNING", None, "next business day: warning time")
    filing_deadline: Text | None = env("SEGWATCH_FILING_DEADLINE", None, "next business day: deadline")
