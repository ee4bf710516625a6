"""The rules on where and in what customer money is held (issue #14): from one pool's holdings to findings, and
from findings to alert state changes.

Pure Python: no Kafka, no clock, no I/O. Each rule is evaluated on one pool's US-dollar holdings
(segwatch.core.holdings.PoolHoldings); pools never net.

    offshore_funds               30.7 funds outside the US > 120% of the   warning   Reg. 30.7 (funds outside the US
                                 foreign margin requirement (or funds                  only as needed for foreign
                                 outside the US and no requirement known)              margin, plus 20%)
    depository_not_acknowledged  funds at a depository whose reference     warning   Reg. 1.20(d), 30.7(d), 22.5
                                 data says its acknowledgment letter is
                                 not on file
    depository_not_qualified     30.7 funds at a bank outside the US       warning   Reg. 30.7 (a non-US bank needs
                                 without over $1 billion of regulatory                 over $1 billion of regulatory
                                 capital                                               capital)
    investment_not_permitted     customer funds in an instrument Reg. 1.25 critical  Reg. 1.25(a) permitted
                                 does not permit for the pool (`other`                 investments
                                 included)
    asset_concentration          an instrument over its share of the pool  warning   Reg. 1.25(b)(3)(i)
    issuer_concentration         one issuer (or one money market fund)     warning   Reg. 1.25(b)(3)(ii)
                                 over its share of the pool
    average_maturity             dollar-weighted average time to maturity  warning   Reg. 1.25(b)(5)
                                 over 24 months (730 days)
    investment_report_overdue    the report of investments of a report     warning   CBOT Rule 971.D
                                 date not marked submitted by the close of
                                 the next business day (segwatch.core.investments)

Which text: the defaults follow 17 CFR 1.25 as in force on 2026-11-30, i.e. as amended by "Investment of
Customer Funds by Futures Commission Merchants and Derivatives Clearing Organizations" (FR Doc 2024-30927,
90 FR 7810, published 2025-01-22; effective 2025-02-21, compliance 30 days after publication, i.e. 2025-02-21,
only the SIDR and risk-disclosure changes later, 2025-03-31). That rule kept the structure of the 2011 rule
(FR Doc 2011-31689, 76 FR 78776; effective 2012-02-17, compliance 2012-06-18): 1.25(a) permitted investments,
1.25(b)(3) concentration, asset-based (i) and issuer-based (ii), 1.25(b)(5) time to maturity. Where
../shared/DOMAIN.md differs from the 2025 text, DOMAIN.md's behaviour is kept: certificates of deposit and the
TLGP-guaranteed commercial paper and corporate notes, which the 2025 rule took off the list, stay permitted with
the 2011 rule's figures (marked "2011" below).

Default limits (`Limits`, each configurable), as a share of the pool's total assets held in segregation
(customer-owned securities excluded; funds at an unacknowledged depository only when they count):
asset-based, Reg. 1.25(b)(3)(i): U.S. government securities no limit; U.S. agency obligations 50%; municipal
securities 10%; government money market funds 50% (a fund with at least $1 billion of assets whose manager runs
at least $25 billion; a smaller fund is 10%: set it when the FCM uses one); certificates of deposit, commercial
paper, corporate notes 25% each (2011). Issuer-based, Reg. 1.25(b)(3)(ii): a single issuer of U.S. agency
obligations 25%; a single issuer of municipal securities 5%, taken together with its CDs, commercial paper and
corporate notes (2011: 5% across those instruments); a single money market fund 10% (the 25% limit per fund
family needs the family, which balances do not carry). Permitted foreign sovereign debt has no concentration
limit (2025). Figures: the 2025 rule's table of current and new limits, 90 FR 7847-7848. Investments whose
event names no issuer are taken together as one unknown issuer (they may be one), so an unidentified block over
the limit fires rather than passing unseen. Average maturity, Reg. 1.25(b)(5): 24 months (730 days), money market
funds as one day (segwatch.core.holdings; the treatment of funds in the average is not confirmed against the
2025 text, which may leave them out instead); investments without a maturity date are left out of the average
and named in the summary.

A finding is active or not; `AlertTracker.step` turns findings into one record per state change (firing,
resolved) per (segment, rule), never one per update.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Final, Literal, get_args

from schemas.alerts import HoldingRuleName
from schemas.events import INSTRUMENTS, NOT_INVESTMENTS
from segwatch.core.catalogue import ZERO
from segwatch.core.holdings import PoolHoldings

Severity = Literal["critical", "warning", "info"]
State = Literal["firing", "resolved"]

OFFSHORE_FUNDS: Final = "offshore_funds"
DEPOSITORY_NOT_ACKNOWLEDGED: Final = "depository_not_acknowledged"
DEPOSITORY_NOT_QUALIFIED: Final = "depository_not_qualified"
INVESTMENT_NOT_PERMITTED: Final = "investment_not_permitted"
ASSET_CONCENTRATION: Final = "asset_concentration"
ISSUER_CONCENTRATION: Final = "issuer_concentration"
AVERAGE_MATURITY: Final = "average_maturity"
INVESTMENT_REPORT_OVERDUE: Final = "investment_report_overdue"
HOLDING_RULES: Final[tuple[str, ...]] = (
    OFFSHORE_FUNDS,
    DEPOSITORY_NOT_ACKNOWLEDGED,
    DEPOSITORY_NOT_QUALIFIED,
    INVESTMENT_NOT_PERMITTED,
    ASSET_CONCENTRATION,
    ISSUER_CONCENTRATION,
    AVERAGE_MATURITY,
    INVESTMENT_REPORT_OVERDUE,
)

POOL_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {"4d2": "4d(2) customer segregated funds", "30.7": "30.7 secured amount", "4df": "4d(f) cleared swaps collateral"}
)

# Reg. 1.25(a)(1) (2025): U.S. government securities (i), municipal securities (ii), U.S. agency obligations (iii),
# government money market funds (iv), U.S. Treasury ETFs (v: no instrument type for them yet, so one is `other`
# and fires), permitted foreign sovereign debt (vi); plus DOMAIN.md's CDs, commercial paper and corporate notes
# (2011 list). 1.25 applies to the three pools alike (22.2, 30.7). Foreign sovereign debt: (vi) permits only the
# general obligations of Canada, France, Germany, Japan and the United Kingdom, and an FCM only up to its balances
# owed to customers in that currency, which a balance event cannot show; the default permits it for 30.7 funds
# only (where the foreign-currency obligations are) and pages for the other pools: configurable.
PERMITTED_INVESTMENTS: Final = frozenset(
    {
        "us_government",
        "municipal",
        "us_agency",
        "certificate_of_deposit",
        "commercial_paper",
        "corporate_note",
        "money_market_fund",
    }
)
DEFAULT_PERMITTED: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "4d2": PERMITTED_INVESTMENTS,
        "30.7": PERMITTED_INVESTMENTS | {"foreign_sovereign"},
        "4df": PERMITTED_INVESTMENTS,
    }
)

PCT = Decimal("0.01")


def _pct(n: int) -> Decimal:
    return Decimal(n) * PCT


@dataclass(frozen=True, slots=True)
class IssuerLimit:
    instruments: frozenset[str]  # one issuer's holdings of these instruments are added up
    share: Decimal
    paragraph: str


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits the rules apply; the defaults are the regulation's figures."""

    offshore_factor: Decimal = Decimal("1.20")  # Reg. 30.7
    permitted: Mapping[str, frozenset[str]] = field(default_factory=lambda: DEFAULT_PERMITTED)
    # instrument -> (share of the pool, paragraph); an instrument not listed has no asset-based limit
    asset: Mapping[str, tuple[Decimal, str]] = field(
        default_factory=lambda: MappingProxyType(
            {
                "us_agency": (_pct(50), "Reg. 1.25(b)(3)(i)"),
                "municipal": (_pct(10), "Reg. 1.25(b)(3)(i)"),
                "money_market_fund": (
                    _pct(50),
                    "Reg. 1.25(b)(3)(i)",
                ),  # 10% for a fund under $1bn or manager under $25bn
                "certificate_of_deposit": (_pct(25), "Reg. 1.25(b)(3)(i) (2011)"),
                "commercial_paper": (_pct(25), "Reg. 1.25(b)(3)(i) (2011)"),
                "corporate_note": (_pct(25), "Reg. 1.25(b)(3)(i) (2011)"),
            }
        )
    )
    issuer: tuple[IssuerLimit, ...] = (
        IssuerLimit(frozenset({"us_agency"}), _pct(25), "Reg. 1.25(b)(3)(ii)"),
        IssuerLimit(
            frozenset({"municipal", "certificate_of_deposit", "commercial_paper", "corporate_note"}),
            _pct(5),
            "Reg. 1.25(b)(3)(ii)",
        ),
        IssuerLimit(frozenset({"money_market_fund"}), _pct(10), "Reg. 1.25(b)(3)(ii)"),  # per fund
    )
    max_average_maturity_days: Decimal = Decimal(730)  # Reg. 1.25(b)(5): 24 months


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's condition in one pool: active or not, with a summary for a human (exact dollar amounts)."""

    segment: str
    rule: str
    active: bool
    severity: Severity
    summary: str
    regulation: str
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HoldingAlert:
    """A state change of one (segment, rule): what the alerter publishes (its figures, ids, times and
    correlation id are the alerter's to add)."""

    segment: str
    rule: str
    state: State
    severity: Severity
    summary: str
    regulation: str
    page: bool = False


