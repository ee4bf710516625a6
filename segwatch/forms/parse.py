"""Read a Daily Seg FOCUS II filing (text with light markup) into its header and `{segment: {line code: amount}}`.

Every amount the filing prints legibly is read, whatever the markup: `<b>`, `<u>`, any other tag or none,
nested, misnested, wrapped around the code or splitting a number; `**bold**`; HTML entities; codes as
`[7010]` or `(7010)`; extraction noise such as a label glued to its amount ("Cash5,180,390,001"), an amount
and its code on separate lines, CRLF, non-breaking spaces, a Unicode minus. Each code takes the amount
printed immediately before it (only blanks between): a code with none, or a line of the form with no code
at all, is **missing**, and the caller decides (`statement parse` exits 1 naming each one; `--partial`
accepts). An amount is never taken from a label's own words.

Form versions: the 2013-era 4d(2) codes for lines 11B, 11C and 12 (7150, 7160, 7170; moved in later forms)
map to today's 7160, 7170, 7150 — by their printed order when all three are there, else by the line number
printed beside them; the older 30.7 summary form (7360, 7370, 7380 and the funds detail) has no requirement
detail; a statement with no "Management Target" text has no target lines (the 2013 form had none).
"""

from __future__ import annotations

import html
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from decimal import Decimal

from segwatch.core import statement
from segwatch.core.catalogue import LINES, SEGMENT_IDS, SEGMENTS
from segwatch.errors import InputError

HEADER_FIELDS = ("status", "form", "firm", "end_date", "submit_date")

# A line code: [7010], ( 7010 ). Brackets are the form's own notation; parentheses only count for a known code.
_CODE = re.compile(r"([\[(])[ \t]*(\d{4})[ \t]*([\])])", re.ASCII)
# The amount printed just before a code, anchored at the end of the text before it: 5,180,390,001 / -1,515 /
# (1,515) / 14 / 1234.50, possibly glued to the label ("Cash5,180"); grouped digits are preferred, so a label's
# trailing digit glued to a grouped amount ("line 8194,525,781") is not taken as part of it.
_AMOUNT = re.compile(
    r"(?P<minus>-[ \t]*)?(?P<open>\()?\$?[ \t]*(?P<digits>\d{1,3}(?:,\d{3})+|\d+)(?P<cents>\.\d{1,2})?"
    r"(?P<close>\))?\s*$",
    re.ASCII,  # ASCII digits only: a filing's amounts are never in another script's digits
)
_TOP = re.compile(r"^\s*(\d{1,2})\.(?:\s|$)")
_SUB = re.compile(r"^\s*([A-Ea-e])\.(?:\s|$)")
_SPACES = re.compile(r"\s+")
_DATE = r"(\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2})"
_HEADER = {
    "status": re.compile(r"\b(INITIAL|AMENDMENT|AMENDED)\b"),
    "form": re.compile(
        r"Form\s*:\s*(.+?)\s*(?=Submit\s*Date|End\s*Date|Firm\s*Name|Daily\s+Segregation\b|\n|$)", re.IGNORECASE
    ),
    "firm": re.compile(r"Firm\s*Name\s*:\s*(.+?)\s*(?=Form\s*:|Submit\s*Date|End\s*Date|\n|$)", re.IGNORECASE),
    "end_date": re.compile(r"End\s*Date\s*:\s*" + _DATE, re.IGNORECASE),
    "submit_date": re.compile(r"Submit\s*Date\s*:\s*" + _DATE, re.IGNORECASE),
}
_TITLES = {
    "30.7": re.compile(r"Daily\s+Segregation\s*-\s*Secured\s+Amounts", re.IGNORECASE),
    "4d2": re.compile(r"Daily\s+Segregation\s*-\s*Segregation\s+Statement", re.IGNORECASE),
    "4df": re.compile(r"Daily\s+Segregation\s*-\s*Swaps\s+Statement", re.IGNORECASE),
}
_TARGET_TEXT = re.compile(r"management\s+target", re.IGNORECASE)
_SUMMARY_TEXT = re.compile(r"secured\s+amounts\s*-\s*summary", re.IGNORECASE)

