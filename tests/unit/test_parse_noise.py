"""`statement parse` on real filings made noisy: every legible amount is read, nothing is lost silently.

The noisy variants are generated here from the reference filings' own text by seeded transformations of
what filings suffer in the wild: other or no markup (nested, misnested, wrapped around the code, splitting
a number), `(7070)` codes, a label glued to its amount, an amount and its code on separate lines, `**bold**`
header fields, entities, non-breaking spaces, a Unicode minus, accounting parentheses, CRLF. Each must parse
to exactly the clean parse: header and every line.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from segwatch.core.catalogue import LINES, SEGMENTS
from segwatch.errors import InputError
from segwatch.forms.parse import parse_filing, read_filing
from tests.conftest import REFERENCE

FILINGS = {
    "2017-11-06": REFERENCE / "000_a00a1cb97de91a10.txt",
    "2013-07-25": REFERENCE / "001_642cfe604d8a0659.txt",
}

# One printed amount and its code: optional <b>, <u>amount</u>, optional </b>, blanks, [code].
_ENTRY = re.compile(r"(?:<b>)?<u>([^<]*)</u>(?:</b>)?([ \t]*)\[(\d{4})\]")


def _amount_markup(rng: random.Random, amount: str, blank: str, code: str) -> str:
    """One way of printing `amount [code]` that a reader can still read."""
    shown = amount
    if shown.startswith("-") and rng.random() < 0.3:
        shown = f"({shown[1:]})"  # accounting negative
    elif shown.startswith("-") and rng.random() < 0.3:
        shown = "\u2212" + shown[1:]  # the Unicode minus PDF extraction produces
    if "," in shown and rng.random() < 0.2:
        cut = shown.index(",") + 1  # a tag splitting the number
        shown = f"{shown[:cut]}</u><u>{shown[cut:]}"
    code_text = rng.choice([f"[{code}]", f"({code})", f"[ {code} ]", f"[{code}]"])
    blank = rng.choice([blank or " ", " ", "\t", "  ", "\u00a0", "\n", "&nbsp;"])
    return rng.choice(
        [
            f"{shown}{blank}{code_text}",
            f"<u>{shown}</u>{blank}{code_text}",
            f"<b><u>{shown}</u></b>{blank}{code_text}",
            f"<u><b>{shown}</b></u>{blank}{code_text}",
            f"<b><u>{shown}</b></u>{blank}{code_text}",  # misnested
            f"<b><u>{shown}</u>{blank}{code_text}</b>",  # the markup wraps the code too
            f'<span class="amt">{shown}</span>{blank}<i>{code_text}</i>',
            f"**{shown}**{blank}{code_text}",
        ]
    )


def noisy(text: str, seed: int) -> str:
    rng = random.Random(seed)
    out: list[str] = []
    for raw in text.split("\n"):
        line = _ENTRY.sub(lambda m: _amount_markup(rng, m.group(1), m.group(2), m.group(3)), raw)
        # A label glued to its first amount, as extraction does ("Cash5,180,390,001"): only after a letter or a
        # parenthesis, where the join stays legible.
        if rng.random() < 0.4:
            line = re.sub(r"(?<=[A-Za-z)])\t(?=(?:<[^>]+>|\*\*)*[-\d(\u2212])", "", line, count=1)
        # Header fields: bold or not, a blank after the colon, a tag around the name.
        line = re.sub(
            r"\*\*(End Date|Submit Date|Firm Name|Form):",
            lambda m: rng.choice(
                [f"**{m.group(1)}:", f"{m.group(1)}: ", f"<b>{m.group(1)}:</b>", f"**{m.group(1)}** :"]
            ),
            line,
        )
        out.append(line.replace("&", "&amp;") if "&" in line and "&nbsp;" not in line else line)
    result = "\n".join(out)
    if seed % 3 == 0:
        result = result.replace("\n", "\r\n")
    return result


@pytest.fixture(scope="module", params=sorted(FILINGS))
def reference(request: pytest.FixtureRequest) -> str:
    return FILINGS[request.param].read_text(encoding="utf-8")


@pytest.mark.parametrize("seed", range(12))
def test_a_noisy_variant_parses_to_exactly_the_clean_parse(reference: str, seed: int) -> None:
    clean = read_filing(reference)
    assert clean.complete, clean.missing
    text = noisy(reference, seed)
    assert text != reference
    got = read_filing(text)
    assert got.missing == []
    assert got.header == clean.header
    for sid, lines in clean.statements.items():
        assert got.statements[sid] == lines, sid  # same codes, same amounts
    assert set(got.statements) == set(clean.statements)


def test_the_clean_parse_states_every_line_of_its_form() -> None:
    new = read_filing(FILINGS["2017-11-06"].read_text())
    for sid, seg in SEGMENTS.items():
        assert set(new.statements[sid]) == {ln.code for ln in seg.lines if not ln.summary_only}
    old = read_filing(FILINGS["2013-07-25"].read_text())
    assert old.complete
    assert set(old.statements["30.7"]) == {"7360", "7370", "7380"} | {
        ln.code for ln in SEGMENTS["30.7"].lines if ln.side.value == "funds" and not ln.summary_only
    }
    assert not {"7194", "7198"} & set(old.statements["4d2"])  # the 2013 form had no target lines
    assert not {"8760", "8770"} & set(old.statements["4df"])


def test_the_header() -> None:
    assert read_filing(FILINGS["2017-11-06"].read_text()).header == {
        "status": "INITIAL",
        "form": "Daily Seg - FOCUS II",
        "firm": "Citigroup Global Markets Inc.",
        "end_date": "2017-11-06",
        "submit_date": "2017-11-07",
    }
    amended = FILINGS["2013-07-25"].read_text().replace("**INITIAL**", "**AMENDMENT**")
    assert read_filing(amended).header["status"] == "AMENDMENT"


def _drop(text: str, code: str) -> str:
    """The filing with the amount of `code` gone (the code itself still printed)."""
    return re.sub(r"<u>[^<]*</u>(</b>)?([ \t]*)\[" + code + r"\]", r"\1\2[" + code + "]", text)


@pytest.mark.parametrize("code", ["7010", "7305", "7785", "8715", "7620"])
def test_a_line_without_its_amount_is_named_not_guessed(code: str) -> None:
    text = _drop(FILINGS["2017-11-06"].read_text(), code)
    filing = read_filing(text)
    assert [(m.segment, m.code) for m in filing.missing] == [(LINES[code].segment, code)]
    assert code not in filing.statements[LINES[code].segment]
    with pytest.raises(InputError, match=rf"\[{code}\]: no legible amount"):
        parse_filing(text)


@pytest.mark.parametrize("garbled", ["1,2,3", "12,34", "1,2345", "1.234.56"])
def test_a_malformed_amount_is_named_not_read_as_its_tail(garbled: str) -> None:
    """ "1,2,3" is neither 3 nor 123: a number with misplaced separators is illegible, so its line is missing."""
    clean = FILINGS["2017-11-06"].read_text()
    text = re.sub(r"<u>[^<]*</u>(</b>)?([ \t]*)\[7010\]", rf"<u>{garbled}</u>\1\2[7010]", clean)
    assert text != clean
    filing = read_filing(text)
    assert [(m.segment, m.code) for m in filing.missing] == [("4d2", "7010")]


def test_a_line_gone_altogether_is_named() -> None:
    text = FILINGS["2013-07-25"].read_text()
    text = "\n".join(ln for ln in text.split("\n") if "[7160]" not in ln and "[8590]" not in ln)
    got = [str(m) for m in read_filing(text).missing]
    assert got == ["4d2 line 11C [7170]: not found", "4df line 6 [8590]: not found"]


def test_a_missing_statement_and_header_field_are_named() -> None:
    text = FILINGS["2017-11-06"].read_text()
    text = text[: text.index("**INITIAL**  \n**End Date")].replace("**Submit Date:11/7/2017**", "")
    got = [str(m) for m in read_filing(text).missing]
    assert got == ["header: submit date not found", "4df: statement not found"]


def segwatch(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "segwatch.cli", *args], input=stdin, capture_output=True, text=True, check=False
    )


def test_cli_exits_1_naming_each_missing_line_and_partial_accepts(tmp_path: Path) -> None:
    path = tmp_path / "filing.txt"
    path.write_text(_drop(_drop(FILINGS["2017-11-06"].read_text(), "7020"), "8760"))
    result = segwatch("statement", "parse", str(path))
    assert result.returncode == 1 and result.stdout == ""
    assert "4d2 line 1B [7020]" in result.stderr and "4df line 15 [8760]" in result.stderr
    partial = segwatch("statement", "parse", "--partial", str(path))
    assert partial.returncode == 0, partial.stderr
    out = json.loads(partial.stdout)
    assert "7020" not in out["4d2"] and out["4d2"]["7010"] == "5180390001.00"
    assert out["filing"]["firm"] == "Citigroup Global Markets Inc."
    assert "4d2 line 1B [7020]" in partial.stderr


def test_cli_reads_a_noisy_filing_and_compute_check_passes(tmp_path: Path) -> None:
    path = tmp_path / "noisy.txt"
    path.write_text(noisy(FILINGS["2017-11-06"].read_text(), 5))
    parsed = segwatch("statement", "parse", str(path))
    assert parsed.returncode == 0, parsed.stderr
    (tmp_path / "filing.json").write_text(parsed.stdout)
    checked = segwatch("statement", "compute", "--check", str(tmp_path / "filing.json"))
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nothing here", "no line codes"),
        ("1. Cash <u>,</u> [7010]", "[7010]: no legible amount"),
        ("1. Cash <u>5</u> [7010] <u>6</u> [7010]", "line 7010 appears twice"),
        ("1. Cash <u>5</u> [1234]", "[1234]: unknown line code"),
    ],
)
def test_cli_bad_filings_are_clear_errors_without_traceback(text: str, message: str) -> None:
    result = segwatch("statement", "parse", "-", stdin=text)
    assert result.returncode in (1, 2)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
