"""Input events. Each states a fact as of a time: the latest as-of wins, so replays and duplicates are harmless."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.catalogue import LINES, SEGMENTS, Sign, Source
from schemas.types import (
    INEXACT_NUMBER,
    Currency,
    Identifier,
    LineCode,
    Money,
    Name,
    NonNegativeMoney,
    NonPositiveMoney,
    PositiveMoney,
    Rate,
    SegmentId,
    Timestamp,
)


class EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    schema_version: Literal[1] = 1
    event_id: Identifier = Field(description="Unique id of this event; also the correlation id downstream.")
    source: Name = Field(description="The upstream system or file the event came from.")
    as_of: Timestamp = Field(description="When the stated balance was true (timezone required).")

    @field_validator("schema_version", mode="before")
    @classmethod
    def _schema_version_is_an_integer(cls, value: object) -> object:
        # Literal[1] alone takes true and 1.0 (both == 1); a version is the integer 1 or nothing.
        if type(value) is not int:
            raise ValueError(f"must be the integer 1, got {value!r}")
        return value


class AccountBalance(EventBase):
    """A customer account's ledger balance in one segment and currency."""

    type: Literal["account_balance"] = "account_balance"
    segment: SegmentId
    account: Identifier
    currency: Currency
    cash: Money = Field(description="Cash ledger balance.")
    securities: Money = Field(description="Customer securities at market.")
    unrealized: Money = Field(description="Net unrealized profit (loss) on open futures / cleared swaps.")
    long_options: NonNegativeMoney = Field(description="Market value of long options.")
    short_options: NonPositiveMoney = Field(description="Market value of short (granted) options, <= 0.")
    offset_securities: NonNegativeMoney = Field(
        default=Decimal(0),
        description="Haircut value of this row's customer securities (at most `securities`) that may secure "
        "its debit under Reg. 1.32(b); the debit is measured without the securities.",
    )

    @model_validator(mode="after")
    def _offset_within_securities(self) -> Self:
        # The haircut value never exceeds the market value: securities secure a debit once, at most at market.
        if self.offset_securities > 0 and self.offset_securities > self.securities:
            raise ValueError(
                f"offset_securities: the haircut value {self.offset_securities} exceeds the securities at market "
                f"{self.securities}"
            )
        return self

    @property
    def key(self) -> str:
        return f"acct|{self.segment}|{self.account}"


INSTRUMENTS = (
    "cash",
    "us_government",  # Reg. 1.25(a)(1)(i) (paragraphs as amended in 2025, 90 FR 7810)
    "us_agency",  # (iii)
    "certificate_of_deposit",  # 2011 list (iv); off the list since 2025, kept per DOMAIN.md
    "commercial_paper",  # 2011 list (v), TLGP-guaranteed; likewise
    "corporate_note",  # 2011 list (vi), TLGP-guaranteed; likewise
    "money_market_fund",  # (iv), government MMF
    "municipal",  # (ii), state and municipal securities
    "foreign_sovereign",  # (vi), Canada, France, Germany, Japan, UK (segwatch.core.holding_rules)
    "customer_securities",  # securities held for particular customers in lieu of cash
    "open_trade_equity",  # variation, option value, settlement at a DCO or broker
    "other",
)
Instrument = Literal[
    "cash",
    "us_government",
    "us_agency",
    "certificate_of_deposit",
    "commercial_paper",
    "corporate_note",
    "money_market_fund",
    "municipal",
    "foreign_sovereign",
    "customer_securities",
    "open_trade_equity",
    "other",
]


# The instruments that are no investment of customer funds (Reg. 1.25 is about the others): cash, the securities
# customers deposited themselves, and the value of open positions.
NOT_INVESTMENTS = frozenset({"cash", "customer_securities", "open_trade_equity"})
# 30.7 bank lines name where the bank is: a balance whose location says otherwise is misclassified.
LINE_LOCATIONS: dict[str, Literal["us", "non_us"]] = {
    "7500": "us",
    "7540": "us",
    "7520": "non_us",
    "7560": "non_us",
}
Cusip = Annotated[str, StringConstraints(pattern=r"^[0-9A-Z*@#]{8}[0-9]$")]


