"""The settings models (segwatch/environment.py): one rule per kind of value, the variable named in every error,
each service's model checked once at start, and a wrong value a one-line exit without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, ClassVar

import pytest

from segwatch.config import KafkaPart
from segwatch.environment import (
    EnvSettings,
    Flag,
    ListenPort,
    NonNegativeSeconds,
    Port,
    Seconds,
    SettingsError,
    WholeSeconds,
    env,
    load,
)
from services.alerter.settings import AlerterSettings
from services.calculator.settings import CalculatorSettings
from services.ingest.config import IngestSettings


class Rules(EnvSettings):
    SECRET: ClassVar[frozenset[str]] = frozenset({"T_SECRET", "T_SECRET_PORT"})

    port: Port = env("T_PORT", 9000, "a port to connect to")
    listen: ListenPort = env("T_LISTEN", 8000, "a port to listen on")
    seconds: Seconds = env("T_SECONDS", 1.5, "a duration")
    margin: NonNegativeSeconds = env("T_MARGIN", 0.0, "a margin")
    whole: WholeSeconds = env("T_WHOLE", 60, "whole seconds")
    flag: Flag = env("T_FLAG", False, "a switch")
    secret: int = env("T_SECRET", 0, "a number never repeated in an error")
    secret_port: Port = env("T_SECRET_PORT", 1, "a port never repeated in an error")


def refused(var: str, raw: str) -> SettingsError:
    with pytest.raises(SettingsError) as info:
        load(Rules, {var: raw})
    assert info.value.field == var
    assert str(info.value).startswith(f"{var}: ")
    return info.value


def test_unset_or_blank_takes_the_default() -> None:
    assert load(Rules, {}) == load(Rules, {"T_PORT": "", "T_SECONDS": "   ", "T_FLAG": "\t"})
    assert load(Rules, {}).port == 9000 and load(Rules, {}).seconds == 1.5


@pytest.mark.parametrize(("raw", "value"), [("1", 1), ("65535", 65535), (" 8080 ", 8080)])
def test_a_port_is_1_to_65535(raw: str, value: int) -> None:
    assert load(Rules, {"T_PORT": raw}).port == value


@pytest.mark.parametrize("raw", ["0", "65536", "-1", "80.0", "http", "1e3"])
def test_a_port_outside_1_to_65535_is_refused_naming_the_variable(raw: str) -> None:
    refused("T_PORT", raw)


def test_a_listening_port_also_takes_0_any_free_port() -> None:
    assert load(Rules, {"T_LISTEN": "0"}).listen == 0
    assert "0-65535" in str(refused("T_LISTEN", "65536"))


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "Infinity", "-1", "0", "-0.0", "soon", ""])
def test_a_duration_refuses_nan_inf_zero_and_negatives(raw: str) -> None:
    if raw == "":
        assert load(Rules, {"T_SECONDS": raw}).seconds == 1.5  # blank: the default, not an error
        return
    refused("T_SECONDS", raw)


def test_a_duration_is_a_finite_number_of_seconds() -> None:
    assert load(Rules, {"T_SECONDS": "2.5"}).seconds == 2.5
    assert load(Rules, {"T_SECONDS": "30"}).seconds == 30.0


@pytest.mark.parametrize("raw", ["nan", "inf", "-1"])
def test_a_margin_may_be_0_but_not_nan_inf_or_negative(raw: str) -> None:
    assert load(Rules, {"T_MARGIN": "0"}).margin == 0.0
    refused("T_MARGIN", raw)


@pytest.mark.parametrize("raw", ["0", "1.5", "nan", "x"])
def test_whole_seconds_are_a_whole_number_from_1(raw: str) -> None:
    refused("T_WHOLE", raw)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("y", True),
        ("on", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("n", False),
        ("off", False),
    ],
)
def test_a_switch_is_one_of_the_usual_spellings(raw: str, value: bool) -> None:
    assert load(Rules, {"T_FLAG": raw}).flag is value


@pytest.mark.parametrize("raw", ["2", "maybe", "enabled", "tru"])
def test_any_other_switch_value_is_refused(raw: str) -> None:
    assert raw in str(refused("T_FLAG", raw))


def test_every_wrong_variable_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        load(Rules, {"T_PORT": "0", "T_SECONDS": "nan", "T_FLAG": "maybe"})
    assert {var for var, _ in info.value.problems} == {"T_PORT", "T_SECONDS", "T_FLAG"}
    for var in ("T_PORT", "T_SECONDS", "T_FLAG"):
        assert f"{var}: " in str(info.value)


@pytest.mark.parametrize("var", ["T_SECRET", "T_SECRET_PORT"])
def test_a_secret_is_never_repeated_in_an_error(var: str) -> None:
    error = refused(var, " hunter2")
    assert "hunter2" not in str(error)


def test_a_given_mapping_is_read_instead_of_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_PORT", "1234")
    assert load(Rules).port == 1234
    assert load(Rules, {}).port == 9000
    monkeypatch.setenv("T_PORT", "4321")  # a changed variable is read again, not served from the cache
    assert load(Rules).port == 4321


def test_values_given_by_field_name_win_and_are_checked_naming_the_variable() -> None:
    assert load(Rules, {"T_PORT": "1234"}, port=99).port == 99
    with pytest.raises(SettingsError, match=r"^T_PORT: "):
        load(Rules, {}, port=0)


SERVICE_PORTS: list[tuple[type[EnvSettings], str, dict[str, str], dict[str, Any]]] = [
    (IngestSettings, "SEGWATCH_INGEST_PORT", {"SEGWATCH_INGEST_TOKENS": "t"}, {"port": 8701}),
    (CalculatorSettings, "SEGWATCH_CALCULATOR_PORT", {}, {"web_port": 8702, "web_host": "127.0.0.1"}),
    (AlerterSettings, "SEGWATCH_ALERTER_PORT", {}, {"port": 8703, "host": "127.0.0.1"}),
]


@pytest.mark.parametrize(("model", "var", "base", "defaults"), SERVICE_PORTS)
def test_each_service_keeps_its_defaults_and_the_one_port_rule(
    model: type[EnvSettings], var: str, base: dict[str, str], defaults: dict[str, Any]
) -> None:
    settings = load(model, base)
    assert {name: getattr(settings, name) for name in defaults} == defaults
    assert load(model, {**base, var: "0"}) is not None  # any free port
    for raw in ("65536", "-1", "x"):
        with pytest.raises(SettingsError) as info:
            load(model, {**base, var: raw})
        assert info.value.field == var


def test_the_calculator_settings_give_its_config_fields() -> None:
    fields = load(
        CalculatorSettings,
        {
            "SEGWATCH_BALANCE_PARTITIONS": "8",
            "SEGWATCH_COALESCE_MS": "20",
            "SEGWATCH_CALCULATOR_INSTANCE_ID": " calc-0 ",
        },
    ).config_fields()
    assert (fields["partitions"], fields["coalesce_ms"], fields["instance_id"]) == (8, 20, "calc-0")
    with pytest.raises(SettingsError, match=r"^SEGWATCH_CALCULATOR_BATCH: "):
        load(CalculatorSettings, {"SEGWATCH_CALCULATOR_BATCH": "0"})


def test_kafka_bootstrap_errors_name_the_variable_that_was_read() -> None:
    with pytest.raises(SettingsError, match=r"^SEGWATCH_KAFKA_BOOTSTRAP: "):
        load(KafkaPart, {"SEGWATCH_KAFKA_BOOTSTRAP": "nohost"})
    with pytest.raises(SettingsError, match=r"^KAFKA_BOOTSTRAP: "):
        load(KafkaPart, {"KAFKA_BOOTSTRAP": "h:0", "SEGWATCH_KAFKA_BOOTSTRAP": "h:1"})


def cli(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SEGWATCH_", "KAFKA_"))}
    return subprocess.run(
        [sys.executable, "-m", "segwatch.cli", *args],
        env={**clean, **variables},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "variables", "message"),
    [
        (("alerter", "serve"), {"SEGWATCH_ALERTER_PORT": "http"}, "SEGWATCH_ALERTER_PORT: must be a whole number"),
        (
            ("calculator", "worker"),
            {"SEGWATCH_CALCULATOR_PORT": "99999"},
            "SEGWATCH_CALCULATOR_PORT: must be a TCP port (0-65535), got 99999",
        ),
        (
            ("ingest", "serve"),
            {"SEGWATCH_INGEST_TOKENS": "t", "SEGWATCH_INGEST_ACK_TIMEOUT": "nan"},
            "SEGWATCH_INGEST_ACK_TIMEOUT: must be a finite number of seconds, got 'nan'",
        ),
        (("topics", "list"), {"SEGWATCH_NAMESPACE": "bad name/"}, "SEGWATCH_NAMESPACE: "),
    ],
)
def test_a_wrong_value_stops_the_command_at_start_with_one_line(
    args: tuple[str, ...], variables: dict[str, str], message: str
) -> None:
    done = cli(*args, **variables)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
