"""Turn pydantic's validation errors into segwatch's `field: reason` form."""

from __future__ import annotations

from functools import cache

from pydantic import ValidationError

from schemas.events import EVENT_MODELS
from segwatch.errors import InputError


def _field(loc: tuple[int | str, ...]) -> str:
    # Drop the discriminator tag pydantic inserts for unions ("account_balance.cash" -> "cash").
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in _tags():
        parts = parts[1:]
    return ".".join(parts) or "(record)"


@cache
def _tags() -> frozenset[str]:
    return frozenset(str(model.model_fields["type"].default) for model in EVENT_MODELS)


def input_errors(exc: ValidationError) -> list[InputError]:
    out = []
    for err in exc.errors(include_url=False):
        field = _field(tuple(err["loc"]))
        reason = str(err["msg"])
        if err["type"] == "missing":
            reason = "required field is missing"
        elif err["type"] == "extra_forbidden":
            reason = "unknown field"
        elif err["type"] == "union_tag_invalid":
            field = "type"
            reason = (
                f"unknown event type {err.get('input', {}).get('type')!r}"
                if isinstance(err.get("input"), dict)
                else reason
            )
        reason = reason.removeprefix("Value error, ")
        if field in _tags() or field == "(record)":
            # A model-level check names its field as "field: reason".
            named, sep, rest = reason.partition(": ")
            if sep and named.isidentifier():
                field, reason = named, rest
        out.append(InputError(field, reason))
    return out


def first_error(exc: ValidationError) -> InputError:
    return input_errors(exc)[0]