class DepositoryBalance(EventBase):
    """A balance held for customers at a bank, clearing organization or other broker, classified to one line.

    An investment (any instrument but cash, customer securities and open trade equity) may say what it is:
    issuer, CUSIP and maturity date, for the Reg. 1.25 concentration and maturity limits.
    """

    type: Literal["depository_balance"] = "depository_balance"
    segment: SegmentId
    depository: Identifier = Field(description="The depository account's id.")
    line: LineCode = Field(description="The funds-side line of the segment this balance is reported on.")
    currency: Currency
    location: Literal["us", "non_us"] = Field(description="Where the funds are held.")
    instrument: Instrument = "cash"
    amount: Money
    issuer: Name | None = Field(default=None, description="An investment's issuer (Reg. 1.25(b) issuer limits).")
    cusip: Cusip | None = Field(default=None, description="An investment's CUSIP.")
    maturity: date | None = Field(default=None, description="An investment's maturity date (Reg. 1.25(b)(5)).")

    @model_validator(mode="after")
    def _line_of_segment(self) -> Self:
        line = LINES.get(self.line)
        if line is None or line.segment != self.segment or line.source is not Source.DEPOSITORY:
            valid = ", ".join(sorted(SEGMENTS[self.segment].depository_codes))
            raise ValueError(f"line: {self.line} is not a depository line of segment {self.segment} ({valid})")
        if line.sign is Sign.NONPOSITIVE and self.amount > 0:
            raise ValueError(f"amount: line {self.line} ({line.label}) is never positive")
        if line.sign is Sign.NONNEGATIVE and self.amount < 0:
            raise ValueError(f"amount: line {self.line} ({line.label}) is never negative")
        where = LINE_LOCATIONS.get(self.line)
        if where is not None and self.location != where:
            banks = "banks located in the United States" if where == "us" else "banks outside the United States"
            raise ValueError(
                f"location: line {self.line} is for {banks}; location must be {where}, not {self.location}"
            )
        if self.instrument in NOT_INVESTMENTS:
            for name in ("issuer", "cusip", "maturity"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: only an investment carries one, not {self.instrument}")
        return self

    @property
    def key(self) -> str:
        return f"depo|{self.segment}|{self.depository}"


# A management target as a percentage of the requirement: 0-1000 %, at most 4 decimal places.
Percentage = Annotated[Decimal, Field(allow_inf_nan=False, ge=0, le=1000, max_digits=8, decimal_places=4)]


class ManagementTarget(EventBase):
    """The FCM's management target for excess funds in one segment (residual-interest policy): a dollar
    `amount`, or a `percentage` of the segment's requirement (NFA Financial Requirements Section 16(a) allows
    either). Exactly one of them."""

    type: Literal["management_target"] = "management_target"
    segment: SegmentId
    amount: NonNegativeMoney | None = Field(default=None, description="The target in US dollars.")
    percentage: Percentage | None = Field(
        default=None, description="The target as a percentage of the requirement (5 = 5%)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.amount is None) == (self.percentage is None):
            which = "neither" if self.amount is None else "both"
            raise ValueError(
                f"amount: give exactly one of amount (USD) and percentage (of the requirement), not {which}"
            )
        return self

    @property
    def key(self) -> str:
        return f"target|{self.segment}"


class ForeignRequirement(EventBase):
    """30.7 line 7305: the amount a foreign government's law or a foreign SRO's rule requires, in USD."""

    type: Literal["foreign_requirement"] = "foreign_requirement"
    segment: Literal["30.7"] = "30.7"
    amount: NonNegativeMoney

    @property
    def key(self) -> str:
        return "foreign_requirement|30.7"


class ForeignMarginRequirement(EventBase):
    """What the foreign boards of trade, their clearing organizations and the foreign brokers require as margin
    (prefunding included) for the 30.7 customers' positions, in USD: Reg. 30.7 lets the FCM hold outside the US
    at most this plus 20%. Optionally per foreign board or foreign broker: the requirement is the sum of the
    latest per (board, broker); an event with neither is one firm-wide figure (do not mix it with per-board ones).
    """

    type: Literal["foreign_margin_requirement"] = "foreign_margin_requirement"
    segment: Literal["30.7"] = "30.7"
    board: Identifier | None = Field(default=None, description="The foreign board of trade (or its clearing org).")
    broker: Identifier | None = Field(default=None, description="The foreign broker carrying the positions.")
    amount: NonNegativeMoney = Field(description="The margin requirement, in US dollars.")

    @property
    def key(self) -> str:
        return f"fmr|30.7|{self.board or ''}|{self.broker or ''}"


DEPOSITORY_KINDS = ("bank", "dco", "fcm", "foreign_broker", "foreign_clearing_organization")
DepositoryKind = Literal["bank", "dco", "fcm", "foreign_broker", "foreign_clearing_organization"]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]  # ISO 3166-1 alpha-2


class DepositoryReference(EventBase):
    """Reference data of one depository account (the `depository` of its balances in `segment`): what kind of
    institution holds it, where, and whether its acknowledgment letter is on file (Reg. 1.20(d) for 4d(2),
    30.7(d) for 30.7, 22.5 for cleared swaps). A depository without reference data counts as before and is
    listed as unclassified."""

    type: Literal["depository_reference"] = "depository_reference"
    segment: SegmentId
    depository: Identifier
    kind: DepositoryKind
    country: Country = Field(description="ISO 3166-1 alpha-2 country of the depository.")
    acknowledgment_letter: StrictBool = Field(description="True when its acknowledgment letter is on file.")
    regulatory_capital_over_1bn: StrictBool | None = Field(
        default=None,
        description="A bank outside the US: whether it has over $1 billion of regulatory capital (required for "
        "one holding 30.7 funds).",
    )
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _capital_of_foreign_bank(self) -> Self:
        if (
            self.segment == "30.7"
            and self.kind == "bank"
            and self.country != "US"
            and self.regulatory_capital_over_1bn is None
        ):
            raise ValueError(
                "regulatory_capital_over_1bn: required for a bank outside the US holding 30.7 funds (Reg. 30.7: "
                "only one with over $1 billion of regulatory capital qualifies)"
            )
        return self

    @property
    def key(self) -> str:
        return f"depref|{self.segment}|{self.depository}"


class FxRate(EventBase):
    """US dollars per one unit of `currency`, used to state figures in USD."""

    type: Literal["fx_rate"] = "fx_rate"
    currency: Currency
    usd_per_unit: Rate

    @property
    def key(self) -> str:
        return f"fx|{self.currency}"


Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=200)]

