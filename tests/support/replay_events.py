"""Events as the NDJSON dicts `segwatch replay` reads, and a small day of them (the replay and twin tests)."""

from __future__ import annotations

import json
from typing import Any


def at(minute: int) -> str:
    return f"2026-03-02T15:{minute:02d}:00Z"


def account(
    eid: str, minute: int, cash: str, *, segment: str = "4d2", currency: str = "USD", account: str = "C-1"
) -> dict[str, Any]:
    return {
        "type": "account_balance",
        "event_id": eid,
        "source": "ledger",
        "as_of": at(minute),
        "segment": segment,
        "account": account,
        "currency": currency,
        "cash": cash,
        "securities": "0",
        "unrealized": "0",
        "long_options": "0",
        "short_options": "0",
    }


def bank(
    eid: str,
    minute: int,
    amount: str,
    *,
    segment: str = "4d2",
    line: str = "7070",
    currency: str = "USD",
    depository: str = "BANK-1",
) -> dict[str, Any]:
    return {
        "type": "depository_balance",
        "event_id": eid,
        "source": "bank",
        "as_of": at(minute),
        "segment": segment,
        "depository": depository,
        "line": line,
        "currency": currency,
        "location": "us",
        "amount": amount,
    }


def target(eid: str, minute: int, amount: str, segment: str = "4d2") -> dict[str, Any]:
    return {
        "type": "management_target",
        "event_id": eid,
        "source": "treasury",
        "as_of": at(minute),
        "segment": segment,
        "amount": amount,
    }


def fx(eid: str, minute: int, currency: str, rate: str) -> dict[str, Any]:
    return {
        "type": "fx_rate",
        "event_id": eid,
        "source": "treasury",
        "as_of": at(minute),
        "currency": currency,
        "usd_per_unit": rate,
    }


def disbursement(eid: str, minute: int, amount: str, approval: str | None = None) -> dict[str, Any]:
    return {
        "type": "disbursement",
        "event_id": eid,
        "source": "treasury",
        "as_of": at(minute),
        "segment": "4d2",
        "amount": amount,
        "recipient": "FCM proprietary account",
        "purpose": "return of residual interest",
        "for_customer_benefit": False,
        "approval": approval,
    }


def ndjson(events: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


# A segment with target 100, 1,200 held, 1,000 owed: then a bank balance drops to 950 and comes back. The
# target comes first: a segment holding balances without one has a `no_target` finding.
DAY = [
    target("t1", 0, "100.00"),
    bank("b1", 1, "1200.00"),
    account("a1", 2, "1000.00"),
    bank("b2", 3, "950.00"),  # excess -50: under target, deficiency
    bank("b3", 4, "1150.00"),  # excess 150: both resolved
]
