"""Reading a topic from its start, as recompute, the benchmarks and the tests do, through the
real broker: every fresh reader sees every record. `seek_to_beginning` right after `assign`
lost, now and then, to the reset that `assign` starts with the default policy ("latest"), and a
reader took a full topic for an empty one (7 runs in 40)."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer

from schemas.envelope import KafkaRecord
from services.common.kafka import (
    durable_producer,
    seek_to_start,
    send_records,
    topic_partitions,
)
from tests.support.kafka import BOOTSTRAP, private_topics

pytestmark = pytest.mark.integration


async def test_every_fresh_reader_from_the_start_reads_every_record() -> None:
    topic = f"servicepuls.test-{uuid.uuid4().hex[:8]}.start"
    async with private_topics(topic):
        producer = durable_producer(BOOTSTRAP, "start-test")
        await producer.start()
        try:
            await send_records(
                producer,
                [KafkaRecord(topic, f"k{i}".encode(), f"v{i}".encode(), []) for i in range(60)],
            )
        finally:
            await producer.stop()
        counts = []
        for _ in range(25):
            consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
            await consumer.start()
            try:
                partitions = await topic_partitions(consumer, topic)
                consumer.assign(partitions)
                end = await consumer.end_offsets(partitions)  # as recompute reads: up to here
                await seek_to_start(consumer, partitions)
                values = set()
                while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
                    batch = await consumer.getmany(timeout_ms=1000)
                    values |= {r.value for records in batch.values() for r in records}
                counts.append(len(values))
            finally:
                await consumer.stop()
        assert counts == [60] * 25