# The 25% test compares a disbursement with the segment's excess, which the figures state in US dollars.
DISBURSEMENT_CURRENCY = "USD"


class Disbursement(EventBase):
    """Funds paid out of a segment's customer (segregated, secured 30.7 or cleared swaps) accounts.

    CBOT Rule 971.E: a disbursement not for the benefit of customers that exceeds 25% of the segment's
    excess, alone or with every such disbursement since the last excess calculation, needs written
    pre-approval by the CEO or CFO (or their authorized representative) and immediate notice to the
    exchange's Audit Department. The funds leaving show up in the figures through the depository balances;
    this event is the compliance fact: how much, to whom, why, and under which approval.

    US dollars only: the alerter compares the amount with the USD excess and holds no FX rates, so a
    disbursement made in another currency is sent with its USD equivalent at the rate it was executed at.
    """

    type: Literal["disbursement"] = "disbursement"
    segment: SegmentId
    amount: PositiveMoney = Field(description="The amount paid out, in US dollars (> 0).")
    currency: Currency = Field(
        default=DISBURSEMENT_CURRENCY,
        description="Always USD: send a disbursement made in another currency as its USD equivalent.",
    )
    recipient: Text = Field(description="Who receives the funds (named in the notice to the Audit Department).")
    purpose: Text = Field(description="Why the funds are disbursed (the reason the notice must describe).")
    for_customer_benefit: StrictBool = Field(
        description="True when made for the benefit of customers (e.g. a customer withdrawal, margin paid to a "
        "clearing organization for customers); false for the FCM's own purposes, which Rule 971.E checks."
    )
    approval: Reference | None = Field(
        default=None,
        description="Reference to the written pre-approval by the CEO, CFO or their authorized representative "
        "(document id, ticket); null when there is none.",
    )
    proposal_id: Identifier | None = Field(
        default=None,
        description="The what-if proposal (POST /v1/what-if) this disbursement executes, if any: an approval of "
        "that proposal matches it.",
    )

    @field_validator("currency")
    @classmethod
    def _usd_only(cls, currency: str) -> str:
        if currency != DISBURSEMENT_CURRENCY:
            raise ValueError(
                f"a disbursement is checked against the segment's US-dollar excess: send its USD equivalent "
                f"(at the rate it was executed at) with currency USD, not {currency}"
            )
        return currency

    @property
    def key(self) -> str:
        return f"disb|{self.segment}"


