"""BAI2 bank balance files → depository balances: parsing, control totals, the reference file, dead letters."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from schemas.events import DepositoryBalance
from segwatch.errors import InputError
from services.ingest.bai2 import bai2_events, parse_bai2, to_decimal
from services.ingest.depositories import load_depositories
from services.ingest.files import FileOptions, load_file

EXAMPLES = Path(__file__).resolve().parents[2] / "services" / "ingest" / "examples"
BANK = EXAMPLES / "bank.bai2"
REFERENCE = EXAMPLES / "depositories.csv"
NEW_YORK = ZoneInfo("America/New_York")


def refs() -> dict:
    return load_depositories(REFERENCE.read_text(), "depositories.csv")


def build(groups: list[tuple[str, list[tuple[str, str, list[str]]]]], *, header_extra: str = "") -> str:
    """A BAI2 file with correct totals: groups of (02 fields after the code, [(account, currency, type groups +
    optional 16 records)]). Each account entry is (number, currency, [fields...]) where fields are the 03
    type-code groups; lines starting with '16,' in the list are transaction details."""
    lines = ["01,021000021,FCMCORP01,261121,0530,77,,,2/" + header_extra]
    file_total = 0
    for group_header, accounts in groups:
        group_lines = [f"02,{group_header}/"]
        group_total = 0
        for number, currency, parts in accounts:
            type_fields = [p for p in parts if not p.startswith("16,")]
            details = [p for p in parts if p.startswith("16,")]
            acct_lines = [f"03,{number},{currency}," + ",".join(type_fields) + "/"]
            total = 0
            for group in type_fields:
                fields = group.split(",")
                if fields[1]:
                    total += int(fields[1])
            for d in details:
                acct_lines.append(d)
                total += int(d.split(",")[2].split("/")[0])
            acct_lines.append(f"49,{total},{len(acct_lines) + 1}/")
            group_lines += acct_lines
            group_total += total
        group_lines.append(f"98,{group_total},{len(accounts)},{len(group_lines) + 1}/")
        lines += group_lines
        file_total += group_total
    lines.append(f"99,{file_total},{len(groups)},{len(lines) + 1}/")
    return "\n".join(lines) + "\n"


GROUP = "FCMCORP01,021000021,1,261120,2400,USD,2"


def test_example_file_parses_with_continuations_details_and_default_currency() -> None:
    bai = parse_bai2(BANK.read_text(), "bank.bai2")
    assert (bai.sender, bai.receiver, bai.file_id) == ("021000021", "FCMCORP01", "1121")
    assert [g.originator for g in bai.groups] == ["021000021", "CHASGB2L"]
    by_number = {a.number: a for a in bai.accounts}
    assert list(by_number) == ["000123456789", "000123456790", "000555000111", "000777000222", "88001234"]
    first = by_number["000123456789"]
    # 010 and 015 on the 03 record, 045/100/400 on its 88 continuation.
    assert dict(first.amounts) == {
        "010": 12500000000, "015": 13125000000, "045": 13110000000, "100": 1250000000, "400": 625000000,
    }
    assert first.line == 3
    assert by_number["000555000111"].currency == "USD"  # blank on the 03: the group's currency
    assert by_number["88001234"].currency == "EUR"
    assert bai.control_total == 80210000000


def test_example_file_becomes_depository_balances() -> None:
    parse = bai2_events(parse_bai2(BANK.read_text(), "bank.bai2"), refs(), timezone=NEW_YORK)
    assert parse.bad == []
    events = [p.event for p in parse.events]
    assert all(isinstance(e, DepositoryBalance) for e in events)
    got = [(e.segment, e.depository, e.line, e.currency, e.location, e.instrument, e.amount) for e in events]
    assert got == [
        ("4d2", "JPMC-SEG-CASH", "7070", "USD", "us", "cash", Decimal("131250000.00")),
        ("4d2", "JPMC-SEG-TSY", "7080", "USD", "us", "us_government", Decimal("250000000.00")),
        ("30.7", "JPMC-307-CASH", "7500", "USD", "us", "cash", Decimal("42000000.00")),
        ("4df", "JPMC-CSW-CASH", "8600", "USD", "us", "cash", Decimal("18500000.00")),
        ("30.7", "JPMC-LDN-307-EUR", "7520", "EUR", "non_us", "cash", Decimal("3400000.00")),
    ]
    # 2400 is the end of the as-of day, in the bank's time zone.
    assert events[0].as_of == datetime(2026, 11, 20, 23, 59, 59, tzinfo=NEW_YORK)
    assert events[0].as_of.utcoffset().total_seconds() == -5 * 3600  # type: ignore[union-attr]
    assert events[4].as_of == datetime(2026, 11, 20, 17, 0, tzinfo=NEW_YORK)
    assert events[0].source == "bai2:021000021" and events[4].source == "bai2:CHASGB2L"
    assert events[0].key == "depo|4d2|JPMC-SEG-CASH"


def test_event_ids_are_deterministic_and_depend_on_content() -> None:
    bai = parse_bai2(BANK.read_text(), "bank.bai2")
    first = [p.event.event_id for p in bai2_events(bai, refs(), timezone=NEW_YORK).events]
    again = [p.event.event_id for p in bai2_events(parse_bai2(BANK.read_text(), "x"), refs(), timezone=NEW_YORK).events]
    assert first == again
    assert len(set(first)) == len(first)
    other_source = [p.event.event_id for p in bai2_events(bai, refs(), timezone=NEW_YORK, source="bank-x").events]
    assert set(other_source).isdisjoint(first)


def test_other_type_code_and_time_zone() -> None:
    bai = parse_bai2(BANK.read_text(), "bank.bai2")
    parse = bai2_events(bai, refs(), timezone=ZoneInfo("America/Chicago"), type_code="045")
    # Only two accounts report a closing available balance (045); the others are dead letters.
    assert [(p.event.depository, p.event.amount) for p in parse.events] == [  # type: ignore[attr-defined]
        ("JPMC-SEG-CASH", Decimal("131100000.00")), ("JPMC-CSW-CASH", Decimal("18500000.00")),
    ]
    assert {b.line for b in parse.bad} == {10, 12, 18}
    assert all(b.field == "amount" and "no balance of type code 045" in b.reason for b in parse.bad)
    assert parse.events[0].event.as_of.utcoffset().total_seconds() == -6 * 3600  # type: ignore[union-attr]


def test_unmapped_account_currency_mismatch_and_missing_balance_are_bad_records() -> None:
    parse = load_file(
        str(EXAMPLES / "errors" / "bank-unmapped.bai2"), FileOptions(depositories=str(REFERENCE))
    )
    assert [p.event.depository for p in parse.events] == ["JPMC-SEG-CASH"]  # type: ignore[attr-defined]
    assert [(b.line, b.field) for b in parse.bad] == [(5, "account"), (7, "currency"), (9, "amount")]
    assert "000999999999 is not in" in parse.bad[0].reason
    assert "reports CAD but" in parse.bad[1].reason and "says USD" in parse.bad[1].reason
    assert "no amount of type code 015" in parse.bad[2].reason
    assert parse.bad[1].raw == "03,000555000111,CAD,015,4200000000,,/"


def test_bad_control_total_rejects_the_whole_file() -> None:
    with pytest.raises(InputError) as err:
        load_file(str(EXAMPLES / "errors" / "bank-bad-totals.bai2"), FileOptions(depositories=str(REFERENCE)))
    assert err.value.field.endswith("bank-bad-totals.bai2:7")
    assert "group control total is 38125000100 but the records add up to 38125000000" in err.value.reason


def _corrupt(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("49,42485000000,7/", "49,42485000001,7/", 9, "account 000123456789 control total is 42485000001"),
        ("49,42485000000,7/", "49,42485000000,6/", 9, "account 000123456789 number of records is 6 but"),
        ("98,79535000000,4,15/", "98,79535000000,3,15/", 16, "group number of accounts is 3 but"),
        ("98,79535000000,4,15/", "98,79535000000,4,14/", 16, "group number of records is 14 but"),
        ("99,80210000000,2,21/", "99,80210000001,2,21/", 21, "file control total is 80210000001"),
        ("99,80210000000,2,21/", "99,80210000000,1,21/", 21, "file number of groups is 1 but"),
        ("99,80210000000,2,21/", "99,80210000000,2,20/", 21, "file number of records is 20 but"),
        ("99,80210000000,2,21/", "99,,2,21/", 21, "file control total is missing"),
        (",,,2/", ",,,3/", 1, "BAI version '3' is not supported"),
        ("03,000123456790,USD,015,25000000000", "03,000123456790,USD,015,250000000.00", 10,
         "not a whole number of minor units"),
        ("03,000123456790,USD,015,", "03,000123456790,USD,15,", 10, "type code: expected three digits"),
        ("03,000123456790,USD,015,25000000000,,", "03,000123456790,USD,015,25000000000,,X", 10,
         "unknown funds type 'X'"),
        ("49,25000000000,2/", "77,25000000000,2/", 11, "unknown record code '77'"),
        ("02,FCMCORP01,CHASGB2L,1,261120,", "02,FCMCORP01,CHASGB2L,1,261131,", 17, "'261131' is not a date"),
        ("02,FCMCORP01,CHASGB2L,1,261120,1700", "02,FCMCORP01,CHASGB2L,1,261120,1790", 17, "expected HHMM"),
    ],
)
def test_structural_errors_name_the_line(old: str, new: str, line: int, message: str) -> None:
    text = _corrupt(BANK.read_text(), old, new)
    with pytest.raises(InputError) as err:
        parse_bai2(text, "bank.bai2")
    assert err.value.field == f"bank.bai2:{line}"
    assert message in err.value.reason


def test_truncated_file_and_trailing_records_are_rejected() -> None:
    text = BANK.read_text()
    truncated = "\n".join(text.splitlines()[:-1]) + "\n"
    with pytest.raises(InputError, match="without a file trailer"):
        parse_bai2(truncated, "bank.bai2")
    with pytest.raises(InputError, match="record after the file trailer"):
        parse_bai2(text + "03,1,USD,015,1,,/\n", "bank.bai2")
    with pytest.raises(InputError, match="expected a BAI2 file header"):
        parse_bai2("02,x/\n", "bank.bai2")
    with pytest.raises(InputError, match="continuation record"):
        parse_bai2("88,1/\n", "bank.bai2")


def test_funds_types_s_v_d_are_skipped_correctly_and_signed_amounts_count() -> None:
    text = build([(GROUP, [
        ("1001", "USD", [
            "100,500000,3,S,100000,200000,200000",  # distributed availability: 3 extra amounts
            "015,-123456,,",  # overdrawn: negative closing ledger
            "110,7500,1,V,261121,0900",  # value dated: date and time
            "400,25000,2,D,2,0,15000,1,10000",  # 2 distributions: (days, amount) pairs
            "045,+99,,",
            "16,195,500000,0,REF1,,WIRE IN",
        ]),
    ])])
    bai = parse_bai2(text, "t.bai2")
    [account] = bai.accounts
    assert dict(account.amounts) == {"100": 500000, "015": -123456, "110": 7500, "400": 25000, "045": 99}
    assert bai.control_total == 500000 - 123456 + 7500 + 25000 + 99 + 500000


def test_minor_units_follow_the_currency() -> None:
    assert to_decimal(12345, "USD") == Decimal("123.45")
    assert to_decimal(-5, "USD") == Decimal("-0.05")
    assert to_decimal(12345, "JPY") == Decimal("12345")
    assert to_decimal(1234560, "KWD") == Decimal("1234.56")
    assert str(to_decimal(1234560, "KWD")) == "1234.56"
    text = build([("FCMCORP01,021000021,1,261120,1600,JPY,2", [("J-1", "", ["015,250000000,,"])]),
                  ("FCMCORP01,021000021,1,261120,1600,KWD,2", [("K-1", "", ["015,1234567,,"])])])
    reference = (
        "bank_account,segment,depository,line,currency,location\n"
        "J-1,30.7,MIZUHO-307-JPY,7520,JPY,non_us\n"
        "K-1,30.7,NBK-307-KWD,7520,KWD,non_us\n"
    )
    parse = bai2_events(parse_bai2(text, "t.bai2"), load_depositories(reference, "r.csv"), timezone=NEW_YORK)
    assert [(p.event.currency, p.event.amount) for p in parse.events] == [  # type: ignore[attr-defined]
        ("JPY", Decimal("250000000")),
    ]
    # 1234.567 KWD has three decimal places: the schema keeps money to cents, so it is a dead letter.
    [bad] = parse.bad
    assert bad.field == "amount" and "2 decimal places" in bad.reason


def test_group_status_test_only_is_not_a_balance() -> None:
    text = build([("FCMCORP01,021000021,4,261120,1600,USD,2", [("000123456789", "USD", ["015,100,,"])])])
    parse = bai2_events(parse_bai2(text, "t.bai2"), refs(), timezone=NEW_YORK)
    assert parse.events == []
    [bad] = parse.bad
    assert bad.field == "group_status" and "test only" in bad.reason


def test_sign_rule_of_the_line_makes_a_bad_record() -> None:
    reference = "bank_account,segment,depository,line,currency,location\nX-1,4d2,OPT-LONG,7132,USD,us\n"
    text = build([(GROUP, [("X-1", "USD", ["015,-100,,"])])])
    parse = bai2_events(parse_bai2(text, "t.bai2"), load_depositories(reference, "r.csv"), timezone=NEW_YORK)
    [bad] = parse.bad
    assert bad.field == "amount" and "never negative" in bad.reason


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("bank_account,segment,depository,line,currency\n1,4d2,D,7070,USD\n", "missing column(s) location"),
        ("bank_account,segment,depository,line,currency,location,colour\n", "unknown column(s) colour"),
        ("bank_account,segment,depository,line,currency,location\n1,4d2,D,7070,USD,us\n1,4d2,E,7070,USD,us\n",
         "1 is already mapped on line 2"),
        ("bank_account,segment,depository,line,currency,location\n1,4d2,D,7500,USD,us\n",
         "7500 is not a depository line of segment 4d2"),
        ("bank_account,segment,depository,line,currency,location\n1,4d2,D,7070,usd,us\n", "currency"),
        ("bank_account,segment,depository,line,currency,location\n1,4d2,D,7070,USD,moon\n", "location"),
        ("bank_account,segment,depository,line,currency,location\n1,4d2,D,7070\n", "expected 6 fields, got 4"),
        ("", "empty reference file"),
    ],
)
def test_reference_file_problems_make_it_unusable(reference: str, message: str) -> None:
    with pytest.raises(InputError) as err:
        load_depositories(reference, "r.csv")
    assert message in str(err.value)


def test_bai2_needs_the_reference_file_and_a_real_time_zone() -> None:
    with pytest.raises(InputError, match="--depositories"):
        load_file(str(BANK), FileOptions())
    with pytest.raises(InputError, match="unknown time zone"):
        load_file(str(BANK), FileOptions(depositories=str(REFERENCE), timezone="Mars/Olympus"))
    with pytest.raises(InputError, match="three-digit"):
        load_file(str(BANK), FileOptions(depositories=str(REFERENCE), type_code="15"))
