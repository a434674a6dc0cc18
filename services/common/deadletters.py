"""The dead-letter topic: where a consumer puts a record it cannot decode or apply, and carries on.

A dead letter is the original record — key, value and headers, byte for byte — on
`servicepuls.deadletter.v1`, with `dl_*` headers saying which service set it aside, why (a short
reason code and the error text, scrubbed of personal identifiers), where it came from (topic,
partition, offset) and when. Nothing is lost: the consumer commits past a record only once Kafka
acknowledged its dead letter. An operator lists them and, after a fix, sends chosen ones back to
their topic (re-drive); every consumer recognises an event it already applied by `source` + `id`,
so a re-drive is as idempotent as any redelivery.

A transient failure (database or broker away) is never a dead letter: the consumer retries it
(services.common.consumer).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client import CollectorRegistry, Counter

from services.common.kafka import RenewingProducer, seek_to_start, topic_partitions
from services.common.pii import redact

DEADLETTER_TOPIC = "servicepuls.deadletter.v1"
# Headers a dead letter adds to the original ones (all start with this prefix).
PREFIX = "dl_"
ERROR_TEXT_LIMIT = 500


class Reason(StrEnum):
    """Why a record was set aside: the `dl_reason` header and the metric's `reason` label."""

    EMPTY_VALUE = "empty_value"  # no value at all, or a tombstone (null)
    OVERSIZED = "oversized"  # larger than the service accepts
    MISSING_HEADER = "missing_header"  # a required ce_* header is absent
    BAD_HEADER = "bad_header"  # a ce_* header without a value, not UTF-8, or invalid
    UNKNOWN_TYPE = "unknown_type"  # ce_type names no event of the catalog
    INVALID_JSON = "invalid_json"  # the value is not JSON
    INVALID_DATA = "invalid_data"  # JSON, but not valid data for its type
    APPLY_FAILED = "apply_failed"  # decoded, but applying it fails every time


@dataclass(frozen=True, slots=True)
class Problem:
    reason: Reason
    error: str  # what is wrong, without personal data

    @classmethod
    def of(cls, reason: Reason, error: str) -> Problem:
        return cls(reason, scrub(error))


def scrub(text: str) -> str:
    """Error text fit for a header and a log line: personal identifiers masked, bounded."""
    return redact(text)[:ERROR_TEXT_LIMIT]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead letter as read back from the topic."""

    dl_offset: int  # where the dead letter itself is, on the dead-letter topic
    dl_partition: int
    service: str
    reason: str
    error: str
    origin_topic: str
    origin_partition: int
    origin_offset: int
    set_aside_at: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]  # the original headers only
    named_origin: str = ""  # `dl_origin`, where the original was no Kafka record

    @property
    def origin(self) -> str:
        """What the dead letter was: `topic/partition/offset` of the original record (the id
        re-drive takes), or what the service named (the connector: its inbox row)."""
        if self.named_origin:
            return self.named_origin
        return f"{self.origin_topic}/{self.origin_partition}/{self.origin_offset}"

    @property
    def redrivable(self) -> bool:
        return not self.named_origin and self.origin_topic.startswith("servicepuls.")


def dead_letter_headers(
    record: ConsumerRecord[Any, Any], service: str, problem: Problem
) -> list[tuple[str, bytes | None]]:
    own = [
        ("dl_service", service),
        ("dl_reason", str(problem.reason)),
        ("dl_error", problem.error),
        ("dl_topic", record.topic),
        ("dl_partition", str(record.partition)),
        ("dl_offset", str(record.offset)),
        ("dl_timestamp", str(record.timestamp)),
        ("dl_at", datetime.now(UTC).isoformat(timespec="milliseconds")),
    ]
    original = [(name, value) for name, value in (record.headers or ()) if name[:3] != PREFIX]
    return [*original, *((name, text.encode()) for name, text in own)]


class DeadLetters:
    """Writes a service's dead letters, durably, and counts them per reason.

    `send` returns once Kafka acknowledged every dead letter (raises otherwise: the caller then
    retries its batch, and commits nothing past the record). A record dead-lettered once is not
    written again when its batch comes back after a transient failure in the same process.
    """

    REMEMBERED = 10_000

    def __init__(
        self,
        bootstrap: str,
        service: str,
        counter: Counter,
        *,
        topic: str = DEADLETTER_TOPIC,
        log: Any = None,
    ) -> None:
        self.service = service
        self.topic = topic
        self.log = log
        self.bootstrap = bootstrap
        self._producer: RenewingProducer | None = None  # made in `start`, inside the loop
        self._sent: dict[tuple[str, int, int], None] = {}  # insertion-ordered, bounded
        self.counter = counter
        for reason in Reason:  # every series exists from the start: alerts see the first one
            self.counter.labels(service, str(reason))

    @property
    def producer(self) -> RenewingProducer:
        assert self._producer is not None, "DeadLetters.start() first"
        return self._producer

    async def start(self) -> None:
        self._producer = RenewingProducer(self.bootstrap, f"servicepuls-{self.service}-dl")
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send(self, letters: Sequence[tuple[ConsumerRecord[Any, Any], Problem]]) -> None:
        fresh = [(r, p) for r, p in letters if (r.topic, r.partition, r.offset) not in self._sent]
        if not fresh:
            return
        try:
            acks = [
                await self.producer.send(
                    self.topic,
                    key=record.key,
                    value=record.value,
                    headers=dead_letter_headers(record, self.service, problem),
                )
                for record, problem in fresh
            ]
            await asyncio.gather(*acks)
        except Exception as exc:
            await self.producer.renew_after(exc)
            raise
        for record, problem in fresh:
            self._sent[(record.topic, record.partition, record.offset)] = None
            self.counter.labels(self.service, str(problem.reason)).inc()
            if self.log is not None:
                self.log.warning(
                    "record dead-lettered",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    reason=str(problem.reason),
                    error=problem.error,
                )
        while len(self._sent) > self.REMEMBERED:
            del self._sent[next(iter(self._sent))]


def dead_letter_counter(registry: CollectorRegistry) -> Counter:
    """The service's `servicepuls_dead_letters_total{service,reason}` (one per registry)."""
    return Counter(
        "servicepuls_dead_letters",
        "Records set aside on the dead-letter topic, by service and reason.",
        ["service", "reason"],
        registry=registry,
    )


