"""Render statements: the JSON shape the CLI speaks, and the form's text layout like the filings."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from segwatch.core.catalogue import LINES, SEGMENTS, Side
from segwatch.core.money import fmt, fmt_form
from segwatch.core.statement import compute, is_summary, leaves_of

HEADINGS = {
    Side.REQUIREMENT: "Requirement",
    Side.FUNDS: "Funds held",
    Side.RESULT: "Excess",
}


def to_json(statements: Mapping[str, Mapping[str, Decimal]]) -> dict[str, dict[str, str]]:
    return {sid: {code: fmt(amount) for code, amount in lines.items()} for sid, lines in statements.items()}


def header_text(header: Mapping[str, str | None]) -> str:
    """The filing's header on one line: status, form, firm, end and submit dates."""

    def get(name: str) -> str:
        return header.get(name) or "?"

    return f"{get('status')}  {get('form')}  {get('firm')}  end date {get('end_date')}  submitted {get('submit_date')}"


def to_text(statements: Mapping[str, Mapping[str, Decimal]], width: int = 110) -> str:
    out: list[str] = []
    for sid, lines in statements.items():
        seg = SEGMENTS[sid]
        out.append(f"Daily Segregation - {seg.title}")
        out.append(f"[{seg.law}]")
        side = None
        for code, amount in lines.items():
            line = LINES[code]
            if line.side is not side:
                side = line.side
                out.append(f"\n  {HEADINGS[side].upper()}")
            figure = f"{fmt_form(amount)} [{code}]"
            label_width = width - 8 - len(figure) - 6
            wrapped = textwrap.wrap(line.label, label_width) or [""]
            for part in wrapped[:-1]:
                out.append(f"  {line.number:>4}. {part}" if part is wrapped[0] else f"        {part}")
            last = wrapped[-1]
            prefix = f"  {line.number:>4}. " if len(wrapped) == 1 else "        "
            out.append(f"{prefix}{last} {'.' * max(1, width - len(prefix) - len(last) - len(figure) - 2)} {figure}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# -- the statement as filed: whole dollars, the filing's layout and header ---------------------------------------

FILING_ORDER = ("30.7", "4d2", "4df")  # the order of the filings in shared/reference/
FILING_TITLES = {"30.7": "Secured Amounts", "4d2": "Segregation Statement", "4df": "Swaps Statement"}
FORM_NAME = "Daily Seg - FOCUS II"
# The 30.7 summary form numbers its three summary lines 1-3 and shows them first.
_SUMMARY_307 = {"7360": "1", "7370": "2", "7380": "3"}
_SUMMARY_LABELS = {
    "7360": "Amount to be set aside in separate section 30.7 accounts",
    "7370": "Total funds in separate section 30.7 accounts",
    "7380": "Excess (deficiency) - (subtract line 1 from line 2)",
}


@dataclass(frozen=True, slots=True)
class FilingHeader:
    """The header of each statement of a filing."""

    firm: str
    end_date: date  # the business day
    submit_date: date  # the day it is filed (the next business day)
    kind: str = "INITIAL"  # or AMENDMENT


def whole_dollars(segment_id: str, lines: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """The statement in whole dollars with every identity exact: the leaf lines rounded (half even), every
    derived line computed again from them. A 30.7 summary statement keeps its 7360 as a leaf."""
    summary = is_summary(segment_id, lines)
    leaves = leaves_of(segment_id, lines)
    rounded = {code: amount.quantize(Decimal(1), rounding=ROUND_HALF_EVEN) for code, amount in leaves.items()}
    out = compute(segment_id, rounded, summary=summary)
    # a target line not given (no target set) stays absent, and so does its over/under line
    seg = SEGMENTS[segment_id]
    if seg.target not in lines:
        out.pop(seg.target, None)
        out.pop(seg.over_target, None)
    return out


def _date(d: date) -> str:
    return f"{d.month}/{d.day}/{d.year}"


def _group(label: str) -> tuple[str, str]:
    head, sep, tail = label.partition(" - ")
    return (head, tail) if sep else (label, label)


def to_filing_text(statements: Mapping[str, Mapping[str, Decimal]], header: FilingHeader) -> str:
    """The filing as the DSRO receives it, in the markup of shared/reference/ (`<u>amount</u> [code]`), so
    `segwatch statement parse` reads it back. Amounts are rounded to whole dollars by `whole_dollars`."""
    out: list[str] = []
    for sid in (s for s in FILING_ORDER if s in statements):
        lines = whole_dollars(sid, statements[sid])
        summary = is_summary(sid, statements[sid])
        out += [
            "",
            f"**{header.kind}**",
            "",
            f"**End Date:{_date(header.end_date)}**",
            "",
            f"**Firm Name:{header.firm}**",
            "",
            f"**Form:{FORM_NAME}**",
            "",
            f"**Submit Date:{_date(header.submit_date)}**",
            "",
            f"**Daily Segregation - {FILING_TITLES[sid]}**",
            "",
            SEGMENTS[sid].title,
            "",
        ]
        codes = list(lines)
        if summary:
            codes = [c for c in _SUMMARY_307 if c in lines] + [c for c in codes if c not in _SUMMARY_307]
        top = ""
        side = None
        for code in codes:
            line = LINES[code]
            amount = f"<u>{fmt_form(lines[code])}</u> [{code}]"
            if summary and code in _SUMMARY_307:
                out.append(f"{_SUMMARY_307[code]}.\t{_SUMMARY_LABELS[code]}\t{amount}")
                continue
            if line.side is not side:
                if side is not None and line.side is Side.FUNDS:
                    out.append(
                        "FUNDS HELD" if sid != "30.7" else "FUNDS DEPOSITED IN SEPARATE REGULATION 30.7 ACCOUNTS"
                    )
                side = line.side
            number = line.number
            this_top, sub = number.rstrip("ABCDEabcde"), number[len(number.rstrip("ABCDEabcde")) :]
            group, rest = _group(line.label)
            if sub:
                if this_top != top:
                    out.append(f"{this_top}.\t{group}")
                out.append(f"\t{sub}. {rest}\t{amount}")
            elif this_top == top:
                out.append(f"\t{line.label}\t{amount}")
            else:
                out.append(f"{this_top}.\t{line.label}\t{amount}")
            top = this_top
    return "\n".join(out).lstrip("\n") + "\n"


def to_filing_json(statements: Mapping[str, Mapping[str, Decimal]], header: FilingHeader) -> dict[str, Any]:
    """The machine-readable twin of `to_filing_text`: the header, and each statement in whole dollars."""
    return {
        "kind": header.kind,
        "firm": header.firm,
        "end_date": header.end_date.isoformat(),
        "submit_date": header.submit_date.isoformat(),
        "form": FORM_NAME,
        "statements": {
            sid: {code: f"{amount:f}" for code, amount in whole_dollars(sid, statements[sid]).items()}
            for sid in FILING_ORDER
            if sid in statements
        },
    }
