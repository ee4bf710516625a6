"""How segwatch connects to Kafka: one `KafkaSettings`, read from the environment.

    KAFKA_BOOTSTRAP            host:port[,host:port...] (also SEGWATCH_KAFKA_BOOTSTRAP); default 127.0.0.1:19092
    KAFKA_SECURITY_PROTOCOL    PLAINTEXT (default), SSL, SASL_PLAINTEXT, SASL_SSL
    KAFKA_SASL_MECHANISM       PLAIN (default with SASL), SCRAM-SHA-256, SCRAM-SHA-512
    KAFKA_SASL_USERNAME        required with SASL
    KAFKA_SASL_PASSWORD        required with SASL, or KAFKA_SASL_PASSWORD_FILE (first line of the file)
    KAFKA_SSL_CAFILE           PEM bundle of CAs to trust (default: the system's)
    KAFKA_SSL_CERTFILE         client certificate (PEM) for mutual TLS
    KAFKA_SSL_KEYFILE          its private key (PEM), if not inside KAFKA_SSL_CERTFILE
    KAFKA_SSL_KEY_PASSWORD     the key's passphrase, if it has one

The same settings feed aiokafka clients (`aiokafka_kwargs`) and Faust apps (`faust_kwargs`).
The variables are read by `KafkaPart`, the Kafka part of every service's settings model (segwatch/environment.py);
mistakes are `InputError`s naming the variable at fault.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import model_validator

from segwatch.environment import EnvError, EnvSettings, Text, env, load
from segwatch.errors import InputError

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_SASL = ("SASL_PLAINTEXT", "SASL_SSL")
_TLS = ("SSL", "SASL_SSL")


def _parse_bootstrap(raw: str, var: str) -> tuple[str, ...]:
    servers: list[str] = []
    for item in raw.replace(";", ",").split(","):
        server = item.strip()
        if not server:
            continue
        if "://" in server:  # tolerate kafka://host:port, as Faust spells it
            server = server.split("://", 1)[1]
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise InputError(var, f"expected host:port[,host:port...], got {raw!r}")
        servers.append(f"{host}:{int(port)}")
    if not servers:
        raise InputError(var, "is empty; expected host:port[,host:port...]")
    return tuple(servers)


@dataclass(frozen=True)
class KafkaSettings:
    """Where the Kafka cluster is and how to authenticate to it."""

    bootstrap: tuple[str, ...] = (DEFAULT_BOOTSTRAP,)
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_key_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaSettings:
        """The KAFKA_* variables of `env` (default os.environ), read by `KafkaPart`."""
        return load(KafkaPart, env).kafka

    @property
    def bootstrap_servers(self) -> str:
        """The aiokafka spelling: host:port,host:port."""
        return ",".join(self.bootstrap)

    @property
    def faust_broker(self) -> str:
        """The Faust spelling: kafka://host:port;host:port."""
        return "kafka://" + ";".join(self.bootstrap)

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in _TLS

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in _SASL

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context (hostname checked, CAs from KAFKA_SSL_CAFILE or the system), or None."""
        if not self.uses_tls:
            return None
        from aiokafka.helpers import create_ssl_context

        try:
            context: ssl.SSLContext = create_ssl_context(
                cafile=self.ssl_cafile,
                certfile=self.ssl_certfile,
                keyfile=self.ssl_keyfile,
                password=self.ssl_key_password,
            )
        except ssl.SSLError as exc:
            var = "KAFKA_SSL_CERTFILE" if self.ssl_certfile else "KAFKA_SSL_CAFILE"
            raise InputError(var, f"cannot load TLS material: {exc}") from None
        return context

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.uses_sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs

    def faust_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for faust.App: `broker` and, when needed, `broker_credentials`."""
        import faust

        kwargs: dict[str, Any] = {"broker": self.faust_broker}
        if self.uses_sasl:
            kwargs["broker_credentials"] = faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                ssl_context=self.ssl_context(),  # None with SASL_PLAINTEXT, which Faust reads as no TLS
                mechanism=self.sasl_mechanism,
            )
        elif self.uses_tls:
            kwargs["broker_credentials"] = faust.SSLCredentials(self.ssl_context())
        return kwargs


def _choice(var: str, raw: str | None, choices: tuple[str, ...], default: str | None) -> str | None:
    if raw is None:
        return default
    value = raw.upper().replace("_", "-") if var == "KAFKA_SASL_MECHANISM" else raw.upper()
    if value not in choices:
        raise EnvError(var, f"must be one of {', '.join(choices)}; got {raw!r}")
    return value


def _file(var: str, raw: str | None) -> str | None:
    if raw is None:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise EnvError(var, f"no such file: {raw}")
    return str(path)


