"""The depository reference file: which segment, depository account and statement line each bank account is, and
what each depository is (kind, country, acknowledgment letter, capital).

CSV with a header row (names case-insensitive, order free):

    bank_account,segment,depository,line,currency,location[,instrument][,description]
        [,kind,country,acknowledgment_letter[,regulatory_capital_over_1bn]]

- bank_account: the account number as the bank writes it in its BAI2 files (03 record). May be empty on a row
  that only gives a depository's reference data (a DCO, FCM or foreign broker reporting by other means).
- segment: 4d2, 30.7 or 4df; depository: segwatch's id of the depository account (the event key);
  line: the funds-side line of that segment (e.g. 7070 for 4d(2) bank cash, 7500 for 30.7 US bank cash).
- currency: the account's ISO 4217 currency; a bank file reporting another currency for it is dead-lettered.
- location: us or non_us (7500/7540 are US banks, 7520/7560 banks outside the US); instrument (optional,
  default cash): see schemas.events.INSTRUMENTS.
- description (optional): free text for people, ignored.
- Reference data (optional; on a row, kind, country and acknowledgment_letter go together):
  kind: bank, dco, fcm, foreign_broker or foreign_clearing_organization; country: ISO 3166-1 alpha-2 (US, GB);
  acknowledgment_letter: yes/no, whether the letter of Reg. 1.20(d), 30.7(d) or 22.5 is on file;
  regulatory_capital_over_1bn: yes/no, required for a bank outside the US holding 30.7 funds.
  The rows of one depository account (segment, depository) that give reference data must agree. Each becomes
  one `depository_reference` event (`reference_events`) for the settings topic; a depository without
  reference data counts as before and is listed as unclassified.

Each bank account appears once. A reference file that cannot be read, or has an invalid row, is unusable
input (InputError naming the file, line and field): never a traceback.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from schemas.events import DepositoryBalance, DepositoryReference
from segwatch.errors import InputError
from services.ingest.records import derived_id, error_of

REQUIRED = ("bank_account", "segment", "depository", "line", "currency", "location")
REFERENCE = ("kind", "country", "acknowledgment_letter")
OPTIONAL = ("instrument", "description", *REFERENCE, "regulatory_capital_over_1bn")
YES = frozenset({"yes", "y", "true", "1"})
NO = frozenset({"no", "n", "false", "0"})
MAX_LINE = 10_000  # characters: a longer line is not a reference row


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


@dataclass(frozen=True, slots=True)
class ReferenceData:
    """What one depository account is (the fields of a `depository_reference` event)."""

    segment: str
    depository: str
    kind: str
    country: str
    acknowledgment_letter: bool
    regulatory_capital_over_1bn: bool | None
    ref_line: int

    @property
    def facts(self) -> tuple[str, str, bool, bool | None]:
        return (self.kind, self.country, self.acknowledgment_letter, self.regulatory_capital_over_1bn)


@dataclass(slots=True)
class DepositoryFile:
    accounts: dict[str, DepositoryRef] = field(default_factory=dict)  # bank account number → its row
    references: dict[tuple[str, str], ReferenceData] = field(default_factory=dict)  # (segment, depository) →


def _row(line: str) -> list[str]:
    return [value.strip() for value in next(csv.reader([line]))]


def _flag(value: str, where: str, name: str) -> bool | None:
    text = value.strip().lower()
    if not text:
        return None
    if text in YES:
        return True
    if text in NO:
        return False
    raise InputError(f"{where}: {name}", f"{value!r} is not yes or no")


def _header(values: list[str], where: str) -> list[str]:
    header = [name.lower() for name in values]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise InputError(where, f"missing column(s) {', '.join(missing)}; expected {','.join(REQUIRED)}[,instrument]")
    unknown = [name for name in header if name not in REQUIRED and name not in OPTIONAL]
    if unknown:
        raise InputError(where, f"unknown column(s) {', '.join(unknown)}")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InputError(where, f"column(s) {', '.join(repeated)} given more than once")
    return header


def _reference(row: dict[str, str], probe: DepositoryBalance, where: str, number: int) -> ReferenceData | None:
    given = [name for name in (*REFERENCE, "regulatory_capital_over_1bn") if row.get(name)]
    if not given:
        return None
    for name in REFERENCE:
        if not row.get(name):
            raise InputError(f"{where}: {name}", f"is empty; a row with reference data gives {', '.join(REFERENCE)}")
    try:
        ev = DepositoryReference.model_validate(
            {
                "event_id": "reference",
                "source": "reference",
                "as_of": datetime(2000, 1, 1, tzinfo=UTC),
                "segment": probe.segment,
                "depository": probe.depository,
                "kind": row["kind"].lower(),
                "country": row["country"].upper(),
                "acknowledgment_letter": _flag(row["acknowledgment_letter"], where, "acknowledgment_letter"),
                "regulatory_capital_over_1bn": _flag(
                    row.get("regulatory_capital_over_1bn", ""), where, "regulatory_capital_over_1bn"
                ),
            }
        )
    except ValidationError as exc:
        err = error_of(exc)
        raise InputError(f"{where}: {err.field}", err.reason) from None
    if probe.location == "us" and ev.country != "US" and probe.line in ("7500", "7540"):
        raise InputError(f"{where}: country", f"line {probe.line} is for US banks but the country is {ev.country}")
    return ReferenceData(
        ev.segment, ev.depository, ev.kind, ev.country, ev.acknowledgment_letter, ev.regulatory_capital_over_1bn, number
    )


def load_reference_file(text: str, where: str) -> DepositoryFile:
    """The whole reference file: bank accounts and reference data. Raises InputError on any problem."""
    out = DepositoryFile()
    header: list[str] | None = None
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        if not line.strip():
            continue
        at = f"{where}:{number}"
        values = _line_values(line, at)
        if header is None:
            header = _header(values, at)
            continue
        if len(values) != len(header):
            raise InputError(at, f"expected {len(header)} fields, got {len(values)}")
        _add_row(out, dict(zip(header, values, strict=True)), at, number)
    if header is None:
        raise InputError(where, "empty reference file: expected a header row " + ",".join(REQUIRED))
    return out


def _line_values(line: str, at: str) -> list[str]:
    """One line's CSV fields; a line too long or not CSV is an InputError."""
    if len(line) > MAX_LINE:
        raise InputError(at, f"line longer than {MAX_LINE} characters: not a reference row")
    try:
        return _row(line)
    except (csv.Error, StopIteration) as exc:
        raise InputError(at, f"not a CSV row: {exc}") from None


