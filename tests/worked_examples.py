"""The worked examples of issue #10 as events, shared by the unit, CLI and end-to-end tests.

Each builder returns the events of one small book worked out by hand (../shared/DOMAIN.md); the expected
figures are stated beside them, never computed by segwatch.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas import AccountBalance, DepositoryBalance, FxRate, ManagementTarget
from schemas.events import EventBase

D = Decimal
AS_OF = datetime(2026, 11, 20, 22, tzinfo=UTC)

# Per segment: the bank cash line and the line of customer securities held in lieu of cash.
BANK_CASH = {"4d2": "7070", "30.7": "7500", "4df": "8600"}
BANK_CUSTOMER_SECURITIES = {"4d2": "7090", "30.7": "7540", "4df": "8620"}
# Per segment: line 4, line 5 gross / offset / net, the requirement, the funds, the excess.
NET_EQUITY = {"4d2": "7040", "30.7": "7345", "4df": "8550"}
GROSS = {"4d2": "7045", "30.7": "7351", "4df": "8560"}
OFFSET = {"4d2": "7047", "30.7": "7352", "4df": "8570"}
NET = {"4d2": "7050", "30.7": "7354", "4df": "8580"}
REQUIRED = {"4d2": "7060", "30.7": "7360", "4df": "8590"}
FUNDS = {"4d2": "7180", "30.7": "7770", "4df": "8720"}
EXCESS = {"4d2": "7190", "30.7": "7380", "4df": "8730"}
TARGET_LINES = {"4d2": ("7194", "7198"), "30.7": ("7780", "7785"), "4df": ("8760", "8770")}


def _account(
    prefix: str,
    sid: str,
    account: str,
    currency: str = "USD",
    *,
    cash: str,
    securities: str = "0",
    offset: str = "0",
    source: str = "ledger",
    as_of: datetime = AS_OF,
) -> AccountBalance:
    return AccountBalance(
        event_id=f"{prefix}-{sid}-{account}",
        source=source,
        as_of=as_of,
        segment=sid,  # type: ignore[arg-type]
        account=account,
        currency=currency,
        cash=D(cash),
        securities=D(securities),
        unrealized=D(0),
        long_options=D(0),
        short_options=D(0),
        offset_securities=D(offset),
    )


def _depository(
    prefix: str, sid: str, depository: str, line: str, amount: str, currency: str = "USD", *, as_of: datetime = AS_OF
) -> DepositoryBalance:
    return DepositoryBalance(
        event_id=f"{prefix}-{sid}-{depository}-{line}",
        source="bank",
        as_of=as_of,
        segment=sid,  # type: ignore[arg-type]
        depository=depository,
        line=line,
        currency=currency,
        location="us",
        amount=D(amount),
    )


def _target(prefix: str, sid: str, amount: str) -> ManagementTarget:
    return ManagementTarget(
        event_id=f"{prefix}-target-{sid}",
        source="treasury",
        as_of=AS_OF,
        segment=sid,  # type: ignore[arg-type]
        amount=D(amount),
    )


def securities_debit(sid: str = "4d2", prefix: str = "ex1") -> list[EventBase]:
    """Customer A: cash -100, securities 80 (haircut 60); customer B: cash 1,000; the bank holds 1,000 cash
    and A's 80 of securities. Right: line 4 980, line 5 gross 100, offset -60, net 40, requirement 1,020,
    funds 1,080, excess 60."""
    return [
        _account(prefix, sid, "A", cash="-100", securities="80", offset="60"),
        _account(prefix, sid, "B", cash="1000"),
        _depository(prefix, sid, "BANK1", BANK_CASH[sid], "1000"),
        _depository(prefix, sid, "BANK1", BANK_CUSTOMER_SECURITIES[sid], "80"),
        _target(prefix, sid, "10"),
    ]


SECURITIES_DEBIT_EXPECTED = {
    "net_equity": D(980),
    "gross": D(100),
    "offset": D(-60),
    "net": D(40),
    "required": D(1020),
    "funds": D(1080),
    "excess": D(60),
}


def multi_line_dco(prefix: str = "ex2") -> list[EventBase]:
    """One DCO margin account reporting cash 7100 500, securities 7120 300 and settlement 7130 -40: 7180 is
    their sum, 760 (not the last line's -40)."""
    return [
        _depository(prefix, "4d2", "DCO-MARGIN", "7100", "500"),
        _depository(prefix, "4d2", "DCO-MARGIN", "7120", "300"),
        _depository(prefix, "4d2", "DCO-MARGIN", "7130", "-40"),
        _target(prefix, "4d2", "0"),
    ]


MULTI_LINE_DCO_FUNDS = D(760)


def missing_jpy_rate(prefix: str = "ex3", jpy_rate: str | None = None, sid: str = "4d2") -> list[EventBase]:
    """USD requirement 100M, funds 158M, plus a ¥9bn customer credit and no JPY rate: the figures are
    incomplete (JPY left out: the dollar excess shows +58M). At 0.0067 USD/JPY the ¥9bn is $60.3M owed, and
    the segment is in deficiency by 2.3M."""
    events: list[EventBase] = [
        _account(prefix, sid, "USD-CUSTOMERS", cash="100000000"),
        _account(prefix, sid, "JPY-CUSTOMER", "JPY", cash="9000000000"),
        _depository(prefix, sid, "BANK1", BANK_CASH[sid], "158000000"),
        _target(prefix, sid, "1000000"),
    ]
    if jpy_rate is not None:
        events.append(
            FxRate(event_id=f"{prefix}-fx-JPY", source="fx", as_of=AS_OF, currency="JPY", usd_per_unit=D(jpy_rate))
        )
    return events


def only_jpy(prefix: str = "ex3b") -> list[EventBase]:
    """A segment (4d(f)) that holds only yen and has no JPY rate: its USD lines are all zero, yet its figures
    are published, incomplete."""
    return [_account(prefix, "4df", "JPY-ONLY", "JPY", cash="5000000")]


def no_target(prefix: str = "ex4") -> list[EventBase]:
    """A 30.7 segment with balances and no management target: no target lines, no under-target evaluation,
    a no_target warning."""
    return [
        _account(prefix, "30.7", "F1", cash="500"),
        _depository(prefix, "30.7", "BANK2", "7500", "400"),  # 100 short: a deficiency, and no target
    ]


def ndjson(events: list[EventBase]) -> str:
    return "".join(ev.model_dump_json() + "\n" for ev in events)


def shifted(events: list[Any], delta: timedelta) -> list[Any]:
    """The same events, each as of `delta` later (with fresh ids), for a second run in one system."""
    return [
        ev.model_copy(update={"as_of": ev.as_of + delta, "event_id": f"{ev.event_id}+{int(delta.total_seconds())}"})
        for ev in events
    ]
