"""Issue #10's worked examples through the live pipeline: HTTP ingest → Kafka → calculator → alerter.

One system, the examples in turn: the securities debit and the multi-line DCO account (4d(2)), a segment
with no target (30.7), and a missing JPY rate (4d(f): first a segment holding only yen, then the issue's book,
then the rate). The expected figures are the hand-worked ones of tests/worked_examples.py.
"""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import pytest

from schemas.events import FxRate
from segwatch.replay import Watcher
from segwatch.system import LocalSystem
from tests.worked_examples import missing_jpy_rate, multi_line_dco, no_target, only_jpy, securities_debit

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

D = Decimal


def fired(watcher: Watcher, segment: str, rule: str, state: str = "firing") -> bool:
    return any((a.segment, a.rule, a.state) == (segment, rule, state) for a in watcher.alerts)


async def test_worked_examples_through_the_live_pipeline(system: LocalSystem, watcher: Watcher) -> None:
    async with aiohttp.ClientSession() as http:
        # 1. Customer securities secure a debit once: 7045 100, 7047 -60, 7050 40, 7060 1,020, 7190 60.
        await system.post(http, securities_debit("4d2"))
        await watcher.wait_for(
            lambda: "4d2" in watcher.figures and watcher.figures["4d2"].excess == D(60),
            60,
            "the securities-debit figures",
        )
        lines = watcher.figures["4d2"].lines
        assert (lines["7045"], lines["7047"], lines["7050"], lines["7060"], lines["7190"]) == (
            D(100),
            D(-60),
            D(40),
            D(1020),
            D(60),
        )

        # 2. One DCO margin account on three lines adds 760 to the same segment's funds (1,080 + 760).
        await system.post(http, multi_line_dco())
        await watcher.wait_for(lambda: watcher.figures["4d2"].funds == D(1840), 60, "the multi-line DCO figures")
        lines = watcher.figures["4d2"].lines
        assert (lines["7100"], lines["7120"], lines["7130"]) == (D(500), D(300), D(-40))

        # 3. No target: no target lines, a no_target warning, no under-target (a deficiency of 100 here).
        await system.post(http, no_target())
        await watcher.wait_for(
            lambda: fired(watcher, "30.7", "no_target") and fired(watcher, "30.7", "deficiency"),
            60,
            "no_target and deficiency for 30.7",
        )
        f = watcher.figures["30.7"]
        assert f.target is None and f.excess_over_target is None and not {"7780", "7785"} & set(f.lines)
        assert not any(a.segment == "30.7" and a.rule == "under_target" for a in watcher.alerts)
        [warning] = [a for a in watcher.alerts if (a.segment, a.rule) == ("30.7", "no_target")]
        assert warning.severity == "warning" and not warning.page

        # 4a. A segment holding only yen, never a JPY rate: figures still published, incomplete; missing_fx pages.
        await system.post(http, only_jpy())
        await watcher.wait_for(lambda: fired(watcher, "4df", "missing_fx"), 60, "missing_fx for 4df")
        f = watcher.figures["4df"]
        assert f.incomplete and f.missing_fx == ["JPY"] and all(v == 0 for v in f.lines.values())
        [page] = [a for a in watcher.alerts if (a.segment, a.rule) == ("4df", "missing_fx")]
        assert page.severity == "critical" and page.page

        # 4b. The book: USD 100M owed, 158M held, ¥9bn owed and no rate: the dollars show +58M, incomplete.
        await system.post(http, missing_jpy_rate(sid="4df"))
        await watcher.wait_for(
            lambda: (
                watcher.figures["4df"].excess == D(58_000_000)
                and watcher.figures["4df"].excess_by_currency.get("JPY") == D(-9_005_000_000)
            ),
            60,
            "the +58M figures",
        )
        f = watcher.figures["4df"]
        assert f.incomplete and f.missing_fx == ["JPY"]
        assert not fired(watcher, "4df", "missing_fx", "resolved")

        # 4c. The rate arrives: complete figures, and a deficiency (¥9.005bn x 0.0067 = 60,333,500 owed too).
        rate = [
            ev for ev in missing_jpy_rate(prefix="ex3-rate", jpy_rate="0.0067", sid="4df") if isinstance(ev, FxRate)
        ]
        await system.post(http, rate)
        await watcher.wait_for(lambda: fired(watcher, "4df", "deficiency"), 60, "the 4df deficiency")
        f = watcher.figures["4df"]
        assert not f.incomplete and f.excess == D(158_000_000 - 100_000_000 - 60_333_500)
        assert fired(watcher, "4df", "missing_fx", "resolved")
