"""BAI2 bank balance files → depository balances: parsing, control totals, the reference file, dead letters."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from schemas.events import DepositoryBalance
from segwatch.errors import InputError
from services.ingest.bai2 import Bai2Reader, Record, bai2_events, continue_record, parse_bai2, start_record, to_decimal
from services.ingest.depositories import DepositoryRef, load_depositories
from services.ingest.files import FileOptions, load_file
from tests.support.bai2_files import BANK, CONTINUED, EXAMPLES, FUNDS_TYPES, GROUP, MINOR_UNITS, REFERENCE, build

NEW_YORK = ZoneInfo("America/New_York")


def refs() -> dict[str, DepositoryRef]:
    return load_depositories(REFERENCE.read_text(), "depositories.csv")


def test_example_file_parses_with_continuations_details_and_default_currency() -> None:
    bai = parse_bai2(BANK.read_text(), "bank.bai2")
    assert (bai.sender, bai.receiver, bai.file_id) == ("021000021", "FCMCORP01", "1121")
    assert [g.originator for g in bai.groups] == ["021000021", "CHASGB2L"]
    by_number = {a.number: a for a in bai.accounts}
    assert list(by_number) == ["000123456789", "000123456790", "000555000111", "000777000222", "88001234"]
    first = by_number["000123456789"]
    # 010 and 015 on the 03 record, 045/100/400 on its 88 continuation.
    assert dict(first.amounts) == {
        "010": 12500000000,
        "015": 13125000000,
        "045": 13110000000,
        "100": 1250000000,
        "400": 625000000,
    }
    assert first.line == 3
    assert by_number["000555000111"].currency == "USD"  # blank on the 03: the group's currency
    assert by_number["88001234"].currency == "EUR"
    assert bai.control_total == 80210000000


def test_example_file_becomes_depository_balances() -> None:
    parse = bai2_events(parse_bai2(BANK.read_text(), "bank.bai2"), refs(), timezone=NEW_YORK)
    assert parse.bad == []
    events = [p.event for p in parse.events if isinstance(p.event, DepositoryBalance)]
    assert len(events) == len(parse.events)
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
        ("JPMC-SEG-CASH", Decimal("131100000.00")),
        ("JPMC-CSW-CASH", Decimal("18500000.00")),
    ]
    assert {b.line for b in parse.bad} == {10, 12, 18}
    assert all(b.field == "amount" and "no balance of type code 045" in b.reason for b in parse.bad)
    assert parse.events[0].event.as_of.utcoffset().total_seconds() == -6 * 3600  # type: ignore[union-attr]


def test_unmapped_account_currency_mismatch_and_missing_balance_are_bad_records() -> None:
    parse = load_file(str(EXAMPLES / "errors" / "bank-unmapped.bai2"), FileOptions(depositories=str(REFERENCE)))
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
        (
            "03,000123456790,USD,015,25000000000",
            "03,000123456790,USD,015,250000000.00",
            10,
            "not a whole number of minor units",
        ),
        ("03,000123456790,USD,015,", "03,000123456790,USD,15,", 10, "type code: expected three digits"),
        (
            "03,000123456790,USD,015,25000000000,,",
            "03,000123456790,USD,015,25000000000,,X",
            10,
            "unknown funds type 'X'",
        ),
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
    bai = parse_bai2(FUNDS_TYPES, "t.bai2")
    [account] = bai.accounts
    assert dict(account.amounts) == {"100": 500000, "015": -123456, "110": 7500, "400": 25000, "045": 99}
    assert bai.control_total == 500000 - 123456 + 7500 + 25000 + 99 + 500000


def test_minor_units_follow_the_currency() -> None:
    assert to_decimal(12345, "USD") == Decimal("123.45")
    assert to_decimal(-5, "USD") == Decimal("-0.05")
    assert to_decimal(12345, "JPY") == Decimal("12345")
    assert to_decimal(1234560, "KWD") == Decimal("1234.56")
    assert str(to_decimal(1234560, "KWD")) == "1234.56"
    reference = (
        "bank_account,segment,depository,line,currency,location\n"
        "J-1,30.7,MIZUHO-307-JPY,7520,JPY,non_us\n"
        "K-1,30.7,NBK-307-KWD,7520,KWD,non_us\n"
    )
    parse = bai2_events(parse_bai2(MINOR_UNITS, "t.bai2"), load_depositories(reference, "r.csv"), timezone=NEW_YORK)
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
        (
            "bank_account,segment,depository,line,currency,location\n1,4d2,D,7070,USD,us\n1,4d2,E,7070,USD,us\n",
            "1 is already mapped on line 2",
        ),
        (
            "bank_account,segment,depository,line,currency,location\n1,4d2,D,7500,USD,us\n",
            "7500 is not a depository line of segment 4d2",
        ),
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


# Record by record: each step of the reader on its own.


def record(line: str, *continuations: str, number: int = 1) -> Record:
    rec = start_record(line, number)
    for more in continuations:
        continue_record(rec, more)
    return rec


def reader() -> Bai2Reader:
    return Bai2Reader("t.bai2", record("01,BANK,FCM,261121,0530,9,,,2/"))


def test_a_continuation_88_carries_on_the_fields_of_the_record_it_continues() -> None:
    # The type code 045 ends the 03 record; its amount opens the 88 (legal: a group may span records).
    rec = record("03,1,USD,010,100,,,045/", "88,4626045,,,072,-7,,/", "88, 100 ,5,,/")
    assert rec.fields == [
        "03",
        "1",
        "USD",
        "010",
        "100",
        "",
        "",
        "045",
        "4626045",
        "",
        "",
        "072",
        "-7",
        "",
        "",
        "100",
        "5",
        "",
        "",
    ]
    assert (rec.physical, rec.line) == (3, 1)
    assert rec.text == "03,1,USD,010,100,,,045/\n88,4626045,,,072,-7,,/\n88, 100 ,5,,/"


def test_a_transaction_detail_keeps_its_text_and_its_88_is_more_text() -> None:
    rec = record("16,495,625,0,FW1,,MARGIN CALL, ICE / US/", "88,PAYMENT REF 44719 / SETTLEMENT/")
    assert rec.fields == ["16", "495", "625"]
    assert rec.physical == 2 and rec.raw[1] == "88,PAYMENT REF 44719 / SETTLEMENT/"


def test_file_header_01_is_required_and_is_version_2() -> None:
    assert reader().header.fields[1:3] == ["BANK", "FCM"]
    with pytest.raises(InputError, match="empty file"):
        Bai2Reader("t.bai2", None)
    with pytest.raises(InputError, match=r"expected a BAI2 file header \(01\), got record '02'"):
        Bai2Reader("t.bai2", record("02,FCM,BANK,1,261120,2400,USD,2/"))
    with pytest.raises(InputError, match="BAI version '' is not supported"):
        Bai2Reader("t.bai2", record("01,BANK,FCM,261121,0530,9/"))


def test_group_header_02_opens_a_group_with_its_as_of_and_currency() -> None:
    r = reader()
    r.read(record("02,FCM,BANK,,261120,,,2/", number=2))
    assert r.group is not None
    assert (r.group.originator, r.group.receiver, r.group.status) == ("BANK", "FCM", "1")  # blank status: update
    assert (r.group.as_of_date.isoformat(), r.group.as_of_time.isoformat()) == ("2026-11-20", "23:59:59")
    assert r.group.currency == "USD" and r.in_group.records == 1
    with pytest.raises(InputError, match=r"t.bai2:3: group header \(02\) inside a group"):
        r.read(record("02,FCM,BANK,1,261120,2400,USD,2/", number=3))


def test_account_identifier_03_needs_a_group_and_takes_its_currency() -> None:
    r = reader()
    with pytest.raises(InputError, match=r"account identifier \(03\) outside a group"):
        r.read(record("03,1,,015,100,,/"))
    r.read(record("02,FCM,BANK,1,261120,2400,EUR,2/"))
    with pytest.raises(InputError, match="account number is empty"):
        r.read(record("03,,,015,100,,/"))
    r.read(record("03,1,,015,100,,,010,-40,,/", "88,045,7,,/"))
    assert r.account is not None
    assert (r.account.number, r.account.currency, dict(r.account.amounts)) == (
        "1",
        "EUR",
        {"015": 100, "010": -40, "045": 7},
    )
    assert (r.in_account.total, r.in_account.records, r.in_group.records) == (67, 2, 3)
    with pytest.raises(InputError, match=r"before the previous account's trailer \(49\)"):
        r.read(record("03,2,,015,100,,/"))


def test_transaction_detail_16_counts_toward_its_account_only() -> None:
    r = reader()
    r.read(record("02,FCM,BANK,1,261120,2400,USD,2/"))
    with pytest.raises(InputError, match=r"transaction detail \(16\) outside an account"):
        r.read(record("16,195,5,0,R,,T/"))
    r.read(record("03,1,,015,100,,/"))
    r.read(record("16,195,5,0,R,,WIRE, IN/", "88,MORE TEXT/"))
    r.read(record("16,495,-2/"))
    assert r.account is not None and dict(r.account.amounts) == {"015": 100}
    assert (r.in_account.total, r.in_account.records, r.in_group.records) == (103, 4, 5)


def test_account_trailer_49_checks_and_closes_the_account() -> None:
    r = reader()
    r.read(record("02,FCM,BANK,1,261120,2400,USD,2/"))
    with pytest.raises(InputError, match=r"account trailer \(49\) without an account identifier"):
        reader().read(record("49,1,2/"))
    r.read(record("03,1,,015,100,,/"))
    with pytest.raises(InputError, match="account 1 control total is 101 but the records add up to 100"):
        r.read(record("49,101,2/"))
    r = reader()
    r.read(record("02,FCM,BANK,1,261120,2400,USD,2/"))
    r.read(record("03,1,,015,100,,/"))
    r.read(record("49,100,2/"))
    assert r.account is None and [a.number for a in r.accounts] == ["1"]
    assert (r.in_group.total, r.in_group.records, r.group_accounts) == (100, 3, 1)


def test_group_trailer_98_checks_and_closes_the_group() -> None:
    def one_account() -> Bai2Reader:
        r = reader()
        for line in ("02,FCM,BANK,1,261120,2400,USD,2/", "03,1,,015,100,,/", "49,100,2/"):
            r.read(record(line))
        return r

    with pytest.raises(InputError, match=r"group trailer \(98\) without a group header"):
        reader().read(record("98,0,0,2/"))
    r = reader()
    r.read(record("02,FCM,BANK,1,261120,2400,USD,2/"))
    r.read(record("03,1,,015,100,,/"))
    with pytest.raises(InputError, match=r"group trailer \(98\) before account 1's trailer \(49\)"):
        r.read(record("98,100,1,4/"))
    with pytest.raises(InputError, match="group number of records is 5 but the records add up to 4"):
        one_account().read(record("98,100,1,5/"))
    with pytest.raises(InputError, match="group number of accounts is 2 but the records add up to 1"):
        one_account().read(record("98,100,2,4/"))
    r = one_account()
    r.read(record("98,100,1,4/"))
    assert r.group is None and r.file.total == 100


def test_file_trailer_99_checks_the_file_and_ends_it() -> None:
    r = reader()
    r.read(record("02,FCM,BANK,1,261120,2400,USD,2/"))
    with pytest.raises(InputError, match=r"file trailer \(99\) before the group trailer \(98\)"):
        r.read(record("99,0,1,3/"))
    r = reader()
    with pytest.raises(InputError, match="without a file trailer"):
        r.finish()
    r.read(record("02,FCM,BANK,1,261120,2400,USD,2/"))
    r.read(record("98,0,0,2/"))
    r.read(record("99,0,1,4/"))
    assert r.finish().control_total == 0
    with pytest.raises(InputError, match=r"t.bai2:7: record after the file trailer \(99\)"):
        r.read(record("02,FCM,BANK,1,261120,2400,USD,2/", number=7))


def test_unknown_and_repeated_record_codes_are_refused() -> None:
    with pytest.raises(InputError, match=r"a second file header \(01\)"):
        reader().read(record("01,BANK,FCM,261121,0530,9,,,2/"))
    with pytest.raises(InputError, match="unknown record code '77'"):
        reader().read(record("77,1/"))


def test_a_balance_split_over_88_continuations_reads_as_on_one_record() -> None:
    bai = parse_bai2(CONTINUED, "t.bai2")
    assert [(a.number, a.currency, dict(a.amounts)) for a in bai.accounts] == [
        ("2001", "USD", {"010": 100, "015": 200, "040": 300, "045": 400, "072": -5, "100": 600}),
        ("2002", "USD", {"015": 700}),
    ]
    assert bai.control_total == 100 + 200 + 300 + 400 - 5 + 600 + 700 + 50
