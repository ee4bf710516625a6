"""Turn pydantic's validation errors into segwatch's `field: reason` form."""

from __future__ import annotations

from pydantic import ValidationError

from segwatch.errors import InputError


def _field(loc: tuple[int | str, ...]) -> str:
    # Drop the discriminator tag pydantic inserts for unions ("account_balance.cash" -> "cash").
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in _TAGS:
        parts = parts[1:]
    return ".".join(parts) or "(record)"


_TAGS = {
    "account_balance", "depository_balance", "management_target", "foreign_requirement", "fx_rate", "disbursement",
}


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
            reason = f"unknown event type {err.get('input', {}).get('type')!r}" if isinstance(
                err.get("input"), dict) else reason
        reason = reason.removeprefix("Value error, ")
        if field in _TAGS or field == "(record)":
            # A model-level check names its field as "field: reason".
            named, sep, rest = reason.partition(": ")
            if sep and named.isidentifier():
                field, reason = named, rest
        out.append(InputError(field, reason))
    return out


def first_error(exc: ValidationError) -> InputError:
    return input_errors(exc)[0]
