"""Concurrent callers share record batches; each learns of its own batches' fate, and only that."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaTimeoutError, ProducerClosed

from schemas.envelope import KafkaRecord
from services.common.kafka import SharedBatches

pytestmark = pytest.mark.timeout(10)


class Builder:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.keys: list[bytes] = []

    def append(self, *, timestamp: None, key: bytes, value: bytes, headers: list) -> object:
        if len(self.keys) == self.capacity:
            return None  # full, as aiokafka's builder says it
        self.keys.append(key)
        return object()


class Producer:
    """Records the batches sent; each batch is acknowledged when the test says so."""

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self.sent: list[tuple[int, list[bytes], asyncio.Future[None]]] = []
        self.more = asyncio.Event()

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}  # one partition: every record competes for the same batches

    def create_batch(self) -> Builder:
        return Builder(self.capacity)

    async def send_batch(self, builder: Builder, topic: str, *, partition: int) -> asyncio.Future:
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent.append((partition, builder.keys, ack))
        self.more.set()
        return ack

    async def until_sent(self, count: int) -> None:
        while len(self.sent) < count:
            self.more.clear()
            await self.more.wait()


def records(prefix: str, count: int) -> list[KafkaRecord]:
    return [KafkaRecord("t", f"{prefix}-{i}".encode(), b"{}", []) for i in range(count)]


async def test_what_callers_send_while_a_batch_is_in_flight_goes_out_together():
    producer = Producer()
    shared = SharedBatches(producer)  # type: ignore[arg-type]
    first = asyncio.create_task(shared.send(records("a", 3)))
    await producer.until_sent(1)
    later = [asyncio.create_task(shared.send(records(f"b{n}", 2))) for n in range(10)]
    await asyncio.sleep(0.01)
    assert len(producer.sent) == 1  # the others wait for the batch ahead
    producer.sent[0][2].set_result(None)
    await first
    await producer.until_sent(2)
    assert len(producer.sent[1][1]) == 20  # ten callers, one batch, in the order they came
    assert producer.sent[1][1][:2] == [b"b0-0", b"b0-1"]
    assert not any(task.done() for task in later)  # nobody is through before Kafka acknowledged
    producer.sent[1][2].set_result(None)
    await asyncio.gather(*later)
    assert len(producer.sent) == 2


async def test_a_failed_batch_fails_every_caller_in_it_and_the_next_batch_still_goes():
    producer = Producer()
    shared = SharedBatches(producer)  # type: ignore[arg-type]
    ahead = asyncio.create_task(shared.send(records("a", 1)))
    await producer.until_sent(1)
    sharing = [asyncio.create_task(shared.send(records(f"b{n}", 1))) for n in range(3)]
    await asyncio.sleep(0)
    producer.sent[0][2].set_exception(KafkaTimeoutError())
    with pytest.raises(KafkaTimeoutError):
        await ahead
    await producer.until_sent(2)
    producer.sent[1][2].set_exception(KafkaTimeoutError())
    for task in sharing:
        with pytest.raises(KafkaTimeoutError):
            await task
    after = asyncio.create_task(shared.send(records("c", 1)))
    await producer.until_sent(3)
    producer.sent[2][2].set_result(None)
    await after  # the failure stayed with the batch it struck


async def test_a_caller_that_gives_up_leaves_the_shared_batch_to_the_others():
    producer = Producer()
    shared = SharedBatches(producer)  # type: ignore[arg-type]
    ahead = asyncio.create_task(shared.send(records("a", 1)))
    await producer.until_sent(1)
    impatient = asyncio.create_task(shared.send(records("b", 1)))
    patient = asyncio.create_task(shared.send(records("c", 1)))  # the same batch as b
    await asyncio.sleep(0)
    producer.sent[0][2].set_result(None)
    await ahead
    await producer.until_sent(2)
    impatient.cancel()  # e.g. its request's time limit
    await asyncio.sleep(0)
    assert producer.sent[1][1] == [b"b-0", b"c-0"]
    producer.sent[1][2].set_result(None)
    await patient
    assert impatient.cancelled()


async def test_a_caller_whose_records_fill_a_batch_waits_for_each_of_its_batches():
    producer = Producer(capacity=4)
    shared = SharedBatches(producer)  # type: ignore[arg-type]
    blocker = asyncio.create_task(shared.send(records("a", 1)))
    await producer.until_sent(1)
    big = asyncio.create_task(shared.send(records("b", 10)))  # 4 + 4 + 2 behind the first
    await asyncio.sleep(0)
    for n in range(1, 4):
        producer.sent[n - 1][2].set_result(None)
        await producer.until_sent(n + 1)
        assert not big.done()
    assert [len(keys) for _, keys, _ in producer.sent] == [1, 4, 4, 2]
    producer.sent[3][2].set_result(None)
    await asyncio.gather(blocker, big)


async def test_stopping_fails_the_waiting_callers_instead_of_leaving_them_hanging():
    producer = Producer()
    shared = SharedBatches(producer)  # type: ignore[arg-type]
    ahead = asyncio.create_task(shared.send(records("a", 1)))
    await producer.until_sent(1)
    behind = asyncio.create_task(shared.send(records("b", 1)))
    await asyncio.sleep(0)
    for task in list(shared._tasks):
        task.cancel()
    for caller in (ahead, behind):
        with pytest.raises(ProducerClosed):
            await caller
