"""The outbox relay: publishes committed norm events to Kafka, then deletes them.

One replica relays at a time (a PostgreSQL session advisory lock), so events leave in the order
they were committed; if that replica dies, PostgreSQL releases the lock and another takes over.
A crash after Kafka acknowledged but before the delete sends those events again with the same
deterministic ids: consumers dedupe on `source` + `id`.

Records go out in record batches per partition (`services.common.kafka.send_records`): the
relay publishes every decision the service takes, so the per-record cost of a plain `send`
would make it the slowest part of a replay. A row holds all records of one transaction
(`adapters/outbox.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from schemas.envelope import KafkaRecord
from services.common.kafka import RenewingProducer, send_records
from services.norms.adapters.outbox import records_of


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
        """Publish the oldest outbox rows, about `batch` records (at least one row), then
        delete them. Returns how many records went out."""
        rows = await conn.fetch(
            f"""SELECT o.id, o.topic, o.key, o.value, o.headers, o.records, o.format
                FROM (SELECT id, sum(count) OVER (ORDER BY id) - count AS before
                      FROM "{self.schema}".outbox ORDER BY id LIMIT $1) AS w
                JOIN "{self.schema}".outbox AS o USING (id)
                WHERE w.before < $1
                ORDER BY o.id""",
            self.batch,
        )
        if not rows:
            return 0
        records = [record for row in rows for record in records_of(row)]
        await self.send(records)
        await conn.execute(
            f'DELETE FROM "{self.schema}".outbox WHERE id = ANY($1::bigint[])',
            [r["id"] for r in rows],
        )
        if self.on_published is not None:
            self.on_published(records)
        return len(records)

    async def send(self, records: Sequence[KafkaRecord]) -> None:
        """Send `records` in order and wait until Kafka acknowledged all (raises if any failed)."""
        await send_records(self.producer, records)
