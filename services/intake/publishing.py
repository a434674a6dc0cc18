"""What a failed write to Kafka means for the events of a request: written, not, or unknown.

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
from collections.abc import Sequence
from enum import StrEnum

from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    TopicAuthorizationFailedError,
)

from services.common.kafka import NotHandedOver


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


def failure_answer(outcome: PublishOutcome) -> tuple[str, str]:
    """The title and detail of the 503 problem for a write that did not succeed."""
    if outcome is PublishOutcome.NOT_WRITTEN:
        return (
            "Events could not be stored now",
            "Kafka did not take the write; nothing of this request was accepted or will be "
            "written. Retry the same request after Retry-After seconds.",
        )
    return (
        "Outcome unknown: retry the same request",
        "Kafka did not acknowledge the write in time. The events may or may not be stored: "
        "some or all may still be written. Retrying the same request after Retry-After "
        "seconds is safe; an event with the same source and id has no second effect.",
    )
