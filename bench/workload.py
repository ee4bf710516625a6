"""The synthetic book the benchmark feeds the pipeline, and the figures it must produce.

Every event is made once, from plain Python values, into two things: the JSON bytes that go to Kafka (the
same wire form ingest publishes: amounts as decimal strings, timezone-aware as-of times) and a model that
`segwatch.core.book.Book` applies in this process. The figures the calculator publishes must equal the
Book's, line by line. A sample of the bytes is validated with the pydantic models and compared with the
models the Book saw, so the two stay the same events.

The events: `accounts` customer accounts over the three segments (60% 4d(2), 25% 30.7 with some EUR and GBP
accounts, 15% 4d(f); about 4% of them liquidate to a deficit, some of those with 1.32(b) offset securities),
each restated several times during the run with a newer as-of; 1% of restatements are stale (an older as-of:
they change nothing) and 0.5% exact duplicates. Depository balances are restated at the end so that each
segment holds 12% over its requirement; the management targets are 5% of the requirement.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from schemas.events import (
    EVENT_ADAPTER,
    AccountBalance,
    DepositoryBalance,
    EventBase,
    ForeignRequirement,
    FxRate,
    ManagementTarget,
)
from segwatch.core.book import Book
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.money import from_cents

T0 = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
SHARES = {"4d2": 0.60, "30.7": 0.25, "4df": 0.15}
PREFIX = {"4d2": "F", "30.7": "S", "4df": "X"}
# Depository accounts per segment: (line, how many accounts on it). The 4d(2) DCO margin account (7100) is
# the one the latency phase dips.
DEPOSITORY_LINES = {
    "4d2": (("7070", 2), ("7100", 1), ("7140", 2)),
    "30.7": (("7500", 2), ("7580", 2), ("7640", 1)),
    "4df": (("8600", 2), ("8630", 2), ("8690", 1)),
}
DIP = ("4d2", "F-7100-0")
FX = {"EUR": Decimal("1.0842"), "GBP": Decimal("1.2611")}
FUNDS_OVER_REQUIREMENT = Decimal("1.12")
TARGET_SHARE = Decimal("0.05")
STALE_SHARE = 0.01
DUPLICATE_SHARE = 0.005


def money(cents: int) -> str:
    """Cents as the wire's decimal string: 150 -> "1.50"."""
    return str(from_cents(cents))


@dataclass(frozen=True, slots=True)
class Record:
    """One event as it goes to Kafka (key, value) and as the Book applies it (event)."""

    key: bytes
    value: bytes
    event: EventBase


@dataclass(slots=True)
class Customer:
    segment: str
    account: str
    currency: str
    size: int  # cents: the scale of the account's balances
    deficit: bool
    latest: Record | None = None


