"""Issue #14 on the live pipeline (ingest → calculator → alerter): 30.7 funds outside the US at 900 with a 700
foreign margin requirement fire `offshore_funds`, a restatement to 820 resolves it; a 4d(2) investment of
type `other` fires `investment_not_permitted` (critical, pages)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp

from schemas.events import DepositoryBalance, EventBase, ForeignMarginRequirement
from segwatch.replay import Watcher
from segwatch.system import LocalSystem

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def bal(
    n: int,
    segment: str,
    depository: str,
    line: str,
    amount: str,
    *,
    location: str = "us",
    instrument: str = "cash",
    minutes: int = 0,
) -> DepositoryBalance:
    return DepositoryBalance(
        event_id=f"hold-{n}",
        source="bank",
        as_of=T0 + timedelta(minutes=minutes),
        segment=segment,  # type: ignore[arg-type]
        depository=depository,
        line=line,
        currency="USD",
        location=location,  # type: ignore[arg-type]
        instrument=instrument,  # type: ignore[arg-type]
        amount=Decimal(amount),
    )


def states(watcher: Watcher, rule: str) -> list[tuple[str, str]]:
    return [(a.segment, a.state) for a in watcher.alerts if a.rule == rule]


async def test_offshore_funds_and_a_not_permitted_investment_on_the_live_pipeline(
    system: LocalSystem,
    watcher: Watcher,
) -> None:
    first: list[EventBase] = [
        ForeignMarginRequirement(event_id="hold-fmr", source="treasury", as_of=T0, amount=Decimal("700")),
        bal(1, "30.7", "NY", "7500", "5000"),
        bal(2, "30.7", "LDN", "7520", "900", location="non_us"),
    ]
    async with aiohttp.ClientSession() as http:
        await system.post(http, first)
        # The requirement (settings topic) and the balances (balances topic) may reach the combiner in either
        # order: funds outside the US with no requirement known fire as well; either way it fires once.
        await watcher.wait_for(
            lambda: (
                "30.7" in watcher.figures
                and watcher.figures["30.7"].holdings is not None
                and watcher.figures["30.7"].holdings.foreign_margin_requirement is not None
            ),
            60,
            "30.7 figures with the foreign margin requirement",
        )
        await watcher.wait_for(
            lambda: states(watcher, "offshore_funds") == [("30.7", "firing")], 60, "offshore_funds firing"
        )
        fig = watcher.figures["30.7"]
        assert fig.holdings is not None and fig.holdings.outside_us == Decimal("900.00")
        assert fig.holdings.offshore_limit == Decimal("840.00") and fig.holdings.offshore_headroom == Decimal("-60.00")
        await system.post(http, [bal(3, "30.7", "LDN", "7520", "820", location="non_us", minutes=1)])
        await watcher.wait_for(
            lambda: states(watcher, "offshore_funds") == [("30.7", "firing"), ("30.7", "resolved")],
            60,
            "offshore_funds resolved",
        )
        await system.post(
            http, [bal(4, "4d2", "B", "7070", "1000"), bal(5, "4d2", "B", "7080", "50", instrument="other")]
        )
        await watcher.wait_for(
            lambda: states(watcher, "investment_not_permitted") == [("4d2", "firing")],
            60,
            "investment_not_permitted firing",
        )
    [alert] = [a for a in watcher.alerts if a.rule == "investment_not_permitted"]
    assert alert.severity == "critical" and alert.page and alert.correlation_id in {"hold-4", "hold-5"}
    [fired, resolved] = [a for a in watcher.alerts if a.rule == "offshore_funds"]
    assert fired.alert_id == resolved.alert_id
