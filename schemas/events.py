"""Input events. Each states a fact as of a time: the latest as-of wins, so replays and duplicates are harmless."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

from schemas.types import (
    Currency,
    Identifier,
    LineCode,
    Money,
    Name,
    NonNegativeMoney,
    NonPositiveMoney,
    Rate,
    SegmentId,
    Timestamp,
)
from segwatch.core.catalogue import LINES, SEGMENTS, Sign, Source


class EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    schema_version: Literal[1] = 1
    event_id: Identifier = Field(description="Unique id of this event; also the correlation id downstream.")
    source: Name = Field(description="The upstream system or file the event came from.")
    as_of: Timestamp = Field(description="When the stated balance was true (timezone required).")


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
    "us_government",  # Reg. 1.25(a)(1)(i)
    "us_agency",  # (ii)
    "certificate_of_deposit",  # (iii)
    "commercial_paper",  # (iv), FDIC-guaranteed
    "corporate_note",  # (v), FDIC-guaranteed
    "money_market_fund",  # (vi), government MMF
    "municipal",  # state and municipal securities
    "foreign_sovereign",  # Reg. 1.25 / 30.7 foreign sovereign debt
    "customer_securities",  # securities held for particular customers in lieu of cash
    "open_trade_equity",  # variation, option value, settlement at a DCO or broker
    "other",
)
Instrument = Literal[
    "cash", "us_government", "us_agency", "certificate_of_deposit", "commercial_paper", "corporate_note",
    "money_market_fund", "municipal", "foreign_sovereign", "customer_securities", "open_trade_equity", "other",
]


class DepositoryBalance(EventBase):
    """A balance held for customers at a bank, clearing organization or other broker, classified to one line."""

    type: Literal["depository_balance"] = "depository_balance"
    segment: SegmentId
    depository: Identifier = Field(description="The depository account's id.")
    line: LineCode = Field(description="The funds-side line of the segment this balance is reported on.")
    currency: Currency
    location: Literal["us", "non_us"] = Field(description="Where the funds are held.")
    instrument: Instrument = "cash"
    amount: Money

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
            raise ValueError(f"amount: give exactly one of amount (USD) and percentage (of the requirement), "
                             f"not {which}")
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


class FxRate(EventBase):
    """US dollars per one unit of `currency`, used to state figures in USD."""

    type: Literal["fx_rate"] = "fx_rate"
    currency: Currency
    usd_per_unit: Rate

    @property
    def key(self) -> str:
        return f"fx|{self.currency}"


PositiveMoney = Annotated[Money, Field(gt=0)]
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


Balance = AccountBalance | DepositoryBalance
Setting = ManagementTarget | ForeignRequirement | FxRate
Event = Annotated[
    AccountBalance | DepositoryBalance | ManagementTarget | ForeignRequirement | FxRate | Disbursement,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_MODELS: tuple[type[EventBase], ...] = (
    AccountBalance, DepositoryBalance, ManagementTarget, ForeignRequirement, FxRate, Disbursement,
)