ApprovalRole = Literal["ceo", "cfo", "authorized_representative"]


class DisbursementApproval(EventBase):
    """A written pre-approval of a disbursement not for the benefit of customers (Reg. 1.23(c), CBOT Rule
    971.E): by the CEO, the CFO or their authorized representative, as of `as_of`. It matches a disbursement
    of its segment that names its `reference` (the disbursement's `approval`) or its `proposal_id`."""

    type: Literal["disbursement_approval"] = "disbursement_approval"
    segment: SegmentId
    reference: Reference = Field(description="The written approval's reference (document id, ticket).")
    approver: Text = Field(description="Who approved (name).")
    role: ApprovalRole
    proposal_id: Identifier | None = Field(default=None, description="The what-if proposal it approves, if any.")
    amount: PositiveMoney | None = Field(default=None, description="The most it approves (USD); null: not stated.")

    @property
    def key(self) -> str:
        return f"approval|{self.segment}|{self.reference}"


class UndermarginedAmounts(EventBase):
    """The customers' margin deficiencies (undermargined amounts) of a segment as of a business day's close,
    in USD: Reg. 1.22(c) (30.7(f), 22.2(f)) wants the residual interest at least this much by 6:00 pm Eastern
    on the next business day."""

    type: Literal["undermargined_amounts"] = "undermargined_amounts"
    segment: SegmentId
    business_day: date = Field(description="The business day whose close the amounts are computed as of.")
    amount: NonNegativeMoney = Field(description="The sum of the customers' margin deficiencies, USD.")

    @property
    def key(self) -> str:
        return f"undermargined|{self.segment}|{self.business_day.isoformat()}"  # one per close: two may be held


# The business day (Reg. 1.32, CBOT Rule 971.B): the ledger's close, and the sign-off and filing of a day's
# statement. One statement per business day covers every segment that day has (segwatch/core/calendar.py).
SignOffRole = Literal["ceo", "cfo"]


class BusinessDayClose(EventBase):
    """The ledger's end of day is complete: close `business_day` now rather than at its cut-off. Balances of
    that day arriving afterwards still count, as amendments."""

    type: Literal["business_day_close"] = "business_day_close"
    business_day: date = Field(description="The business day to close (YYYY-MM-DD).")

    @property
    def key(self) -> str:
        return f"close|{self.business_day.isoformat()}"


