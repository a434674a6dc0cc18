"""The Kafka subscriber of the intake topic (consumer group `norms`).

Records go through the shared consumer loop's parts (services/common/consumer.py: the raw batch
parser, decode-and-sort, the dead-letter topic, the back-off, what counts as transient) to the
service (`NormsService.prepare` / `commit`). What is norms' own here is pipelining: a consumed
batch is applied in transactions of `commit_batch` events, and each is prepared (decoded,
planned) while PostgreSQL applies the one before, also across batches. Offsets are committed
manually, once a batch's last transaction is; on an error the consumer rewinds to the oldest
offsets not committed, so the events are delivered again (what committed already is recognised
by its dedupe keys).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from schemas.envelope import Envelope
from services.common.consumer import (
    BatchConsumer,
    is_transient,
    no_decoder,
    raw_batch_parser,
    records_of,
)
from services.common.deadletters import DeadLetters, Problem, Reason
from services.norms.metrics import NormsMetrics
from services.norms.service import BatchResult, NormsService, PreparedBatch
from services.norms.settings import NormsSettings

# Records decoded between two chances for the transaction in flight to go on.
_YIELD_EVERY = 50


async def read_to_end(consumer: Any, topic: str) -> dict[int, bool]:
    """Per assigned partition of `topic`: whether the consumer's position has reached the end
    of the partition (its high watermark, as the last fetch response told it) — nothing in
    Kafka is left unread once the records handed out so far are applied. A partition not
    fetched yet counts as not read to its end. (Event-time mode: only such a partition may
    stop holding the watermark back.)"""
    ends: dict[int, bool] = {}
    for tp in consumer.assignment():
        if tp.topic != topic:
            continue
        highwater = consumer.highwater(tp)
        # A known high watermark means the partition was fetched, so its position is known too
        # and `position` returns at once.
        ends[tp.partition] = highwater is not None and await consumer.position(tp) >= highwater
    return ends


@dataclass
class IntakeConsumer:
    """The consumer's state between batches: the transaction in flight, the oldest offsets not
    committed, and whether records are being applied one by one after a failure."""

    service_of: Callable[[], NormsService]  # made at start, after the subscriber
    settings: NormsSettings
    batch_consumer: BatchConsumer
    dead_letters: DeadLetters
    metrics: NormsMetrics
    log: Any
    partitions: set[int] = field(default_factory=set)
    # The consumer's transaction being applied, and per partition the oldest offset not yet
    # committed to Kafka (where to rewind to on an error).
    in_flight: asyncio.Task[None] | None = None
    uncommitted: dict[TopicPartition, int] = field(default_factory=dict)
    # Set after a failure that is not transient: the records from the rewind point on are then
    # applied one by one, and the one that fails on its own is dead-lettered.
    isolate: bool = False

    @property
    def service(self) -> NormsService:
        return self.service_of()

    def account(self, result: BatchResult) -> None:
        self.metrics.applied(result)
        if result.unknown_municipalities:
            self.log.warning(
                "events of municipalities without a catalog skipped",
                municipalities=sorted(result.unknown_municipalities),
            )

    async def applied(
        self, prepared: PreparedBatch, consumer: Any, offsets: dict[TopicPartition, int]
    ) -> None:
        """Apply one prepared transaction; if it ends a consumed batch, then commit the batch's
        offsets to Kafka. On an error, rewind to the oldest offsets not committed, so the
        events are delivered again (what committed already is recognised by its dedupe keys),
        even if no further batch comes to notice the error."""
        try:
            self.account(await self.service.commit(prepared))
        except BaseException as exc:
            if isinstance(exc, Exception):  # (not a cancellation)
                self.log.warning("intake events not applied; delivered again", error=repr(exc))
            self.rewind(consumer)
            raise
        if offsets:
            try:
                await consumer.commit(offsets)
            except (KafkaError, IllegalStateError) as exc:
                # Applied, but not acknowledged to Kafka (a rebalance took the partitions):
                # whoever reads them next applies nothing twice (dedupe keys).
                self.log.warning("offsets not committed", error=repr(exc))
                return
            # A later batch of these partitions starts at these offsets.
            self.uncommitted.update(offsets)

    def rewind(self, consumer: Any) -> None:
        assigned = consumer.assignment()
        for tp, offset in self.uncommitted.items():
            if tp in assigned:
                consumer.seek(tp, offset)

    async def apply(self, msg: KafkaMessage) -> None:
        """Apply a batch of intake records, in transactions of `commit_batch` events, one after
        the other. Each transaction is prepared (decoded, matched, planned) while PostgreSQL
        applies the one before, also across batches: the handler returns while the batch's
        last transaction is still being applied, and the next batch is read and prepared
        meanwhile. Offsets are committed once a batch's last transaction is (manually, for
        that batch's records only); on an error the consumer rewinds to the oldest offsets not
        committed, so the events are delivered again."""
        records = records_of(msg)
        consumer = msg.consumer
        service = self.service
        settings = self.settings
        event_clock = settings.clock == "event"
        last_record: dict[int, int] = {}  # partition → index of its last record in the batch
        first_record: dict[int, int] = {}
        for index, record in enumerate(records):
            last_record[record.partition] = index
            first_record.setdefault(record.partition, index)
        assignment = consumer.assignment()
        for tp in [tp for tp in self.uncommitted if tp not in assignment]:
            del self.uncommitted[tp]  # revoked
        offsets: dict[TopicPartition, int] = {}  # what to commit once the batch is applied
        for partition, index in last_record.items():
            tp = TopicPartition(records[index].topic, partition)
            self.uncommitted.setdefault(tp, records[first_record[partition]].offset)
            offsets[tp] = records[index].offset + 1
        step = settings.commit_batch
        try:
            if event_clock:
                assigned = {tp.partition for tp in assignment}
                if assigned - self.partitions:
                    await service.register_partitions(sorted(assigned))
                    self.partitions = assigned
            if self.isolate:
                await self.apply_one_by_one(records, consumer, offsets)
                return
            for start in range(0, len(records), step):
                end = min(start + step, len(records))
                events: list[tuple[int, Envelope[Any]]] = []
                bad: list[tuple[Any, Problem]] = []
                for part in range(start, end, _YIELD_EVERY):
                    good, problems = self.batch_consumer.sort(
                        records[part : min(part + _YIELD_EVERY, end)]
                    )
                    events += [(record.partition, event) for record, event in good]
                    bad += problems
                    await asyncio.sleep(0)  # let the transaction in flight go on
                if bad:  # durable before any offset past them is committed
                    await self.dead_letters.send(bad)
                if not events and end < len(records):
                    continue  # (the last transaction reports the partitions' ends regardless)
                caught_up: dict[int, bool] = {}
                if event_clock:  # as the latest fetch responses tell it
                    ends = await read_to_end(consumer, settings.intake_topic)
                    # A partition with records in a later transaction of this batch is not read
                    # to its end until that one is applied.
                    caught_up = {
                        p: read and last_record.get(p, -1) < end for p, read in ends.items()
                    }
                prepared = await service.prepare(events, caught_up)
                if prepared.ahead_of_wall:
                    self.log.warning(
                        "events dated beyond the wall clock's tolerance do not move the watermark",
                        events=prepared.ahead_of_wall,
                        tolerance_seconds=settings.future_tolerance_seconds,
                    )
                if self.in_flight is not None:
                    await self.in_flight  # one transaction at a time, in order
                self.in_flight = asyncio.create_task(
                    self.applied(prepared, consumer, offsets if end == len(records) else {})
                )
        except BaseException as exc:
            # Nothing of this batch is committed to Kafka: wait for what is in flight (it
            # rewinds itself if it fails), then rewind.
            if self.in_flight is not None:
                with contextlib.suppress(BaseException):
                    await self.in_flight
            self.in_flight = None
            self.rewind(consumer)
            if isinstance(exc, Exception):
                if not is_transient(exc):
                    self.isolate = True  # find the event that fails, set it aside
                pause = self.batch_consumer.backoff.next_pause()
                self.log.warning(
                    "intake batch not applied; read again after a pause",
                    error=repr(exc)[:300],
                    transient=is_transient(exc),
                    pause_seconds=pause,
                )
                await asyncio.sleep(pause)  # a database that fails: not at full speed
            raise
        self.batch_consumer.backoff.reset()

    async def apply_one_by_one(
        self, records: tuple[Any, ...], consumer: Any, offsets: dict[TopicPartition, int]
    ) -> None:
        """After a failure that is not transient: each record in a transaction of its own
        (after what is in flight); one that fails on its own is dead-lettered, the others take
        effect. Then the batch's offsets are committed and the fast path resumes."""
        if self.in_flight is not None:
            await self.in_flight
            self.in_flight = None
        for record in records:
            good, bad = self.batch_consumer.sort((record,))
            if bad:
                await self.dead_letters.send(bad)
                continue
            event = good[0][1]
            try:
                self.account(await self.service.apply_batch([(record.partition, event)], {}))
            except Exception as exc:
                if is_transient(exc):
                    raise
                self.log.error(
                    "intake event could not be applied; dead-lettered",
                    event_id=event.id,
                    error=type(exc).__name__,
                )
                problem = Problem.of(Reason.APPLY_FAILED, f"{type(exc).__name__}: {exc}")
                await self.dead_letters.send([(record, problem)])
        await consumer.commit(offsets)
        self.uncommitted.update(offsets)
        self.isolate = False

    async def drain(self) -> None:
        """Before the consumer stops: let the last transaction finish and its offsets commit."""
        if self.in_flight is not None:
            with contextlib.suppress(BaseException):
                await self.in_flight


def register_consumer(broker: KafkaBroker, consumer: IntakeConsumer) -> None:
    settings = consumer.settings

    @broker.subscriber(
        settings.intake_topic,
        group_id=settings.consumer_group,
        batch=True,
        max_records=settings.max_batch,
        batch_timeout_ms=settings.batch_timeout_ms,
        auto_offset_reset=settings.auto_offset_reset,
        max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
        # Records are decoded by the project's codec; a bad one is dead-lettered.
        parser=raw_batch_parser,
        decoder=no_decoder,
        # Offsets are committed by the handler once the batch committed in PostgreSQL.
        ack_policy=AckPolicy.MANUAL,
    )
    async def apply_intake(msg: KafkaMessage) -> None:
        await consumer.apply(msg)
