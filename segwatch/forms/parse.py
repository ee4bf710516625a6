"""Read a Daily Seg FOCUS II filing (text with light markup) into `{segment: {line code: amount}}`.

Handles the 2013-era 4d(2) codes for lines 11B, 11C and 12 (7150, 7160, 7170, moved in later forms) and
the older 30.7 summary form. Each `[code]` takes the amount printed just before it.
"""

from __future__ import annotations

import re
from decimal import Decimal

from segwatch.core.catalogue import LINES
from segwatch.errors import InputError

# "<u>5,180,390,001</u></b> [7010]" and "<u>0 0</u> [8715]" (unlabelled sub-amounts, then the line's own).
_AMOUNT_CODE = re.compile(r"<u>([^<]*)</u>\s*(?:</b>\s*)?\[(\d{4})\]")
_TOP = re.compile(r"^\s*(\d{1,2})\.\s")
_SUB = re.compile(r"^\s*([A-Ea-e])\.\s")
_NUMBER = re.compile(r"^\(?-?[0-9,]*[0-9][0-9,]*(?:\.[0-9]+)?\)?$")  # ASCII digits, at least one

# Lines 11B, 11C and 12 of the 4d(2) statement, by their position on the form.
_4D2_BY_POSITION = {"11B": "7160", "11C": "7170", "12": "7150"}


def parse_amount_text(text: str, where: str) -> Decimal:
    token = text.split()[-1] if text.split() else ""
    if not _NUMBER.match(token) or len(token) > 40:
        raise InputError(where, f"{text[:40]!r} is not an amount")
    negative = token.startswith("(") or token.startswith("-")
    digits = token.strip("()-").replace(",", "")
    amount = Decimal(digits)
    return -amount if negative else amount


def parse_filing(text: str) -> dict[str, dict[str, Decimal]]:
    out: dict[str, dict[str, Decimal]] = {}
    top, sub = "", ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"</?b>|\*\*", "", raw)
        if m := _TOP.match(line):
            top, sub = m.group(1), ""
        elif m := _SUB.match(line):
            sub = m.group(1).upper()
        for m in _AMOUNT_CODE.finditer(raw):
            code = m.group(2)
            where = f"line {number} [{code}]"
            if code not in LINES:
                raise InputError(where, "unknown line code")
            if code in _4D2_BY_POSITION.values():
                code = _4D2_BY_POSITION.get(f"{top}{sub}", code)
            segment_id = LINES[code].segment
            lines = out.setdefault(segment_id, {})
            if code in lines:
                raise InputError(where, f"line {code} appears twice")
            lines[code] = parse_amount_text(m.group(1), where)
    if not out:
        raise InputError("filing", "no `<u>amount</u> [code]` lines found")
    return {sid: out[sid] for sid in ("4d2", "30.7", "4df") if sid in out}