def usd(amount: Decimal) -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def _share(amount: Decimal, base: Decimal) -> str:
    return f"{(amount / base * 100):.2f}%" if base > 0 else "n/a"


def _fx_note(pool: PoolHoldings) -> str:
    return f" (without {', '.join(pool.missing_fx)}: no FX rate)" if pool.missing_fx else ""


def offshore_funds(pool: PoolHoldings, limits: Limits = Limits()) -> Finding | None:
    """Reg. 30.7: 30.7 funds outside the US at most the foreign margin requirements plus 20%."""
    if pool.segment != "30.7":
        return None
    reg = "CFTC Reg. 30.7: 30.7 customer funds outside the US only as needed for foreign margin, plus 20%"
    req = pool.foreign_margin_requirement
    name = POOL_NAMES["30.7"]
    if req is None:
        active = pool.outside_us > ZERO
        summary = (
            f"{name}: {usd(pool.outside_us)} held outside the US and no foreign margin requirement known"
            " — the 120% limit cannot be shown"
            if active
            else f"{name}: nothing held outside the US"
        )
        return Finding(
            "30.7",
            OFFSHORE_FUNDS,
            active,
            "warning",
            summary + _fx_note(pool),
            reg,
            {"outside_us": str(pool.outside_us)},
        )
    limit = (req * limits.offshore_factor).quantize(PCT)
    headroom = limit - pool.outside_us
    active = pool.outside_us > limit
    verb = "exceed" if active else "within"
    summary = (
        f"{name}: funds outside the US {usd(pool.outside_us)} {verb} {limits.offshore_factor * 100:.0f}% of"
        f" the foreign margin requirement {usd(req)} (limit {usd(limit)}, headroom {usd(headroom)})"
    )
    if active:
        summary += " — bring the excess back to US accounts"
    return Finding(
        "30.7",
        OFFSHORE_FUNDS,
        active,
        "warning",
        summary + _fx_note(pool),
        reg,
        {"outside_us": str(pool.outside_us), "requirement": str(req), "limit": str(limit), "headroom": str(headroom)},
    )


