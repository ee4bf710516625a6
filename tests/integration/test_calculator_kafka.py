"""The calculator as a real process on the real broker: figures, dead letters, and a stream that goes on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaProducer

from schemas import AccountBalance, DeadLetter, Figures
from schemas.events import Disbursement
from segwatch.kafka import topics
from segwatch.system import LocalSystem

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]
T0 = datetime(2026, 11, 20, 21, tzinfo=UTC)


def balance(n: int, cash: str, account: str = "C-1") -> AccountBalance:
    return AccountBalance(event_id=f"e{n}", source="ledger", as_of=T0, segment="4d2", account=account,
                          currency="USD", cash=Decimal(cash), securities=Decimal(0), unrealized=Decimal(0),
                          long_options=Decimal(0), short_options=Decimal(0))


async def dead_letters_and_figures(system: LocalSystem, letters_wanted: int) -> tuple[list[DeadLetter],
                                                                                       list[Figures]]:
    """The dead letters and figures records so far, once `letters_wanted` letters and some figures are in (or
    after about 45 s: the assertions then say what is missing)."""
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
    return letters, figures


@pytest.fixture
async def calculator(kafka_bootstrap, tmp_path, monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
    async with LocalSystem(workdir=tmp_path, run=("calculator",), out=lambda _: None) as system:
        yield system


async def test_bad_records_are_dead_lettered_and_the_stream_goes_on(calculator):
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
        await producer.send_and_wait(system.topic(topics.BALANCES), good.model_dump_json().encode(),
                                     key=good.key.encode())
    finally:
        await producer.stop()

    letters, figures = await dead_letters_and_figures(system, 3)
    assert sorted((d.stage, d.field) for d in letters) == [
        ("calculator", "(record)"), ("calculator", "cash"), ("calculator", "key")
    ]
    by_field = {d.field: d for d in letters}
    assert "no more than 2 decimal places" in by_field["cash"].reason
    assert "SOMEONE-ELSE" in by_field["key"].reason
    assert by_field["(record)"].payload == "not json at all"
    assert all(d.source.startswith(system.topic(topics.BALANCES)) for d in letters)
    # The good record after the bad ones was applied.
    assert figures[-1].lines["7010"] == Decimal("125.50")
    assert figures[-1].last_event_id == "e1"


async def test_a_misrouted_disbursement_is_dead_lettered_and_changes_no_figure(calculator):
    """A disbursement sent to the calculator by mistake (on segwatch.balances or segwatch.settings) is
    dead-lettered with the field and the reason, changes no figure, and the stream goes on. (Disbursements
    belong on segwatch.disbursements, which only the alerter reads.)"""
    system = calculator
    payout = Disbursement(event_id="d-misrouted", source="treasury", as_of=T0, segment="4d2",
                          amount=Decimal("5000.00"), recipient="Parent Co", purpose="dividend",
                          for_customer_benefit=False)
    good = AccountBalance(event_id="e-after", source="ledger", as_of=T0, segment="4d2", account="C-1",
                          currency="USD", cash=Decimal("125.50"), securities=Decimal(0), unrealized=Decimal(0),
                          long_options=Decimal(0), short_options=Decimal(0))
    producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap, acks="all")
    await producer.start()
    try:
        value, key = payout.model_dump_json().encode(), payout.key.encode()
        await producer.send_and_wait(system.topic(topics.BALANCES), value, key=key)
        await producer.send_and_wait(system.topic(topics.SETTINGS), value, key=key)
        await producer.send_and_wait(system.topic(topics.BALANCES), good.model_dump_json().encode(),
                                     key=good.key.encode())
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