# Lines 11B, 11C and 12 of the 4d(2) statement, by their position on the form (today's codes).
_4D2_BY_POSITION = {"11B": "7160", "11C": "7170", "12": "7150"}
_4D2_MOVED = ("7160", "7170", "7150")  # in printed order


@dataclass(frozen=True, slots=True)
class Missing:
    """A line of the form (or a header field) the filing does not legibly state."""

    segment: str | None  # None: the filing's header
    code: str | None
    reason: str

    def __str__(self) -> str:
        if self.segment is None:
            return f"header: {self.reason}"
        if self.code is None:
            return f"{self.segment}: {self.reason}"
        return f"{self.segment} line {LINES[self.code].number} [{self.code}]: {self.reason}"


@dataclass(slots=True)
class Filing:
    header: dict[str, str | None]
    statements: dict[str, dict[str, Decimal]]
    missing: list[Missing] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


def clean(text: str) -> str:
    """The filing's text without markup: tags and ** removed (a tag may split a number), entities decoded,
    every kind of blank a plain space or newline, a Unicode minus or dash before a digit a hyphen."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"<[^<>\n]*>", "", text)
    text = text.replace("**", "").replace("__", "")
    text = html.unescape(text)
    text = re.sub(r"[\u00a0\u2000-\u200b\u202f\u205f\u3000]", " ", text)
    return re.sub(r"[\u2212\u2012\u2013\u2014\ufe63\uff0d](?=\s*\(?\$?\d)", "-", text)


def amount_before(text: str) -> Decimal | None:
    """The amount printed at the very end of `text`, or None when there is none."""
    m = _AMOUNT.search(text)
    if m is None or bool(m["open"]) != bool(m["close"]):
        return None  # no number there, or a label's "(... line 5)"
    if text[: m.start("digits")].endswith((",", ".")):
        return None  # the tail of a malformed number ("1,2,3", "12,34", "1.234.56"): not legible, never a part
    amount = Decimal(m["digits"].replace(",", "") + (m["cents"] or ""))
    return -amount if (m["minus"] or m["open"]) else amount


@dataclass(frozen=True, slots=True)
class _Code:
    code: str  # as printed
    start: int
    end: int
    amount: Decimal | None


def _codes(text: str) -> list[_Code]:
    out: list[_Code] = []
    previous = 0
    for m in _CODE.finditer(text):
        opener, code, closer = m.group(1), m.group(2), m.group(3)
        if (opener == "[") != (closer == "]"):
            continue
        before = text[previous : m.start()]
        if opener == "(":
            # "(7070)" is a code only when it is a known one printed right after an amount.
            if code not in LINES or amount_before(before) is None:
                continue
        elif code not in LINES:
            line = text.count("\n", 0, m.start()) + 1
            raise InputError(f"line {line} [{code}]", "unknown line code")
        out.append(_Code(code, m.start(), m.end(), amount_before(before)))
        previous = m.end()
    return out


def _positions(text: str) -> tuple[list[int], list[str]]:
    """The start of each text line and the form line number ("11B", "12") in force on it."""
    starts, where = [], []
    top, sub, offset = "", "", 0
    for raw in text.split("\n"):
        if m := _TOP.match(raw):
            top, sub = m.group(1), ""
        elif m := _SUB.match(raw):
            sub = m.group(1).upper()
        starts.append(offset)
        where.append(f"{top}{sub}")
        offset += len(raw) + 1
    return starts, where


def _moved_4d2(codes: list[_Code], text: str) -> dict[int, str]:
    """Today's code for each 4d(2) line 11B, 11C, 12 found (by index into `codes`)."""
    moved = [i for i, c in enumerate(codes) if c.code in _4D2_MOVED]
    if len(moved) == 3:
        return {i: code for i, code in zip(moved, _4D2_MOVED, strict=True)}
    starts, where = _positions(text)
    out = {}
    for i in moved:
        position = where[bisect_right(starts, codes[i].start) - 1]
        out[i] = _4D2_BY_POSITION.get(position, codes[i].code)
    return out


