"""A dead letter is always publishable: whatever the record, the letter stays far under a producer's limit,
and still says what the record was (a prefix, its length and hash) and where it was."""

from __future__ import annotations

import base64
import hashlib
import random

import pytest

from schemas.records import DeadLetter
from segwatch.deadletter import PAYLOAD_PREFIX_BYTES, TEXT_LIMIT, dead_letter

PRODUCER_LIMIT = 1024 * 1024  # Kafka's default max.request.size / message.max.bytes
rng = random.Random(11)
POISON = {
    "control characters": bytes(rng.randrange(0, 32) for _ in range(170_000)),
    "1 MB of text": ("é" * 300_000 + "x" * 400_000).encode(),
    "binary": rng.randbytes(760_000),
    "empty": b"",
    "short text": b"not json at all",
}


@pytest.mark.parametrize("name", sorted(POISON))
def test_a_dead_letter_of_any_record_is_small_and_names_the_whole_record(name: str) -> None:
    raw = POISON[name]
    letter = dead_letter("calculator", "t[2]@7", "not JSON", raw, field="(record)", topic="t", partition=2, offset=7)
    wire = letter.model_dump_json().encode()
    assert len(wire) < PRODUCER_LIMIT // 4
    assert DeadLetter.model_validate_json(wire) == letter
    assert (letter.topic, letter.partition, letter.offset) == ("t", 2, 7)
    assert letter.payload_bytes == len(raw)
    assert letter.payload_sha256 == hashlib.sha256(raw).hexdigest()
    assert letter.payload_truncated == (len(raw) > PAYLOAD_PREFIX_BYTES)
    kept = base64.b64decode(letter.payload) if letter.payload_encoding == "base64" else letter.payload.encode()
    assert raw.startswith(kept)
    assert len(kept) >= min(len(raw), PAYLOAD_PREFIX_BYTES - 3)


def test_a_cut_inside_a_character_keeps_the_text_as_text() -> None:
    raw = "€".encode() * PAYLOAD_PREFIX_BYTES  # 3 bytes each: the limit falls inside one
    letter = dead_letter("ingest", "http", "too long", raw)
    assert letter.payload_encoding == "utf-8"
    assert raw.startswith(letter.payload.encode())
    assert letter.payload_truncated


def test_text_that_is_not_utf8_is_base64() -> None:
    letter = dead_letter("ingest", "http", "bad", b"\xff\xfe ok")
    assert (letter.payload_encoding, base64.b64decode(letter.payload)) == ("base64", b"\xff\xfe ok")
    assert not letter.payload_truncated


def test_a_huge_reason_or_source_is_bounded() -> None:
    letter = dead_letter("calculator", "s" * 100_000, "key " + "k" * 1_000_000, b"{}", field="f" * 10_000)
    assert len(letter.reason) < TEXT_LIMIT + 40 and letter.reason.endswith("(1000004 characters)")
    assert len(letter.source) < TEXT_LIMIT + 40
    assert letter.field is not None and len(letter.field) < TEXT_LIMIT + 40
