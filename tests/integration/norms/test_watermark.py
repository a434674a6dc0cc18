"""The event-time watermark against real PostgreSQL and Kafka: a partition that still has unread
events holds it back however long it is absent from the batches; one read to its end and quiet
for the idle time releases it. The consumer learns which partitions are read to their end from
Kafka's high watermarks (`read_to_end`)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.common import Channel
from schemas.events import ContactReceived
from services.common.calendar import to_us
from services.common.kafka import durable_producer, seek_to_start
from services.norms.domain.catalog import NormCatalog
from services.norms.entrypoints.consumer import read_to_end
from services.norms.service import NormsService
from tests.integration.norms.support import email_answer, event, repository
from tests.support.kafka import BOOTSTRAP, private_topics

pytestmark = pytest.mark.integration

AMS = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=AMS)  # a Monday
IDLE = 0.5  # seconds


def mail(at: datetime) -> tuple[str, Any]:
    mail_id = f"E-{uuid.uuid4()}"
    data = ContactReceived(contact_id=mail_id, channel=Channel.EMAIL, topic="afval")
    return f"GM0383/email_answered/{mail_id}", event(data, at)


async def taken(pool: asyncpg.Pool, schema: str, clock_id: str) -> set[str]:
    async with pool.acquire() as conn:
        row = await conn.fetchval(
            f'SELECT taken FROM "{schema}".clock WHERE clock_id = $1', clock_id
        )
    return set(filter(None, row.split("|")))


async def test_a_partition_with_unread_events_holds_the_watermark_back_until_read_to_its_end(
    pool: tuple[asyncpg.Pool, str], catalogs: dict[str, NormCatalog]
) -> None:
    db, schema = pool
    repo = repository(db, schema, catalogs, event_clock=True, idle_partition_seconds=IDLE)
    service = NormsService(repo)
    await repo.register_partitions([0, 1])
    # Partition 0: an e-mail arrives; its answer, an hour later, is still unread in Kafka.
    backlog_clock, received = mail(T0)
    answer_at = T0 + timedelta(hours=1)
    answered = event(email_answer(backlog_clock.rsplit("/", 1)[1], answer_at), answer_at)
    _, another = mail(T0 + timedelta(minutes=30))
    await service.apply_batch([(0, received), (0, another)], {0: False, 1: False})
    # Partition 1 runs ten days ahead, read to its end, batch after batch; partition 0 is in
    # none of them for several times the idle time.
    quiet_clock, quiet = mail(T0 + timedelta(days=1))
    await service.apply_batch([(1, quiet)], {0: False, 1: True})
    for day in range(2, 11):
        await asyncio.sleep(IDLE / 2)
        _, later = mail(T0 + timedelta(days=day))
        await service.apply_batch([(1, later)], {0: False, 1: True})
    await asyncio.sleep(IDLE * 2)

    async with db.acquire() as conn:
        # Partition 0's progress, not day 10.
        assert await repo.watermark(conn) == to_us(T0 + timedelta(minutes=30))
    await service.fire_due(1000)
    # Not breached, not warned: its answer is still to be read.
    assert await taken(db, schema, backlog_clock) == {"started"}

    # Partition 0's answer is read; now both are read to their end.
    await service.apply_batch([(0, answered)], {0: True, 1: True})
    async with db.acquire() as conn:
        assert await repo.watermark(conn) == to_us(answer_at)  # partition 0 is not quiet yet

    # Both read to their end and quiet for the idle time: they stop holding the clocks back.
    await asyncio.sleep(IDLE * 2)
    async with db.acquire() as conn:
        assert await repo.watermark(conn) == to_us(T0 + timedelta(days=10))
    await service.fire_due(1000)
    assert "breached" in await taken(db, schema, quiet_clock)
    assert await taken(db, schema, backlog_clock) == {"started", "final"}


async def test_a_partition_read_to_its_end_and_quiet_for_the_idle_time_no_longer_holds_back(
    pool: tuple[asyncpg.Pool, str], catalogs: dict[str, NormCatalog]
) -> None:
    db, schema = pool
    repo = repository(db, schema, catalogs, event_clock=True, idle_partition_seconds=IDLE)
    service = NormsService(repo)
    await repo.register_partitions([0, 1, 2])
    _, early = mail(T0)
    _, late = mail(T0 + timedelta(days=3))
    # Partition 2 never had a record: assigned, fetched, read to its (empty) end.
    await service.apply_batch([(0, early), (1, late)], {0: True, 1: True, 2: True})
    async with db.acquire() as conn:
        assert await repo.watermark(conn) is None  # partition 2 has not been quiet long enough
    await asyncio.sleep(IDLE * 2)
    async with db.acquire() as conn:
        assert await repo.watermark(conn) == to_us(T0 + timedelta(days=3))
    # A batch that finds partition 0 behind again (new records in Kafka): it holds back again,
    # at once, although it delivered nothing.
    await service.apply_batch([(1, mail(T0 + timedelta(days=4))[1])], {0: False, 1: True, 2: True})
    async with db.acquire() as conn:
        assert await repo.watermark(conn) == to_us(T0)


async def test_read_to_end_compares_the_position_with_the_partition_end() -> None:
    topic = f"servicepuls.test-{uuid.uuid4().hex[:8]}.intake"
    tps = [TopicPartition(topic, p) for p in range(3)]
    async with private_topics(topic, partitions=3):
        producer = durable_producer(BOOTSTRAP, "norms-watermark-test")
        await producer.start()
        try:
            for n in range(5):
                await producer.send_and_wait(topic, f"p0-{n}".encode(), partition=0)
            await producer.send_and_wait(topic, b"p1-0", partition=1)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(tps)
            await seek_to_start(consumer, tps)
            assert await read_to_end(consumer, topic) == {0: False, 1: False, 2: False}

            async def read(tp: TopicPartition, count: int) -> None:
                got, deadline = 0, time.monotonic() + 30
                while got < count:
                    assert time.monotonic() < deadline, f"{tp}: read {got} of {count}"
                    batch = await consumer.getmany(tp, timeout_ms=500, max_records=count - got)
                    got += sum(len(records) for records in batch.values())

            await read(tps[1], 1)
            await read(tps[0], 2)  # three of its five records still unread
            deadline = time.monotonic() + 30
            while consumer.highwater(tps[2]) is None:  # the empty partition fetched once
                assert time.monotonic() < deadline
                await consumer.getmany(tps[2], timeout_ms=200)
            assert await read_to_end(consumer, topic) == {0: False, 1: True, 2: True}
            assert await read_to_end(consumer, "another.topic") == {}

            await read(tps[0], 3)
            assert await read_to_end(consumer, topic) == {0: True, 1: True, 2: True}
        finally:
            await consumer.stop()
