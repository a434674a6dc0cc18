"""The outbox relay: publishes the events written with each state change, then marks them sent.

One relay at a time across replicas (a transaction-scoped advisory lock), so events leave in the
order they were written. A crash after Kafka acknowledged but before the mark re-publishes the
rows; their deterministic ids make that a duplicate consumers ignore.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from contextlib import suppress

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer

from schemas.envelope import parse_structured
from services.common.kafka import RenewingProducer, publish
from services.feedback import metrics

RELAY_LOCK = zlib.crc32(b"servicepuls-feedback-outbox")
log = structlog.get_logger("feedback.outbox")


async def relay_once(
    pool: asyncpg.Pool, producer: AIOKafkaProducer | RenewingProducer, limit: int = 500
) -> int:
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", RELAY_LOCK):
            return 0
        rows = await conn.fetch(
            "SELECT id, event FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1", limit
        )
        if not rows:
            metrics.OUTBOX_PENDING.set(0)
            return 0
        await publish(producer, [parse_structured(json.loads(r["event"])) for r in rows])
        await conn.execute(
            "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])",
            [r["id"] for r in rows],
        )
        metrics.OUTBOX_PENDING.set(
            await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        )
        return len(rows)


async def purge_sent(pool: asyncpg.Pool, keep_hours: int = 24) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "DELETE FROM outbox WHERE sent_at < now() - make_interval(hours => $1)", keep_hours
        )


async def run_relay(
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer | RenewingProducer,
    wake: asyncio.Event,
    idle: float = 0.5,
) -> None:
    while True:
        try:
            sent = await relay_once(pool, producer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("outbox relay failed; retrying")
            if isinstance(producer, RenewingProducer):
                await producer.renew_after(exc)
            sent = 0
            await asyncio.sleep(1)
        if sent == 0:
            wake.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=idle)