def _header(text: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name, pattern in _HEADER.items():
        m = pattern.search(text)
        value = _SPACES.sub(" ", m.group(1)).strip() if m else None
        if value and name.endswith("_date"):
            value = _iso(value)
        elif value and name == "status":
            value = "AMENDMENT" if value.upper().startswith("AMEND") else "INITIAL"
        out[name] = value or None
    return out


def _iso(date: str) -> str:
    if "/" not in date:
        return date
    month, day, year = (int(p) for p in date.split("/"))
    return f"{year:04d}-{month:02d}-{day:02d}"


def _expected(segment_id: str, found: set[str], section: str) -> set[str]:
    seg = SEGMENTS[segment_id]
    detail = {ln.code for ln in seg.lines if ln.side.value == "requirement" and ln.code != seg.requirement}
    summary = segment_id == "30.7" and ("7370" in found or (_SUMMARY_TEXT.search(section) and not detail & found))
    if summary:
        expected = set(statement.summary_codes(segment_id))
    else:
        expected = {ln.code for ln in seg.lines if not ln.summary_only}
    if not _TARGET_TEXT.search(section) and not {seg.target, seg.over_target} & found:
        expected -= {seg.target, seg.over_target}
    return expected


def read_filing(text: str) -> Filing:
    """The filing's header and statements, and every line of the form it does not legibly state."""
    text = clean(text)
    codes = _codes(text)
    if not codes:
        raise InputError("filing", "no line codes like `[7010]` found: not a Daily Seg FOCUS II filing")
    moved = _moved_4d2([c for c in codes if LINES[c.code].segment == "4d2"], text)
    statements: dict[str, dict[str, Decimal]] = {}
    missing: list[Missing] = []
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    index_4d2 = -1
    for c in codes:
        segment_id = LINES[c.code].segment
        code = c.code
        if segment_id == "4d2":
            index_4d2 += 1
            code = moved.get(index_4d2, code)
        first.setdefault(segment_id, c.start)
        last[segment_id] = c.end
        lines = statements.setdefault(segment_id, {})
        if code in lines or any(m.code == code and m.segment == segment_id for m in missing):
            line = text.count("\n", 0, c.start) + 1
            raise InputError(f"line {line} [{c.code}]", f"line {code} appears twice")
        if c.amount is None:
            missing.append(Missing(segment_id, code, "no legible amount printed before the code"))
        else:
            lines[code] = c.amount

    # Each statement's own text: from the end of the previous statement's last code to the end of its own.
    order = sorted(first, key=first.__getitem__)
    bounds = {sid: (last[order[i - 1]] if i else 0, last[sid]) for i, sid in enumerate(order)}
    headers = {sid: _header(text[lo : first[sid]]) for sid, (lo, _) in bounds.items()}
    for sid in SEGMENT_IDS:
        if sid not in statements:
            titled = bool(_TITLES[sid].search(text))
            missing.append(
                Missing(sid, None, "statement printed without any line code" if titled else "statement not found")
            )
            continue
        lo, hi = bounds[sid]
        found = set(statements[sid]) | {m.code for m in missing if m.segment == sid and m.code}
        for code in sorted(_expected(sid, found, text[lo:hi]) - found, key=_form_order):
            missing.append(Missing(sid, code, "not found"))

    header: dict[str, str | None] = {}
    for name in HEADER_FIELDS:
        values = {v for h in headers.values() if (v := h[name]) is not None}
        if len(values) > 1:
            raise InputError(f"header {name}", f"the statements disagree: {', '.join(sorted(values))}")
        header[name] = values.pop() if values else None
        if header[name] is None:
            missing.append(Missing(None, None, f"{name.replace('_', ' ')} not found"))
    ordered = {sid: statements[sid] for sid in SEGMENT_IDS if sid in statements}
    missing.sort(
        key=lambda m: (SEGMENT_IDS.index(m.segment) if m.segment else -1, _form_order(m.code) if m.code else -1)
    )
    return Filing(header, ordered, missing)


def _form_order(code: str) -> int:
    return [ln.code for ln in SEGMENTS[LINES[code].segment].lines].index(code)


def parse_filing(text: str) -> dict[str, dict[str, Decimal]]:
    """The statements of a complete filing; a line of the form it does not state is an error naming it."""
    filing = read_filing(text)
    if filing.missing:
        raise InputError("filing", "; ".join(str(m) for m in filing.missing))
    return filing.statements
