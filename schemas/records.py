"""Output records: the figures the calculator publishes and what goes to the dead-letter topic."""

from __future__ import annotations

from datetime import datetime
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
    as_of: datetime | None = Field(description="The latest as-of time among the inputs.")
    computed_at: datetime
    lines: dict[LineCode, Total] = Field(description="Every line of the statement, in US dollars.")
    by_currency: dict[Currency, dict[LineCode, Total]] = Field(
        default_factory=dict, description="The statement computed currency by currency, in that currency."
    )
    requirement: Total
    funds: Total
    excess: Total
    target: Total
    excess_over_target: Total
    missing_fx: list[Currency] = Field(
        default_factory=list, description="Currencies held without an FX rate; left out of the USD lines."
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
