"""BAI2 cash-management balance files (BAI Version 2), the format US banks report balances in.

The subset read here:

    01,sender,receiver,creation date YYMMDD,creation time HHMM,file id,record length,block size,2/
    02,ultimate receiver,originator (bank),group status,as-of date YYMMDD,as-of time HHMM,currency,modifier/
    03,account number,currency,type code,amount,item count,funds type[,type code,amount,...]/
    88,continuation of the previous record's fields/
    16,type code,amount,funds type,...,text       (transaction detail: counted in the totals, otherwise ignored)
    49,account control total,number of records/
    98,group control total,number of accounts,number of records/
    99,file control total,number of groups,number of records/

Fields are comma-separated and a record ends with '/'. Amounts are whole numbers of the currency's minor
unit (cents for USD; none for JPY), optionally signed. A blank 03 currency means the group's (02), and a
blank group currency means USD. Funds types S, V and D carry 3, 2 and 1 + 2n extra fields.

Every control total and record count is checked: an account's total is the sum of the amounts of its 03,
16 and 88 records and its count includes them and the 49; a group's total is the sum of its accounts' and
its count includes its 02 and 98; the file's total is the sum of its groups' and its count includes every
record from 01 to 99. A file whose structure, totals or counts are wrong is rejected whole (InputError):
its figures cannot be trusted. Per-account problems (an account missing from the reference file, a
currency mismatch, no balance of the wanted type code, an amount the schema rejects) are Bad records.

As-of time: the 02 record's date and time in the bank's time zone (the caller's --timezone); a blank time,
2400 or 9999 means the end of that day (23:59:59).

Why hand-written: the PyPI `bai2` package calls itself not production-ready and mishandles 88 continuation
records (it guesses an 03 record's field boundaries from a count of commas, so a type-code group split
between an 03 and its 88 becomes one bogus field), and its errors name no line. It serves as the oracle of
tests/unit/test_bai2_oracle.py instead, which also pins that difference. The reader (Bai2Reader) takes one
logical record at a time, one small step per record code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from schemas.events import DepositoryBalance
from segwatch.errors import InputError
from services.ingest.depositories import DepositoryRef
from services.ingest.records import Bad, Parse, Parsed, derived_id, error_of

CLOSING_LEDGER = "015"
DEFAULT_CURRENCY = "USD"
END_OF_DAY = time(23, 59, 59)

# ISO 4217 minor units where they are not 2.
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}

GROUP_STATUS = {"1": "update", "2": "deletion", "3": "correction", "4": "test only"}
_AMOUNT = re.compile(r"^[+-]?[0-9]+$")
# Far above any balance or control total (10^18 dollars in cents), far below Python's 4,300-digit int limit;
# an amount past it is a corrupt file, not a balance.
MAX_AMOUNT_DIGITS = 20
_SIMPLE_FUNDS = frozenset(("", "Z", "0", "1", "2"))


def minor_units(currency: str) -> int:
    return MINOR_UNITS.get(currency, 2)


def to_decimal(amount: int, currency: str) -> Decimal:
    """Minor units → an exact Decimal in the currency's major unit (12345 USD → 123.45)."""
    value = Decimal(amount).scaleb(-minor_units(currency))
    two = value.quantize(Decimal("0.01"))
    return two if two == value else value  # more than 2 places is left for the schema to reject


@dataclass(slots=True)
class Record:
    """One logical record: its physical record plus any 88 continuations."""

    code: str
    fields: list[str]
    line: int
    physical: int = 1
    raw: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.raw)


@dataclass(frozen=True, slots=True)
class Group:
    line: int
    originator: str
    receiver: str
    status: str  # 1 update, 2 deletion, 3 correction, 4 test only
    as_of_date: date
    as_of_time: time
    currency: str


@dataclass(frozen=True, slots=True)
class Account:
    line: int
    number: str
    currency: str
    amounts: Mapping[str, int | None]  # type code → amount in minor units (first occurrence), None if blank
    group: Group
    raw: str


@dataclass(frozen=True, slots=True)
class Bai2File:
    sender: str
    receiver: str
    created: str  # YYMMDD HHMM as written
    file_id: str
    groups: tuple[Group, ...]
    accounts: tuple[Account, ...]
    control_total: int


def _body(line: str) -> str:
    """A physical record without its '/' terminator (and whatever padding follows it)."""
    return line.split("/", 1)[0]


