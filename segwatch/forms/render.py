"""Render statements: the JSON shape the CLI speaks, and the form's text layout like the filings."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from decimal import Decimal

from segwatch.core.catalogue import LINES, SEGMENTS, Side
from segwatch.core.money import fmt, fmt_form

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

    return (f"{get('status')}  {get('form')}  {get('firm')}  end date {get('end_date')}"
            f"  submitted {get('submit_date')}")


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
