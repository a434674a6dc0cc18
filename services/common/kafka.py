"""Kafka producer settings that make a write durable, and publishing of framed events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    IllegalStateError,
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    UnknownProducerId,
)

from schemas.envelope import Envelope, KafkaRecord, encode
from services.common.murmur import murmur2


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


# Remembered partitions of recent keys (hashing costs about as much as the append).
PARTITION_MEMO_SIZE = 200_000
_partition_of_key: dict[tuple[str, bytes], int] = {}


# A partition's records go out as one record batch when there are at least this many; fewer
# are sent one by one, so that concurrent small requests share the producer's batches.
RECORD_BATCH_MIN = 8


async def _by_partition(
    producer: AIOKafkaProducer | RenewingProducer,
    records: Iterable[KafkaRecord],
    topic: str | None,
) -> dict[tuple[str, int], list[KafkaRecord]]:
    """Records grouped by the partition the default partitioner would choose (murmur2 of the key
    over all partitions), so one subject's events share a partition with what any other producer
    writes for it, in order. `topic`, when given, is where all the records go instead."""
    by_partition: dict[tuple[str, int], list[KafkaRecord]] = {}
    partitions: dict[str, list[int]] = {}
    known = _partition_of_key
    if len(known) > PARTITION_MEMO_SIZE:
        known.clear()
    for record in records:
        destination = topic or record.topic
        partition = known.get((destination, record.key))
        if partition is None:
            if destination not in partitions:
                partitions[destination] = sorted(await producer.partitions_for(destination))
            choices = partitions[destination]
            partition = choices[(murmur2(record.key) & 0x7FFFFFFF) % len(choices)]
            known[(destination, record.key)] = partition
        by_partition.setdefault((destination, partition), []).append(record)
    return by_partition


async def send_records(
    producer: AIOKafkaProducer | RenewingProducer,
    records: Iterable[KafkaRecord],
    *,
    topic: str | None = None,
) -> None:
    """Send all records and wait until Kafka acknowledged every one (raises if any failed).

    Many records for one partition go out as a record batch (`create_batch`/`send_batch`)
    rather than one `send` each: a plain `send` per record (a future, a partitioner call and a
    lookup each) costs about as much as all of intake's own checks of an event. A few are sent
    one by one: a record batch is a produce request of its own, while single sends from
    concurrent requests share one. `topic`, when given, is where all the records go instead of
    their own topic (a private topic in a test or benchmark). Concurrent callers that each send
    a few records do better with `SharedBatches`."""
    await send_grouped(producer, await _by_partition(producer, records, topic))


class RecordLike(Protocol):
    """What a record to send needs (a `KafkaRecord`, or an object framed like one)."""

    @property
    def key(self) -> bytes: ...
    @property
    def value(self) -> bytes: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


async def send_grouped(
    producer: AIOKafkaProducer | RenewingProducer,
    groups: Mapping[tuple[str, int], Sequence[RecordLike]],
) -> None:
    """Send records already grouped by (topic, partition), and wait until Kafka acknowledged
    every one (`send_records`, for a caller that knows the partitions already)."""
    pending: list[asyncio.Future[Any]] = []
    for (destination, partition), group in groups.items():
        if len(group) < RECORD_BATCH_MIN:
            for r in group:
                pending.append(
                    await producer.send(
                        destination,
                        value=r.value,
                        key=r.key,
                        headers=list(r.headers),
                        partition=partition,
                    )
                )
            continue
        batch = producer.create_batch()
        for r in group:
            headers = r.headers if type(r.headers) is list else list(r.headers)  # (aiokafka's)
            if batch.append(timestamp=None, key=r.key, value=r.value, headers=headers) is None:
                # full: send it, start the next one
                pending.append(await producer.send_batch(batch, destination, partition=partition))
                batch = producer.create_batch()
                batch.append(timestamp=None, key=r.key, value=r.value, headers=headers)
        pending.append(await producer.send_batch(batch, destination, partition=partition))
    if pending:
        await asyncio.gather(*pending)


class NotHandedOver(KafkaError):
    """A record batch failed before the producer took it (no metadata, no room in its queue,
    the producer closed or failed): none of its records will be written. `__cause__` says why."""


class _OpenBatch:
    """A record batch still taking records, and the callers waiting for its acknowledgement."""

    __slots__ = ("acked", "builder")

    def __init__(self, builder: Any) -> None:
        self.builder = builder
        self.acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def fail(self, exc: Exception) -> None:
        if not self.acked.done():
            self.acked.set_exception(exc)
            self.acked.exception()  # retrieved: callers that gave up waiting do not warn


class SharedBatches:
    """Concurrent callers' records share record batches: per partition one batch is on its way
    to Kafka at a time, and whatever callers send meanwhile gathers in the next one.

    For a service answering many concurrent requests of tens of records (intake): a record batch
    per request and partition costs the producer and the broker per batch, ~4 times as much per
    record for batches of 17 as for batches of 170 (docs/benchmarks.md, "Intake"). Waiting for
    the batch ahead costs no latency that the producer would not add anyway: aiokafka has one
    produce request in flight per broker, and an idempotent producer writes a partition's
    batches in order. It also avoids aiokafka's `send_batch` waiting for a partition's earlier
    batches, whose time limit runs out under load although Kafka keeps up (aio-libs/aiokafka#528).

    `send` returns once Kafka acknowledged every record of the call (acks as the producer is
    configured) and raises if a batch holding any of them failed: then every caller sharing
    that batch gets the error, and none of them may take its records as written. A batch that
    failed before the producer took it fails with `NotHandedOver`: its records will certainly
    not be written. Any other failure leaves them possibly written (the producer may still be
    retrying them). `hand_over` and the acknowledgements it returns let a caller tell the two.

    Give the producer `PRODUCER_OPTIONS`: the gathering happens here, and a producer's linger
    would only hold each batch back (2 ms a batch: a third of the rate for single records).
    """

    PRODUCER_OPTIONS: ClassVar[dict[str, Any]] = {"linger_ms": 0}

    def __init__(self, producer: AIOKafkaProducer | RenewingProducer) -> None:
        self.producer = producer
        self._waiting: dict[tuple[str, int], list[_OpenBatch]] = {}  # behind the one in flight
        self._in_flight: set[tuple[str, int]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, records: Iterable[KafkaRecord], *, topic: str | None = None) -> None:
        """Send the records and wait for Kafka's acknowledgement (raises if any failed)."""
        for acked in await self.hand_over(records, topic=topic):
            await asyncio.shield(acked)  # a caller timing out leaves the shared batch alone

    async def hand_over(
        self, records: Iterable[KafkaRecord], *, topic: str | None = None
    ) -> list[asyncio.Future[None]]:
        """Put the records into the record batches on their way to Kafka and return the
        acknowledgements of those batches (await them shielded, or with `asyncio.wait`: the
        batches are shared). It either raises before any record is in a batch, or puts them all
        in: from then on they will be written unless their batch fails."""
        waits: list[asyncio.Future[None]] = []
        for tp, group in (await _by_partition(self.producer, records, topic)).items():
            queue = self._waiting.setdefault(tp, [])
            if not queue:
                queue.append(_OpenBatch(self.producer.create_batch()))
            batch = queue[-1]
            for r in group:
                if (
                    batch.builder.append(
                        timestamp=None, key=r.key, value=r.value, headers=r.headers
                    )
                    is None
                ):  # full: this caller waits for the next one as well
                    waits.append(batch.acked)
                    batch = _OpenBatch(self.producer.create_batch())
                    queue.append(batch)
                    batch.builder.append(
                        timestamp=None, key=r.key, value=r.value, headers=r.headers
                    )
            waits.append(batch.acked)
            if tp not in self._in_flight:
                self._ship_next(tp)
        return waits

    def _ship_next(self, tp: tuple[str, int]) -> None:
        if not self._waiting.get(tp):
            self._waiting.pop(tp, None)
            return
        self._in_flight.add(tp)
        task = asyncio.create_task(self._ship(tp))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ship(self, tp: tuple[str, int]) -> None:
        # Taken only now, when the task runs: what callers added since it was scheduled (while
        # the loop served them) goes along.
        batch = self._waiting[tp].pop(0)
        taken = False  # by the producer: from then on the records may be written
        try:
            ack = await self.producer.send_batch(batch.builder, tp[0], partition=tp[1])
            taken = True
            await ack
        except asyncio.CancelledError:  # shutting down: nobody gets an acknowledgement
            batch.fail(ProducerClosed())
            for waiting in self._waiting.pop(tp, []):
                waiting.fail(ProducerClosed())
            raise
        except Exception as exc:  # every caller sharing the batch learns of it
            batch.fail(exc if taken else _not_handed_over(exc))
        else:
            batch.acked.set_result(None)
        self._in_flight.discard(tp)
        self._ship_next(tp)


def _not_handed_over(cause: Exception) -> NotHandedOver:
    error = NotHandedOver(f"the producer did not take the batch: {type(cause).__name__}")
    error.__cause__ = cause
    return error


async def topic_partitions(
    consumer: AIOKafkaConsumer, topic: str, timeout: float = 60.0
) -> list[TopicPartition]:
    """The partitions of `topic` (a topic the consumer need not subscribe to), as the cluster's
    metadata lists them. A metadata response can leave a topic out (its leaders moving, a broker
    just restarted): asked again for up to `timeout` seconds, so an existing topic is never read
    as one without partitions; LookupError after that."""
    deadline = time.monotonic() + timeout
    while True:
        cluster = await consumer._client.fetch_all_metadata()
        found = cluster.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if time.monotonic() > deadline:
            raise LookupError(f"{topic}: no such topic in the cluster's metadata")
        await asyncio.sleep(0.5)


async def seek_to_start(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
    """Position the consumer at the first record each of `partitions` still holds, explicitly.
    (`seek_to_beginning` right after `assign` can lose to the offset reset that `assign` starts
    with the consumer's own policy, by default "latest": the partitions then look read to
    their end at once, and a reader takes an existing topic for an empty one — 7 times in 40
    here.)"""
    start = await consumer.beginning_offsets(partitions)
    for tp in partitions:
        consumer.seek(tp, start[tp])


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