class Workload:
    """Deterministic for a seed. `book` holds the expected state of everything made so far."""

    def __init__(self, accounts: int, events: int, seed: int = 7, run_id: str = "b") -> None:
        if accounts < 30 or events < accounts:
            raise ValueError("need at least 30 accounts and at least one event per account")
        self.rng = random.Random(seed)
        self.events = events
        self.run_id = run_id
        self.seq = 0
        self.book = Book()
        self.customers: list[Customer] = []
        for sid in SEGMENT_IDS:
            count = max(10, round(accounts * SHARES[sid]))
            for i in range(count):
                currency = "USD"
                if sid == "30.7":
                    roll = self.rng.random()
                    currency = "EUR" if roll < 0.2 else "GBP" if roll < 0.3 else "USD"
                size = int(self.rng.lognormvariate(15.5, 1.1))
                self.customers.append(
                    Customer(sid, f"{PREFIX[sid]}-{i:07d}", currency, max(size, 10_000), self.rng.random() < 0.04)
                )
        self.depositories = [
            (sid, f"{PREFIX[sid]}-{line}-{k}", line)
            for sid, lines in DEPOSITORY_LINES.items()
            for line, count in lines
            for k in range(count)
        ]
        self.dip_normal = Decimal(0)  # the dip account's amount when not dipped (set by `closing`)
        # The FX rates are known from the start (the closing depositories cover the requirement in US dollars).
        self.fx = [self._fx_rate(currency, rate) for currency, rate in FX.items()]

    @property
    def accounts(self) -> int:
        return len(self.customers)

    # -- making events ---------------------------------------------------------------------------------

    def _next(self) -> tuple[str, datetime]:
        self.seq += 1
        return f"{self.run_id}-{self.seq:09d}", T0 + timedelta(milliseconds=self.seq)

    def _record(self, model: type[EventBase], key: str, values: dict[str, Any], wire: dict[str, Any]) -> Record:
        return Record(key.encode(), orjson.dumps(wire), model.model_construct(**values))

    def account_event(self, c: Customer, stale: bool = False) -> Record:
        event_id, as_of = self._next()
        if stale:
            as_of -= timedelta(days=1)
        rng, s = self.rng, c.size
        if c.deficit:
            cash = -int(s * rng.uniform(0.05, 0.4))
            securities = int(s * rng.uniform(0, 0.1))
        else:
            cash = int(s * rng.uniform(0.3, 1.2))
            securities = int(s * rng.uniform(0, 0.3)) if rng.random() < 0.3 else 0
        unrealized = int(s * rng.uniform(-0.15, 0.15))
        long_options = int(s * rng.uniform(0, 0.05)) if rng.random() < 0.2 else 0
        short_options = -int(s * rng.uniform(0, 0.05)) if rng.random() < 0.15 else 0
        offset = int(s * rng.uniform(0, 0.1)) if c.deficit and rng.random() < 0.5 else 0
        offset = min(offset, securities)  # the haircut value never exceeds the securities (Reg. 1.32(b))
        amounts = {
            "cash": money(cash),
            "securities": money(securities),
            "unrealized": money(unrealized),
            "long_options": money(long_options),
            "short_options": money(short_options),
            "offset_securities": money(offset),
        }
        wire = {
            "schema_version": 1,
            "event_id": event_id,
            "source": "ledger",
            "as_of": as_of.isoformat(),
            "type": "account_balance",
            "segment": c.segment,
            "account": c.account,
            "currency": c.currency,
            **amounts,
        }
        values = {**wire, "as_of": as_of, **{k: Decimal(v) for k, v in amounts.items()}}
        record = self._record(AccountBalance, f"acct|{c.segment}|{c.account}", values, wire)
        self.book.apply(record.event)
        if not stale:
            c.latest = record
        return record

    def depository_event(self, sid: str, depository: str, line: str, amount: Decimal) -> Record:
        event_id, as_of = self._next()
        wire = {
            "schema_version": 1,
            "event_id": event_id,
            "source": "bank",
            "as_of": as_of.isoformat(),
            "type": "depository_balance",
            "segment": sid,
            "depository": depository,
            "line": line,
            "currency": "USD",
            "location": "us",
            "instrument": "cash",
            "amount": str(amount),
        }
        record = self._record(
            DepositoryBalance, f"depo|{sid}|{depository}", {**wire, "as_of": as_of, "amount": amount}, wire
        )
        self.book.apply(record.event)
        return record

    def update(self) -> Record:
        """One restatement of a random account (what the steady load sends)."""
        return self.account_event(self.rng.choice(self.customers))

    # -- the preloaded run -----------------------------------------------------------------------------

    def balances(self, chunk: int = 10_000) -> Iterator[list[Record]]:
        """All `events` balance events in chunks: every account once, then restatements, then the depositories
        restated so that each segment holds 12% over its requirement."""
        out: list[Record] = [self.depository_event(sid, d, line, Decimal(0)) for sid, d, line in self.depositories]
        closing = len(self.depositories)
        for i in range(max(0, self.events - len(out) - closing)):
            if i < len(self.customers):
                out.append(self.account_event(self.customers[i]))
            else:
                roll = self.rng.random()
                c = self.rng.choice(self.customers)
                if roll < STALE_SHARE:
                    out.append(self.account_event(c, stale=True))
                elif roll < STALE_SHARE + DUPLICATE_SHARE and c.latest is not None:
                    out.append(c.latest)
                    self.book.apply(c.latest.event)
                else:
                    out.append(self.account_event(c))
            if len(out) >= chunk:
                yield out
                out = []
        out.extend(self.closing())
        yield out

    def closing(self) -> list[Record]:
        out = []
        for sid in SEGMENT_IDS:
            required = self.book.consolidated(sid).requirement
            mine = [(d, line) for s, d, line in self.depositories if s == sid]
            total = (required * FUNDS_OVER_REQUIREMENT).quantize(Decimal("0.01"))
            share = (total / len(mine)).quantize(Decimal("0.01"))
            for i, (d, line) in enumerate(mine):
                amount = share if i < len(mine) - 1 else total - share * (len(mine) - 1)
                if (sid, d) == DIP:
                    self.dip_normal = amount
                out.append(self.depository_event(sid, d, line, amount))
        return out

    def _fx_rate(self, currency: str, rate: Decimal) -> Record:
        event_id, as_of = self._next()
        wire = {
            "schema_version": 1,
            "event_id": event_id,
            "source": "treasury",
            "as_of": as_of.isoformat(),
            "type": "fx_rate",
            "currency": currency,
            "usd_per_unit": str(rate),
        }
        record = self._record(FxRate, f"fx|{currency}", {**wire, "as_of": as_of, "usd_per_unit": rate}, wire)
        self.book.apply(record.event)
        return record

    def settings(self) -> list[Record]:
        """The FX rates, the targets (5% of each requirement) and the 30.7 foreign requirement."""
        out = []
        for sid in SEGMENT_IDS:
            amount = (self.book.consolidated(sid).requirement * TARGET_SHARE).quantize(Decimal(1))
            event_id, as_of = self._next()
            wire = {
                "schema_version": 1,
                "event_id": event_id,
                "source": "treasury",
                "as_of": as_of.isoformat(),
                "type": "management_target",
                "segment": sid,
                "amount": str(amount),
            }
            out.append(
                self._record(ManagementTarget, f"target|{sid}", {**wire, "as_of": as_of, "amount": amount}, wire)
            )
        event_id, as_of = self._next()
        amount = (self.book.consolidated("30.7").requirement / 2).quantize(Decimal(1))
        wire = {
            "schema_version": 1,
            "event_id": event_id,
            "source": "treasury",
            "as_of": as_of.isoformat(),
            "type": "foreign_requirement",
            "segment": "30.7",
            "amount": str(amount),
        }
        out.append(
            self._record(
                ForeignRequirement, "foreign_requirement|30.7", {**wire, "as_of": as_of, "amount": amount}, wire
            )
        )
        for record in out:
            self.book.apply(record.event)
        return [*self.fx, *out]

    # -- the dip the latency phase toggles -------------------------------------------------------------

    def dip(self, into_deficiency: bool) -> Record:
        """Take the 4d(2) excess to minus 5% of the requirement (a deficiency), or restore it."""
        sid, depository = DIP
        amount = self.dip_normal
        if into_deficiency:
            c = self.book.consolidated(sid)
            amount -= c.excess + (c.requirement * TARGET_SHARE).quantize(Decimal("0.01"))
        return self.depository_event(sid, depository, "7100", amount)

    # -- what the figures must be ----------------------------------------------------------------------

    def expected(self) -> dict[str, dict[str, Decimal]]:
        """Every segment's lines, as the core computes them from every event made so far."""
        return {sid: dict(self.book.consolidated(sid).lines) for sid in SEGMENT_IDS}

    def expected_accounts(self) -> dict[str, int]:
        return {sid: self.book.aggregate.segments[sid].accounts for sid in SEGMENT_IDS}


def check_wire(records: list[Record], every: int = 997) -> None:
    """Validate a sample of the bytes with the pydantic models; each must equal the model the Book applied."""
    for record in records[::every]:
        parsed = EVENT_ADAPTER.validate_json(record.value)
        if parsed != record.event or parsed.key.encode() != record.key:
            raise AssertionError(f"the wire form differs from the event the Book applied: {record.value!r}")
