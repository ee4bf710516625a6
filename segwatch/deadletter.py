"""Build dead-letter records: what could not be processed, where it came from and why."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from schemas.records import DeadLetter


def dead_letter(
    stage: str, source: str, reason: str, payload: bytes | str, *, field: str | None = None
) -> DeadLetter:
    raw = payload.encode() if isinstance(payload, str) else payload
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    return DeadLetter(
        stage=stage,  # type: ignore[arg-type]
        source=source,
        reason=reason,
        field=field,
        payload=text,
        payload_encoding=encoding,  # type: ignore[arg-type]
        at=datetime.now(UTC),
    )
