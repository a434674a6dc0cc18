"""Intake's writer to Kafka: one producer, connected in the background and renewed when the
broker no longer accepts its idempotence state, through which concurrent requests' records share
record batches; and what a failed write means for the events of a request: written, not, or
unknown.

Intake answers 202 only for events Kafka acknowledged. When the write fails or times out it
answers 503, and what it says must be true (issue 14: during a broker outage intake said
"nothing was accepted" for events the producer kept retrying and wrote once the broker was
back). So:

- **not written** — certain only when no record of the request reached the producer (not
  connected; the records never got into a batch; every batch holding them failed before the
  producer took it), or when Kafka refused every such batch as such (too large, no such topic,
  not allowed, corrupt: a refusal that a batch Kafka had already written would have met just
  the same, so none was written);
- **unknown** — anything else: a batch the producer took may still be written (it retries
  until its delivery timeout, and a broker can write a batch whose answer was lost), and a
  request's records can be spread over several partitions' batches, some written already.

Either way a retry of the same request is safe: an event is identified by source and id, and
every consumer applies it once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from enum import StrEnum

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    TopicAuthorizationFailedError,
)

from schemas.envelope import KafkaRecord
from services.common.kafka import (
    PRODUCER_STATE_ERRORS,
    NotHandedOver,
    SharedBatches,
    durable_producer,
)
from services.intake.settings import IntakeSettings

log = structlog.get_logger("intake")


class PublishOutcome(StrEnum):
    WRITTEN = "written"
    NOT_WRITTEN = "not-written"
    UNKNOWN = "unknown"


# Failures of a batch after which none of its records is written.
CERTAINLY_NOT_WRITTEN: tuple[type[BaseException], ...] = (
    NotHandedOver,  # the producer never took the batch
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
    TopicAuthorizationFailedError,
    CorruptRecordException,
)


def publish_outcome(
    *, handed_over: bool, batches: Sequence[asyncio.Future[None]]
) -> PublishOutcome:
    """The outcome of a request's write: `handed_over` when its records got into record
    batches; `batches` the acknowledgements of those batches as they stand now (pending, done,
    or failed)."""
    if not handed_over:
        return PublishOutcome.NOT_WRITTEN
    if any(not batch.done() for batch in batches):
        return PublishOutcome.UNKNOWN
    failures = [batch.exception() for batch in batches]
    if all(failure is None for failure in failures):
        return PublishOutcome.WRITTEN
    if all(isinstance(failure, CERTAINLY_NOT_WRITTEN) for failure in failures):
        return PublishOutcome.NOT_WRITTEN
    return PublishOutcome.UNKNOWN


class KafkaWriter:
    """Writes a request's records and waits for Kafka's acknowledgement. Kafka may not be up yet
    (or be restarting): the producer connects in the background, and until it has, every write
    is `not-written` (the request gets 503)."""

    def __init__(self, settings: IntakeSettings, producer: AIOKafkaProducer | None = None) -> None:
        self.settings = settings
        self._given = producer  # a test's producer; otherwise a durable one per connection
        # The producer, through which concurrent requests' records share record batches; None
        # until connected to Kafka (and while a broken producer is being replaced).
        self.kafka: SharedBatches | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        self._tasks["connect"] = asyncio.create_task(self._connect())

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        if self.kafka is not None:
            await self.kafka.producer.stop()

    async def write(
        self, records: Iterable[KafkaRecord]
    ) -> tuple[PublishOutcome, BaseException | None]:
        """Write and wait (at most the publish timeout): WRITTEN when every batch holding the
        records was acknowledged, else the outcome with the failure that decided it."""
        kafka = self.kafka  # the producer this request writes with, whatever happens meanwhile
        acks: list[asyncio.Future[None]] | None = None  # set once the records are in batches
        try:
            if kafka is None:
                raise TimeoutError("not connected to kafka yet")
            async with asyncio.timeout(self.settings.publish_timeout_seconds):
                acks = await kafka.hand_over(records, topic=self.settings.topic)
                if acks:
                    await asyncio.wait(acks)  # every batch acknowledged or failed (not cancelled)
        except (TimeoutError, KafkaError) as exc:
            failure: BaseException | None = exc
        else:
            failure = next((a.exception() for a in acks or [] if a.exception()), None)
        if failure is None:
            return PublishOutcome.WRITTEN, None
        outcome = publish_outcome(handed_over=acks is not None, batches=acks or [])
        if (
            outcome is not PublishOutcome.WRITTEN
            and kafka is not None
            and (
                isinstance(failure, PRODUCER_STATE_ERRORS)
                or isinstance(failure.__cause__, PRODUCER_STATE_ERRORS)
            )
        ):
            self._renew(kafka)
        return outcome, failure

    async def reachable(self) -> bool:
        """Connected, and the cluster answers a metadata request within 2 s."""
        if self.kafka is None:
            return False
        try:
            async with asyncio.timeout(2):
                await self.kafka.producer.client.fetch_all_metadata()
        except (TimeoutError, KafkaError):
            return False
        return True

    def _renew(self, broken: SharedBatches) -> None:
        """Replace a producer whose idempotence state the broker no longer accepts (e.g. an
        out-of-order sequence after a broker restart): a new producer gets a new producer id.
        Requests meanwhile get 503; their clients retry, and repeats are harmless."""
        if self.kafka is not broken:
            return  # another request already renewed it
        self.kafka = None
        log.warning("renewing the kafka producer")
        self._tasks["close"] = asyncio.create_task(broken.producer.stop())
        self._tasks["connect"] = asyncio.create_task(self._connect())

    def _new_producer(self) -> AIOKafkaProducer:
        return self._given or durable_producer(
            self.settings.infra.kafka_bootstrap,
            "servicepuls-intake",
            request_timeout_ms=int(self.settings.publish_timeout_seconds * 1000),
            **SharedBatches.PRODUCER_OPTIONS,
        )

    async def _connect(self) -> None:
        delay = 0.5
        while True:
            kafka = self._new_producer()
            try:
                await kafka.start()
            except KafkaError as exc:
                await kafka.stop()
                log.warning("kafka not reachable yet", error=type(exc).__name__, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
                continue
            self.kafka = SharedBatches(kafka)
            log.info(
                "intake connected to kafka",
                kafka=self.settings.infra.kafka_bootstrap,
                port=self.settings.port,
            )
            return
