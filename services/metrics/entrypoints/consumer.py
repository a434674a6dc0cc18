"""The Kafka subscriber: thin. Batches from the intake, norms and feedback topics go through the
shared consumer loop (decode, dead-letter, apply) to the service."""

from __future__ import annotations

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.common.consumer import BatchConsumer, no_decoder, raw_batch_parser, records_of
from services.metrics.service import MetricsService


def register_consumer(
    broker: KafkaBroker, service: MetricsService, consumer: BatchConsumer
) -> None:
    settings = service.settings

    @broker.subscriber(
        *settings.topics,
        group_id=settings.consumer_group,
        batch=True,
        max_records=settings.max_batch,
        batch_timeout_ms=settings.batch_timeout_ms,
        auto_offset_reset=settings.auto_offset_reset,
        # Records are decoded by the project's codec; a bad one is dead-lettered, never blocks.
        parser=raw_batch_parser,
        decoder=no_decoder,
        # Commit offsets only after the batch committed in PostgreSQL; on an error rewind.
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def apply_batch(msg: KafkaMessage) -> None:
        records = records_of(msg)
        for record in records:
            service.metrics.records_consumed.labels(record.topic).inc()
        await consumer.handle(records, service.apply_events)