def _records(text: str, where: str) -> Iterator[Record]:
    """The logical records of a file: each physical record with its 88 continuations folded in."""
    current: Record | None = None
    for number, physical in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = physical.strip()
        if not line:
            continue
        if line.split(",", 1)[0].strip() == "88":
            if current is None:
                raise InputError(f"{where}:{number}", "continuation record (88) without a record to continue")
            continue_record(current, line)
            continue
        if current is not None:
            yield current
        current = start_record(line, number)
    if current is not None:
        yield current


def start_record(line: str, number: int) -> Record:
    """One physical record (not an 88) as the start of a logical record."""
    code = line.split(",", 1)[0].strip()
    if code == "16":
        # Transaction detail: only type code and amount matter; its text may hold ',' and '/'.
        fields = [p.strip() for p in line.split(",", 3)[:3]]
        if len(fields) == 3:
            fields[2] = _body(fields[2])
    else:
        fields = [f.strip() for f in _body(line).split(",")]
    return Record(code, fields, number, 1, [line])


def continue_record(rec: Record, line: str) -> None:
    """Folds an 88 into the record it continues: its fields follow the previous record's last field (a type
    code on one physical record may have its amount on the next), except a 16's, which are more free text."""
    rec.physical += 1
    rec.raw.append(line)
    if rec.code != "16":
        rec.fields.extend(f.strip() for f in _body(line).split(",")[1:])


def _field(rec: Record, index: int) -> str:
    return rec.fields[index] if index < len(rec.fields) else ""


