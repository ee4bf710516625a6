"""A synthetic FCM's business day, as balance events: `segwatch sample`.

Thousands of customer accounts and tens of depository accounts across all three segments. The day opens
near the closing book, moves through the day, and in the 4d(2) segment a clearing-house margin outflow
pushes the excess under the management target, then into a deficiency, then back. On the way it exercises
what the figures must get right: accounts in debit secured by their own securities (line 5), clearing
margin accounts reporting on several lines, euro balances before the EUR rate is in (incomplete figures),
and a management target set as a percentage of the requirement. At the close every
balance is restated so that the statement equals the 2017-11-06 reference filing line by line.
The business day (issue #12): the ledger closes the day (`business_day_close`) while the clearing-house
account's restatement is still provisional, a thousand dollars short, so the day's statement (INITIAL) is
a thousand dollars off the filing; its final balance, as of the close, arrives after it (a late balance)
and amends the statement (AMENDMENT, version 2) to the filing; the CFO signs it off and it is filed the
next morning, before the 10:00 warning.
Deterministic for a seed; pure (no Kafka).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_UP, Decimal
from importlib import resources

from schemas.events import (
    AccountBalance,
    BusinessDayClose,
    DepositoryBalance,
    DepositoryReference,
    EventBase,
    ForeignMarginRequirement,
    ForeignRequirement,
    FxRate,
    ManagementTarget,
    StatementApproval,
    StatementFiling,
)
from segwatch.core import statement
from segwatch.core.catalogue import SEGMENTS, ZERO
from segwatch.core.money import CENT

END_DATE = "2017-11-06"
# 2017-11-06 in New York (EST, UTC-5): the day runs 07:00-17:30 local.
DAY = datetime(2017, 11, 6, 12, 0, tzinfo=UTC)
OPEN, CLOSE = DAY, DAY + timedelta(hours=10, minutes=30)
# The business day's record: the ledger's end of day, the late balance (as of a minute after the close),
# and the next morning's sign-off and filing (Chicago 07:00 and 07:30: before the 10:00 warning).
LEDGER_CLOSED = CLOSE + timedelta(minutes=30)
LATE_AS_OF = CLOSE + timedelta(minutes=1)
LATE_CORRECTION = Decimal("1000.00")  # what the provisional restatement is short of the final balance
SIGNED_OFF = datetime(2017, 11, 7, 13, 0, tzinfo=UTC)
FILED = SIGNED_OFF + timedelta(minutes=30)
PREFIX = {"4d2": "F", "30.7": "S", "4df": "X"}
# Where the 4d(2) dip happens: the clearing house's cash margin account (line 8A, code 7100).
DIP_LINE = "7100"
US_LINES = frozenset({"7500", "7540"})
# The day's foreign-currency business (30.7) and the 4d(f) target as a percentage during the day.
EURO_CREDIT = Decimal("2500000.00")
EUR_RATE = Decimal("1.1612")
PERCENTAGE_TARGET_4DF = Decimal("1.5")
# Where and in what (issue #14): the 30.7 securities in US safekeeping (line 7540) are several permitted
# investments, each within its Reg. 1.25(b) limits: (instrument, issuer, days to maturity, share of the line).
INVESTMENTS_7540 = (
    ("us_government", "US Treasury", 365, Decimal("0.40")),
    ("us_agency", "FNMA", 540, Decimal("0.25")),
    ("money_market_fund", "Govt MMF", None, Decimal("0.25")),
    ("certificate_of_deposit", "First Bank", 90, Decimal("0.05")),
    ("commercial_paper", "Acme Corp", 30, Decimal("0.05")),
)
# The foreign margin requirement (Reg. 30.7): the 30.7 funds outside the US are 115% of it, within the 120%
# limit; split between two foreign boards.
OFFSHORE_SHARE = Decimal("1.15")
FOREIGN_BOARDS = (("EUREX", Decimal("0.6")), ("ICE-EU", Decimal("0.4")))


@dataclass(frozen=True, slots=True)
class Account:
    segment: str
    account: str
    cash: Decimal
    securities: Decimal
    unrealized: Decimal
    long_options: Decimal
    short_options: Decimal
    offset_securities: Decimal

    @property
    def nle(self) -> Decimal:
        return self.cash + self.securities + self.unrealized + self.long_options + self.short_options

    @property
    def without_securities(self) -> Decimal:
        """What line 5 measures a debit on (Reg. 1.32(b)): the balance without the customer's securities."""
        return self.cash + self.unrealized + self.long_options + self.short_options


