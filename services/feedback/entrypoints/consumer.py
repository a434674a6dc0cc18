"""The intake consumer: a FastStream batch subscriber in consumer group "feedback".

At least once: the batch is committed only after every event in it was applied and its
transaction committed (NACK_ON_ERROR rewinds the partitions on a failure, e.g. the database is
down, and the batch comes again). Exactly once in effect: each event's dedupe key is stored in the
same transaction as its effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import asyncpg
import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from schemas.envelope import decode
from schemas.events import TOPICS, Family
from services.feedback import metrics
from services.feedback import service as svc
from services.feedback.adapters import postgres as db
from services.feedback.clock import DEFAULT_MAX_AHEAD, advance_for
from services.feedback.config import PolicyBook

log = structlog.get_logger("feedback.consumer")
_INFRASTRUCTURE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    asyncpg.SyntaxOrAccessError,  # e.g. tables gone: a deployment problem, not the event
    OSError,
    TimeoutError,
)
GROUP = "feedback"


def register_handlers(
    broker: KafkaBroker,
    *,
    pool_ref: Callable[[], asyncpg.Pool],
    book: PolicyBook,
    is_holiday: Callable[[date], bool],
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
        decoder=_raw,
    )
    async def on_intake_batch(_: Any, message: KafkaMessage) -> None:
        records = message.raw_message
        records = records if isinstance(records, tuple) else (records,)
        await apply_records(
            pool_ref(), records, book, is_holiday, event_clock, clock_max_ahead=clock_max_ahead
        )
        wake()


async def _raw(message: Any) -> Any:
    return None  # records are decoded by our own codec, one by one, in `apply_records`


async def apply_records(
    pool: asyncpg.Pool,
    records: tuple[Any, ...],
    book: PolicyBook,
    is_holiday: Callable[[date], bool],
    event_clock: bool,
    *,
    clock_max_ahead: timedelta = DEFAULT_MAX_AHEAD,
) -> None:
    event_times: list[datetime] = []
    for record in records:
        try:
            envelope = decode(record.headers, record.value)
        except Exception:
            # Not ours to fix: intake validates what it accepts. Skip, counted, without content.
            metrics.CONSUMED.labels("undecodable").inc()
            log.warning(
                "undecodable record skipped", partition=record.partition, offset=record.offset
            )
            continue
        event_times.append(envelope.time)
        for attempt in range(3):
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await svc.apply_intake_event(conn, envelope, book, is_holiday)
                metrics.CONSUMED.labels("applied").inc()
                break
            except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError):
                await asyncio.sleep(0.05 * (attempt + 1))
            except _INFRASTRUCTURE:
                raise  # the batch is rewound and comes again once the database is back
            except Exception:
                # A deterministic failure would block the partition forever: skip the event,
                # counted and logged by its id only.
                metrics.CONSUMED.labels("failed").inc()
                log.exception("event could not be applied; skipped", event_id=envelope.id)
                break
        else:
            raise RuntimeError("could not apply an event after retries")
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
