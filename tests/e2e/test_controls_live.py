"""The example of issue #13 on the real pipeline (ingest → calculator → alerter), its close a real one: a 4d(2)
book with an excess of exactly 100M at DAY1's cut-off, closed by the ledger's `business_day_close` (the
calculator publishes the INITIAL statement; the alerter takes its excess as the 25% baseline); on DAY2's
morning 20M, 20M, a customer withdrawal, 20M, 20M, each followed by the bank balance falling by the payment;
DAY2 closed the same way; 20M on DAY3's morning. The decisions: within / needs approval / within / needs /
needs / within, each measured against the close it names; and `segwatch replay` on the same events agrees.

Every step waits for what the next one depends on (the alerter has the close, the live figures, the previous
decision), so the decisions are the control's, not the race's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from schemas.controls import DisbursementDecision
from schemas.events import (
    AccountBalance,
    BusinessDayClose,
    DepositoryBalance,
    Disbursement,
    EventBase,
    ManagementTarget,
)
from schemas.statements import StatementRecord
from segwatch.core.book import Book
from segwatch.kafka import topics
from segwatch.replay import Watcher
from segwatch.system import LocalSystem
from segwatch.waiting import wait_until
from tests.support.alerter import alerter_metrics, decisions_of, read_to_end

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

CHI = ZoneInfo("America/Chicago")
# The `system` fixture's clock starts at DAY1's opening (segwatch.sample.OPEN): only the ledger closes a day.
DAY1, DAY2, DAY3 = date(2017, 11, 6), date(2017, 11, 7), date(2017, 11, 8)
M = Decimal(1_000_000)
OWED = 400 * M  # the customer's equity: the requirement
HELD = 500 * M  # at the bank: the funds; excess 100M, 25% of it 25M
APPROVAL = "CFO-MEMO-7"  # the pre-approval d2, d3 and d4 name; segwatch holds no record of it


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=CHI)


def customer(eid: str, cash: Decimal, when: datetime) -> AccountBalance:
    zero = Decimal(0)
    return AccountBalance(
        event_id=eid,
        source="ledger",
        as_of=when,
        segment="4d2",
        account="C-1",
        currency="USD",
        cash=cash,
        securities=zero,
        unrealized=zero,
        long_options=zero,
        short_options=zero,
    )


def bank(eid: str, amount: Decimal, when: datetime) -> DepositoryBalance:
    return DepositoryBalance(
        event_id=eid,
        source="bank",
        as_of=when,
        segment="4d2",
        depository="BANK-1",
        line="7070",
        location="us",
        currency="USD",
        amount=amount,
    )


def paid(
    eid: str, amount: Decimal, when: datetime, *, customers: bool = False, approval: str | None = None
) -> Disbursement:
    return Disbursement(
        event_id=eid,
        source="treasury",
        as_of=when,
        segment="4d2",
        amount=amount,
        for_customer_benefit=customers,
        recipient="C-1 (customer)" if customers else "Holdco LLC (parent)",
        purpose="customer withdrawal" if customers else "return of residual interest to the parent",
        approval=approval,
    )


def closed(eid: str, day: date) -> BusinessDayClose:
    return BusinessDayClose(event_id=eid, source="ledger", as_of=at(day, 17), business_day=day)


def metric(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


class Desk:
    """Posts the day through ingest and waits, after each step, for what the next step depends on."""

    def __init__(self, system: LocalSystem, watcher: Watcher, http: aiohttp.ClientSession) -> None:
        self.system, self.watcher, self.http = system, watcher, http
        self.book = Book()
        self.posted: list[EventBase] = []  # in the order posted: what `segwatch replay` gets
        self.paid = 0

    async def post(self, *events: EventBase) -> None:
        await self.system.post(self.http, events)
        self.posted += events
        for ev in events:
            if isinstance(ev, AccountBalance | DepositoryBalance | ManagementTarget):
                self.book.apply(ev)

    async def balances(self, *events: AccountBalance | DepositoryBalance | ManagementTarget) -> None:
        """Post balances; wait until the figures show them and the alerter has taken those figures (its live
        excess)."""
        await self.post(*events)
        lines = {"4d2": self.book.consolidated("4d2").lines}
        await self.watcher.wait_for(
            lambda: self.watcher.figures_equal(lines), 60, f"the figures after {events[-1].event_id}"
        )
        version = self.watcher.figures["4d2"].version

        async def evaluated() -> bool:
            shown = metric(await alerter_metrics(self.system), "segwatch_figures_version", segment="4d2")
            return shown is not None and shown >= version

        await wait_until(evaluated, what=f"the alerter to take figures v{version}", timeout=60, interval=0.1)

    async def pay(self, ev: Disbursement) -> None:
        """Post a disbursement; wait until the alerter has decided it (its decision is on the state topic)."""
        await self.post(ev)
        self.paid += 1

        async def decided() -> bool:
            samples = await alerter_metrics(self.system)
            return (
                sum(
                    v
                    for (name, labels), v in samples.items()
                    if name == "segwatch_disbursements_total" and ("segment", "4d2") in labels
                )
                >= self.paid
            )

        await wait_until(decided, what=f"the decision on {ev.event_id}", timeout=60, interval=0.1)

    async def close(self, ev: BusinessDayClose) -> StatementRecord:
        """Post the ledger's close; wait for the calculator's INITIAL statement of 4d(2) and for the alerter to
        take it as its baseline (the window empty, the baseline excess the statement's)."""
        await self.post(ev)
        day = ev.business_day

        def statement() -> StatementRecord | None:
            return next((s for s in self.watcher.statements if (s.business_day, s.segment) == (day, "4d2")), None)

        await self.watcher.wait_for(lambda: statement() is not None, 60, f"the statement of {day}")
        record = statement()
        assert record is not None and (record.kind, record.version) == ("INITIAL", 1)
        excess = float(record.lines["7190"])

        async def taken() -> bool:
            samples = await alerter_metrics(self.system)
            return (
                metric(samples, "segwatch_disbursement_window_baseline_excess_dollars", segment="4d2") == excess
                and metric(samples, "segwatch_disbursement_window_aggregate_dollars", segment="4d2") == 0
            )

        await wait_until(taken, what=f"the alerter to take the close of {day}", timeout=60, interval=0.1)
        return record


def replayed(events: list[EventBase], workdir: Path) -> list[DisbursementDecision]:
    """`segwatch replay EVENTS` (the twin: its close, its DisbursementControls), run as the CLI."""
    path = workdir / "controls-events.ndjson"
    path.write_text("".join(ev.model_dump_json() + "\n" for ev in events))
    out = subprocess.run(
        [sys.executable, "-m", "segwatch.cli", "replay", str(path)], capture_output=True, text=True, check=True
    )
    return [
        DisbursementDecision.model_validate(record)
        for line in out.stdout.splitlines()
        if (record := json.loads(line)).get("type") == "disbursement_decision"
    ]


def essentials(d: DisbursementDecision) -> tuple[object, ...]:
    """What the live decision and the replayed one must share (not the clocks, not the figures versions: the
    twin evaluates after every event, the calculator coalesces)."""
    return (
        d.correlation_id,
        d.outcome,
        d.needs_approval,
        d.basis,
        d.prior,
        d.aggregate,
        d.limit,
        d.counted,
        d.baseline and (d.baseline.business_day, d.baseline.cutoff, d.baseline.version, d.baseline.excess),
        d.live and d.live.excess,
    )


async def test_the_issue_example_on_the_real_pipeline_with_real_closes(
    system: LocalSystem, watcher: Watcher, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as http:
        desk = Desk(system, watcher, http)
        # DAY1: the book, excess exactly 100M at its cut-off; the ledger closes it.
        target = ManagementTarget(event_id="target", source="treasury", as_of=at(DAY1, 7), segment="4d2", amount=10 * M)
        await desk.balances(target, customer("c-day1", OWED, at(DAY1, 9)), bank("b-day1", HELD, at(DAY1, 10)))
        assert watcher.figures["4d2"].excess == 100 * M
        close1 = await desk.close(closed("close-day1", DAY1))

        # DAY2's morning: each payment, then the bank balance it took out.
        held, owed = HELD, OWED
        for ev in (
            paid("d1", 20 * M, at(DAY2, 9)),
            paid("d2", 20 * M, at(DAY2, 9, 10), approval=APPROVAL),
            paid("c1", 5 * M, at(DAY2, 9, 20), customers=True),
            paid("d3", 20 * M, at(DAY2, 9, 30), approval=APPROVAL),
            paid("d4", 20 * M, at(DAY2, 9, 40), approval=APPROVAL),
        ):
            await desk.pay(ev)
            held -= ev.amount
            after = ev.as_of + timedelta(minutes=1)
            tick: list[AccountBalance | DepositoryBalance] = [bank(f"b-{ev.event_id}", held, after)]
            if ev.for_customer_benefit:  # the customer's equity goes with it: the excess does not move
                owed -= ev.amount
                tick.insert(0, customer(f"c-{ev.event_id}", owed, after))
            await desk.balances(*tick)
        assert watcher.figures["4d2"].excess == 20 * M
        # The afternoon: the firm puts 80M of its own back; the ledger closes DAY2 at 100M again.
        await desk.balances(bank("b-topup", held + 80 * M, at(DAY2, 15)))
        close2 = await desk.close(closed("close-day2", DAY2))
        # DAY3's morning: a new window.
        await desk.pay(paid("d5", 20 * M, at(DAY3, 9)))

        live = decisions_of(await read_to_end(system, topics.ALERTER_ALERTS_CHANGELOG))

    assert [d.correlation_id for d in live] == ["d1", "d2", "c1", "d3", "d4", "d5"]
    assert [d.outcome for d in live] == [
        "within_limit",
        "needs_approval",
        "within_limit",
        "needs_approval",
        "needs_approval",
        "within_limit",
    ]
    assert [d.needs_approval for d in live] == [False, True, False, True, True, False]
    # Measured against the real closes: DAY1's for DAY2's payments, DAY2's for DAY3's.
    assert (close1.lines["7190"], close2.lines["7190"]) == (100 * M, 100 * M)
    for d, close in zip(live, [close1] * 5 + [close2], strict=True):
        assert d.baseline is not None and d.basis == "daily_and_live"
        assert (d.baseline.business_day, d.baseline.cutoff, d.baseline.version, d.baseline.excess) == (
            close.business_day,
            close.cutoff,
            close.version,
            close.lines["7190"],
        )
    assert [d.aggregate for d in live] == [20 * M, 40 * M, 40 * M, 60 * M, 80 * M, 20 * M]
    assert [d.live.excess for d in live if d.live] == [100 * M, 80 * M, 60 * M, 60 * M, 40 * M, 100 * M]
    # The three over 25% each owe the exchange's and the CFTC's notice (the alert topic: a notice, no page).
    await watcher.wait_for(lambda: sum(a.rule == "disbursement_25pct" for a in watcher.alerts) >= 3, 30, "the notices")
    notices = [(a.correlation_id, a.page) for a in watcher.alerts if a.rule == "disbursement_25pct"]
    assert notices == [("d2", False), ("d3", False), ("d4", False)]

    # `segwatch replay` on the same events, in the order posted: the same decisions.
    assert [essentials(d) for d in replayed(desk.posted, tmp_path)] == [essentials(d) for d in live]
