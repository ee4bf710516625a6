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
Mistakes are `InputError`s naming the variable at fault.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def _choice(env: Mapping[str, str], var: str, choices: tuple[str, ...], default: str | None) -> str | None:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    value = raw.upper().replace("_", "-") if var == "KAFKA_SASL_MECHANISM" else raw.upper()
    if value not in choices:
        raise InputError(var, f"must be one of {', '.join(choices)}; got {raw!r}")
    return value


def _file(env: Mapping[str, str], var: str) -> str | None:
    raw = env.get(var, "").strip()
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise InputError(var, f"no such file: {raw}")
    return str(path)


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
        env = os.environ if env is None else env
        bootstrap_var = "KAFKA_BOOTSTRAP" if env.get("KAFKA_BOOTSTRAP", "").strip() else "SEGWATCH_KAFKA_BOOTSTRAP"
        raw_bootstrap = env.get(bootstrap_var, "").strip() or DEFAULT_BOOTSTRAP
        bootstrap = _parse_bootstrap(raw_bootstrap, bootstrap_var)

        protocol = _choice(env, "KAFKA_SECURITY_PROTOCOL", SECURITY_PROTOCOLS, "PLAINTEXT")
        assert protocol is not None
        sasl = protocol in _SASL
        tls = protocol in _TLS

        mechanism = _choice(env, "KAFKA_SASL_MECHANISM", SASL_MECHANISMS, "PLAIN" if sasl else None)
        username = env.get("KAFKA_SASL_USERNAME") or None
        password = env.get("KAFKA_SASL_PASSWORD") or None
        password_file = env.get("KAFKA_SASL_PASSWORD_FILE", "").strip() or None
        if password is not None and password_file is not None:
            raise InputError("KAFKA_SASL_PASSWORD_FILE", "set either KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE")
        if password_file is not None:
            try:
                lines = Path(password_file).expanduser().read_text().splitlines()
            except OSError as exc:
                raise InputError("KAFKA_SASL_PASSWORD_FILE", f"cannot read {password_file}: {exc.strerror}") from None
            password = lines[0] if lines and lines[0] else None
            if password is None:
                raise InputError("KAFKA_SASL_PASSWORD_FILE", f"{password_file} is empty")
        if sasl:
            if username is None:
                raise InputError("KAFKA_SASL_USERNAME", f"is required with KAFKA_SECURITY_PROTOCOL={protocol}")
            if password is None:
                raise InputError("KAFKA_SASL_PASSWORD", f"(or KAFKA_SASL_PASSWORD_FILE) is required with {protocol}")
        else:
            for var in (
                "KAFKA_SASL_MECHANISM",
                "KAFKA_SASL_USERNAME",
                "KAFKA_SASL_PASSWORD",
                "KAFKA_SASL_PASSWORD_FILE",
            ):
                if env.get(var, "").strip():
                    raise InputError(var, f"is set but KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL")

        cafile = _file(env, "KAFKA_SSL_CAFILE")
        certfile = _file(env, "KAFKA_SSL_CERTFILE")
        keyfile = _file(env, "KAFKA_SSL_KEYFILE")
        key_password = env.get("KAFKA_SSL_KEY_PASSWORD") or None
        if tls:
            if keyfile is not None and certfile is None:
                raise InputError("KAFKA_SSL_KEYFILE", "needs KAFKA_SSL_CERTFILE, the certificate of that key")
        else:
            for var in ("KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE", "KAFKA_SSL_KEY_PASSWORD"):
                if env.get(var, "").strip():
                    raise InputError(var, f"is set but KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS")

        return cls(
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
