"""The intake consumer: a FastStream batch subscriber in consumer group "feedback".

At least once: the batch is committed only after every event in it was applied and its
transaction committed, or set aside on the dead-letter topic (services.common.consumer: a record
that is no event, or an event that fails to apply on its own, is dead-lettered; a transient
failure such as the database being down rewinds the batch after a pause and it comes again).
Exactly once in effect: each event's dedupe key is stored in the same transaction as its effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import structlog
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from schemas.envelope import Envelope
from schemas.events import TOPICS, Family
from services.common.consumer import BatchConsumer, no_decoder, raw_batch_parser, records_of
from services.feedback import metrics
from services.feedback import service as svc
from services.feedback.adapters import postgres as db
from services.feedback.clock import DEFAULT_MAX_AHEAD, advance_for
from services.feedback.config import PolicyBook

log = structlog.get_logger("feedback.consumer")
GROUP = "feedback"
# An event whose transaction lost to a concurrent one is tried this often before the batch is
# retried as a whole (a transient failure).
_CONFLICT_TRIES = 3


def register_handlers(
    broker: KafkaBroker,
    *,
    consumer: BatchConsumer,
    pool_ref: Callable[[], asyncpg.Pool],
    book: PolicyBook,
    event_clock: bool,
    wake: Callable[[], None],
    group: str = GROUP,
    start_from: Literal["earliest", "latest"] = "earliest",
    max_records: int = 200,
    topic: str = TOPICS[Family.INTAKE],
    clock_max_ahead: timedelta = DEFAULT_MAX_AHEAD,
) -> None:
    @broker.subscriber(
        topic,
        group_id=group,
        batch=True,
        max_records=max_records,
        auto_offset_reset=start_from,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        parser=raw_batch_parser,
        decoder=no_decoder,
    )
    async def on_intake_batch(_: Any, message: KafkaMessage) -> None:
        await apply_records(
            consumer,
            pool_ref(),
            records_of(message),
            book,
            event_clock,
            clock_max_ahead=clock_max_ahead,
        )
        wake()


async def apply_records(
    consumer: BatchConsumer,
    pool: asyncpg.Pool,
    records: tuple[ConsumerRecord[Any, Any], ...],
    book: PolicyBook,
    event_clock: bool,
    *,
    clock_max_ahead: timedelta = DEFAULT_MAX_AHEAD,
) -> None:
    event_times: list[datetime] = []

    async def apply(events: list[Envelope[Any]]) -> None:
        for envelope in events:
            for attempt in range(_CONFLICT_TRIES):
                try:
                    async with pool.acquire() as conn, conn.transaction():
                        await svc.apply_intake_event(conn, envelope, book)
                    break
                except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError):
                    if attempt == _CONFLICT_TRIES - 1:
                        raise  # transient: the batch comes again after a pause
                    await asyncio.sleep(0.05 * (attempt + 1))
            metrics.CONSUMED.labels("applied").inc()
            event_times.append(envelope.time)

    await consumer.handle(records, apply)
    if not event_clock:
        return
    advance = advance_for(event_times, datetime.now(UTC), clock_max_ahead)
    if advance.ahead:
        metrics.CLOCK_AHEAD.inc(advance.ahead)
        log.warning(
            "events too far ahead of the wall clock applied without moving the event clock",
            events=advance.ahead,
            max_ahead_seconds=clock_max_ahead.total_seconds(),
        )
    if advance.to is not None:
        async with pool.acquire() as conn:
            await db.advance_event_clock(conn, advance.to)