@dataclass(frozen=True, slots=True)
class Depository:
    segment: str
    depository: str
    line: str
    amount: Decimal
    instrument: str | None = None  # None: what the line holds (_instrument)
    issuer: str | None = None
    maturity: date | None = None


# A small 4d(2) bank account whose acknowledgment letter is not on file (Reg. 1.20(d)): its funds are shown
# apart and left out of the funds lines (the filed lines never counted them), and it raises
# depository_not_acknowledged for the day.
UNACKNOWLEDGED = Depository("4d2", "F-7070-NOLETTER", "7070", Decimal("250000.00"))


def closing_book() -> dict[str, dict[str, Decimal]]:
    raw = json.loads(resources.files("segwatch").joinpath("data/closing_2017-11-06.json").read_text())
    return {sid: {c: Decimal(a) for c, a in raw[sid].items()} for sid in SEGMENTS}


def split(total: Decimal, weights: list[float]) -> list[Decimal]:
    """Split an amount into len(weights) parts, exact to the cent, proportional to the weights."""
    cents = int(total / CENT)
    scale = sum(weights)
    parts = [int(cents * w / scale) for w in weights]
    parts[-1] += cents - sum(parts)
    return [Decimal(p) * CENT for p in parts]


def customer_accounts(segment_id: str, leaves: dict[str, Decimal], n: int, rng: random.Random) -> list[Account]:
    """n accounts whose sums are exactly the segment's ledger lines, deficits and offsets included."""
    codes = SEGMENTS[segment_id].ledger
    gross, offset = leaves[codes["deficit"]], -leaves[codes["offset"]]
    k = max(1, n // 25) if gross > 0 else 0
    accounts: list[Account] = []
    prefix = PREFIX[segment_id]
    # Accounts with a debit (Reg. 1.32(b)): cash + unrealized = -g_i, measured without their securities, which
    # are worth a little more at market than their haircut value o_i (<= g_i) that secures the debit once.
    deficits = split(gross, [rng.uniform(0.2, 1.0) for _ in range(k)]) if k else []
    offsets = split(offset, [float(g) for g in deficits]) if k else []
    offsets = [min(o, g) for o, g in zip(offsets, deficits, strict=True)]
    offsets[-1:] = [offsets[-1] + (offset - sum(offsets))] if k else []
    used_cash = used_unrealized = used_securities = ZERO
    for i, (g, o) in enumerate(zip(deficits, offsets, strict=True)):
        cash = (g * Decimal(rng.uniform(0, 1))).quantize(CENT)
        unrealized = -g - cash
        securities = (o * Decimal("1.25")).quantize(CENT)  # a 20% haircut
        used_cash += cash
        used_unrealized += unrealized
        used_securities += securities
        accounts.append(Account(segment_id, f"{prefix}-D{i:05d}", cash, securities, unrealized, ZERO, ZERO, o))
    # Accounts with equity share the rest in one proportion, so each NLE is its share of a positive total.
    m = n - k
    weights = [rng.lognormvariate(0, 1.0) + 0.05 for _ in range(m)]
    comps = {
        "cash": split(leaves[codes["cash"]] - used_cash, weights),
        "securities": split(leaves[codes["securities"]] - used_securities, weights),
        "unrealized": split(leaves[codes["unrealized"]] - used_unrealized, weights),
        "long_options": split(leaves[codes["long_options"]], weights),
        "short_options": split(leaves[codes["short_options"]], weights),
    }
    for j in range(m):
        accounts.append(
            Account(
                segment_id,
                f"{prefix}-{j:06d}",
                comps["cash"][j],
                comps["securities"][j],
                comps["unrealized"][j],
                comps["long_options"][j],
                comps["short_options"][j],
                ZERO,
            )
        )
    return _no_rounding_deficits(accounts, k)


def _no_rounding_deficits(accounts: list[Account], k: int) -> list[Account]:
    """Cent rounding can leave an equity account a few cents in debit; move those cents to the largest."""
    equity = accounts[k:]
    largest = max(range(len(equity)), key=lambda j: equity[j].without_securities)
    moved = ZERO
    for j, acct in enumerate(equity):
        if acct.without_securities < 0 and j != largest:
            moved += -acct.without_securities
            equity[j] = _replace_cash(acct, acct.cash - acct.without_securities)
    equity[largest] = _replace_cash(equity[largest], equity[largest].cash - moved)
    return accounts[:k] + equity


def _replace_cash(a: Account, cash: Decimal) -> Account:
    return Account(
        a.segment, a.account, cash, a.securities, a.unrealized, a.long_options, a.short_options, a.offset_securities
    )


# Clearing-organization margin accounts report on several lines each (cash, securities, settlement): one
# depository account, one balance per line (each line's balance is keyed by depository, line and currency).
MARGIN_ACCOUNT_LINES = {
    "4d2": frozenset({"7100", "7110", "7120", "7130"}),
    "30.7": frozenset({"7640", "7650", "7660", "7670", "7675"}),
    "4df": frozenset({"8630", "8640", "8650", "8660"}),
}


def depository_accounts(segment_id: str, leaves: dict[str, Decimal], rng: random.Random) -> list[Depository]:
    out = []
    seg = SEGMENTS[segment_id]
    for code in sorted(seg.depository_codes):
        amount = leaves.get(code, ZERO)
        count = 1 if amount == 0 else rng.randint(1, 3)
        name = "DCO" if code in MARGIN_ACCOUNT_LINES[segment_id] else code
        for i, part in enumerate(split(amount, [rng.uniform(0.3, 1.0) for _ in range(count)])):
            out.append(Depository(segment_id, f"{PREFIX[segment_id]}-{name}-{i}", code, part))
    if segment_id == "30.7":
        out = [*(d for d in out if d.line != "7540"), *investments(leaves.get("7540", ZERO))]
    return out


def investments(amount: Decimal) -> list[Depository]:
    """The 30.7 securities in US safekeeping as several permitted investments (line 7540), exact to the cent."""
    parts = split(amount, [float(share) for *_, share in INVESTMENTS_7540])
    return [
        Depository(
            "30.7",
            f"S-7540-{instrument.upper()}",
            "7540",
            part,
            instrument,
            issuer,
            None if days is None else DAY.date() + timedelta(days=days),
        )
        for (instrument, issuer, days, _), part in zip(INVESTMENTS_7540, parts, strict=True)
    ]


def outside_us(book: dict[str, dict[str, Decimal]]) -> Decimal:
    """The 30.7 funds held outside the US at the close: every 30.7 depository line but the US banks'."""
    return sum(
        (book["30.7"].get(code, ZERO) for code in SEGMENTS["30.7"].depository_codes if code not in US_LINES), ZERO
    )


def _instrument(segment_id: str, code: str) -> str:
    label = SEGMENTS[segment_id].line(code).label.lower()
    if "in lieu of cash" in label:
        return "customer_securities"
    if "investments of" in label or "securities" in label:
        return "us_government"
    if "option" in label or "unrealized" in label or "settlement" in label or "variation" in label:
        return "open_trade_equity"
    return "cash"


class Day:
    """Builds the day's events in as-of order."""

    def __init__(self, accounts: int, events: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.book = closing_book()
        self.n = 0
        self.accounts = {
            sid: customer_accounts(sid, self.book[sid], count, self.rng)
            for sid, count in _per_segment(accounts).items()
        }
        self.depositories = {sid: depository_accounts(sid, self.book[sid], self.rng) for sid in SEGMENTS}
        self.updates = events

    def _id(self) -> str:
        self.n += 1
        return f"sample-{self.seed}-{self.n:08d}"

    def account_event(self, a: Account, at: datetime, cash_delta: Decimal = ZERO) -> AccountBalance:
        return AccountBalance(
            event_id=self._id(),
            source="ledger",
            as_of=at,
            segment=a.segment,  # type: ignore[arg-type]
            account=a.account,
            currency="USD",
            cash=a.cash + cash_delta,
            securities=a.securities,
            unrealized=a.unrealized,
            long_options=a.long_options,
            short_options=a.short_options,
            offset_securities=a.offset_securities,
        )

    def depository_event(self, d: Depository, at: datetime, amount: Decimal | None = None) -> DepositoryBalance:
        source = {"7": "bank", "8": "dco", "9": "dco"}.get(SEGMENTS[d.segment].line(d.line).number[0], "broker")
        if d.segment == "30.7":
            source = "bank" if d.line in {"7500", "7520", "7540", "7560"} else "broker"
        return DepositoryBalance(
            event_id=self._id(),
            source=source,
            as_of=at,
            segment=d.segment,  # type: ignore[arg-type]
            depository=d.depository,
            line=d.line,
            currency="USD",
            location="us" if d.segment != "30.7" or d.line in US_LINES else "non_us",
            instrument=d.instrument or _instrument(d.segment, d.line),  # type: ignore[arg-type]
            amount=d.amount if amount is None else amount,
            issuer=d.issuer,
            maturity=d.maturity,
        )

    def phases(self) -> list[tuple[str, list[EventBase]]]:
        """The day in phases. A replay pauses between phases, so that each dip step is seen on its own."""
        out: list[tuple[str, list[EventBase]]] = []
        moved: dict[str, Account] = {}
        # Opening: the FCM's settings first (a segment's figures without a target would warn "no target"),
        # then funds, then customers near their closing balances (small moves that are restated at the close,
        # far smaller than any segment's room over its target). The 4d(f) target is a percentage of the
        # requirement during the day (NFA 16(a) allows either) and restated as the filed amount at the close.
        settings: list[EventBase] = [
            ManagementTarget(
                event_id=self._id(),
                source="treasury",
                as_of=OPEN,
                segment=sid,  # type: ignore[arg-type]
                amount=self.book[sid][seg.target],
            )
            for sid, seg in SEGMENTS.items()
            if sid != "4df"
        ]
        settings.append(
            ManagementTarget(
                event_id=self._id(), source="treasury", as_of=OPEN, segment="4df", percentage=PERCENTAGE_TARGET_4DF
            )
        )
        settings.append(
            ForeignRequirement(event_id=self._id(), source="treasury", as_of=OPEN, amount=self.book["30.7"]["7305"])
        )
        settings.extend(self._holdings_settings())
        out.append(("management targets", settings))
        out.append(
            (
                "opening depositories",
                [
                    self.depository_event(d, OPEN)
                    for sid in SEGMENTS
                    for d in [*self.depositories[sid], *([UNACKNOWLEDGED] if sid == UNACKNOWLEDGED.segment else [])]
                ],
            )
        )
        opening: list[EventBase] = []
        for sid in SEGMENTS:
            for a in self.accounts[sid]:
                delta = self._nudge(a)
                if delta:
                    moved[a.account] = a
                opening.append(self.account_event(a, OPEN, delta))
        out.append(("opening accounts", opening))
        at = OPEN + timedelta(minutes=1)
        # Euro business in 30.7 before the day's EUR rate is in: the figures are incomplete (missing_fx pages)
        # until the rate arrives; both balances are closed out (a zero) at the close.
        euro = self._euro(at)
        out.append(("30.7 euro balances, no EUR rate yet", euro))
        out.append(
            ("EUR rate", [FxRate(event_id=self._id(), source="fx", as_of=at, currency="EUR", usd_per_unit=EUR_RATE)])
        )
        # The day: account updates spread over it, with the four steps of the 4d(2) dip between them.
        everyone = [a for sid in SEGMENTS for a in self.accounts[sid]]
        start, span = at + timedelta(minutes=1), (CLOSE - at - timedelta(minutes=32)).total_seconds()
        dip = self._dip_events()
        chunk = max(1, self.updates // (len(dip) + 1))
        done = 0
        names = ("under target", "deficiency", "deficiency cured")
        for step in range(len(dip) + 1):
            count = chunk if step < len(dip) else self.updates - done
            updates: list[EventBase] = []
            for i in range(done, done + count):
                a = self.rng.choice(everyone)
                moved[a.account] = a
                t = start + timedelta(seconds=span * i / max(1, self.updates))
                updates.append(self.account_event(a, t, self._nudge(a)))
            done += count
            out.append((f"trading {step + 1}", updates))
            if step < len(dip):
                d, amount = dip[step]
                t = start + timedelta(seconds=span * done / max(1, self.updates), milliseconds=1)
                out.append((f"4d2 margin: {names[step]}", [self.depository_event(d, t, amount)]))
        # The close: every account that moved and the dipped depository restated at their closing balances.
        closing: list[EventBase] = [self.account_event(a, CLOSE) for a in moved.values()]
        dipped = self._dip_account()
        closing.append(self.depository_event(dipped, CLOSE, dipped.amount - LATE_CORRECTION))  # provisional
        closing.extend(self._euro(CLOSE, closed=True))
        closing.append(
            ManagementTarget(
                event_id=self._id(),
                source="treasury",
                as_of=CLOSE,
                segment="4df",
                amount=self.book["4df"][SEGMENTS["4df"].target],
            )
        )
        out.append(("close", closing))
        out.extend(self._business_day(dipped))
        return out

    def _business_day(self, dipped: Depository) -> list[tuple[str, list[EventBase]]]:
        """The close, its statement amended by a late balance, the sign-off and the filing (issue #12)."""
        day = DAY.date()
        return [
            (
                "ledger end of day",
                [BusinessDayClose(event_id=self._id(), source="ledger", as_of=LEDGER_CLOSED, business_day=day)],
            ),
            ("late balance (amends the close)", [self.depository_event(dipped, LATE_AS_OF)]),
            (
                "sign-off and filing",
                [
                    StatementApproval(
                        event_id=self._id(),
                        source="compliance",
                        as_of=SIGNED_OFF,
                        business_day=day,
                        approved_by="Pat Example",
                        role="cfo",
                        approved_at=SIGNED_OFF,
                        reference=f"SIGNOFF-{END_DATE}",
                    ),
                    StatementFiling(
                        event_id=self._id(),
                        source="compliance",
                        as_of=FILED,
                        business_day=day,
                        filed_at=FILED,
                        confirmation=f"WJ-{END_DATE}-0001",
                        filed_by="Pat Example",
                    ),
                ],
            ),
        ]

    def events(self) -> Iterator[EventBase]:
        for _, events in self.phases():
            yield from events

    def _euro(self, at: datetime, *, closed: bool = False) -> list[EventBase]:
        """A 30.7 customer's euro credit and the euros held for it at a non-US bank (zero once closed out)."""
        credit, held = (ZERO, ZERO) if closed else (EURO_CREDIT, EURO_CREDIT + EURO_CREDIT / 10)
        return [
            AccountBalance(
                event_id=self._id(),
                source="ledger",
                as_of=at,
                segment="30.7",
                account="S-EUR-000001",
                currency="EUR",
                cash=credit,
                securities=ZERO,
                unrealized=ZERO,
                long_options=ZERO,
                short_options=ZERO,
            ),
            DepositoryBalance(
                event_id=self._id(),
                source="bank",
                as_of=at,
                segment="30.7",
                depository="S-EUR-BANK",
                line="7520",
                currency="EUR",
                location="non_us",
                amount=held,
            ),
        ]

    def _holdings_settings(self) -> list[EventBase]:
        """Issue #14: the foreign margin requirement per foreign board, and depository reference data (the
        euro bank abroad, the 30.7 investments' custodian, and the 4d(2) bank without its letter)."""
        required = (outside_us(self.book) / OFFSHORE_SHARE).quantize(Decimal(1), rounding=ROUND_UP)
        amounts = split(required, [float(share) for _, share in FOREIGN_BOARDS])
        out: list[EventBase] = [
            ForeignMarginRequirement(event_id=self._id(), source="treasury", as_of=OPEN, board=board, amount=amount)
            for (board, _), amount in zip(FOREIGN_BOARDS, amounts, strict=True)
        ]
        refs: list[tuple[str, str, str, bool, bool | None]] = [("30.7", "S-EUR-BANK", "GB", True, True)]
        refs += [("30.7", d.depository, "US", True, None) for d in self.depositories["30.7"] if d.line == "7540"]
        refs.append((UNACKNOWLEDGED.segment, UNACKNOWLEDGED.depository, "US", False, None))
        out.extend(
            DepositoryReference(
                event_id=self._id(),
                source="treasury",
                as_of=OPEN,
                segment=sid,  # type: ignore[arg-type]
                depository=dep,
                kind="bank",
                country=country,
                acknowledgment_letter=letter,
                regulatory_capital_over_1bn=capital,
            )
            for sid, dep, country, letter, capital in refs
        )
        return out

    def _nudge(self, a: Account) -> Decimal:
        if self.rng.random() > 0.3:
            return ZERO
        scale = min(abs(a.nle) / 100, Decimal(5000))
        return (scale * Decimal(self.rng.uniform(-1, 1))).quantize(CENT)

    def _dip_account(self) -> Depository:
        return max((d for d in self.depositories["4d2"] if d.line == DIP_LINE), key=lambda d: d.amount)

    def _dip_events(self) -> list[tuple[Depository, Decimal]]:
        """Margin paid out of the clearing-house account and returned in steps that take the 4d(2) excess to
        half its target (under target), minus half its target (deficiency), half its target again, and
        (at the close) back to the filed excess."""
        d = self._dip_account()
        lines = statement.compute("4d2", self.book["4d2"])
        excess, half_target = lines["7190"], lines["7194"] / 2
        return [
            (d, d.amount - (excess - half_target)),
            (d, d.amount - (excess + half_target)),
            (d, d.amount - (excess - half_target)),
        ]


def _per_segment(total: int) -> dict[str, int]:
    # Most customers trade US futures; fewer trade foreign futures or cleared swaps.
    shares = {"4d2": 0.6, "30.7": 0.25, "4df": 0.15}
    return {sid: max(30, int(total * share)) for sid, share in shares.items()}


def sample_day(accounts: int = 3000, events: int = 6000, seed: int = 7) -> Iterator[EventBase]:
    return Day(accounts, events, seed).events()


def to_ndjson(events: Iterator[EventBase]) -> Iterator[str]:
    for ev in events:
        yield ev.model_dump_json()
