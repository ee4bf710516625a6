"""The ingest service's settings, from the environment: `IngestSettings` (segwatch/environment.py says how the
models work and how to add a variable). Mistakes are InputErrors naming the variable.

    SEGWATCH_INGEST_TOKENS           bearer tokens, comma-separated
    SEGWATCH_INGEST_TOKENS_FILE      a file of bearer tokens, one per line (blank lines and # comments ignored)
    SEGWATCH_INGEST_ALLOW_ANONYMOUS  1 (yes, true, on): start without any token (no authentication). Without tokens and
                                     without this the service refuses to start.
    SEGWATCH_INGEST_MAX_BYTES        largest request body accepted (default 8 MiB; larger → 413)
    SEGWATCH_INGEST_MAX_EVENTS       most events in one NDJSON batch (default 10000; more → 413)
    SEGWATCH_INGEST_PORT             port of `segwatch ingest serve` (default 8701; 0: any free port)
    SEGWATCH_INGEST_ACK_TIMEOUT      seconds a request waits for Kafka's acknowledgements (default 20)
    SEGWATCH_INGEST_LINGER_MS        how long the producer lets small sends gather into one batch (default 2)
    SEGWATCH_INGEST_HEADER_TIMEOUT   seconds a connection has to send a request's headers, from connecting or
                                     from its previous response (default 15); then it is closed. Also the
                                     idle keep-alive time.
    SEGWATCH_INGEST_BODY_TIMEOUT     seconds a request has to send its whole body once its headers are in
                                     (default 60; slower → 408)
    SEGWATCH_INGEST_SOURCES          the known event sources, comma-separated: each gets its own `source` label
                                     on segwatch_ingest_source_last_seen_timestamp_seconds, any other source is
                                     counted as `other`. Unset: the first 50 sources seen get a label each, the
                                     rest `other` (the label stays bounded whatever clients send).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, model_validator
from pydantic_settings import NoDecode

from segwatch.config import KafkaPart
from segwatch.environment import (
    EnvError,
    EnvSettings,
    EventsPart,
    Flag,
    ListenPort,
    LoggingPart,
    NamespacePart,
    NonNegativeInt,
    PositiveInt,
    Seconds,
    SettingsError,
    Text,
    env,
    load,
)
from segwatch.errors import InputError

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_EVENTS = 10_000
DEFAULT_PORT = 8701
DEFAULT_ACK_TIMEOUT = 20.0
DEFAULT_LINGER_MS = 2
DEFAULT_HEADER_TIMEOUT = 15.0
DEFAULT_BODY_TIMEOUT = 60.0
DEFAULT_MAX_SOURCES = 50  # labels given to the first sources seen when SEGWATCH_INGEST_SOURCES is unset
OTHER_SOURCE = "other"

TOKENS = "SEGWATCH_INGEST_TOKENS"
TOKENS_FILE = "SEGWATCH_INGEST_TOKENS_FILE"
ALLOW_ANONYMOUS = "SEGWATCH_INGEST_ALLOW_ANONYMOUS"
SOURCES = "SEGWATCH_INGEST_SOURCES"


def _tokens(raw: str | None, path: str | None) -> tuple[bytes, ...]:
    given = raw or ""
    tokens = [t.strip() for t in given.split(",") if t.strip()]
    if path:
        try:
            lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise EnvError(TOKENS_FILE, f"cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise EnvError(TOKENS_FILE, f"{path} is not UTF-8 text") from None
        tokens += [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    for token in tokens:
        if any(ch.isspace() for ch in token):
            raise EnvError(TOKENS if token in given else TOKENS_FILE, "a token contains white space")
    return tuple(dict.fromkeys(t.encode() for t in tokens))


def tokens_from_env(env: Mapping[str, str] | None = None) -> tuple[bytes, ...]:
    """The bearer tokens of SEGWATCH_INGEST_TOKENS and SEGWATCH_INGEST_TOKENS_FILE (also the what-if API's)."""
    return load(TokensPart, env).tokens


def _sources(raw: str | None) -> frozenset[str] | None:
    if raw is None or not raw.strip():
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    for name in names:
        if len(name) > 64:
            raise ValueError(f"a source is 1 to 64 characters, got {name[:20]!r}... ({len(name)})")
        if name == OTHER_SOURCE:
            raise ValueError(f"{OTHER_SOURCE!r} is the label of the sources not listed; do not list it")
    return frozenset(names)


@dataclass(frozen=True)
class IngestConfig:
    tokens: tuple[bytes, ...] = field(default=(), repr=False)
    allow_anonymous: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES
    max_events: int = DEFAULT_MAX_EVENTS
    ack_timeout: float = DEFAULT_ACK_TIMEOUT
    linger_ms: int = DEFAULT_LINGER_MS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    sources: frozenset[str] | None = None  # known sources (metric labels); None: the first DEFAULT_MAX_SOURCES

    def __post_init__(self) -> None:
        if not self.tokens and not self.allow_anonymous:
            raise InputError(
                TOKENS,
                f"no bearer token is configured, so the ingest API would accept anyone: set {TOKENS} "
                f"(comma-separated) or {TOKENS_FILE} (one per line), or set {ALLOW_ANONYMOUS}=1 to run "
                "WITHOUT authentication (development only)",
            )

    @property
    def authenticated(self) -> bool:
        """Whether requests need a token (anonymous mode only when no token is configured at all)."""
        return bool(self.tokens)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IngestConfig:
        return load(IngestPart, env).config


def port_from_env(env: Mapping[str, str] | None = None) -> int:
    return load(IngestPart, env).port


class TokensPart(EnvSettings):
    """Who may call: the ingest API's bearer tokens, also the alerter's what-if's."""

    SECRET = frozenset({TOKENS})

    raw_tokens: str | None = env(TOKENS, None, "bearer tokens, comma-separated", repr=False)
    tokens_file: Text | None = env(TOKENS_FILE, None, "a file of bearer tokens, one per line")
    allow_anonymous: Flag = env(ALLOW_ANONYMOUS, False, "1: no authentication (development only)")

    @model_validator(mode="after")
    def _check(self) -> TokensPart:
        _ = self.tokens  # the file read and the tokens checked at load
        return self

    @cached_property
    def tokens(self) -> tuple[bytes, ...]:
        return _tokens(self.raw_tokens, self.tokens_file)


class IngestPart(TokensPart):
    """The ingest service's own variables."""

    port: ListenPort = env("SEGWATCH_INGEST_PORT", DEFAULT_PORT, "port of `ingest serve` (or --port)")
    max_bytes: PositiveInt = env("SEGWATCH_INGEST_MAX_BYTES", DEFAULT_MAX_BYTES, "largest request body")
    max_events: PositiveInt = env("SEGWATCH_INGEST_MAX_EVENTS", DEFAULT_MAX_EVENTS, "most events in one batch")
    ack_timeout: Seconds = env("SEGWATCH_INGEST_ACK_TIMEOUT", DEFAULT_ACK_TIMEOUT, "Kafka acknowledgement wait")
    linger_ms: NonNegativeInt = env("SEGWATCH_INGEST_LINGER_MS", DEFAULT_LINGER_MS, "producer linger (ms)")
    header_timeout: Seconds = env("SEGWATCH_INGEST_HEADER_TIMEOUT", DEFAULT_HEADER_TIMEOUT, "request head time")
    body_timeout: Seconds = env("SEGWATCH_INGEST_BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT, "request body time")
    sources: Annotated[frozenset[str] | None, NoDecode, BeforeValidator(_sources)] = env(
        SOURCES, None, "known sources, comma-separated (the `source` label)"
    )

    @property
    def config(self) -> IngestConfig:
        """The service's IngestConfig (refuses to start without a token unless anonymous is allowed)."""
        try:
            return IngestConfig(
                tokens=self.tokens,
                allow_anonymous=self.allow_anonymous,
                max_bytes=self.max_bytes,
                max_events=self.max_events,
                ack_timeout=self.ack_timeout,
                linger_ms=self.linger_ms,
                header_timeout=self.header_timeout,
                body_timeout=self.body_timeout,
                sources=self.sources,
            )
        except InputError as exc:
            raise SettingsError([(exc.field, exc.reason)]) from None


class IngestSettings(KafkaPart, LoggingPart, NamespacePart, EventsPart, IngestPart):
    """Everything `segwatch ingest serve` reads from the environment, validated once at start."""

    @model_validator(mode="after")
    def _refuse_open_api(self) -> IngestSettings:
        try:
            _ = self.config
        except SettingsError as exc:
            raise EnvError(exc.field, exc.reason) from None
        return self
