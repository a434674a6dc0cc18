"""A producer whose idempotence state the broker rejected is replaced, once, and only then."""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber

from services.common.kafka import RenewingProducer


class FakeProducer:
    made = 0

    def __init__(self) -> None:
        FakeProducer.made += 1
        self.number = FakeProducer.made
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True


def renewing() -> RenewingProducer:
    producer = RenewingProducer("127.0.0.1:1", "test")
    producer._make = FakeProducer  # type: ignore[method-assign]
    producer._producer = FakeProducer()  # type: ignore[assignment]
    return producer


async def test_a_producer_state_error_swaps_in_a_fresh_started_producer():
    producer = renewing()
    broken = producer.current
    assert await producer.renew_after(OutOfOrderSequenceNumber())
    assert producer.current is not broken and producer.current.started and broken.stopped
    assert producer.number == producer.current.number  # attributes reach the current producer


async def test_transient_errors_keep_the_producer():
    producer = renewing()
    kept = producer.current
    assert not await producer.renew_after(KafkaTimeoutError())
    assert not await producer.renew_after(RuntimeError("database down"))
    assert producer.current is kept


async def test_concurrent_failures_renew_once():
    producer = renewing()
    before = FakeProducer.made
    await asyncio.gather(*(producer.renew_after(OutOfOrderSequenceNumber()) for _ in range(5)))
    assert FakeProducer.made == before + 1
