"""The statement arithmetic: from leaf lines to every line of a segment, and checking a filed statement."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from segwatch.core.catalogue import EVALUATION_ORDER, LINES, ZERO, Side, Sign, Source, segment
from segwatch.core.money import parse_amount
from segwatch.errors import InputError

Lines = dict[str, Decimal]


def compute(segment_id: str, leaves: Mapping[str, Decimal], *, summary: bool = False) -> Lines:
    """Every line of the segment, in form order. Missing leaves count as zero, except the management target:
    a segment with no target set has no target lines (a finding, not a target of zero), so the target and
    excess-over-target lines are there only when the target line is given.

    `summary` is the older 30.7 summary form: 7360 is given (no requirement detail), 7370 is shown.
    """
    seg = segment(segment_id)
    untargeted = frozenset() if seg.target in leaves else frozenset({seg.target, seg.over_target})
    values: Lines = {ln.code: leaves.get(ln.code, ZERO) for ln in seg.leaves}
    for ln in EVALUATION_ORDER[segment_id]:
        if summary and ln.code == seg.requirement:
            values[ln.code] = leaves.get(ln.code, ZERO)
            continue
        assert ln.formula is not None
        values[ln.code] = ln.formula.evaluate(values)
    shown = summary_codes(segment_id) if summary else None
    return {
        ln.code: values[ln.code]
        for ln in seg.lines
        if ((shown is None and not ln.summary_only) or (shown is not None and ln.code in shown))
        and ln.code not in untargeted
    }


def summary_codes(segment_id: str) -> frozenset[str]:
    """Lines a summary-form 30.7 statement shows: the summary, the funds detail and the target."""
    seg = segment(segment_id)
    return frozenset(ln.code for ln in seg.lines if ln.side is not Side.REQUIREMENT or ln.code == seg.requirement)


def is_summary(segment_id: str, given: Mapping[str, object]) -> bool:
    """A 30.7 statement that gives 7360 but none of the requirement detail behind it."""
    seg = segment(segment_id)
    if segment_id != "30.7" or seg.requirement not in given:
        return False
    detail = {ln.code for ln in seg.lines if ln.side is Side.REQUIREMENT and ln.code != seg.requirement}
    return not (detail & set(given))


def parse_statement(segment_id: str, raw: Mapping[str, object]) -> Lines:
    """Validate one segment's `{line code: amount}` map: known codes of this segment, exact amounts, signs."""
    try:
        seg = segment(segment_id)
    except KeyError as exc:
        raise InputError(f"segment {segment_id!r}", str(exc.args[0])) from None
    if not isinstance(raw, Mapping):
        raise InputError(segment_id, f"expected a map of line code to amount, got {type(raw).__name__}")
    out: Lines = {}
    for code, value in raw.items():
        where = f"{segment_id}.{code}"
        line = LINES.get(str(code))
        if line is None:
            raise InputError(where, "unknown line code")
        if line.segment != seg.id:
            raise InputError(where, f"line {code} belongs to segment {line.segment}, not {seg.id}")
        amount = parse_amount(value, where)
        check_sign(line.code, amount, where)
        out[line.code] = amount
    return out


def check_sign(code: str, amount: Decimal, where: str) -> None:
    sign = LINES[code].sign
    if sign is Sign.NONPOSITIVE and amount > 0:
        raise InputError(where, f"line {code} ({LINES[code].label}) is never positive, got {amount}")
    if sign is Sign.NONNEGATIVE and amount < 0:
        raise InputError(where, f"line {code} ({LINES[code].label}) is never negative, got {amount}")


def leaves_of(segment_id: str, given: Mapping[str, Decimal]) -> Lines:
    summary = is_summary(segment_id, given)
    seg = segment(segment_id)
    keep = {ln.code for ln in seg.leaves} | ({seg.requirement} if summary else set())
    return {code: amount for code, amount in given.items() if code in keep}


@dataclass(frozen=True, slots=True)
class Mismatch:
    segment: str
    code: str
    given: Decimal
    computed: Decimal

    def __str__(self) -> str:
        ln = LINES[self.code]
        return (
            f"{self.segment} line {ln.number} [{self.code}]: filed {self.given:,} but computes to "
            f"{self.computed:,} (difference {self.computed - self.given:,})"
        )


def complete(segment_id: str, given: Mapping[str, Decimal]) -> Lines:
    """The complete statement from whatever lines were given: leaves are taken, derived lines recomputed."""
    return compute(segment_id, leaves_of(segment_id, given), summary=is_summary(segment_id, given))


def derived_given(segment_id: str, given: Mapping[str, Decimal]) -> list[str]:
    """The derived lines `given` states that its complete statement recomputes."""
    computed = complete(segment_id, given)
    taken = {segment(segment_id).requirement} if is_summary(segment_id, given) else set()
    return [code for code in given if LINES[code].source is Source.DERIVED and code in computed and code not in taken]


def check(segment_id: str, given: Mapping[str, Decimal]) -> list[Mismatch]:
    """Every derived line present in `given` that differs from its recomputation."""
    computed = complete(segment_id, given)
    return [
        Mismatch(segment_id, code, given[code], computed[code])
        for code in derived_given(segment_id, given)
        if computed[code] != given[code]
    ]