class StatementApproval(EventBase):
    """The sign-off of a business day's statement by the CEO or CFO (CBOT Rule 971.B), before it is filed."""

    type: Literal["statement_approval"] = "statement_approval"
    business_day: date = Field(description="The business day whose statement is approved (YYYY-MM-DD).")
    version: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="The statement version approved; null: the latest computed."
    )
    approved_by: Name = Field(description="Who signed off.")
    role: SignOffRole = Field(description="ceo or cfo.")
    approved_at: Timestamp = Field(description="When the statement was signed off.")
    reference: Reference = Field(description="The sign-off's reference (document id, ticket).")

    @property
    def key(self) -> str:
        return f"statement|{self.business_day.isoformat()}|approval|{self.event_id}"  # each one kept (Reg. 1.31)


class StatementFiling(EventBase):
    """A business day's statement filed with the DSRO (WinJammer), with the confirmation it returned."""

    type: Literal["statement_filing"] = "statement_filing"
    business_day: date = Field(description="The business day whose statement was filed (YYYY-MM-DD).")
    version: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="The statement version filed; null: the latest computed."
    )
    filed_at: Timestamp = Field(description="When the statement was filed.")
    confirmation: Reference = Field(description="The filing's confirmation reference.")
    filed_by: Name | None = Field(default=None, description="Who filed it.")

    @property
    def key(self) -> str:
        return f"statement|{self.business_day.isoformat()}|filing|{self.event_id}"  # each one kept (Reg. 1.31)


class InvestmentReportSubmitted(EventBase):
    """The report of investments as of a report date (CBOT Rule 971.D) marked submitted, for one pool or all."""

    type: Literal["investment_report_submitted"] = "investment_report_submitted"
    report_date: date = Field(description="The report date (the 15th or the next business day, or month end).")
    segment: SegmentId | None = Field(default=None, description="The pool submitted; null: every pool.")
    submitted_at: Timestamp = Field(description="When the report was submitted.")
    reference: Reference = Field(description="The submission's reference (confirmation, ticket).")
    submitted_by: Name | None = Field(default=None, description="Who submitted it.")

    @property
    def key(self) -> str:
        pool = self.segment or "all"
        return f"investment_report|{self.report_date.isoformat()}|submitted|{pool}"


DAY_EVENT_MODELS: tuple[type[EventBase], ...] = (
    BusinessDayClose,
    StatementApproval,
    StatementFiling,
    InvestmentReportSubmitted,
)


Balance = AccountBalance | DepositoryBalance
Setting = ManagementTarget | ForeignRequirement | FxRate
HoldingSetting = ForeignMarginRequirement | DepositoryReference  # where and in what the money is held (#14)
Event = Annotated[
    AccountBalance
    | DepositoryBalance
    | ManagementTarget
    | ForeignRequirement
    | FxRate
    | Disbursement
    | DisbursementApproval
    | UndermarginedAmounts
    | BusinessDayClose
    | StatementApproval
    | StatementFiling
    | ForeignMarginRequirement
    | DepositoryReference
    | InvestmentReportSubmitted,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event_json(raw: bytes | str) -> Event:
    """One event from its JSON text, every amount exact. pydantic's JSON parser reads a number with a fraction
    or an exponent as a binary float, which has lost digits by the time the amount sees it; such an event
    (the amount refuses the float: INEXACT_NUMBER) is read again with each such number as a Decimal of its
    own text. Events from ingest carry amounts as strings and take the first, fast path."""
    try:
        return EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        if not any(err["type"] == INEXACT_NUMBER for err in exc.errors(include_url=False)):
            raise
        try:
            data = json.loads(raw, parse_float=Decimal)
        except (ValueError, RecursionError):
            raise exc from None
        return EVENT_ADAPTER.validate_python(data)


EVENT_MODELS: tuple[type[EventBase], ...] = (
    AccountBalance,
    DepositoryBalance,
    ManagementTarget,
    ForeignRequirement,
    FxRate,
    Disbursement,
    DisbursementApproval,
    UndermarginedAmounts,
    *DAY_EVENT_MODELS,
    ForeignMarginRequirement,
    DepositoryReference,
)
