"""CSV ledger extracts: one customer account's balance in one segment and currency per row.

The first non-blank line is the header; column order is free, names are case-insensitive:

    segment,account,currency,as_of,cash,securities,unrealized,long_options,short_options[,offset_securities][,event_id]

- segment: 4d2, 30.7 or 4df; currency: ISO 4217; as_of: ISO 8601 with a UTC offset (2026-11-20T17:00:00-05:00
  or ...Z); amounts: decimal strings with at most two decimal places (no thousands separators).
- offset_securities (optional, default 0): haircut value of the customer's securities that may offset its
  deficit (Reg. 1.32(b)).
- event_id (optional): when absent or empty, derived from the file's name, the source and the row's text,
  so re-ingesting the same file gives the same ids (harmless downstream).

A header that lacks a required column or names an unknown one makes the file unusable (InputError).
A row that cannot be read or validated is a Bad record with its line, field and reason.
"""

from __future__ import annotations

import csv
from typing import Any

from pydantic import ValidationError

from schemas.events import AccountBalance
from segwatch.errors import InputError
from services.ingest.records import Bad, Parse, Parsed, derived_id, error_of

REQUIRED = (
    "segment",
    "account",
    "currency",
    "as_of",
    "cash",
    "securities",
    "unrealized",
    "long_options",
    "short_options",
)
OPTIONAL = ("offset_securities", "event_id")
DEFAULT_SOURCE = "ledger-csv"


def _row(line: str) -> list[str]:
    return [value.strip() for value in next(csv.reader([line]))]


def parse_ledger_csv(text: str, *, where: str, file_name: str, source: str | None = None) -> Parse:
    """Read a ledger extract. `where` names the file in errors; `file_name` goes into derived event ids."""
    source = source or DEFAULT_SOURCE
    out = Parse("csv")
    lines = text.removeprefix("\ufeff").splitlines()
    header: list[str] | None = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if header is None:
            try:
                header = [name.lower() for name in _row(line)]
            except csv.Error as exc:  # e.g. a field over the csv module's 128 KB limit
                raise InputError(f"{where}:{number}", f"the header row is not CSV: {exc}") from None
            _check_header(header, f"{where}:{number}")
            continue
        try:
            values = _row(line)
        except csv.Error as exc:
            out.bad.append(Bad(number, "(record)", f"not a CSV row: {exc}", line))
            continue
        if len(values) != len(header):
            out.bad.append(Bad(number, "(record)", f"expected {len(header)} fields, got {len(values)}", line))
            continue
        row = dict(zip(header, values, strict=True))
        data: dict[str, Any] = {"type": "account_balance", "source": source}
        for name in REQUIRED:
            data[name] = row[name]
        if row.get("offset_securities"):
            data["offset_securities"] = row["offset_securities"]
        data["event_id"] = row.get("event_id") or derived_id("csv", file_name, source, line.strip())
        try:
            out.events.append(Parsed(number, AccountBalance.model_validate(data), line))
        except ValidationError as exc:
            err = error_of(exc)
            out.bad.append(Bad(number, err.field, err.reason, line))
    if header is None:
        raise InputError(where, "empty CSV file: expected a header row " + ",".join(REQUIRED))
    return out


def _check_header(header: list[str], where: str) -> None:
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise InputError(
            where, f"missing column(s) {', '.join(missing)}; expected {','.join(REQUIRED)}[,{'][,'.join(OPTIONAL)}]"
        )
    unknown = [name for name in header if name not in REQUIRED and name not in OPTIONAL]
    if unknown:
        raise InputError(where, f"unknown column(s) {', '.join(unknown)}")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise InputError(where, f"column(s) given twice: {', '.join(duplicated)}")