def _add_row(out: DepositoryFile, row: dict[str, str], at: str, number: int) -> None:
    """One data row into `out`: its bank account (each appears once) and its reference data, if any."""
    account = row["bank_account"]
    if account in out.accounts:
        raise InputError(
            f"{at}: bank_account",
            f"{account} is already mapped on line {out.accounts[account].ref_line}; each bank account appears once",
        )
    probe = _probe(row, at)
    ref = _reference(row, probe, at, number)
    if ref is not None:
        _add_reference(out, ref, at)
    if not account:
        if ref is None:
            raise InputError(f"{at}: bank_account", "is empty (allowed only on a row giving reference data)")
        return
    out.accounts[account] = DepositoryRef(
        bank_account=account,
        segment=probe.segment,
        depository=probe.depository,
        line=probe.line,
        currency=probe.currency,
        location=probe.location,
        instrument=probe.instrument,
        ref_line=number,
    )


def _probe(row: dict[str, str], at: str) -> DepositoryBalance:
    """The row as a depository balance of zero, so the event schema checks it; an InputError names the field."""
    try:
        # The event schema checks segment, line (a depository line of that segment), location for the line,
        # currency and instrument: a reference row is a depository balance without an amount.
        return DepositoryBalance.model_validate(
            {
                "event_id": "reference",
                "source": "reference",
                "as_of": datetime(2000, 1, 1, tzinfo=UTC),
                "segment": row["segment"],
                "depository": row["depository"],
                "line": row["line"],
                "currency": row["currency"],
                "location": row["location"],
                "instrument": row.get("instrument") or "cash",
                "amount": "0",
            }
        )
    except ValidationError as exc:
        err = error_of(exc)
        raise InputError(f"{at}: {err.field}", err.reason) from None


def _add_reference(out: DepositoryFile, ref: ReferenceData, at: str) -> None:
    """Keep a depository account's reference data; its rows may repeat it but must agree."""
    key = (ref.segment, ref.depository)
    held = out.references.get(key)
    if held is not None and held.facts != ref.facts:
        raise InputError(
            f"{at}: depository",
            f"{ref.depository} ({ref.segment}) has other reference data on"
            f" line {held.ref_line}; the rows of one depository account must agree",
        )
    out.references.setdefault(key, ref)


def load_depositories(text: str, where: str) -> dict[str, DepositoryRef]:
    """bank account number → its reference row. Raises InputError on any problem."""
    return load_reference_file(text, where).accounts


def reference_events(
    file: DepositoryFile, *, as_of: datetime, source: str = "depository-reference"
) -> list[DepositoryReference]:
    """One `depository_reference` event per depository account with reference data, for the settings topic.
    Deterministic ids (the same facts, the same id); `as_of` is when the file was true (e.g. its modification
    time): the latest as-of wins per depository account."""
    out = []
    for (segment, depository), ref in sorted(file.references.items()):
        out.append(
            DepositoryReference(
                event_id=derived_id(
                    "depref",
                    source,
                    segment,
                    depository,
                    ref.kind,
                    ref.country,
                    str(ref.acknowledgment_letter),
                    str(ref.regulatory_capital_over_1bn),
                    as_of.isoformat(),
                ),
                source=source,
                as_of=as_of,
                segment=segment,  # type: ignore[arg-type]  # checked by the probe
                depository=depository,
                kind=ref.kind,  # type: ignore[arg-type]
                country=ref.country,
                acknowledgment_letter=ref.acknowledgment_letter,
                regulatory_capital_over_1bn=ref.regulatory_capital_over_1bn,
            )
        )
    return out
