"""Watch a real Kafka topic from a test: remember where it ended, act, then wait for events."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.envelope import Envelope, decode
from services.common.kafka import seek_to_start, topic_partitions

BOOTSTRAP = os.environ.get("SERVICEPULS_KAFKA_BOOTSTRAP", "127.0.0.1:9092")


class TopicTail:
    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.seen: list[Envelope[Any]] = []
        self.records: list[ConsumerRecord[Any, Any]] = []  # the raw records, as Kafka holds them

    async def wait_for(
        self,
        predicate: Callable[[Envelope[Any]], bool],
        *,
        count: int = 1,
        timeout: float = 30,
    ) -> list[Envelope[Any]]:
        """Events matching `predicate`, once at least `count` have arrived; raises on timeout."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            matched = [e for e in self.seen if predicate(e)]
            if len(matched) >= count:
                return matched
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"saw {len(matched)} of {count} expected events in {timeout}s")
            batches = await self.consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for records in batches.values():
                for record in records:
                    self.records.append(record)
                    self.seen.append(decode(record.headers, record.value))


async def end_offsets(topic: str) -> dict[int, int]:
    """Where each partition of `topic` ends now: give it to `topic_tail(from_offsets=...)` to read
    later, with a fresh consumer, what was written from this point on."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic)
        ends = await consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


@asynccontextmanager
async def topic_tail(
    topic: str, *, from_beginning: bool = False, from_offsets: dict[int, int] | None = None
) -> AsyncIterator[TopicTail]:
    """Events written to `topic` after this point (or from its start, or from the given offset
    of each partition)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic)
        consumer.assign(partitions)
        if from_offsets is not None:
            for tp in partitions:
                consumer.seek(tp, from_offsets.get(tp.partition, 0))
        elif from_beginning:
            await seek_to_start(consumer, partitions)
        else:
            await consumer.seek_to_end(*partitions)
            for tp in partitions:  # resolve the lazy seek now, before the test acts
                await consumer.position(tp)
        yield TopicTail(consumer)
    finally:
        await consumer.stop()


async def _until_led(
    admin: AIOKafkaAdminClient, names: list[str], partitions: int, timeout: float = 30
) -> None:
    """Wait until every partition of new topics has a leader: a producer that starts writing
    before that (a broker just started, busy creating them) can time out in its accumulator."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        topics = await admin.describe_topics(names)
        led = sum(
            1
            for topic in topics
            if topic["error_code"] == 0
            for partition in topic["partitions"]
            if partition["error_code"] == 0 and partition["leader"] >= 0
        )
        if led == partitions * len(names):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{names}: {led} of {partitions * len(names)} partitions led")
        await asyncio.sleep(0.1)


@asynccontextmanager
async def private_topics(*names: str, partitions: int = 6) -> AsyncIterator[None]:
    """Topics of a test's or benchmark's own, deleted afterwards."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        )
        await _until_led(admin, list(names), partitions)
        yield
    finally:
        try:
            await admin.delete_topics(list(names))
        finally:
            await admin.close()