_ACK_REGULATION: Final[Mapping[str, str]] = MappingProxyType(
    {
        "4d2": "CFTC Reg. 1.20(d): customer funds only at a depository that gave its acknowledgment letter",
        "30.7": "CFTC Reg. 30.7(d): 30.7 funds only at a depository that gave its acknowledgment letter",
        "4df": "CFTC Reg. 22.5: cleared swaps collateral only at a depository that gave its acknowledgment letter",
    }
)


def _listing(amounts: Mapping[str, Decimal]) -> str:
    return ", ".join(f"{dep} {usd(a)}" for dep, a in sorted(amounts.items()))


def depository_not_acknowledged(pool: PoolHoldings) -> Finding:
    held = {dep: a for dep, a in pool.unacknowledged.items() if a != ZERO}
    name = POOL_NAMES[pool.segment]
    if held:
        counted = "still counted in" if pool.count_unacknowledged else "left out of"
        summary = (
            f"{name}: {usd(sum(held.values(), ZERO))} at depositories without an acknowledgment letter on"
            f" file ({_listing(held)}); {counted} the funds lines — obtain the letters or move the funds"
        )
    else:
        summary = f"{name}: every depository holding funds has its acknowledgment letter on file (or no reference)"
    return Finding(
        pool.segment,
        DEPOSITORY_NOT_ACKNOWLEDGED,
        bool(held),
        "warning",
        summary,
        _ACK_REGULATION[pool.segment],
        {dep: str(a) for dep, a in held.items()},
    )


