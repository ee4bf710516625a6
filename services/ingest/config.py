"""The ingest service's settings, from the environment. Mistakes are InputErrors naming the variable.

    SEGWATCH_INGEST_TOKENS           bearer tokens, comma-separated
    SEGWATCH_INGEST_TOKENS_FILE      a file of bearer tokens, one per line (blank lines and # comments ignored)
    SEGWATCH_INGEST_ALLOW_ANONYMOUS  1: start without any token (no authentication). Without tokens and
                                     without this the service refuses to start.
    SEGWATCH_INGEST_MAX_BYTES        largest request body accepted (default 8 MiB; larger → 413)
    SEGWATCH_INGEST_MAX_EVENTS       most events in one NDJSON batch (default 10000; more → 413)
    SEGWATCH_INGEST_PORT             port of `segwatch ingest serve` (default 8701)
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

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from segwatch.envvars import positive_int
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


def _non_negative_int(env: Mapping[str, str], var: str, default: int) -> int:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise InputError(var, f"must be a whole number of milliseconds (0 or more), got {raw!r}")
    return int(raw)


def _positive_float(env: Mapping[str, str], var: str, default: float) -> float:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(var, f"must be a number of seconds, got {raw!r}") from None
    if not 0 < value < math.inf:  # also refuses nan
        raise InputError(var, f"must be a finite number more than 0, got {raw}")
    return value


def _tokens(env: Mapping[str, str]) -> tuple[bytes, ...]:
    tokens = [t.strip() for t in env.get(TOKENS, "").split(",") if t.strip()]
    path = env.get(TOKENS_FILE, "").strip()
    if path:
        try:
            lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InputError(TOKENS_FILE, f"cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise InputError(TOKENS_FILE, f"{path} is not UTF-8 text") from None
        tokens += [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    for token in tokens:
        if any(ch.isspace() for ch in token):
            raise InputError(TOKENS if token in env.get(TOKENS, "") else TOKENS_FILE, "a token contains white space")
    return tuple(dict.fromkeys(t.encode() for t in tokens))


def tokens_from_env(env: Mapping[str, str]) -> tuple[bytes, ...]:
    """The bearer tokens of SEGWATCH_INGEST_TOKENS and SEGWATCH_INGEST_TOKENS_FILE (also the what-if API's)."""
    return _tokens(env)


def _sources(env: Mapping[str, str]) -> frozenset[str] | None:
    raw = env.get(SOURCES)
    if raw is None or not raw.strip():
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    for name in names:
        if len(name) > 64:
            raise InputError(SOURCES, f"a source is 1 to 64 characters, got {name[:20]!r}... ({len(name)})")
        if name == OTHER_SOURCE:
            raise InputError(SOURCES, f"{OTHER_SOURCE!r} is the label of the sources not listed; do not list it")
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
        env = os.environ if env is None else env
        anonymous_raw = env.get(ALLOW_ANONYMOUS, "").strip().lower()
        if anonymous_raw not in ("", "0", "1", "true", "false", "yes", "no"):
            raise InputError(ALLOW_ANONYMOUS, f"must be 1 or 0, got {anonymous_raw!r}")
        return cls(
            tokens=_tokens(env),
            allow_anonymous=anonymous_raw in ("1", "true", "yes"),
            max_bytes=positive_int(env, "SEGWATCH_INGEST_MAX_BYTES", DEFAULT_MAX_BYTES),
            max_events=positive_int(env, "SEGWATCH_INGEST_MAX_EVENTS", DEFAULT_MAX_EVENTS),
            ack_timeout=_positive_float(env, "SEGWATCH_INGEST_ACK_TIMEOUT", DEFAULT_ACK_TIMEOUT),
            linger_ms=_non_negative_int(env, "SEGWATCH_INGEST_LINGER_MS", DEFAULT_LINGER_MS),
            header_timeout=_positive_float(env, "SEGWATCH_INGEST_HEADER_TIMEOUT", DEFAULT_HEADER_TIMEOUT),
            body_timeout=_positive_float(env, "SEGWATCH_INGEST_BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT),
            sources=_sources(env),
        )


def port_from_env(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    port = positive_int(env, "SEGWATCH_INGEST_PORT", DEFAULT_PORT)
    if port > 65535:
        raise InputError("SEGWATCH_INGEST_PORT", f"must be a port number (1-65535), got {port}")
    return port