class KafkaPart(EnvSettings):
    """The Kafka part of every service's settings: the KAFKA_* variables, checked together (`kafka`)."""

    SECRET = frozenset({"KAFKA_SASL_PASSWORD", "KAFKA_SSL_KEY_PASSWORD"})

    kafka_bootstrap: Text | None = env("KAFKA_BOOTSTRAP", None, f"host:port[,host:port...]; {DEFAULT_BOOTSTRAP}")
    segwatch_kafka_bootstrap: Text | None = env(
        "SEGWATCH_KAFKA_BOOTSTRAP", None, "the same, read when KAFKA_BOOTSTRAP is unset"
    )
    kafka_security_protocol: Text | None = env("KAFKA_SECURITY_PROTOCOL", None, ", ".join(SECURITY_PROTOCOLS))
    kafka_sasl_mechanism: Text | None = env("KAFKA_SASL_MECHANISM", None, ", ".join(SASL_MECHANISMS))
    kafka_sasl_username: str | None = env("KAFKA_SASL_USERNAME", None, "required with SASL")
    kafka_sasl_password: str | None = env("KAFKA_SASL_PASSWORD", None, "required with SASL (or the file)", repr=False)
    kafka_sasl_password_file: Text | None = env("KAFKA_SASL_PASSWORD_FILE", None, "the password's file")
    kafka_ssl_cafile: Text | None = env("KAFKA_SSL_CAFILE", None, "PEM bundle of CAs to trust")
    kafka_ssl_certfile: Text | None = env("KAFKA_SSL_CERTFILE", None, "client certificate (PEM)")
    kafka_ssl_keyfile: Text | None = env("KAFKA_SSL_KEYFILE", None, "its private key (PEM)")
    kafka_ssl_key_password: str | None = env("KAFKA_SSL_KEY_PASSWORD", None, "the key's passphrase", repr=False)

    @model_validator(mode="after")
    def _check(self) -> KafkaPart:
        _ = self.kafka  # every check, once, at load: a mistake names its variable
        return self

    def _sasl_password(self) -> str | None:
        """KAFKA_SASL_PASSWORD, or the first line of KAFKA_SASL_PASSWORD_FILE (never both)."""
        password = self.kafka_sasl_password or None
        password_file = self.kafka_sasl_password_file
        if password is not None and password_file is not None:
            raise EnvError("KAFKA_SASL_PASSWORD_FILE", "set either KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE")
        if password_file is None:
            return password
        try:
            lines = Path(password_file).expanduser().read_text().splitlines()
        except OSError as exc:
            raise EnvError("KAFKA_SASL_PASSWORD_FILE", f"cannot read {password_file}: {exc.strerror}") from None
        if not lines or not lines[0]:
            raise EnvError("KAFKA_SASL_PASSWORD_FILE", f"{password_file} is empty")
        return lines[0]

    def _check_sasl(self, protocol: str, sasl: bool, username: str | None, password: str | None) -> None:
        """SASL needs a user and a password; without SASL no SASL variable may be set (a mistake, not a no-op)."""
        if sasl:
            if username is None:
                raise EnvError("KAFKA_SASL_USERNAME", f"is required with KAFKA_SECURITY_PROTOCOL={protocol}")
            if password is None:
                raise EnvError("KAFKA_SASL_PASSWORD", f"(or KAFKA_SASL_PASSWORD_FILE) is required with {protocol}")
            return
        for var, value in (
            ("KAFKA_SASL_MECHANISM", self.kafka_sasl_mechanism),
            ("KAFKA_SASL_USERNAME", self.kafka_sasl_username),
            ("KAFKA_SASL_PASSWORD", self.kafka_sasl_password),
            ("KAFKA_SASL_PASSWORD_FILE", self.kafka_sasl_password_file),
        ):
            if value and value.strip():
                raise EnvError(var, f"is set but KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL")

    @cached_property
    def kafka(self) -> KafkaSettings:
        """The settings the Kafka clients take."""
        bootstrap_var = "KAFKA_BOOTSTRAP" if self.kafka_bootstrap else "SEGWATCH_KAFKA_BOOTSTRAP"
        raw_bootstrap = self.kafka_bootstrap or self.segwatch_kafka_bootstrap or DEFAULT_BOOTSTRAP
        try:
            bootstrap = _parse_bootstrap(raw_bootstrap, bootstrap_var)
        except InputError as exc:
            raise EnvError(exc.field, exc.reason) from None

        protocol = _choice("KAFKA_SECURITY_PROTOCOL", self.kafka_security_protocol, SECURITY_PROTOCOLS, "PLAINTEXT")
        assert protocol is not None
        sasl = protocol in _SASL
        tls = protocol in _TLS

        mechanism = _choice(
            "KAFKA_SASL_MECHANISM", self.kafka_sasl_mechanism, SASL_MECHANISMS, "PLAIN" if sasl else None
        )
        username = self.kafka_sasl_username or None
        password = self._sasl_password()
        self._check_sasl(protocol, sasl, username, password)

        cafile = _file("KAFKA_SSL_CAFILE", self.kafka_ssl_cafile)
        certfile = _file("KAFKA_SSL_CERTFILE", self.kafka_ssl_certfile)
        keyfile = _file("KAFKA_SSL_KEYFILE", self.kafka_ssl_keyfile)
        key_password = self.kafka_ssl_key_password or None
        if tls:
            if keyfile is not None and certfile is None:
                raise EnvError("KAFKA_SSL_KEYFILE", "needs KAFKA_SSL_CERTFILE, the certificate of that key")
        else:
            for var, value in (
                ("KAFKA_SSL_CAFILE", cafile),
                ("KAFKA_SSL_CERTFILE", certfile),
                ("KAFKA_SSL_KEYFILE", keyfile),
                ("KAFKA_SSL_KEY_PASSWORD", key_password),
            ):
                if value is not None and value.strip():
                    raise EnvError(var, f"is set but KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS")

        return KafkaSettings(
            bootstrap=bootstrap,
            security_protocol=protocol,
            sasl_mechanism=mechanism,
            sasl_username=username,
            sasl_password=password,
            ssl_cafile=cafile,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
            ssl_key_password=key_password,
        )
