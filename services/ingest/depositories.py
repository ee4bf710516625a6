"""The depository reference file: which segment, depository account and statement line each bank account is.

CSV with a header row (names case-insensitive, order free):

    bank_account,segment,depository,line,currency,location[,instrument][,description]

- bank_account: the account number as the bank writes it in its BAI2 files (03 record).
- segment: 4d2, 30.7 or 4df; depository: segwatch's id of the depository account (the event key);
  line: the funds-side line of that segment (e.g. 7070 for 4d(2) bank cash, 7500 for 30.7 US bank cash).
- currency: the account's ISO 4217 currency; a bank file reporting another currency for it is dead-lettered.
- location: us or non_us; instrument (optional, default cash): see schemas.events.INSTRUMENTS.
- description (optional): free text for people, ignored.

Each bank account appears once. A reference file that cannot be read, or has an invalid row, is unusable
input (InputError naming the file, line and field).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from schemas.events import DepositoryBalance
from segwatch.errors import InputError
from services.ingest.records import error_of

REQUIRED = ("bank_account", "segment", "depository", "line", "currency", "location")
OPTIONAL = ("instrument", "description")


@dataclass(frozen=True, slots=True)
class DepositoryRef:
    bank_account: str
    segment: str
    depository: str
    line: str
    currency: str
    location: str
    instrument: str
    ref_line: int  # the line of the reference file, for messages


def _row(line: str) -> list[str]:
    return [value.strip() for value in next(csv.reader([line]))]


def load_depositories(text: str, where: str) -> dict[str, DepositoryRef]:
    """bank account number → its reference row. Raises InputError on any problem."""
    refs: dict[str, DepositoryRef] = {}
    header: list[str] | None = None
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = _row(line)
        except csv.Error as exc:
            raise InputError(f"{where}:{number}", f"not a CSV row: {exc}") from None
        if header is None:
            header = [name.lower() for name in values]
            missing = [name for name in REQUIRED if name not in header]
            if missing:
                raise InputError(
                    f"{where}:{number}",
                    f"missing column(s) {', '.join(missing)}; expected {','.join(REQUIRED)}[,instrument]",
                )
            unknown = [name for name in header if name not in REQUIRED and name not in OPTIONAL]
            if unknown:
                raise InputError(f"{where}:{number}", f"unknown column(s) {', '.join(unknown)}")
            continue
        if len(values) != len(header):
            raise InputError(f"{where}:{number}", f"expected {len(header)} fields, got {len(values)}")
        row = dict(zip(header, values, strict=True))
        account = row["bank_account"]
        if not account:
            raise InputError(f"{where}:{number}: bank_account", "is empty")
        if account in refs:
            raise InputError(
                f"{where}:{number}: bank_account",
                f"{account} is already mapped on line {refs[account].ref_line}; each bank account appears once",
            )
        instrument = row.get("instrument") or "cash"
        try:
            # The event schema checks segment, line (a depository line of that segment), currency, location
            # and instrument: a reference row is a depository balance without an amount.
            probe = DepositoryBalance.model_validate(
                {
                    "event_id": "reference",
                    "source": "reference",
                    "as_of": datetime(2000, 1, 1, tzinfo=UTC),
                    "segment": row["segment"],
                    "depository": row["depository"],
                    "line": row["line"],
                    "currency": row["currency"],
                    "location": row["location"],
                    "instrument": instrument,
                    "amount": "0",
                }
            )
        except ValidationError as exc:
            err = error_of(exc)
            raise InputError(f"{where}:{number}: {err.field}", err.reason) from None
        refs[account] = DepositoryRef(
            bank_account=account,
            segment=probe.segment,
            depository=probe.depository,
            line=probe.line,
            currency=probe.currency,
            location=probe.location,
            instrument=probe.instrument,
            ref_line=number,
        )
    if header is None:
        raise InputError(where, "empty reference file: expected a header row " + ",".join(REQUIRED))
    return refs
