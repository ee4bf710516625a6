from decimal import Decimal

import pytest

from segwatch.core import statement
from segwatch.errors import InputError

D = Decimal


def test_missing_leaves_count_as_zero_and_every_line_is_present() -> None:
    lines = statement.compute("4d2", {"7010": D("100.25")})
    assert lines["7040"] == lines["7060"] == D("100.25")
    assert lines["7190"] == D("-100.25")
    assert len(lines) == 25  # no target given: no target lines (7194, 7198)


def test_deficits_add_back_and_offsets_reduce_the_requirement() -> None:
    lines = statement.compute("4df", {"8500": D(1000), "8560": D(300), "8570": D(-120)})
    assert lines["8580"] == D(180)
    assert lines["8590"] == D(1180)


@pytest.mark.parametrize(
    ("foreign", "expected"),
    [(D(500), D(500)), (D(50), D(100)), (D(100), D(100))],
    ids=["7305-above-7355", "7305-below-7355", "7305-equal-7355"],
)
def test_7360_is_the_greater_of_7305_and_7355(foreign: Decimal, expected: Decimal) -> None:
    lines = statement.compute("30.7", {"7305": foreign, "7315": D(100)})
    assert lines["7355"] == D(100)
    assert lines["7360"] == expected
    assert lines["7380"] == -expected


def test_negative_net_equity_still_requires_at_least_the_foreign_requirement_of_zero() -> None:
    lines = statement.compute("30.7", {"7315": D(-40)})
    assert lines["7355"] == D(-40)
    assert lines["7360"] == D(0)


def test_target_lines_give_excess_over_target() -> None:
    lines = statement.compute("4d2", {"7070": D(1000), "7010": D(600), "7194": D(500)})
    assert (lines["7190"], lines["7198"]) == (D(400), D(-100))


def test_amounts_of_ten_trillion_dollars_with_cents_stay_exact() -> None:
    big = D("9999999999999.99")
    lines = statement.compute("4d2", {"7010": big, "7020": big, "7070": big, "7100": D("0.01")})
    assert lines["7060"] == D("19999999999999.98")
    assert lines["7190"] == D("-9999999999999.98")


def test_summary_form_is_only_30_7_with_7360_and_no_detail() -> None:
    assert statement.is_summary("30.7", {"7360": D(1), "7500": D(2)})
    assert not statement.is_summary("30.7", {"7360": D(1), "7315": D(1)})
    assert not statement.is_summary("4d2", {"7060": D(1)})


def test_check_ignores_leaves_and_reports_derived_mismatches() -> None:
    given = {"7010": D(10), "7040": D(11), "7060": D(10)}
    [m] = statement.check("4d2", given)
    assert (m.code, m.given, m.computed) == ("7040", D(11), D(10))
    assert "[7040]" in str(m) and "difference -1" in str(m)


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        ({"7999": "1"}, "4d2.7999", "unknown line code"),
        ({"7315": "1"}, "4d2.7315", "belongs to segment 30.7"),
        ({"7010": "12,5"}, "4d2.7010", "not a decimal amount"),
        ({"7010": "NaN"}, "4d2.7010", "not a finite amount"),
        ({"7010": "Infinity"}, "4d2.7010", "not a finite amount"),
        ({"7010": 1.5}, "4d2.7010", "binary floating-point"),
        ({"7010": "1.001"}, "4d2.7010", "fractions of a cent"),
        ({"7010": "1e16"}, "4d2.7010", "out of range"),
        ({"7010": True}, "4d2.7010", "boolean"),
        ({"7033": "5"}, "4d2.7033", "never positive"),
        ({"7045": "-5"}, "4d2.7045", "never negative"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_statement_input_names_the_field_and_the_reason(raw: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(InputError) as err:
        statement.parse_statement("4d2", raw)
    assert err.value.field == field
    assert reason in err.value.reason


def test_unknown_segment_is_rejected() -> None:
    with pytest.raises(InputError, match="unknown segment"):
        statement.parse_statement("4d3", {})


def test_cents_survive_parsing() -> None:
    assert statement.parse_statement("4d2", {"7010": "-0.01", "7020": 5})["7010"] == D("-0.01")