def _amount(raw: str, where: str, what: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    shown = raw if len(raw) <= 40 else f"{raw[:24]}... ({len(raw)} characters)"
    if not _AMOUNT.match(raw):
        raise InputError(where, f"{what}: {shown!r} is not a whole number of minor units (no decimal point)")
    if len(raw.lstrip("+-")) > MAX_AMOUNT_DIGITS:
        raise InputError(where, f"{what}: {shown} has more than {MAX_AMOUNT_DIGITS} digits")
    return int(raw)


def _count(raw: str, where: str, what: str) -> int:
    value = _amount(raw, where, what)
    if value is None or value < 0:
        raise InputError(where, f"{what}: expected a count, got {raw!r}")
    return value


def _date(raw: str, where: str, what: str) -> date:
    if not re.fullmatch(r"[0-9]{6}", raw):
        raise InputError(where, f"{what}: expected YYMMDD, got {raw!r}")
    try:
        return date(2000 + int(raw[:2]), int(raw[2:4]), int(raw[4:6]))
    except ValueError:
        raise InputError(where, f"{what}: {raw!r} is not a date") from None


def _time(raw: str, where: str, what: str) -> time:
    if raw in ("", "2400", "9999"):
        return END_OF_DAY
    if not re.fullmatch(r"[0-9]{4}", raw) or int(raw[:2]) > 23 or int(raw[2:]) > 59:
        raise InputError(where, f"{what}: expected HHMM, got {raw!r}")
    return time(int(raw[:2]), int(raw[2:]))


def _type_amounts(rec: Record, where: str) -> tuple[dict[str, int | None], int]:
    """The 03 record's type-code groups after account and currency: (type code → amount, sum of amounts)."""
    fields = rec.fields[3:]
    amounts: dict[str, int | None] = {}
    total = 0
    i = 0
    while i < len(fields):
        if not any(fields[i:]):
            break  # trailing empty fields
        code = fields[i]
        if not re.fullmatch(r"[0-9]{3}", code):
            raise InputError(where, f"type code: expected three digits, got {code!r}")
        amount = _amount(fields[i + 1] if i + 1 < len(fields) else "", where, f"amount of type code {code}")
        funds = (fields[i + 3] if i + 3 < len(fields) else "").upper()
        i += 4
        if funds == "S":
            i += 3
        elif funds == "V":
            i += 2
        elif funds == "D":
            n = _count(fields[i] if i < len(fields) else "", where, f"type code {code}: number of distributions")
            i += 1 + 2 * n
        elif funds not in _SIMPLE_FUNDS:
            raise InputError(where, f"type code {code}: unknown funds type {funds!r}")
        if amount is not None:
            total += amount
        amounts.setdefault(code, amount)
    return amounts, total


def parse_bai2(text: str, where: str) -> Bai2File:
    """Read and check a whole BAI2 file. Raises InputError (file:line: reason) when it is unusable."""
    records = _records(text, where)
    reader = Bai2Reader(where, next(records, None))
    for rec in records:
        reader.read(rec)
    return reader.finish()


@dataclass(slots=True)
class _Tally:
    """What a section's trailer states, as the records read so far add up: control total and record count."""

    total: int = 0
    records: int = 0


class Bai2Reader:
    """Reads a BAI2 file one logical record at a time, one step per record code, checking every trailer.

    The file header (01) is read on construction; `read` takes each following record (02 group header, 03
    account identifier, 16 transaction detail, 49 account trailer, 98 group trailer, 99 file trailer, with
    their 88 continuations already folded in); `finish` returns the file once its trailer has been read."""

    def __init__(self, where: str, header: Record | None) -> None:
        self.where = where
        self.header = self._file_header(header)
        self.groups: list[Group] = []
        self.accounts: list[Account] = []
        self.file = _Tally(records=self.header.physical)
        self.group: Group | None = None
        self.in_group = _Tally()
        self.group_accounts = 0
        self.account: Account | None = None
        self.in_account = _Tally()
        self.ended = False
        self._steps: dict[str, Callable[[Record, str], None]] = {
            "02": self.group_header,
            "03": self.account_identifier,
            "16": self.transaction_detail,
            "49": self.account_trailer,
            "98": self.group_trailer,
            "99": self.file_trailer,
        }

    def _file_header(self, header: Record | None) -> Record:
        if header is None:
            raise InputError(self.where, "empty file: expected a BAI2 file header (01)")
        at = f"{self.where}:{header.line}"
        if header.code != "01":
            raise InputError(at, f"expected a BAI2 file header (01), got record {header.code!r}")
        version = _field(header, 8)
        if version != "2":
            raise InputError(at, f"BAI version {version!r} is not supported; expected 2")
        return header

    def read(self, rec: Record) -> None:
        at = f"{self.where}:{rec.line}"
        if self.ended:
            raise InputError(at, "record after the file trailer (99)")
        step = self._steps.get(rec.code)
        if step is None:
            raise InputError(
                at, "a second file header (01)" if rec.code == "01" else f"unknown record code {rec.code!r}"
            )
        self.file.records += rec.physical
        step(rec, at)

    def group_header(self, rec: Record, at: str) -> None:
        """02: opens a group; its as-of date and time and currency apply to its accounts."""
        if self.group is not None:
            raise InputError(at, "group header (02) inside a group; the previous group has no trailer (98)")
        self.group = Group(
            line=rec.line,
            originator=_field(rec, 2),
            receiver=_field(rec, 1),
            status=_field(rec, 3) or "1",
            as_of_date=_date(_field(rec, 4), at, "as-of date"),
            as_of_time=_time(_field(rec, 5), at, "as-of time"),
            currency=_field(rec, 6).upper() or DEFAULT_CURRENCY,
        )
        self.groups.append(self.group)
        self.in_group, self.group_accounts = _Tally(records=rec.physical), 0

    def account_identifier(self, rec: Record, at: str) -> None:
        """03: opens an account with its balances by type code (a blank currency is the group's)."""
        if self.group is None:
            raise InputError(at, "account identifier (03) outside a group")
        if self.account is not None:
            raise InputError(at, "account identifier (03) before the previous account's trailer (49)")
        number = _field(rec, 1)
        if not number:
            raise InputError(at, "account number is empty")
        amounts, total = _type_amounts(rec, at)
        self.account = Account(
            line=rec.line,
            number=number,
            currency=_field(rec, 2).upper() or self.group.currency,
            amounts=amounts,
            group=self.group,
            raw=rec.text,
        )
        self.in_account = _Tally(total, rec.physical)
        self.in_group.records += rec.physical

    def transaction_detail(self, rec: Record, at: str) -> None:
        """16: counts toward its account's control total and record count; otherwise not a balance."""
        if self.account is None:
            raise InputError(at, "transaction detail (16) outside an account")
        self.in_account.total += _amount(_field(rec, 2), at, "amount") or 0
        self.in_account.records += rec.physical
        self.in_group.records += rec.physical

    def account_trailer(self, rec: Record, at: str) -> None:
        """49: checks the account's control total and record count, and closes it."""
        if self.account is None:
            raise InputError(at, "account trailer (49) without an account identifier (03)")
        self.in_account.records += rec.physical
        self.in_group.records += rec.physical
        name = f"account {self.account.number}"
        _check(at, f"{name} control total", _amount(_field(rec, 1), at, "control total"), self.in_account.total)
        _check(
            at, f"{name} number of records", _count(_field(rec, 2), at, "number of records"), self.in_account.records
        )
        self.accounts.append(self.account)
        self.in_group.total += self.in_account.total
        self.group_accounts += 1
        self.account = None

    def group_trailer(self, rec: Record, at: str) -> None:
        """98: checks the group's control total, number of accounts and record count, and closes it."""
        if self.group is None:
            raise InputError(at, "group trailer (98) without a group header (02)")
        if self.account is not None:
            raise InputError(at, f"group trailer (98) before account {self.account.number}'s trailer (49)")
        self.in_group.records += rec.physical
        _check(at, "group control total", _amount(_field(rec, 1), at, "control total"), self.in_group.total)
        _check(at, "group number of accounts", _count(_field(rec, 2), at, "number of accounts"), self.group_accounts)
        _check(at, "group number of records", _count(_field(rec, 3), at, "number of records"), self.in_group.records)
        self.file.total += self.in_group.total
        self.group = None

    def file_trailer(self, rec: Record, at: str) -> None:
        """99: checks the file's control total, number of groups and record count; nothing may follow."""
        if self.group is not None:
            raise InputError(at, "file trailer (99) before the group trailer (98)")
        _check(at, "file control total", _amount(_field(rec, 1), at, "control total"), self.file.total)
        _check(at, "file number of groups", _count(_field(rec, 2), at, "number of groups"), len(self.groups))
        _check(at, "file number of records", _count(_field(rec, 3), at, "number of records"), self.file.records)
        self.ended = True

    def finish(self) -> Bai2File:
        if not self.ended:
            raise InputError(self.where, "the file ends without a file trailer (99): truncated?")
        header = self.header
        return Bai2File(
            sender=_field(header, 1),
            receiver=_field(header, 2),
            created=f"{_field(header, 3)} {_field(header, 4)}",
            file_id=_field(header, 5),
            groups=tuple(self.groups),
            accounts=tuple(self.accounts),
            control_total=self.file.total,
        )


def _check(where: str, what: str, stated: int | None, computed: int) -> None:
    if stated is None:
        raise InputError(where, f"{what} is missing")
    if stated != computed:
        raise InputError(where, f"{what} is {stated} but the records add up to {computed}")


def bai2_events(
    bai: Bai2File,
    refs: Mapping[str, DepositoryRef],
    *,
    timezone: ZoneInfo,
    type_code: str = CLOSING_LEDGER,
    source: str | None = None,
    reference_name: str = "the depository reference file",
) -> Parse:
    """One DepositoryBalance per account of the file, through the reference file; Bad records otherwise."""
    out = Parse("bai2")
    for acct in bai.accounts:
        status = GROUP_STATUS.get(acct.group.status, f"unknown ({acct.group.status})")
        if acct.group.status not in ("1", "3"):
            out.bad.append(
                Bad(
                    acct.line,
                    "group_status",
                    f"bank account {acct.number} is in a group of status {status} (line "
                    f"{acct.group.line}); only update (1) and correction (3) groups carry balances",
                    acct.raw,
                )
            )
            continue
        ref = refs.get(acct.number)
        if ref is None:
            out.bad.append(
                Bad(acct.line, "account", f"bank account {acct.number} is not in {reference_name}", acct.raw)
            )
            continue
        if acct.currency != ref.currency:
            out.bad.append(
                Bad(
                    acct.line,
                    "currency",
                    f"bank account {acct.number} reports {acct.currency} but {reference_name} says {ref.currency} "
                    f"(line {ref.ref_line})",
                    acct.raw,
                )
            )
            continue
        minor = acct.amounts.get(type_code)
        if minor is None:
            what = "no amount" if type_code in acct.amounts else "no balance"
            out.bad.append(
                Bad(acct.line, "amount", f"bank account {acct.number}: {what} of type code {type_code}", acct.raw)
            )
            continue
        group = acct.group
        as_of = datetime.combine(group.as_of_date, group.as_of_time, tzinfo=timezone)
        event_source = source or f"bai2:{group.originator or bai.sender}"[:64]
        data = {
            "type": "depository_balance",
            "event_id": derived_id(
                "bai2",
                event_source,
                bai.sender,
                bai.receiver,
                bai.created,
                bai.file_id,
                group.originator,
                as_of.isoformat(),
                acct.number,
                acct.currency,
                type_code,
                str(minor),
                ref.segment,
                ref.depository,
                ref.line,
                ref.location,
                ref.instrument,
            ),
            "source": event_source,
            "as_of": as_of,
            "segment": ref.segment,
            "depository": ref.depository,
            "line": ref.line,
            "currency": ref.currency,
            "location": ref.location,
            "instrument": ref.instrument,
            "amount": to_decimal(minor, acct.currency),
        }
        try:
            out.events.append(Parsed(acct.line, DepositoryBalance.model_validate(data), acct.raw))
        except ValidationError as exc:
            err = error_of(exc)
            out.bad.append(Bad(acct.line, err.field, err.reason, acct.raw))
    return out
