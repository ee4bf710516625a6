"""Named edge cases of the incremental book."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

from schemas import AccountBalance, DepositoryBalance, FxRate
from schemas.types import SegmentId
from segwatch.core.book import Book

D = Decimal
T0 = datetime(2026, 11, 20, 15, tzinfo=UTC)


def acct(
    n: int,
    cash: str,
    *,
    account: str = "C1",
    minutes: int = 0,
    offset: str = "0",
    segment: SegmentId = "4d2",
    currency: str = "USD",
    securities: str | None = None,
) -> AccountBalance:
    """An account balance; its securities default to its haircut value (`offset`)."""
    return AccountBalance(
        event_id=f"e{n}",
        source="t",
        as_of=T0 + timedelta(minutes=minutes),
        segment=segment,
        account=account,
        currency=currency,
        cash=D(cash),
        securities=D(offset if securities is None else securities),
        unrealized=D(0),
        long_options=D(0),
        short_options=D(0),
        offset_securities=D(offset),
    )


def lines(book: Book, sid: str = "4d2") -> dict[str, Decimal]:
    return book.statement()[sid]


def test_an_account_flipping_from_equity_to_deficit_and_back() -> None:
    book = Book()
    book.apply(acct(1, "100", minutes=0))
    assert (lines(book)["7040"], lines(book)["7045"], lines(book)["7060"]) == (D(100), D(0), D(100))
    book.apply(acct(2, "-30", minutes=1))
    assert (lines(book)["7040"], lines(book)["7045"], lines(book)["7060"]) == (D(-30), D(30), D(0))
    book.apply(acct(3, "20", minutes=2))
    assert (lines(book)["7040"], lines(book)["7045"], lines(book)["7060"]) == (D(20), D(0), D(20))


def test_offset_larger_than_the_deficit_is_capped_at_the_deficit() -> None:
    book = Book()
    book.apply(acct(1, "-30", offset="1000"))
    assert (lines(book)["7045"], lines(book)["7047"], lines(book)["7050"]) == (D(30), D(-30), D(0))


def test_offset_never_crosses_accounts() -> None:
    book = Book()
    book.apply(acct(1, "-30", account="C1", offset="0"))
    book.apply(acct(2, "50", account="C2", offset="1000"))  # C2 has securities but no deficit
    assert (lines(book)["7045"], lines(book)["7047"]) == (D(30), D(0))


def test_an_older_balance_changes_nothing() -> None:
    book = Book()
    book.apply(acct(2, "100", minutes=5))
    assert book.apply(acct(1, "999", minutes=1)) == frozenset()
    assert lines(book)["7010"] == D(100)


def test_a_duplicate_changes_nothing_and_does_not_bump_the_version() -> None:
    book = Book()
    book.apply(acct(1, "100"))
    version = book.versions["4d2"]
    assert book.apply(acct(1, "100")) == frozenset()
    assert book.versions["4d2"] == version


def test_equal_as_of_is_decided_by_event_id_whatever_the_arrival_order() -> None:
    a, b = acct(1, "10"), acct(2, "20")
    first, second = Book(), Book()
    first.apply_all([a, b])
    second.apply_all([b, a])
    assert lines(first)["7010"] == lines(second)["7010"] == D(20)


def test_zero_and_negative_balances() -> None:
    book = Book()
    book.apply(acct(1, "0", account="Z"))
    book.apply(acct(2, "-0.01", account="N"))
    assert (lines(book)["7010"], lines(book)["7045"], lines(book)["7060"]) == (D("-0.01"), D("0.01"), D(0))
    assert book.aggregate.segments["4d2"].accounts == 2


def test_ten_trillion_dollar_amounts_with_cents() -> None:
    book = Book()
    book.apply(acct(1, "9999999999999.99", account="A"))
    book.apply(acct(2, "9999999999999.99", account="B"))
    book.apply(
        DepositoryBalance(
            event_id="d",
            source="t",
            as_of=T0,
            segment="4d2",
            depository="BANK",
            line="7070",
            currency="USD",
            location="us",
            amount=D("9999999999999.99"),
        )
    )
    assert lines(book)["7060"] == D("19999999999999.98")
    assert lines(book)["7190"] == D("-9999999999999.99")


def test_a_depository_moving_money_to_another_line_restates_the_old_line_with_a_zero() -> None:
    book = Book()
    dco1 = partial(DepositoryBalance, source="t", segment="4d2", depository="DCO1", currency="USD", location="us")
    book.apply(dco1(event_id="1", as_of=T0, line="7100", amount=D(50)))
    book.apply(dco1(event_id="2", as_of=T0 + timedelta(1), line="7120", amount=D(70)))
    # Each line of the account is a balance of its own: the 7100 balance stands until restated.
    assert (lines(book)["7100"], lines(book)["7120"], lines(book)["7180"]) == (D(50), D(70), D(120))
    book.apply(dco1(event_id="3", as_of=T0 + timedelta(1), line="7100", amount=D(0)))
    assert (lines(book)["7100"], lines(book)["7120"], lines(book)["7180"]) == (D(0), D(70), D(70))


def test_per_currency_figures_and_fx_conversion() -> None:
    book = Book()
    book.apply(acct(1, "100.00", currency="EUR"))
    figures = book.figures("4d2")
    assert figures.missing_fx == ["EUR"]
    assert figures.lines["7010"] == D(0)
    assert figures.by_currency["EUR"]["7010"] == D(100)
    book.apply(FxRate(event_id="fx", source="t", as_of=T0, currency="EUR", usd_per_unit=D("1.085")))
    figures = book.figures("4d2")
    assert figures.missing_fx == []
    assert figures.lines["7010"] == D("108.50")


def test_fx_rounds_half_even_to_the_cent_on_each_currency_total() -> None:
    book = Book()
    book.apply(acct(1, "0.01", account="A", currency="EUR"))
    book.apply(acct(2, "0.01", account="B", currency="EUR"))
    book.apply(FxRate(event_id="fx", source="t", as_of=T0, currency="EUR", usd_per_unit=D("1.25")))
    assert lines(book)["7010"] == D("0.02")  # 0.025 rounds to the even cent
