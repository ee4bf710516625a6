"""Output records: the figures the calculator publishes and what goes to the dead-letter topic."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.types import Currency, LineCode, SegmentId, Total


class Figures(BaseModel):
    """Every line of one segment's statement as of the latest input, in USD and per currency (Reg. 1.32(a))."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    type: Literal["figures"] = "figures"
    segment: SegmentId
    version: int = Field(ge=0, description="Grows by one with every change of this segment's figures.")
    as_of: datetime | None = Field(
        description="The oldest of the input sources' newest as-of: a figure is only as current as its stalest source."
    )
    computed_at: datetime
    lines: dict[LineCode, Total] = Field(description="Every line of the statement, in US dollars.")
    by_currency: dict[Currency, dict[LineCode, Total]] = Field(
        default_factory=dict, description="The statement computed currency by currency, in that currency."
    )
    excess_by_currency: dict[Currency, Total] = Field(
        default_factory=dict,
        description="Per currency, in that currency: funds held in it less the requirement in it (Reg. 1.32(a)).",
    )
    requirement: Total
    funds: Total
    excess: Total
    target: Total | None = Field(description="The management target in USD; null when none is set.")
    excess_over_target: Total | None = Field(description="excess - target; null when no target is set.")
    missing_fx: list[Currency] = Field(
        default_factory=list, description="Currencies held that never had an FX rate; left out of the USD lines."
    )
    incomplete: bool = Field(
        default=False,
        description="True when a currency held has no FX rate (missing_fx): the USD figures leave it out, so "
        "they cannot show that the segment is compliant.",
    )
    stale_fx: list[Currency] = Field(
        default_factory=list,
        description="Currencies held whose last FX rate is older than the configured age "
        "(SEGWATCH_FX_MAX_AGE_SECONDS) behind the segment's newest balance.",
    )
    fx_as_of: dict[Currency, datetime] = Field(
        default_factory=dict, description="Each non-USD currency held and the as-of of the rate used for it."
    )
    accounts: int = Field(ge=0, description="Customer account balances held.")
    depositories: int = Field(ge=0, description="Depository balances held.")
    last_event_id: str | None = Field(default=None, description="Correlation id of the latest input applied.")
    ingested_at: datetime | None = Field(
        default=None, description="Kafka timestamp of the newest input behind this change (for latency)."
    )
    sources: dict[str, datetime] = Field(
        default_factory=dict, description="Each input source and the newest as-of it has sent (for freshness)."
    )
    holdings: HoldingsFigures | None = Field(
        default=None,
        description="Where and in what the pool's money is held (issue #14); null when the segment "
        "has no depository balance.",
    )


class DeadLetter(BaseModel):
    """A record segwatch could not process, with the reason; nothing is dropped silently."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    type: Literal["dead_letter"] = "dead_letter"
    stage: Literal["ingest", "calculator", "alerter"]
    source: str = Field(description="Where the record came from: a topic, a file and line, or an HTTP client.")
    reason: str
    field: str | None = None
    payload: str = Field(
        description="The record as received (UTF-8, or base64 when it was not text); only its first bytes when "
        "`payload_truncated` (so that a dead letter of any record the broker accepts can itself be published)."
    )
    payload_encoding: Literal["utf-8", "base64"] = "utf-8"
    at: datetime
    payload_bytes: int | None = Field(default=None, ge=0, description="Length of the whole record in bytes.")
    payload_sha256: str | None = Field(default=None, description="SHA-256 (hex) of the whole record.")
    payload_truncated: bool = Field(default=False, description="True when `payload` holds only a prefix.")
    topic: str | None = Field(default=None, description="The Kafka topic the record was read from, if any.")
    partition: int | None = Field(default=None, ge=0, description="Its partition.")
    offset: int | None = Field(default=None, ge=0, description="Its offset.")


class DepositoryHoldingFigures(BaseModel):
    """What one depository holds in the pool (US dollars), with its reference data (null: unclassified)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    depository: str
    amount: Total
    kind: str | None = Field(
        default=None,
        description="bank, dco, fcm, foreign_broker, foreign_clearing_organization"
        "; null when the depository has no reference data (unclassified).",
    )
    country: str | None = None
    acknowledgment_letter: bool | None = Field(
        default=None, description="Whether its acknowledgment letter is on file; null when unclassified."
    )
    regulatory_capital_over_1bn: bool | None = None


class IssuerHoldingFigures(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    instrument: str
    issuer: str = Field(description="The issuer the balances name; empty when they name none.")
    amount: Total


class HoldingsFigures(BaseModel):
    """Where and in what the pool's money is held (issue #14), in US dollars, from the depository balances,
    the depository reference data and (30.7) the foreign margin requirement."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    on: date = Field(
        description="The day the average maturity is measured from (the newest balance's date, America/Chicago)."
    )
    total: Total = Field(description="Every depository balance of the pool.")
    by_instrument: dict[str, Total] = Field(description="What the pool holds, by instrument type.")
    by_issuer: list[IssuerHoldingFigures] = Field(default_factory=list, description="Investments by issuer.")
    depositories: list[DepositoryHoldingFigures] = Field(default_factory=list)
    customer_securities: Total
    outside_us: Total = Field(description="Funds held outside the US (30.7: the Reg. 30.7 limit applies).")
    inside_us: Total
    foreign_margin_requirement: Total | None = Field(
        default=None, description="30.7: the foreign margin requirement; null when none was received."
    )
    offshore_limit: Total | None = Field(default=None, description="30.7: 120% of the foreign margin requirement.")
    offshore_headroom: Total | None = Field(
        default=None, description="30.7: the limit less the funds outside the US (negative: over the limit)."
    )
    average_maturity_days: Total | None = Field(
        default=None, description="Dollar-weighted average days to maturity of the investments (MMFs: one day)."
    )
    without_maturity: Total = Field(description="Investments without a maturity date (left out of the average).")
    unacknowledged: dict[str, Total] = Field(
        default_factory=dict, description="Funds at depositories whose acknowledgment letter is missing, shown apart."
    )
    counts_unacknowledged: bool = Field(
        default=False, description="Whether those funds count in the funds lines (SEGWATCH_COUNT_UNACKNOWLEDGED)."
    )
    unclassified: list[str] = Field(default_factory=list, description="Depositories without reference data.")
    not_qualified: dict[str, Total] = Field(
        default_factory=dict, description="30.7 funds at banks outside the US without over $1bn of capital."
    )
    missing_fx: list[Currency] = Field(default_factory=list, description="Currencies left out: no FX rate.")


Figures.model_rebuild()
