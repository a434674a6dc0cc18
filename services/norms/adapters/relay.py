"""The outbox relay: publishes committed norm events to Kafka, then deletes them.

One replica relays at a time (a PostgreSQL session advisory lock), so events leave in the order
they were committed; if that replica dies, PostgreSQL releases the lock and another takes over.
A crash after Kafka acknowledged but before the delete sends those events again with the same
deterministic ids: consumers dedupe on `source` + `id`.

Records go out in record batches per partition (`create_batch`/`send_batch`) rather than one
`send` each: the relay publishes every decision the consumer takes, so the per-record cost of a
plain `send` would make it the slowest part of a replay. Partitions are chosen as the default
partitioner chooses them (murmur2 of the key), so one subject's events stay on one partition,
in order, as with any other producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from schemas.envelope import KafkaRecord
from services.common.kafka import RenewingProducer


class OutboxRelay:
    def __init__(
        self,
        database_url: str,
        schema: str,
        producer: AIOKafkaProducer | RenewingProducer,
        *,
        batch: int = 5000,
        log: Any = None,
        on_published: Any = None,
    ) -> None:
        self.database_url = database_url
        self.schema = schema
        self.producer = producer
        self.batch = batch
        self.log = log
        self.on_published = on_published
        self.lock_key = zlib.crc32(f"servicepuls-norms-relay:{schema}".encode())
        self.leader = False
        self._wake = asyncio.Event()
        self._partition_of_key: dict[tuple[str, bytes], int] = {}

    async def run(self) -> None:
        """Relay for ever: become leader when possible, then publish whenever rows appear."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.database_url)
                if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.lock_key):
                    await conn.close()
                    conn = None
                    await asyncio.sleep(1.0)  # another replica relays; try again later
                    continue
                self.leader = True
                await conn.add_listener(f"{self.schema}_outbox", self._notified)
                await self._relay(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.log is not None:
                    self.log.warning("outbox relay restarting", error=repr(exc))
                if isinstance(self.producer, RenewingProducer):
                    await self.producer.renew_after(exc)
                await asyncio.sleep(1.0)
            finally:
                self.leader = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def _relay(self, conn: asyncpg.Connection) -> None:
        while True:
            self._wake.clear()
            sent = await self.publish_once(conn)
            if sent < self.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=0.5)

    async def publish_once(self, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch(
            f"""SELECT id, topic, key, value, headers
                FROM "{self.schema}".outbox ORDER BY id LIMIT $1""",
            self.batch,
        )
        if not rows:
            return 0
        records = [
            KafkaRecord(topic, key, value, [(n, v.encode()) for n, v in orjson.loads(headers)])
            for _, topic, key, value, headers in rows
        ]
        await self.send(records)
        await conn.execute(
            f'DELETE FROM "{self.schema}".outbox WHERE id = ANY($1::bigint[])',
            [r["id"] for r in rows],
        )
        if self.on_published is not None:
            self.on_published(records)
        return len(rows)

    async def send(self, records: Sequence[KafkaRecord]) -> None:
        """Send `records` in order and wait until Kafka acknowledged all (raises if any failed)."""
        producer = self.producer
        partitions: dict[str, list[int]] = {}
        open_batches: dict[tuple[str, int], Any] = {}
        pending: list[asyncio.Future[Any]] = []
        known = self._partition_of_key
        if len(known) > 200_000:
            known.clear()
        for record in records:
            topic = record.topic
            partition = known.get((topic, record.key))
            if partition is None:
                if topic not in partitions:
                    partitions[topic] = sorted(await producer.partitions_for(topic))
                choices = partitions[topic]
                partition = choices[(murmur2(record.key) & 0x7FFFFFFF) % len(choices)]
                known[(topic, record.key)] = partition
            batch = open_batches.get((topic, partition))
            if batch is None:
                batch = open_batches[(topic, partition)] = producer.create_batch()
            if (
                batch.append(
                    timestamp=None, key=record.key, value=record.value, headers=record.headers
                )
                is None
            ):  # full: send it, start the next one
                pending.append(await producer.send_batch(batch, topic, partition=partition))
                batch = open_batches[(topic, partition)] = producer.create_batch()
                batch.append(
                    timestamp=None, key=record.key, value=record.value, headers=record.headers
                )
        for (topic, partition), batch in open_batches.items():
            pending.append(await producer.send_batch(batch, topic, partition=partition))
        if pending:
            await asyncio.gather(*pending)
