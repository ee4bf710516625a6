"""Where and in what the money is held (#14): events, holdings, the rules and their limits, the report of
investments, the depository reference file."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from schemas import EVENT_ADAPTER, input_errors
from schemas.events import DepositoryBalance, DepositoryReference, EventBase, ForeignMarginRequirement, FxRate
from segwatch.core.book import Book
from segwatch.core.holding_rules import AlertTracker, Limits, evaluate
from segwatch.core.holdings import Holdings, HoldingsBook, HoldingsSettings, unacknowledged_adjustment
from segwatch.core.investments import (
    investment_report,
    is_report_date,
    overdue_findings,
    report_dates,
    report_deadline,
    to_json,
    to_text,
)
from segwatch.errors import InputError
from services.ingest.depositories import load_reference_file, reference_events

T0 = datetime(2026, 10, 30, 18, 0, tzinfo=UTC)
ON = date(2026, 10, 30)
_n = iter(range(10**9))


def bal(
    segment: str,
    depository: str,
    line: str,
    amount: str,
    *,
    location: str = "us",
    instrument: str = "cash",
    currency: str = "USD",
    at: datetime = T0,
    **extra: object,
) -> DepositoryBalance:
    return DepositoryBalance(
        event_id=f"b{next(_n):06d}",
        source="t",
        as_of=at,
        segment=segment,  # type: ignore[arg-type]
        depository=depository,
        line=line,
        currency=currency,
        location=location,  # type: ignore[arg-type]
        instrument=instrument,  # type: ignore[arg-type]
        amount=Decimal(amount),
        **extra,  # type: ignore[arg-type]
    )


def fmr(
    amount: str, *, board: str | None = None, at: datetime = T0, event_id: str | None = None
) -> ForeignMarginRequirement:
    return ForeignMarginRequirement(
        event_id=event_id or f"m{next(_n):06d}", source="t", as_of=at, board=board, amount=Decimal(amount)
    )


def ref(
    segment: str,
    depository: str,
    *,
    ack: bool = True,
    kind: str = "bank",
    country: str = "US",
    capital: bool | None = None,
) -> DepositoryReference:
    return DepositoryReference(
        event_id=f"r{next(_n):06d}",
        source="t",
        as_of=T0,
        segment=segment,  # type: ignore[arg-type]
        depository=depository,
        kind=kind,  # type: ignore[arg-type]
        country=country,
        acknowledgment_letter=ack,
        regulatory_capital_over_1bn=capital,
    )


def findings(book: HoldingsBook, segment: str, limits: Limits | None = None) -> dict[str, bool]:
    return {f.rule: f.active for f in evaluate(book.pool(segment, ON), limits or Limits())}


# --- events ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "location"), [("7500", "non_us"), ("7540", "non_us"), ("7520", "us"), ("7560", "us")])
def test_a_location_contradicting_its_30_7_bank_line_is_rejected_naming_the_field(line: str, location: str) -> None:
    data = {
        "type": "depository_balance",
        "event_id": "e",
        "source": "s",
        "as_of": T0.isoformat(),
        "segment": "30.7",
        "depository": "D",
        "line": line,
        "currency": "USD",
        "location": location,
        "amount": "1.00",
    }
    with pytest.raises(ValidationError) as exc:
        EVENT_ADAPTER.validate_python(data)
    err = input_errors(exc.value)[0]
    assert err.field == "location" and line in err.reason


def test_new_events_parse_and_key_per_board() -> None:
    a = EVENT_ADAPTER.validate_json(
        '{"type":"foreign_margin_requirement","event_id":"m1","source":"s",'
        '"as_of":"2026-10-30T18:00:00Z","board":"EUREX","amount":"700"}'
    )
    assert isinstance(a, ForeignMarginRequirement) and a.segment == "30.7" and a.key == "fmr|30.7|EUREX|"
    with pytest.raises(ValidationError) as exc:
        ref("30.7", "LDN", country="GB")  # a non-US bank holding 30.7 funds must say whether it has > $1bn
    assert input_errors(exc.value)[0].field == "regulatory_capital_over_1bn"
    with pytest.raises(ValidationError) as exc:
        bal("4d2", "B", "7070", "1", maturity=date(2027, 1, 1))  # cash has no maturity
    assert input_errors(exc.value)[0].field == "maturity"


def test_the_new_events_leave_the_statement_as_it_was_unless_a_letter_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = [
        bal("30.7", "LDN", "7520", "900", location="non_us"),
        bal("4d2", "B", "7070", "100"),
        bal("4d2", "C", "7070", "50"),
    ]
    one, two, three = Book(), Book(), Book()
    one.apply_all(base)
    two.apply_all([*base, fmr("700"), ref("4d2", "B", ack=True)])
    assert one.statement() == two.statement()
    three.apply_all([*base, fmr("700"), ref("4d2", "B", ack=False)])  # default: B's funds do not count
    assert three.statement()["4d2"]["7070"] == Decimal("50") and one.statement()["4d2"]["7070"] == Decimal("150")
    assert three.figures("4d2").holdings.unacknowledged == {"B": Decimal("100")}  # type: ignore[union-attr]
    monkeypatch.setenv("SEGWATCH_COUNT_UNACKNOWLEDGED", "yes")
    four = Book()
    four.apply_all([*base, ref("4d2", "B", ack=False)])
    assert four.statement()["4d2"] == one.statement()["4d2"]


# --- offshore_funds ----------------------------------------------------------------------------------------------


def test_offshore_funds_fires_at_900_over_a_700_requirement_and_a_restatement_to_820_resolves_it() -> None:
    book, tracker = HoldingsBook(), AlertTracker()
    book.apply_all(
        [bal("30.7", "LDN", "7520", "900", location="non_us"), bal("30.7", "NY", "7500", "5000"), fmr("700")]
    )
    pool = book.pool("30.7", ON)
    assert (pool.outside_us, pool.offshore_limit, pool.offshore_headroom) == (
        Decimal("900.00"),
        Decimal("840.00"),
        Decimal("-60.00"),
    )
    fired = tracker.step(evaluate(pool))
    assert [(a.segment, a.rule, a.state, a.severity) for a in fired] == [
        ("30.7", "offshore_funds", "firing", "warning")
    ]
    assert tracker.step(evaluate(book.pool("30.7", ON))) == []  # still firing: no second record
    book.apply(bal("30.7", "LDN", "7520", "820", location="non_us", at=T0 + timedelta(minutes=1)))
    resolved = tracker.step(evaluate(book.pool("30.7", ON)))
    assert [(a.rule, a.state) for a in resolved] == [("offshore_funds", "resolved")]
    assert book.pool("30.7", ON).offshore_headroom == Decimal("20.00")


def test_offshore_requirement_is_the_sum_of_the_latest_per_board_and_unknown_is_not_zero() -> None:
    book = HoldingsBook()
    book.apply(bal("30.7", "LDN", "7520", "900", location="non_us"))
    assert findings(book, "30.7")["offshore_funds"]  # funds outside the US, no requirement known
    book.apply_all(
        [fmr("400", board="EUREX"), fmr("100", board="ICEU"), fmr("300", board="ICEU", at=T0 + timedelta(1))]
    )
    assert book.pool("30.7", ON).foreign_margin_requirement == Decimal("700")
    book.apply(fmr("999", board="ICEU", at=T0))  # older than the ICEU one held: ignored
    assert book.pool("30.7", ON).foreign_margin_requirement == Decimal("700")


def test_exactly_120_percent_does_not_fire() -> None:
    book = HoldingsBook()
    book.apply_all([bal("30.7", "LDN", "7520", "840", location="non_us"), fmr("700")])
    assert not findings(book, "30.7")["offshore_funds"]


# --- acknowledgment letters and qualification ---------------------------------------------------------------------


def test_depository_without_its_letter_is_shown_apart_alerts_and_is_taken_out_of_the_funds_lines() -> None:
    book = HoldingsBook()
    book.apply_all(
        [
            bal("4d2", "GOOD", "7070", "100"),
            bal("4d2", "BAD", "7070", "40"),
            bal("4d2", "BAD", "7100", "5", currency="EUR"),
            bal("4d2", "NEW", "7070", "7"),
            ref("4d2", "GOOD"),
            ref("4d2", "BAD", ack=False),
            FxRate(event_id="fx", source="t", as_of=T0, currency="EUR", usd_per_unit=Decimal("2")),
        ]
    )
    pool = book.pool("4d2", ON)
    assert pool.unacknowledged == {"BAD": Decimal("50.00")}
    assert pool.unclassified == ("NEW",)
    assert findings(book, "4d2")["depository_not_acknowledged"]
    assert unacknowledged_adjustment(book.holdings.sums, "4d2", book.references) == {
        "USD": {"7070": Decimal("40.00")},
        "EUR": {"7100": Decimal("5.00")},
    }
    assert (
        unacknowledged_adjustment(
            book.holdings.sums, "4d2", book.references, HoldingsSettings(count_unacknowledged=True)
        )
        == {}
    )


def test_a_depository_without_reference_data_counts_as_before() -> None:
    book = HoldingsBook()
    book.apply(bal("4d2", "NEW", "7070", "7"))
    assert not findings(book, "4d2")["depository_not_acknowledged"]
    assert unacknowledged_adjustment(book.holdings.sums, "4d2", book.references) == {}


def test_a_non_us_bank_without_a_billion_of_capital_is_not_qualified_for_30_7() -> None:
    book = HoldingsBook()
    book.apply_all(
        [
            bal("30.7", "SMALL", "7520", "10", location="non_us"),
            ref("30.7", "SMALL", country="GB", capital=False),
            fmr("100"),
        ]
    )
    assert findings(book, "30.7")["depository_not_qualified"]


# --- Reg. 1.25 -----------------------------------------------------------------------------------------------------


def test_a_4d2_investment_of_type_other_fires_investment_not_permitted_critical() -> None:
    book = HoldingsBook()
    book.apply_all([bal("4d2", "B", "7070", "1000"), bal("4d2", "C", "7080", "10", instrument="other")])
    (f,) = [f for f in evaluate(book.pool("4d2", ON)) if f.rule == "investment_not_permitted"]
    assert f.active and f.severity == "critical" and "other" in f.summary


def test_foreign_sovereign_debt_is_permitted_in_30_7_only_by_default() -> None:
    book = HoldingsBook()
    book.apply_all(
        [
            bal("30.7", "S", "7540", "10", instrument="foreign_sovereign"),
            bal("30.7", "N", "7500", "990"),
            bal("4d2", "S", "7080", "10", instrument="foreign_sovereign"),
            bal("4d2", "N", "7070", "990"),
        ]
    )
    assert not findings(book, "30.7")["investment_not_permitted"]
    assert findings(book, "4d2")["investment_not_permitted"]


def _spread(instrument: str, amount: int) -> HoldingsBook:
    """A pool of 1000 holding `amount` of `instrument` spread over issuers of 1 each (so that no issuer-based limit
    is in play), the rest in cash."""
    book = HoldingsBook()
    book.apply(bal("4d2", "CASH", "7070", str(1000 - amount)))
    for i in range(amount):
        book.apply(bal("4d2", f"I{i}", "7080", "1", instrument=instrument, issuer=f"issuer-{i}"))
    return book


def _assert_asset_limit(instrument: str, share: int) -> None:
    at_limit, over = _spread(instrument, share * 10), _spread(instrument, share * 10 + 1)
    assert not findings(at_limit, "4d2")["asset_concentration"]
    assert findings(over, "4d2")["asset_concentration"]
    assert not findings(over, "4d2")["issuer_concentration"]


# Asset-based limits, Reg. 1.25(b)(3)(i) (figures: 90 FR 7847-7848); one test per limit.
def test_asset_limit_us_agency_obligations_50_percent() -> None:
    _assert_asset_limit("us_agency", 50)


def test_asset_limit_municipal_securities_10_percent() -> None:
    _assert_asset_limit("municipal", 10)


def test_asset_limit_government_money_market_funds_50_percent() -> None:
    _assert_asset_limit("money_market_fund", 50)


@pytest.mark.parametrize("instrument", ["certificate_of_deposit", "commercial_paper", "corporate_note"])
def test_asset_limit_2011_instruments_kept_by_domain_25_percent_each(instrument: str) -> None:
    _assert_asset_limit(instrument, 25)


def test_us_government_securities_have_no_asset_limit_and_limits_are_configurable() -> None:
    book = HoldingsBook()
    book.apply(bal("4d2", "T", "7080", "1000", instrument="us_government", maturity=date(2027, 1, 1)))
    assert not findings(book, "4d2")["asset_concentration"]
    strict = Limits(asset={"us_government": (Decimal("0.5"), "policy")})
    assert findings(book, "4d2", strict)["asset_concentration"]


def test_foreign_sovereign_debt_has_no_concentration_limit() -> None:
    book = HoldingsBook()
    book.apply(bal("30.7", "S", "7540", "1000", instrument="foreign_sovereign", issuer="Bundesrepublik"))
    found = findings(book, "30.7")
    assert not found["asset_concentration"] and not found["issuer_concentration"]


def test_asset_finding_cites_the_paragraph_and_a_smaller_fund_limit_can_be_set() -> None:
    book = _spread("money_market_fund", 200)  # 20%: within the default 50%
    assert not findings(book, "4d2")["asset_concentration"]
    small_fund = Limits(asset={"money_market_fund": (Decimal("0.10"), "Reg. 1.25(b)(3)(i)")})
    (f,) = [f for f in evaluate(book.pool("4d2", ON), small_fund) if f.rule == "asset_concentration"]
    assert f.active and "Reg. 1.25(b)(3)(i)" in f.summary and "Reg. 1.25(b)(3)(i)" in f.regulation


# Issuer-based limits, Reg. 1.25(b)(3)(ii); one test per limit.
def test_issuer_limit_single_agency_issuer_25_percent() -> None:
    book = HoldingsBook()
    book.apply_all(
        [bal("4d2", "CASH", "7070", "750"), bal("4d2", "A1", "7080", "250", instrument="us_agency", issuer="FNMA")]
    )
    assert not findings(book, "4d2")["issuer_concentration"]  # exactly 25%
    book.apply(bal("4d2", "A2", "7110", "1", instrument="us_agency", issuer="FNMA"))
    assert findings(book, "4d2")["issuer_concentration"]  # 251 of 1001


def test_issuer_limit_single_municipal_issuer_5_percent() -> None:
    book = HoldingsBook()
    book.apply_all(
        [
            bal("4d2", "CASH", "7070", "950"),
            bal("4d2", "M1", "7080", "50", instrument="municipal", issuer="State of Illinois"),
        ]
    )
    assert not findings(book, "4d2")["issuer_concentration"]  # exactly 5%
    book.apply(bal("4d2", "M2", "7110", "1", instrument="municipal", issuer="State of Illinois"))
    assert findings(book, "4d2")["issuer_concentration"]  # 51 of 1001


def test_issuer_limit_5_percent_is_one_issuer_across_cds_and_commercial_paper() -> None:
    bank = HoldingsBook()
    bank.apply_all(
        [
            bal("4d2", "CASH", "7070", "940"),
            bal("4d2", "CD", "7080", "30", instrument="certificate_of_deposit", issuer="BigBank"),
            bal("4d2", "CP", "7110", "30", instrument="commercial_paper", issuer="BigBank"),
        ]
    )
    assert findings(bank, "4d2")["issuer_concentration"]  # 60 of 1000 from one issuer across CDs and CP


def test_issuer_limit_single_money_market_fund_10_percent() -> None:
    book = HoldingsBook()
    book.apply_all(
        [
            bal("4d2", "CASH", "7070", "800"),
            bal("4d2", "F1", "7080", "100", instrument="money_market_fund", issuer="Govt Fund A"),
            bal("4d2", "F2", "7110", "100", instrument="money_market_fund", issuer="Govt Fund B"),
        ]
    )
    assert not findings(book, "4d2")["issuer_concentration"]  # 10% in each fund
    book.apply(bal("4d2", "F3", "7080", "101", instrument="money_market_fund", issuer="Govt Fund A"))
    (f,) = [f for f in evaluate(book.pool("4d2", ON)) if f.rule == "issuer_concentration"]
    assert f.active and "Govt Fund A" in f.summary and "Govt Fund B" not in f.summary


def test_an_unknown_issuer_over_two_limits_names_both() -> None:
    book = HoldingsBook()
    book.apply_all(
        [
            bal("4d2", "CASH", "7070", "700"),
            bal("4d2", "M", "7080", "100", instrument="municipal"),
            bal("4d2", "F", "7110", "200", instrument="money_market_fund"),
        ]
    )
    (f,) = [f for f in evaluate(book.pool("4d2", ON)) if f.rule == "issuer_concentration"]
    assert f.active and "> 5%" in f.summary and "> 10%" in f.summary


def test_investments_without_an_issuer_count_as_one_unknown_issuer() -> None:
    book = HoldingsBook()
    book.apply_all([bal("4d2", "CASH", "7070", "900"), bal("4d2", "M", "7080", "100", instrument="municipal")])
    (f,) = [f for f in evaluate(book.pool("4d2", ON)) if f.rule == "issuer_concentration"]
    assert f.active and "issuer not given" in f.summary


def test_customer_securities_are_not_in_the_concentration_base() -> None:
    book = HoldingsBook()
    book.apply_all(
        [
            bal("4d2", "CASH", "7070", "900"),
            bal("4d2", "CS", "7090", "1000", instrument="customer_securities"),
            bal("4d2", "A", "7080", "100", instrument="us_agency", issuer="FHLB"),
        ]
    )
    assert book.pool("4d2", ON).concentration_base == Decimal("1000.00")
    assert not findings(book, "4d2")["issuer_concentration"]  # 100 of 1000 (not of 2000): 10% < 25%


def test_average_maturity_over_two_years_fires_and_money_market_funds_count_one_day() -> None:
    book = HoldingsBook()
    book.apply(bal("4d2", "T", "7080", "100", instrument="us_government", maturity=ON + timedelta(days=1000)))
    pool = book.pool("4d2", ON)
    assert pool.average_maturity_days == Decimal("1000.00")
    assert findings(book, "4d2")["average_maturity"]
    book.apply(bal("4d2", "MMF", "7080", "100", instrument="money_market_fund", issuer="GovFund"))
    assert book.pool("4d2", ON).average_maturity_days == Decimal("500.50")
    assert not findings(book, "4d2")["average_maturity"]
    book.apply(bal("4d2", "X", "7110", "5", instrument="us_government"))
    assert book.pool("4d2", ON).without_maturity == Decimal("5.00")


# --- holdings: ordering, partitions --------------------------------------------------------------------------------


def _events(seed: int) -> list[EventBase]:
    rng = random.Random(seed)
    out: list[EventBase] = []
    for _ in range(200):
        dep = f"D{rng.randrange(12)}"
        inst = rng.choice(["cash", "us_government", "us_agency", "municipal", "other"])
        amount = str(rng.randrange(-50, 1000))
        when = T0 + timedelta(seconds=rng.randrange(50))
        issuer = None if inst == "cash" else rng.choice(["A", "B"])
        maturity = None if inst == "cash" else ON + timedelta(days=rng.randrange(900))
        out.append(
            bal(
                "4d2",
                dep,
                "7070" if inst == "cash" else "7080",
                amount,
                instrument=inst,
                at=when,
                issuer=issuer,
                maturity=maturity,
            )
        )
    return out


def test_replaying_duplicating_or_reordering_balances_gives_the_same_sums() -> None:
    events = _events(3)
    one, two = Holdings(), Holdings()
    for ev in events:
        one.apply(ev)  # type: ignore[arg-type]
    shuffled = events * 2
    random.Random(9).shuffle(shuffled)
    for ev in shuffled:
        two.apply(ev)  # type: ignore[arg-type]
    assert one.sums == two.sums


def test_partition_sums_add_up_to_the_whole() -> None:
    events = _events(5)
    whole, parts = Holdings(), [Holdings(), Holdings(), Holdings()]
    for ev in events:
        whole.apply(ev)  # type: ignore[arg-type]
        parts[hash(ev.depository) % 3].apply(ev)  # type: ignore[attr-defined,arg-type]
    merged = Holdings.merged(Holdings.from_partial(p.partial()) for p in parts)
    assert merged == whole.sums


# --- the report of investments -------------------------------------------------------------------------------------


def test_report_dates_the_15th_or_next_business_day_and_the_last_business_day() -> None:
    assert report_dates(2026, 11) == (date(2026, 11, 16), date(2026, 11, 30))  # the 15th is a Sunday
    assert report_dates(2026, 10) == (date(2026, 10, 15), date(2026, 10, 30))  # the 31st is a Saturday
    assert is_report_date(date(2026, 11, 16)) and not is_report_date(date(2026, 11, 17))
    assert report_deadline(date(2026, 10, 30)) == date(2026, 11, 2)


def test_report_overdue_when_not_submitted_by_the_next_business_day() -> None:
    day = date(2026, 10, 30)
    assert not any(f.active for f in overdue_findings(day, (), date(2026, 11, 2)))  # the deadline day itself
    late = overdue_findings(day, ("4d2",), date(2026, 11, 3))
    assert {f.segment: f.active for f in late} == {"4d2": False, "30.7": True, "4df": True}
    assert {f.rule for f in late} == {"investment_report_overdue"}


def test_a_month_end_report_equals_the_sum_of_the_depository_balances_by_instrument() -> None:
    events = _events(11)
    book = HoldingsBook()
    book.apply_all(events)
    report = investment_report(ON, book.pools(ON))
    latest: dict[tuple[str, str, str], DepositoryBalance] = {}
    for ev in sorted(events, key=lambda e: (e.as_of, e.event_id)):
        assert isinstance(ev, DepositoryBalance)
        latest[(ev.depository, ev.line, ev.currency)] = ev  # a balance is identified by depository, line, currency
    expected: dict[str, Decimal] = {}
    for ev in latest.values():
        expected[ev.instrument] = expected.get(ev.instrument, Decimal(0)) + ev.amount
    pool = report.pools["4d2"]
    got = {**{k: v for k, v in pool.rows.items() if v}, **pool.other}
    assert got == {k: v for k, v in expected.items() if v}
    assert pool.total == sum(ev.amount for ev in latest.values())
    assert sum(pool.depositories.values()) == pool.total
    data = to_json(report)
    assert data["pools"]["4d2"]["total"] == f"{pool.total:.2f}"
    assert "cash" in data["pools"]["4d2"]["cash_and_permitted_investments"]
    assert "REPORT OF INVESTMENTS as of 2026-10-30" in to_text(report)


# --- the depository reference file ---------------------------------------------------------------------------------

HEAD = (
    "bank_account,segment,depository,line,currency,location,kind,country,acknowledgment_letter,"
    "regulatory_capital_over_1bn\n"
)


def test_reference_file_gives_reference_events_for_the_settings_topic() -> None:
    text = HEAD + "1,4d2,A,7070,USD,us,bank,US,yes,\n,30.7,EUREX,7640,EUR,non_us,foreign_clearing_organization,DE,no,\n"
    parsed = load_reference_file(text, "r.csv")
    assert list(parsed.accounts) == ["1"]
    events = reference_events(parsed, as_of=T0)
    assert [(e.segment, e.depository, e.kind, e.acknowledgment_letter) for e in events] == [
        ("30.7", "EUREX", "foreign_clearing_organization", False),
        ("4d2", "A", "bank", True),
    ]
    assert [e.event_id for e in reference_events(parsed, as_of=T0)] == [e.event_id for e in events]


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        (HEAD + "1,4d2,A,7070,USD,us,bank,US,maybe,\n", "acknowledgment_letter", "not yes or no"),
        (HEAD + "1,4d2,A,7070,USD,us,castle,US,yes,\n", "kind", ""),
        (HEAD + "1,4d2,A,7070,USD,us,bank,USA,yes,\n", "country", ""),
        (HEAD + "1,4d2,A,7070,USD,us,bank,,yes,\n", "country", "is empty"),
        (HEAD + "1,30.7,L,7520,GBP,non_us,bank,GB,yes,\n", "regulatory_capital_over_1bn", "required"),
        (HEAD + "1,30.7,L,7520,GBP,us,bank,GB,yes,yes\n", "location", "7520"),
        (HEAD + ",4d2,A,7070,USD,us,,,,\n", "bank_account", "is empty"),
        (HEAD + "1,4d2,A,7070,USD,us,bank,US,yes,\n2,4d2,A,7070,EUR,us,bank,US,no,\n", "depository", "must agree"),
    ],
)
def test_a_bad_reference_row_is_named_by_line_and_field(text: str, field: str, reason: str) -> None:
    with pytest.raises(InputError) as exc:
        load_reference_file(text, "r.csv")
    assert exc.value.field.startswith("r.csv:") and exc.value.field.endswith(field) and reason in exc.value.reason


@pytest.mark.parametrize("seed", range(30))
def test_a_corrupted_reference_file_is_an_input_error_never_a_traceback(seed: int) -> None:
    good = (HEAD + "1,4d2,A,7070,USD,us,bank,US,yes,\n2,30.7,L,7520,GBP,non_us,bank,GB,yes,yes\n").encode()
    rng = random.Random(seed)
    data = bytearray(good)
    for _ in range(rng.randrange(1, 8)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    text = data.decode("latin-1") + ("\x00" if seed % 5 == 0 else "") + ('"' if seed % 7 == 0 else "")
    try:
        load_reference_file(text, "r.csv")
    except InputError as exc:
        assert exc.field.startswith("r.csv")


# --- the command line ----------------------------------------------------------------------------------------------


def test_segwatch_report_investments_offline(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from segwatch.cli import main

    later = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)  # after the close of 2026-10-30 (Chicago): left out
    events = [
        bal("4d2", "B", "7070", "100"),
        bal("4d2", "T", "7080", "50", instrument="us_government"),
        bal("4d2", "B", "7070", "999", at=later),
        ref("4d2", "T", ack=False),
    ]
    path = tmp_path / "events.ndjson"
    path.write_text("".join(ev.model_dump_json() + "\n" for ev in events))
    assert main(["report", "investments", str(path), "--date", "2026-10-30"]) == 0
    pool = json.loads(capsys.readouterr().out)["pools"]["4d2"]
    assert pool["cash_and_permitted_investments"]["cash"] == "100.00"
    assert pool["cash_and_permitted_investments"]["us_government"] == "50.00"
    assert pool["depositories"] == {"B": "100.00", "T": "50.00"}
    assert pool["unacknowledged_depositories"] == {"T": "50.00"}
    assert main(["report", "investments", str(path), "--date", "30/11/2026"]) == 2
    assert "--date" in capsys.readouterr().err
