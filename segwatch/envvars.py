"""Reading settings from the environment, with errors that name the variable."""

from __future__ import annotations

from collections.abc import Mapping

from segwatch.errors import InputError


def positive_int(env: Mapping[str, str], var: str, default: int) -> int:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(var, f"must be a whole number, got {raw!r}") from None
    if value < 1:
        raise InputError(var, f"must be at least 1, got {value}")
    return value
