from segwatch.core.catalogue import (
    EVALUATION_ORDER,
    LINES,
    SEGMENTS,
    Side,
    Sign,
    Source,
)


def test_every_segment_names_its_key_lines_from_domain() -> None:
    keys = {s.id: (s.requirement, s.funds, s.excess, s.target, s.over_target) for s in SEGMENTS.values()}
    assert keys == {
        "4d2": ("7060", "7180", "7190", "7194", "7198"),
        "30.7": ("7360", "7770", "7380", "7780", "7785"),
        "4df": ("8590", "8720", "8730", "8760", "8770"),
    }


def test_line_codes_are_unique_across_segments() -> None:
    codes = [ln.code for s in SEGMENTS.values() for ln in s.lines]
    assert len(codes) == len(set(codes)) == len(LINES)


def test_formulas_only_reference_lines_of_their_own_segment() -> None:
    for line in LINES.values():
        if line.formula:
            for code in line.formula.codes:
                assert LINES[code].segment == line.segment, (line.code, code)


def test_every_derived_line_is_evaluated_after_its_inputs() -> None:
    for sid, order in EVALUATION_ORDER.items():
        seen = {ln.code for ln in SEGMENTS[sid].leaves}
        for line in order:
            assert line.formula is not None
            assert set(line.formula.codes) <= seen
            seen.add(line.code)
        assert seen == {ln.code for ln in SEGMENTS[sid].lines}


def test_ledger_fields_map_to_ledger_leaves_of_the_requirement_side() -> None:
    for seg in SEGMENTS.values():
        for field, code in seg.ledger.items():
            line = LINES[code]
            assert (line.segment, line.source, line.side, line.is_leaf) == (
                seg.id,
                Source.LEDGER,
                Side.REQUIREMENT,
                True,
            ), field


def test_settings_are_the_targets_and_the_foreign_requirement() -> None:
    assert {c for s in SEGMENTS.values() for c in s.setting_codes} == {"7194", "7780", "8760", "7305"}


def test_the_domain_sign_rules_are_declared() -> None:
    assert {c for c, ln in LINES.items() if ln.sign is Sign.NONPOSITIVE} >= {
        "7033",
        "7047",
        "7337",
        "7352",
        "8540",
        "8570",
    }
    assert {c for c, ln in LINES.items() if ln.sign is Sign.NONNEGATIVE} >= {"7045", "7351", "8560"}


def test_formula_text_reads_like_the_domain() -> None:
    assert LINES["7060"].formula.text() == "7040 + 7050"  # type: ignore[union-attr]
    assert LINES["7190"].formula.text() == "7180 - 7060"  # type: ignore[union-attr]
    assert LINES["7360"].formula.text() == "greater of 7305 and 7355"  # type: ignore[union-attr]


def test_funds_total_sums_every_funds_leaf_of_4d2_and_4df() -> None:
    for sid in ("4d2", "4df"):
        seg = SEGMENTS[sid]
        total = LINES[seg.funds].formula
        assert total is not None
        assert set(total.codes) == seg.depository_codes
