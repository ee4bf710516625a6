"""The calculator as a real process on the real broker: figures, dead letters, and a stream that goes on."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from schemas import AccountBalance, DeadLetter, Figures
from schemas.events import Disbursement
from segwatch.kafka import topics
from segwatch.system import LocalSystem

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]
T0 = datetime(2026, 11, 20, 21, tzinfo=UTC)


def balance(n: int, cash: str, account: str = "C-1") -> AccountBalance:
    return AccountBalance(
        event_id=f"e{n}",
        source="ledger",
        as_of=T0,
        segment="4d2",
        account=account,
        currency="USD",
        cash=Decimal(cash),
        securities=Decimal(0),
        unrealized=Decimal(0),
        long_options=Decimal(0),
        short_options=Decimal(0),
    )


async def dead_letters_and_figures(
    system: LocalSystem, letters_wanted: int, settle: bool = False
) -> tuple[list[DeadLetter], list[Figures]]:
    """The dead letters and figures records so far, once `letters_wanted` letters and some figures are in (or
    after about 45 s: the assertions then say what is missing); with `settle`, 2 s more (nothing may follow)."""
    letters: list[DeadLetter] = []
    figures: list[Figures] = []
    async with system.consume(topics.DEADLETTER, topics.FIGURES) as consumer:
        for _ in range(150):
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for r in records:
                    if r.topic.endswith("deadletter"):
                        letters.append(DeadLetter.model_validate_json(r.value))
                    else:
                        figures.append(Figures.model_validate_json(r.value))
            if len(letters) >= letters_wanted and figures:
                break
        if settle:
            for records in (await consumer.getmany(timeout_ms=2000)).values():
                for r in records:
                    if r.topic.endswith("deadletter"):
                        letters.append(DeadLetter.model_validate_json(r.value))
                    else:
                        figures.append(Figures.model_validate_json(r.value))
    return letters, figures


@pytest.fixture
async def calculator(
    kafka_bootstrap: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[LocalSystem]:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
    async with LocalSystem(workdir=tmp_path, run=("calculator",), out=lambda _: None) as system:
        yield system


async def test_bad_records_are_dead_lettered_and_the_stream_goes_on(calculator: LocalSystem) -> None:
    system = calculator
    producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap, acks="all")
    await producer.start()
    good = balance(1, "125.50")
    bad = {
        b"not json at all": b"acct|4d2|C-1",
        json.dumps({**json.loads(good.model_dump_json()), "cash": "12.345"}).encode(): b"acct|4d2|C-1",
        balance(2, "1", account="C-2").model_dump_json().encode(): b"acct|4d2|SOMEONE-ELSE",
    }
    try:
        for value, key in bad.items():
            await producer.send_and_wait(system.topic(topics.BALANCES), value, key=key)
        await producer.send_and_wait(
            system.topic(topics.BALANCES), good.model_dump_json().encode(), key=good.key.encode()
        )
    finally:
        await producer.stop()

    letters, figures = await dead_letters_and_figures(system, 3)
    assert sorted((d.stage, d.field) for d in letters) == [
        ("calculator", "(record)"),
        ("calculator", "cash"),
        ("calculator", "key"),
    ]
    by_field = {d.field: d for d in letters}
    assert "no more than 2 decimal places" in by_field["cash"].reason
    assert "SOMEONE-ELSE" in by_field["key"].reason
    assert by_field["(record)"].payload == "not json at all"
    assert all(d.source.startswith(system.topic(topics.BALANCES)) for d in letters)
    # The good record after the bad ones was applied.
    assert figures[-1].lines["7010"] == Decimal("125.50")
    assert figures[-1].last_event_id == "e1"


async def test_a_misrouted_disbursement_is_dead_lettered_and_changes_no_figure(calculator: LocalSystem) -> None:
    """A disbursement sent to the calculator by mistake (on segwatch.balances or segwatch.settings) is
    dead-lettered with the field and the reason, changes no figure, and the stream goes on. (Disbursements
    belong on segwatch.disbursements, which only the alerter reads.)"""
    system = calculator
    payout = Disbursement(
        event_id="d-misrouted",
        source="treasury",
        as_of=T0,
        segment="4d2",
        amount=Decimal("5000.00"),
        recipient="Parent Co",
        purpose="dividend",
        for_customer_benefit=False,
    )
    good = AccountBalance(
        event_id="e-after",
        source="ledger",
        as_of=T0,
        segment="4d2",
        account="C-1",
        currency="USD",
        cash=Decimal("125.50"),
        securities=Decimal(0),
        unrealized=Decimal(0),
        long_options=Decimal(0),
        short_options=Decimal(0),
    )
    producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap, acks="all")
    await producer.start()
    try:
        value, key = payout.model_dump_json().encode(), payout.key.encode()
        await producer.send_and_wait(system.topic(topics.BALANCES), value, key=key)
        await producer.send_and_wait(system.topic(topics.SETTINGS), value, key=key)
        await producer.send_and_wait(
            system.topic(topics.BALANCES), good.model_dump_json().encode(), key=good.key.encode()
        )
    finally:
        await producer.stop()

    letters, figures = await dead_letters_and_figures(system, 2)
    assert sorted(letter.source.split("[")[0] for letter in letters) == sorted(
        [system.topic(topics.BALANCES), system.topic(topics.SETTINGS)]
    )
    for letter in letters:
        assert (letter.stage, letter.field) == ("calculator", "type")
        assert letter.reason == f"a disbursement event belongs on {system.topic(topics.DISBURSEMENTS)}"
        assert Disbursement.model_validate_json(letter.payload) == payout
    # The balance after it was applied, and the disbursement changed nothing: the figures are the balance's.
    assert figures[-1].last_event_id == "e-after"
    assert figures[-1].lines["7010"] == Decimal("125.50")
    assert all(f.last_event_id != "d-misrouted" for f in figures)


async def test_poison_records_up_to_the_brokers_limit_are_dead_lettered_once_and_the_stream_goes_on(
    calculator: LocalSystem,
) -> None:
    """Records the broker accepts but no dead letter could embed whole (issue #11, finding 2): each is
    dead-lettered once, with its length, hash and place; a valid balance padded to near the limit is applied
    (kept in the changelog in its canonical form); the balance after them is applied."""
    system = calculator
    rng = random.Random(2)
    padded = balance(3, "7.25", account="C-9")
    padded_raw = padded.model_dump_json().encode()[:-1] + b" " * 900_000 + b"}"
    poison = [
        bytes(rng.randrange(0, 32) for _ in range(170_000)),  # control characters: six bytes each escaped
        b"x" * 1_000_000,  # 1 MB of text
        rng.randbytes(760_000),  # binary: base64
        b"\x00" + "é".encode() * 400_000,
    ]
    good = balance(4, "125.50")
    producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap, acks="all", max_request_size=1_048_576)
    await producer.start()
    placed = {}
    try:
        for raw in poison:
            meta = await producer.send_and_wait(system.topic(topics.BALANCES), raw, key=b"acct|4d2|C-1")
            placed[hashlib.sha256(raw).hexdigest()] = (meta.topic, meta.partition, meta.offset, len(raw))
        await producer.send_and_wait(system.topic(topics.BALANCES), padded_raw, key=padded.key.encode())
        await producer.send_and_wait(
            system.topic(topics.BALANCES), good.model_dump_json().encode(), key=good.key.encode()
        )
    finally:
        await producer.stop()

    letters, figures = await dead_letters_and_figures(system, len(poison), settle=True)
    assert sorted(letter.payload_sha256 or "" for letter in letters) == sorted(placed)  # each once
    for letter in letters:
        assert (letter.topic, letter.partition, letter.offset, letter.payload_bytes) == placed[
            letter.payload_sha256 or ""
        ]
        assert letter.payload_truncated and letter.field == "(record)"
    assert figures[-1].lines["7010"] == Decimal("125.50") + Decimal("7.25")  # both balances applied
    # Both have the same as-of, on different partitions: either may be the latest applied.
    assert figures[-1].last_event_id in {"e3", "e4"}


async def test_faust_web_pages_are_off_and_the_services_own_pages_are_on(calculator: LocalSystem) -> None:
    """Faust's /router/ and /table/... pages showed segregated totals, FX rates and targets without
    authentication (issue #11, item 3): only /healthz, /readyz and /metrics are served."""
    url = calculator.services["calculator"].url
    async with aiohttp.ClientSession() as http:
        for path in (
            "/router/",
            "/table/accounts/",
            "/table/combiner/",
            "/table/accounts/acct|4d2|C-1|USD",
            "/graph/",
            "/stats/",
            "/performance/",
        ):
            async with http.get(url + path) as r:
                assert r.status == 404, (path, r.status, await r.text())
        for path in ("/healthz", "/readyz", "/metrics"):
            async with http.get(url + path) as r:
                assert r.status == 200, path