def _header(headers: Iterable[tuple[str, bytes | None]], name: str) -> str:
    for key, value in headers:
        if key == name and value is not None:
            return value.decode(errors="replace")
    return ""


def read_dead_letter(record: ConsumerRecord[Any, Any]) -> DeadLetter:
    headers = list(record.headers or ())

    def number(name: str) -> int:
        text = _header(headers, name)
        return int(text) if text.lstrip("-").isdigit() else -1

    return DeadLetter(
        dl_offset=record.offset,
        dl_partition=record.partition,
        service=_header(headers, "dl_service"),
        reason=_header(headers, "dl_reason"),
        error=_header(headers, "dl_error"),
        origin_topic=_header(headers, "dl_topic"),
        origin_partition=number("dl_partition"),
        origin_offset=number("dl_offset"),
        set_aside_at=_header(headers, "dl_at"),
        key=record.key,
        value=record.value,
        headers=[(k, v) for k, v in headers if k[:3] != PREFIX],
        named_origin=_header(headers, "dl_origin"),
    )


async def read_all(
    bootstrap: str, topic: str = DEADLETTER_TOPIC, timeout: float = 30.0, *, distinct: bool = True
) -> list[DeadLetter]:
    """Every dead letter on the topic now, oldest first per partition; a record set aside twice
    by one service (a crash between its dead letter and its commit) is listed once, unless
    `distinct` is False."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="servicepuls-deadletters"
    )
    await consumer.start()
    letters: list[DeadLetter] = []
    seen: set[tuple[str, str]] = set()
    try:
        partitions = await topic_partitions(consumer, topic, timeout=timeout)
        consumer.assign(partitions)
        await seek_to_start(consumer, partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not read to its end within {timeout:.0f} s")
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    if record.offset >= ends[TopicPartition(record.topic, record.partition)]:
                        continue
                    letter = read_dead_letter(record)
                    identity = (letter.service, letter.origin)
                    if identity not in seen or not distinct:
                        seen.add(identity)
                        letters.append(letter)
    finally:
        await consumer.stop()
    return letters


async def redrive(bootstrap: str, letters: Sequence[DeadLetter]) -> int:
    """Send the original records of `letters` back to their topics (each original once, however
    many services set it aside); returns how many records were sent. Consumers dedupe by event,
    so sending one again has no second effect."""
    originals: dict[str, DeadLetter] = {}
    for letter in letters:
        if not letter.redrivable:
            raise ValueError(f"{letter.origin}: not a record of a Servicepuls topic")
        originals.setdefault(letter.origin, letter)
    producer = RenewingProducer(bootstrap, "servicepuls-redrive")
    await producer.start()
    try:
        acks = [
            await producer.send(
                letter.origin_topic,
                key=letter.key,
                value=letter.value,
                headers=letter.headers,
            )
            for letter in originals.values()
        ]
        await asyncio.gather(*acks)
    finally:
        await producer.stop()
    return len(originals)
