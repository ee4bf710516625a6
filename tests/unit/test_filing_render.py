"""The statement as filed: whole dollars with exact identities, the filing's layout and header, reconcile."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from segwatch.core.catalogue import SEGMENTS
from segwatch.core.statement import check, compute
from segwatch.forms.parse import parse_filing
from segwatch.forms.render import FilingHeader, to_filing_json, to_filing_text, whole_dollars
from tests.conftest import REFERENCE as REF

F2017 = REF / "000_a00a1cb97de91a10.txt"
F2013 = REF / "001_642cfe604d8a0659.txt"
HEADER_2017 = FilingHeader("Citigroup Global Markets Inc.", date(2017, 11, 6), date(2017, 11, 7))


def headers(text: str) -> list[tuple[str, ...]]:
    """Each statement's header, as the filings print it."""
    flat = re.sub(r"\s+", " ", text.replace("**", " "))
    return re.findall(
        r"(INITIAL|AMENDMENT) End Date:(\S+) Firm Name:(.+?) Form:(Daily Seg - FOCUS II) "
        r"Submit Date:(\S+) Daily Segregation - (Secured Amounts|Segregation Statement|Swaps Statement)",
        flat,
    )


def test_close_of_the_2017_figures_reads_like_the_filing() -> None:
    filed_text = F2017.read_text()
    filed = parse_filing(filed_text)
    # the close, in cents as a calculator holds it: every leaf line of the filing, derived lines recomputed
    close = {
        sid: compute(sid, {c: v for c, v in lines.items() if SEGMENTS[sid].line(c).is_leaf})
        for sid, lines in filed.items()
    }
    text = to_filing_text(close, HEADER_2017)
    assert headers(text) == headers(filed_text)  # header included, segment order as filed
    assert parse_filing(text) == filed  # every line, line by line
    assert text.count("[7010]") == 1 and "\t<u>0 0</u>" not in text


def test_2013_summary_30_7_form() -> None:
    filed = parse_filing(F2013.read_text())
    text = to_filing_text(filed, FilingHeader("Citigroup Global Markets Inc.", date(2013, 7, 25), date(2013, 7, 26)))
    assert "Amount to be set aside in separate section 30.7 accounts\t<u>928,007,886</u> [7360]" in text
    assert parse_filing(text)["30.7"]["7370"] == Decimal("1115812131")
    assert headers(text) == headers(F2013.read_text())[: len(headers(text))]


def test_amendment_header_and_json() -> None:
    filed = parse_filing(F2017.read_text())
    header = FilingHeader("Firm", date(2017, 11, 6), date(2017, 11, 8), "AMENDMENT")
    assert all(h[0] == "AMENDMENT" for h in headers(to_filing_text(filed, header)))
    doc = to_filing_json(filed, header)
    assert doc["kind"] == "AMENDMENT" and doc["end_date"] == "2017-11-06" and doc["submit_date"] == "2017-11-08"
    assert doc["statements"]["4d2"]["7190"] == "444221938"


cents = st.integers(-(10**13), 10**13).map(lambda c: Decimal(c).scaleb(-2))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(SEGMENTS)), st.data())
def test_whole_dollars_keep_every_identity(sid: str, data: st.DataObject) -> None:
    seg = SEGMENTS[sid]
    leaves = {}
    for line in seg.leaves:
        v = data.draw(cents)
        leaves[line.code] = abs(v) if line.sign == "nonnegative" else -abs(v) if line.sign == "nonpositive" else v
    lines = compute(sid, leaves)
    rounded = whole_dollars(sid, lines)
    assert all(v == v.to_integral_value() for v in rounded.values())
    assert check(sid, rounded) == []  # every derived line is exactly its formula of the rounded lines
    for line in seg.leaves:  # each leaf within half a dollar of its cents
        assert abs(rounded[line.code] - lines[line.code]) <= Decimal("0.5")
    assert set(rounded) == set(lines)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segwatch.cli", *args], capture_output=True, text=True, check=False)


def test_reconcile_lists_every_differing_line(tmp_path: Path) -> None:
    computed = tmp_path / "computed.json"
    computed.write_text(run("statement", "parse", str(F2017)).stdout)
    ok = run("statement", "reconcile", str(computed), str(F2017))
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(computed.read_text())
    doc["4d2"]["7070"] = "1364854436.40"  # a cent-bearing leaf: rounds to one dollar more
    doc["30.7"]["7780"] = "1"
    computed.write_text(json.dumps(doc))
    bad = run("statement", "reconcile", str(computed), str(F2017))
    assert bad.returncode == 1
    assert "4d2 line 7A [7070]: computed 1,364,854,436, filed 1,364,854,435" in bad.stdout
    assert "[7180]" in bad.stdout and "[7190]" in bad.stdout and "[7780]" in bad.stdout
    assert "[7010]" not in bad.stdout and "Traceback" not in bad.stderr


def test_from_events_close(tmp_path: Path) -> None:
    def depo(eid: str, as_of: str, amount: str) -> str:
        return json.dumps(
            {
                "type": "depository_balance",
                "event_id": eid,
                "source": "bank",
                "as_of": as_of,
                "segment": "4d2",
                "depository": "b1",
                "line": "7070",
                "currency": "USD",
                "location": "us",
                "amount": amount,
            }
        )

    events = tmp_path / "events.ndjson"
    events.write_text(
        "\n".join(
            [
                depo("d1", "2017-11-06T15:00:00-06:00", "100.40"),
                depo("d2", "2017-11-07T09:00:00-06:00", "900"),  # the next day's
                depo("d0", "2017-11-06T23:59:59-06:00", "120"),  # late, as of the day: in its close
                json.dumps(
                    {
                        "type": "business_day_close",
                        "event_id": "c1",
                        "source": "ledger",
                        "as_of": "2017-11-06T18:00:00-06:00",
                        "business_day": "2017-11-06",
                    }
                ),
            ]
        )
        + "\n"
    )
    out = run("statement", "from-events", str(events), "--close", "2017-11-06")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["4d2"]["7070"] == "120.00"
    assert (
        json.loads(run("statement", "from-events", str(events), "--close", "2017-11-07").stdout)["4d2"]["7070"]
        == "900.00"
    )
    text = run("statement", "from-events", str(events), "--close", "2017-11-06", "--format", "text", "--firm", "X")
    assert ("INITIAL", "11/6/2017", "X", "Daily Seg - FOCUS II", "11/7/2017", "Segregation Statement") in headers(
        text.stdout
    )
    shut = run("statement", "from-events", str(events), "--close", "2017-11-23")
    assert shut.returncode == 2 and "not a business day" in shut.stderr