def depository_not_qualified(pool: PoolHoldings) -> Finding | None:
    if pool.segment != "30.7":
        return None
    held = {dep: a for dep, a in pool.not_qualified.items() if a != ZERO}
    name = POOL_NAMES["30.7"]
    summary = (
        f"{name}: {usd(sum(held.values(), ZERO))} at banks outside the US without over $1 billion of"
        f" regulatory capital ({_listing(held)})"
        if held
        else f"{name}: every bank outside the US holding funds has over $1 billion of regulatory capital"
    )
    return Finding(
        "30.7",
        DEPOSITORY_NOT_QUALIFIED,
        bool(held),
        "warning",
        summary,
        "CFTC Reg. 30.7: a bank outside the US holding 30.7 funds must have over $1 billion of regulatory capital",
        {dep: str(a) for dep, a in held.items()},
    )


def investment_not_permitted(pool: PoolHoldings, limits: Limits = Limits()) -> Finding:
    permitted = limits.permitted.get(pool.segment, frozenset())
    bad = {
        inst: a
        for inst, a in pool.by_instrument.items()
        if inst not in NOT_INVESTMENTS and inst not in permitted and a != ZERO
    }
    name = POOL_NAMES[pool.segment]
    if bad:
        summary = (
            f"{name}: customer funds in investments Reg. 1.25 does not permit for this pool: {_listing(bad)}"
            " — unwind them and notify Compliance"
        )
    else:
        summary = f"{name}: every investment of customer funds is a permitted one{_fx_note(pool)}"
    return Finding(
        pool.segment,
        INVESTMENT_NOT_PERMITTED,
        bool(bad),
        "critical",
        summary,
        "CFTC Reg. 1.25(a): permitted investments of customer funds",
        {inst: str(a) for inst, a in bad.items()},
    )


def asset_concentration(pool: PoolHoldings, limits: Limits = Limits()) -> Finding:
    base = pool.concentration_base
    over: dict[str, str] = {}
    paragraphs: set[str] = set()
    for inst, (share, paragraph) in sorted(limits.asset.items()):
        amount = pool.by_instrument.get(inst, ZERO)
        if amount > ZERO and (base <= ZERO or amount > base * share):
            over[inst] = f"{usd(amount)} = {_share(amount, base)} > {share * 100:.0f}% ({paragraph})"
            paragraphs.add(paragraph)
    name = POOL_NAMES[pool.segment]
    summary = (
        f"{name}: asset-based concentration over the limit of total assets {usd(base)}: "
        + "; ".join(f"{inst} {text}" for inst, text in over.items())
        if over
        else f"{name}: every instrument within its asset-based limit of total assets {usd(base)}"
    )
    return Finding(
        pool.segment,
        ASSET_CONCENTRATION,
        bool(over),
        "warning",
        summary + _fx_note(pool),
        "CFTC Reg. 1.25(b)(3)(i): asset-based concentration limits"
        + (f" ({', '.join(sorted(paragraphs))})" if paragraphs else ""),
        over,
    )


