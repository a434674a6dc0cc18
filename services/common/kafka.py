"""Kafka producer settings that make a write durable, and publishing of framed events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer

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
