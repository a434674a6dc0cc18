"""Kafka producer settings that make a write durable, and publishing of framed events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    IllegalStateError,
    InvalidProducerEpoch,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from schemas.envelope import Envelope, KafkaRecord, encode


def durable_producer(bootstrap: str, client_id: str, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent producer that waits for all in-sync replicas: an acknowledged send is
    durable and a retried send is never written twice."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 10_000,
        "retry_backoff_ms": 100,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def send_records(producer: AIOKafkaProducer, records: Iterable[KafkaRecord]) -> None:
    """Send all records and wait until Kafka acknowledged every one (raises if any failed)."""
    pending = [
        await producer.send(r.topic, value=r.value, key=r.key, headers=r.headers) for r in records
    ]
    if pending:
        await asyncio.gather(*pending)


async def publish(producer: AIOKafkaProducer, events: Iterable[Envelope[Any]]) -> None:
    await send_records(producer, (encode(e) for e in events))


# Errors after which an idempotent producer's state is out of step with the broker (e.g. an
# out-of-order sequence after a broker restart). The producer does not recover from these by
# itself; a new producer (new producer id) does.
PRODUCER_STATE_ERRORS: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    ProducerFenced,
    InvalidProducerEpoch,
    IllegalStateError,
)


# Failures reported within this many seconds of a renewal are taken to be the old producer's.
RENEW_QUIET_SECONDS = 5.0


class RenewingProducer:
    """A durable producer that replaces itself after a producer-state error.

    Use it as the producer (attribute access goes to the current AIOKafkaProducer) and call
    `renew_after(exc)` where a send failed: it swaps in a fresh producer when the error is one
    the old producer cannot recover from. The caller then retries as it would after any failure;
    what the old producer may have written dedupes downstream by event id.
    """

    def __init__(self, bootstrap: str, client_id: str, **overrides: Any) -> None:
        self._make = lambda: durable_producer(bootstrap, client_id, **overrides)
        self._producer: AIOKafkaProducer = self._make()
        self._renewing = asyncio.Lock()
        self._renewed_at = -RENEW_QUIET_SECONDS

    @property
    def current(self) -> AIOKafkaProducer:
        return self._producer

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def renew_after(self, exc: BaseException) -> bool:
        """Replace the producer if `exc` left it unusable; True when it was replaced."""
        if not isinstance(exc, PRODUCER_STATE_ERRORS):
            return False
        broken = self._producer
        async with self._renewing:
            if (
                self._producer is not broken
                or time.monotonic() - self._renewed_at < RENEW_QUIET_SECONDS
            ):
                return True  # renewed just now: this error most likely came from the old one
            fresh = self._make()
            await fresh.start()
            self._producer = fresh
            self._renewed_at = time.monotonic()
        with contextlib.suppress(Exception):
            await broken.stop()
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)
