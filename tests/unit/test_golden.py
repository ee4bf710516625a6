"""The reference filings are the golden figures: parsed and recomputed, every derived line equals the filing."""

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from segwatch.core import statement
from segwatch.core.catalogue import LINES, SEGMENTS, Source
from segwatch.forms.parse import parse_filing
from tests.conftest import REFERENCE

FILINGS = {
    "2017-11-06": REFERENCE / "000_a00a1cb97de91a10.txt",
    "2013-07-25": REFERENCE / "001_642cfe604d8a0659.txt",
}


def segwatch(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "segwatch.cli", *args], input=stdin, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module", params=sorted(FILINGS))
def filing(request: pytest.FixtureRequest) -> dict[str, dict[str, Decimal]]:
    return parse_filing(FILINGS[request.param].read_text())


def test_every_derived_line_of_each_filing_recomputes_to_the_dollar(filing: dict[str, dict[str, Decimal]]) -> None:
    checked = 0
    for sid, given in filing.items():
        computed = statement.complete(sid, given)
        for code, amount in given.items():
            if LINES[code].source is Source.DERIVED:
                assert computed[code] == amount, (sid, code)
                checked += 1
    assert checked >= 18


def test_2017_filing_headline_figures() -> None:
    f = parse_filing(FILINGS["2017-11-06"].read_text())
    assert f["4d2"]["7060"] == Decimal("6783975916")
    assert f["4d2"]["7190"] == Decimal("444221938")
    assert f["30.7"]["7360"] == Decimal("2120823895")
    assert f["30.7"]["7785"] == Decimal("44525781")
    assert f["4df"]["8730"] == Decimal("496042811")
    assert f["4df"]["8770"] == Decimal("96942811")


def test_2017_filing_states_every_line_of_the_current_form() -> None:
    f = parse_filing(FILINGS["2017-11-06"].read_text())
    for sid, seg in SEGMENTS.items():
        expected = {ln.code for ln in seg.lines if not ln.summary_only}
        assert set(f[sid]) == expected, sid


def test_2013_old_4d2_codes_for_lines_11b_11c_12_map_to_the_current_form() -> None:
    f = parse_filing(FILINGS["2013-07-25"].read_text())["4d2"]
    assert (f["7160"], f["7170"], f["7150"]) == (Decimal(0), Decimal("3208640"), Decimal(0))


def test_2013_summary_form_takes_7360_as_given() -> None:
    f = parse_filing(FILINGS["2013-07-25"].read_text())["30.7"]
    assert statement.is_summary("30.7", f)
    done = statement.complete("30.7", f)
    assert done["7360"] == Decimal("928007886")
    assert done["7370"] == done["7770"] == Decimal("1115812131")
    assert done["7380"] == Decimal("187804245")
    assert "7345" not in done


def test_2013_filing_has_no_target_lines_and_computes_none(tmp_path: Path) -> None:
    """The 2013 form had no management-target lines: its complete statement has none either (no target set is
    not a target of zero), through the CLI too."""
    f = parse_filing(FILINGS["2013-07-25"].read_text())
    for sid, seg in SEGMENTS.items():
        assert seg.target not in f[sid] and seg.over_target not in f[sid], sid
        done = statement.complete(sid, f[sid])
        assert seg.target not in done and seg.over_target not in done, sid
    parsed = tmp_path / "2013.json"
    parsed.write_text(segwatch("statement", "parse", str(FILINGS["2013-07-25"])).stdout)
    out = segwatch("statement", "compute", "--check", str(parsed))
    assert out.returncode == 0, out.stderr
    for sid, seg in SEGMENTS.items():
        assert not {seg.target, seg.over_target} & set(json.loads(out.stdout)[sid]), sid


@pytest.mark.parametrize("name", sorted(FILINGS))
def test_cli_compute_check_passes_on_parsed_filing(name: str, tmp_path: Path) -> None:
    parsed = segwatch("statement", "parse", str(FILINGS[name]))
    assert parsed.returncode == 0, parsed.stderr
    path = tmp_path / "filing.json"
    path.write_text(parsed.stdout)
    result = segwatch("statement", "compute", "--check", str(path))
    assert result.returncode == 0, result.stderr
    assert "derived lines agree" in result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"4d2", "30.7", "4df"}


def test_cli_compute_check_passes_on_json_numbers_as_written_in_the_filing(tmp_path: Path) -> None:
    # The filing's figures typed as plain JSON numbers rather than strings.
    f = parse_filing(FILINGS["2017-11-06"].read_text())
    text = (
        "{"
        + ", ".join(
            f'"{sid}": {{' + ", ".join(f'"{c}": {a}' for c, a in lines.items()) + "}" for sid, lines in f.items()
        )
        + "}"
    )
    path = tmp_path / "numbers.json"
    path.write_text(text)
    result = segwatch("statement", "compute", "--check", str(path))
    assert result.returncode == 0, result.stderr


def test_cli_check_lists_each_mismatch_and_fails(tmp_path: Path) -> None:
    f = json.loads(segwatch("statement", "parse", str(FILINGS["2017-11-06"])).stdout)
    f["4d2"]["7190"] = "444221939"
    f["4df"]["8720"] = "1"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(f))
    result = segwatch("statement", "compute", "--check", str(path))
    assert result.returncode == 1
    assert "[7190]" in result.stderr and "[8720]" in result.stderr
    assert "2 of 24 derived lines disagree" in result.stderr
    assert "Traceback" not in result.stderr


def test_text_format_shows_the_form_layout() -> None:
    result = segwatch("statement", "parse", str(FILINGS["2017-11-06"]), "--format", "text")
    assert result.returncode == 0
    assert "Segregation Statement" in result.stdout
    assert "444,221,938 [7190]" in result.stdout
    assert "-1,137,188,113 [7033]" in result.stdout
