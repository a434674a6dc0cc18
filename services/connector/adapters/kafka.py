"""Writing admitted events to the intake topic, and dead letters to `servicepuls.deadletter.v1`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from schemas.envelope import KafkaRecord
from services.common.deadletters import scrub
from services.common.kafka import RenewingProducer


class EventWriter:
    def __init__(self, producer: Any, *, topic: str, dead_letter_topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.dead_letter_topic = dead_letter_topic

    @classmethod
    def connect(cls, bootstrap: str, *, topic: str, dead_letter_topic: str) -> EventWriter:
        return cls(
            RenewingProducer(bootstrap, "servicepuls-connector"),
            topic=topic,
            dead_letter_topic=dead_letter_topic,
        )

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def recover_from(self, exc: BaseException) -> None:
        """After a failed write: a producer the broker no longer accepts is replaced."""
        renew = getattr(self.producer, "renew_after", None)
        if renew is not None:
            await renew(exc)

    async def publish(self, records: Iterable[KafkaRecord]) -> None:
        """Write the records in order and wait until Kafka has every one (acks=all)."""
        futures = [
            await self.producer.send(
                self.topic, value=record.value, key=record.key, headers=record.headers
            )
            for record in records
        ]
        for future in futures:
            await future

    async def dead_letter(
        self,
        *,
        municipality: str,
        key: str,
        origin: str,
        notification: dict[str, str],
        reason: str,
        error: str,
        attempts: int,
    ) -> None:
        """A notification the connector gave up on, with why: the record holds the references
        of the notification (urls, kanaal, actie) so it can be re-driven; no personal data."""
        # The dead-letter headers every service writes (services.common.deadletters); the
        # origin is the connector's inbox row, not a Kafka record.
        headers = [
            ("dl_service", b"connector"),
            ("dl_reason", reason.encode()),
            ("dl_error", scrub(error).encode()),
            ("dl_attempts", str(attempts).encode()),
            ("dl_origin", origin.encode()),
            ("dl_at", datetime.now(UTC).isoformat(timespec="milliseconds").encode()),
            ("ce_municipality", municipality.encode()),
            ("content-type", b"application/json"),
        ]
        await self.producer.send_and_wait(
            self.dead_letter_topic,
            value=json.dumps(notification).encode(),
            key=key.encode(),
            headers=headers,
        )
