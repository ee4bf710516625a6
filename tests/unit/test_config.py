"""KafkaSettings: environment to aiokafka and Faust connection settings. No broker needed."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from aiokafka.client import AIOKafkaClient
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from segwatch.config import DEFAULT_BOOTSTRAP, KafkaSettings
from segwatch.errors import InputError

# A throwaway self-signed EC certificate and its key (CN=segwatch-test-ca, valid until 2126), test only.
CERT_PEM = """\
-----BEGIN CERTIFICATE-----
MIIBjTCCATOgAwIBAgIUQBA2Cg679VRmXh57DNJGrCALvggwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQc2Vnd2F0Y2gtdGVzdC1jYTAgFw0yNjExMjEwNDE2NTVaGA8y
MTI2MTAyODA0MTY1NVowGzEZMBcGA1UEAwwQc2Vnd2F0Y2gtdGVzdC1jYTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABJjhTRAUSSzhKM3UG9+2RMlvD72F3ELIflVe
B4448l415bIfMEd3zh1aMEQdfGmRbo2twbGXLhjBtZzXTj6BX5WjUzBRMB0GA1Ud
DgQWBBRGKb0YTU2BvAF/cbGah+GKX6HdTDAfBgNVHSMEGDAWgBRGKb0YTU2BvAF/
cbGah+GKX6HdTDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIGe5
2eRxy02Du3AOvr1BlJxUHvxafbryRij7KBub/PpGAiEAgIIzrWplEZhzVmTgjI+9
S1SPcgZkNJgGl+vOMAzK+X0=
-----END CERTIFICATE-----
"""
KEY_PEM = """\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg8bFXBON8iLzmJt8M
1/xkJD+HUzYHK+ezWzFlphSZ/uGhRANCAASY4U0QFEks4SjN1BvftkTJbw+9hdxC
yH5VXgeOOPJeNeWyHzBHd84dWjBEHXxpkW6NrcGxly4YwbWc104+gV+V
-----END PRIVATE KEY-----
"""


@pytest.fixture
def pem(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "ca.pem").write_text(CERT_PEM)
    (tmp_path / "client.pem").write_text(CERT_PEM)
    (tmp_path / "client.key").write_text(KEY_PEM)
    return {name: str(tmp_path / name) for name in ("ca.pem", "client.pem", "client.key")}


def _error(env: dict[str, str]) -> InputError:
    with pytest.raises(InputError) as caught:
        KafkaSettings.from_env(env)
    return caught.value


def test_defaults_are_the_local_broker_in_plaintext() -> None:
    settings = KafkaSettings.from_env({})
    assert settings.bootstrap == (DEFAULT_BOOTSTRAP,) == ("127.0.0.1:19092",)
    assert settings.aiokafka_kwargs() == {"bootstrap_servers": "127.0.0.1:19092", "security_protocol": "PLAINTEXT"}
    assert settings.faust_kwargs() == {"broker": "kafka://127.0.0.1:19092"}
    assert settings.ssl_context() is None


def test_bootstrap_lists_and_spellings() -> None:
    settings = KafkaSettings.from_env({"KAFKA_BOOTSTRAP": " k1.example:9092, kafka://k2.example:9093;k3:9094 "})
    assert settings.aiokafka_kwargs()["bootstrap_servers"] == "k1.example:9092,k2.example:9093,k3:9094"
    assert settings.faust_kwargs()["broker"] == "kafka://k1.example:9092;k2.example:9093;k3:9094"


def test_segwatch_kafka_bootstrap_is_the_fallback() -> None:
    assert KafkaSettings.from_env({"SEGWATCH_KAFKA_BOOTSTRAP": "b:1"}).bootstrap == ("b:1",)
    both = {"KAFKA_BOOTSTRAP": "a:1", "SEGWATCH_KAFKA_BOOTSTRAP": "b:1"}
    assert KafkaSettings.from_env(both).bootstrap == ("a:1",)


@pytest.mark.parametrize("raw", ["localhost", "localhost:", ":9092", "host:port", "host:70000", " , "])
def test_bad_bootstrap_names_the_variable(raw: str) -> None:
    assert _error({"KAFKA_BOOTSTRAP": raw}).field == "KAFKA_BOOTSTRAP"
    assert _error({"SEGWATCH_KAFKA_BOOTSTRAP": raw}).field == "SEGWATCH_KAFKA_BOOTSTRAP"


def test_unknown_security_protocol_is_rejected_by_name() -> None:
    error = _error({"KAFKA_SECURITY_PROTOCOL": "TLS"})
    assert error.field == "KAFKA_SECURITY_PROTOCOL"
    assert "PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL" in error.reason and "'TLS'" in error.reason


@pytest.mark.parametrize("mechanism", ["GSSAPI", "OAUTHBEARER", "SCRAM-SHA-1", "md5"])
def test_unknown_sasl_mechanism_is_rejected_by_name(mechanism: str) -> None:
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": mechanism,
        "KAFKA_SASL_USERNAME": "u",
        "KAFKA_SASL_PASSWORD": "p",
    }
    error = _error(env)
    assert error.field == "KAFKA_SASL_MECHANISM"
    assert "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512" in error.reason


async def test_sasl_plaintext_scram() -> None:
    env = {
        "KAFKA_BOOTSTRAP": "kafka.internal:9092",
        "KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
        "KAFKA_SASL_MECHANISM": "scram-sha-512",
        "KAFKA_SASL_USERNAME": "segwatch",
        "KAFKA_SASL_PASSWORD": "s3cret",
    }
    settings = KafkaSettings.from_env(env)
    kwargs = settings.aiokafka_kwargs()
    assert kwargs == {
        "bootstrap_servers": "kafka.internal:9092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "segwatch",
        "sasl_plain_password": "s3cret",
    }
    AIOKafkaClient(**kwargs)  # aiokafka's own validation of the combination (no connection is made)

    credentials = settings.faust_kwargs()["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials_to_aiokafka_auth(credentials) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "segwatch",
        "sasl_plain_password": "s3cret",
        "ssl_context": None,
    }
    assert "s3cret" not in repr(settings)


async def test_sasl_ssl_plain_with_a_ca_file(pem: dict[str, str]) -> None:
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_USERNAME": "segwatch",
        "KAFKA_SASL_PASSWORD": "pw",
        "KAFKA_SSL_CAFILE": pem["ca.pem"],
    }
    settings = KafkaSettings.from_env(env)
    assert settings.sasl_mechanism == "PLAIN"  # the default with SASL
    kwargs = settings.aiokafka_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "PLAIN"
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert any(ca["subject"] == ((("commonName", "segwatch-test-ca"),),) for ca in context.get_ca_certs())
    AIOKafkaClient(**kwargs)

    credentials = settings.faust_kwargs()["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    auth = credentials_to_aiokafka_auth(credentials)
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "PLAIN"
    assert isinstance(auth["ssl_context"], ssl.SSLContext)


async def test_mutual_tls(pem: dict[str, str]) -> None:
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CAFILE": pem["ca.pem"],
        "KAFKA_SSL_CERTFILE": pem["client.pem"],
        "KAFKA_SSL_KEYFILE": pem["client.key"],
    }
    settings = KafkaSettings.from_env(env)
    kwargs = settings.aiokafka_kwargs()
    assert set(kwargs) == {"bootstrap_servers", "security_protocol", "ssl_context"}
    assert kwargs["security_protocol"] == "SSL"
    AIOKafkaClient(**kwargs)

    credentials = settings.faust_kwargs()["broker_credentials"]
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SSL"


def test_ssl_without_files_trusts_the_system_cas() -> None:
    context = KafkaSettings.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL"}).ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_a_key_that_is_not_a_key_is_an_input_error(pem: dict[str, str]) -> None:
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CERTFILE": pem["client.pem"],
        "KAFKA_SSL_KEYFILE": pem["ca.pem"],
    }
    with pytest.raises(InputError) as caught:
        KafkaSettings.from_env(env).ssl_context()
    assert caught.value.field == "KAFKA_SSL_CERTFILE"


def test_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "KAFKA_SASL_USERNAME": "segwatch",
        "KAFKA_SASL_PASSWORD_FILE": str(secret),
    }
    assert KafkaSettings.from_env(env).aiokafka_kwargs()["sasl_plain_password"] == "from-a-file"

    assert _error({**env, "KAFKA_SASL_PASSWORD": "too"}).field == "KAFKA_SASL_PASSWORD_FILE"
    assert _error({**env, "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "absent")}).field == "KAFKA_SASL_PASSWORD_FILE"
    secret.write_text("")
    assert _error(env).field == "KAFKA_SASL_PASSWORD_FILE"


def test_sasl_needs_username_and_password() -> None:
    assert _error({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}).field == "KAFKA_SASL_USERNAME"
    env = {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u"}
    assert _error(env).field == "KAFKA_SASL_PASSWORD"


@pytest.mark.parametrize("var", ["KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"])
def test_sasl_settings_without_sasl_are_a_mistake(var: str) -> None:
    error = _error({"KAFKA_SECURITY_PROTOCOL": "SSL", var: "PLAIN"})
    assert error.field == var and "does not use SASL" in error.reason


def test_tls_files_without_tls_are_a_mistake(pem: dict[str, str]) -> None:
    error = _error({"KAFKA_SSL_CAFILE": pem["ca.pem"]})
    assert error.field == "KAFKA_SSL_CAFILE" and "does not use TLS" in error.reason


def test_missing_tls_files_are_named(tmp_path: Path, pem: dict[str, str]) -> None:
    env = {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(tmp_path / "nope.pem")}
    assert _error(env).field == "KAFKA_SSL_CAFILE"
    env = {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": pem["client.key"]}
    assert _error(env).field == "KAFKA_SSL_KEYFILE"


def test_faust_app_accepts_the_settings() -> None:
    env = {
        "KAFKA_BOOTSTRAP": "a:1,b:2",
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "KAFKA_SASL_USERNAME": "u",
        "KAFKA_SASL_PASSWORD": "p",
    }
    app = faust.App("segwatch-config-test", **KafkaSettings.from_env(env).faust_kwargs())
    assert [str(url) for url in app.conf.broker] == ["kafka://a:1", "kafka://b:2"]
    assert credentials_to_aiokafka_auth(app.conf.broker_credentials)["sasl_mechanism"] == "SCRAM-SHA-256"