def issuer_concentration(pool: PoolHoldings, limits: Limits = Limits()) -> Finding:
    base = pool.concentration_base
    over: dict[str, str] = {}
    paragraphs: set[str] = set()
    for lim in limits.issuer:
        per_issuer: dict[str, Decimal] = {}
        for (inst, issuer), amount in pool.by_issuer.items():
            if inst in lim.instruments:
                per_issuer[issuer] = per_issuer.get(issuer, ZERO) + amount
        for issuer, amount in sorted(per_issuer.items()):
            if amount > ZERO and (base <= ZERO or amount > base * lim.share):
                who = issuer or "(issuer not given)"
                text = f"{usd(amount)} = {_share(amount, base)} > {lim.share * 100:.0f}% ({lim.paragraph})"
                # one name can break two limits (e.g. the unknown issuer): keep both
                over[who] = f"{over[who]}; {text}" if who in over else text
                paragraphs.add(lim.paragraph)
    name = POOL_NAMES[pool.segment]
    summary = (
        f"{name}: issuer-based concentration over the limit of total assets {usd(base)}: "
        + "; ".join(f"{who} {text}" for who, text in over.items())
        if over
        else f"{name}: every issuer within its limit of total assets {usd(base)}"
    )
    return Finding(
        pool.segment,
        ISSUER_CONCENTRATION,
        bool(over),
        "warning",
        summary + _fx_note(pool),
        "CFTC Reg. 1.25(b)(3)(ii): issuer-based concentration limits"
        + (f" ({', '.join(sorted(paragraphs))})" if paragraphs else ""),
        over,
    )


def average_maturity(pool: PoolHoldings, limits: Limits = Limits()) -> Finding:
    name = POOL_NAMES[pool.segment]
    days = pool.average_maturity_days
    active = days is not None and days > limits.max_average_maturity_days
    if days is None:
        summary = f"{name}: no investment with a known maturity"
    else:
        verb = "over" if active else "within"
        summary = (
            f"{name}: dollar-weighted average time to maturity {days:.2f} days, {verb} the"
            f" {limits.max_average_maturity_days:.0f}-day limit"
        )
    if pool.without_maturity:
        summary += f"; {usd(pool.without_maturity)} of investments without a maturity date left out"
    return Finding(
        pool.segment,
        AVERAGE_MATURITY,
        active,
        "warning",
        summary + _fx_note(pool),
        "CFTC Reg. 1.25(b)(5): average time to maturity of investments at most 24 months",
        {"average_days": "" if days is None else str(days), "without_maturity": str(pool.without_maturity)},
    )


def evaluate(pool: PoolHoldings, limits: Limits = Limits()) -> list[Finding]:
    """Every holdings rule on one pool (offshore_funds and depository_not_qualified for 30.7 only)."""
    found = [
        offshore_funds(pool, limits),
        depository_not_acknowledged(pool),
        depository_not_qualified(pool),
        investment_not_permitted(pool, limits),
        asset_concentration(pool, limits),
        issuer_concentration(pool, limits),
        average_maturity(pool, limits),
    ]
    return [f for f in found if f is not None]


@dataclass(slots=True)
class AlertTracker:
    """Which (segment, rule) are firing; `step` returns one record per state change. Rebuilt after a restart
    from the alert topic: `firing` is the set of keys whose latest record is firing."""

    firing: set[tuple[str, str]] = field(default_factory=set)

    def step(self, findings: Iterable[Finding]) -> list[HoldingAlert]:
        out: list[HoldingAlert] = []
        for f in findings:
            key = (f.segment, f.rule)
            if f.active and key not in self.firing:
                self.firing.add(key)
                out.append(HoldingAlert(f.segment, f.rule, "firing", f.severity, f.summary, f.regulation))
            elif not f.active and key in self.firing:
                self.firing.discard(key)
                out.append(HoldingAlert(f.segment, f.rule, "resolved", f.severity, f.summary, f.regulation))
        return out


if set(HOLDING_RULES) != set(get_args(HoldingRuleName)):  # pragma: no cover - a declaration error
    raise RuntimeError("HOLDING_RULES do not match schemas.alerts.HoldingRuleName")
if not set(DEFAULT_PERMITTED["30.7"]) <= set(INSTRUMENTS):  # pragma: no cover - a declaration error
    raise RuntimeError("a permitted investment is not an instrument of schemas.events.INSTRUMENTS")
