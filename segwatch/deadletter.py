"""Build dead-letter records: what could not be processed, where it came from and why.

A dead letter must always be publishable, whatever the record: the payload is embedded as at most
`PAYLOAD_PREFIX_BYTES` of the record (JSON escaping can make text six times longer, base64 a third longer),
with the record's whole length and SHA-256 and, for a Kafka record, its topic, partition and offset, so the
original can be found and compared. The reason and the source are bounded too (a reason can quote a key).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

from schemas.records import DeadLetter

PAYLOAD_PREFIX_BYTES = 16 * 1024  # at most ~96 KiB once JSON-escaped: far under any producer's limit
TEXT_LIMIT = 2048  # characters of a reason, source or field


def _bounded(text: str) -> str:
    if len(text) <= TEXT_LIMIT:
        return text
    return f"{text[:TEXT_LIMIT]}… ({len(text)} characters)"


def _prefix_text(raw: bytes) -> tuple[str, str]:
    """The payload (a prefix of `raw` when it is longer than the limit) as UTF-8 text, or base64."""
    prefix = raw[:PAYLOAD_PREFIX_BYTES]
    # A cut inside a multi-byte character is not an encoding error of the record: back off up to 3 bytes.
    for cut in range(4 if len(prefix) < len(raw) else 1):
        try:
            return prefix[: len(prefix) - cut].decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            continue
    return base64.b64encode(prefix).decode("ascii"), "base64"


def dead_letter(
    stage: str,
    source: str,
    reason: str,
    payload: bytes | str,
    *,
    field: str | None = None,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> DeadLetter:
    raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
    text, encoding = _prefix_text(raw)
    return DeadLetter(
        stage=stage,  # type: ignore[arg-type]
        source=_bounded(source),
        reason=_bounded(reason),
        field=None if field is None else _bounded(field),
        payload=text,
        payload_encoding=encoding,  # type: ignore[arg-type]
        at=datetime.now(UTC),
        payload_bytes=len(raw),
        payload_sha256=hashlib.sha256(raw).hexdigest(),
        payload_truncated=len(raw) > PAYLOAD_PREFIX_BYTES,
        topic=topic,
        partition=partition,
        offset=offset,
    )
