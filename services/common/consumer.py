"""The one way a Servicepuls service consumes a topic: decode, dead-letter, apply, commit.

Whatever arrives, the consumer carries on:
- Records are decoded by the project's own codec (`schemas.envelope.decode`), one by one. One
  that cannot be decoded (empty or null value, oversized, a ce_* header missing, without value
  or not UTF-8, an unknown type, not JSON, invalid data for its type) goes to the dead-letter
  topic with the reason, and the rest of its batch is applied.
- A batch whose applying fails with a deterministic error is applied again event by event; the
  event that still fails is dead-lettered (`apply_failed`), the others take effect.
- A transient failure (database or broker away, a time-out) is never a dead letter: the batch is
  retried after a growing pause, and the consumer resumes where it was when the part is back.
- Offsets are committed only after the batch's effects and its dead letters are durable, so a
  crash at any point delivers the batch again; the services' dedupe keys make that harmless.

FastStream hands the batch over without parsing it (`raw_batch_parser`): its own parser reads
every header as UTF-8 and every value as JSON, and one bad record then fails the whole batch
before any of our code runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from schemas.envelope import Envelope, NullHeader, UnknownEventType, decode
from services.common.deadletters import DeadLetters, Problem, Reason

# Intake admits events of at most 256 KiB; a larger record did not come through intake. (Below
# Kafka's default record limit of 1 MiB, so that its dead letter, headers added, fits too.)
MAX_RECORD_BYTES = 512 * 1024

# Failures of a part that comes back: retried, never dead-lettered.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # connection refused or reset (ConnectionError is one)
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,  # e.g. the server shutting down
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SyntaxOrAccessError,  # e.g. tables gone: a deployment problem, not the event
    KafkaError,
)

_ENVELOPE_FIELDS = {
    "specversion": "ce_specversion",
    "id": "ce_id",
    "source": "ce_source",
    "time": "ce_time",
    "subject": "ce_subject",
    "municipality": "ce_municipality",
}


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT)


def diagnose(exc: BaseException) -> Problem:
    """Why `decode` refused a record, as a dead letter's reason and error text."""
    if isinstance(exc, UnknownEventType):
        if not exc.event_type:
            return Problem.of(Reason.MISSING_HEADER, "header ce_type is missing or empty")
        return Problem.of(Reason.UNKNOWN_TYPE, str(exc))
    if isinstance(exc, NullHeader):
        return Problem.of(Reason.BAD_HEADER, str(exc))
    if isinstance(exc, UnicodeDecodeError):
        return Problem.of(Reason.BAD_HEADER, f"a ce_* header is not UTF-8 ({exc.reason})")
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_input=False, include_url=False)
        if errors and errors[0]["type"] in ("json_invalid", "json_type"):
            return Problem.of(Reason.INVALID_JSON, errors[0]["msg"])
        envelope = exc.title.startswith("Envelope")  # the context attributes: ce_* headers
        text = "; ".join(f"{_place(e['loc'], envelope)}: {e['msg']}" for e in errors)
        if envelope:
            absent = [e for e in errors if e["type"] in ("string_too_short", "missing")]
            reason = Reason.MISSING_HEADER if len(absent) == len(errors) else Reason.BAD_HEADER
            return Problem.of(reason, text)
        return Problem.of(Reason.INVALID_DATA, text)
    return Problem.of(Reason.INVALID_DATA, f"{type(exc).__name__}: {exc}")


def _place(loc: tuple[Any, ...], envelope: bool) -> str:
    parts = [str(part) for part in loc]
    if envelope and parts:
        parts[0] = _ENVELOPE_FIELDS.get(parts[0], parts[0])
    return ".".join(parts) or "(value)"


def decode_record(
    record: ConsumerRecord[Any, Any], max_bytes: int = MAX_RECORD_BYTES
) -> Envelope[Any] | Problem:
    """The record's event, or why it is none."""
    value = record.value
    if not value:
        return Problem.of(
            Reason.EMPTY_VALUE, "the value is null (a tombstone)" if value is None else "empty"
        )
    if len(value) > max_bytes:
        return Problem.of(Reason.OVERSIZED, f"{len(value)} bytes, more than {max_bytes}")
    try:
        return decode(record.headers, value)
    except Exception as exc:  # every refusal has a reason; nothing stops the consumer
        return diagnose(exc)


async def raw_batch_parser(records: tuple[Any, ...], parse: Any) -> Any:
    """A FastStream batch parser that leaves the records alone: the message is made from a copy
    of the first record without headers or value (so nothing is decoded that could fail), and
    carries all records raw (`message.raw_message`). A nack still rewinds every partition."""
    first = dataclasses.replace(records[0], headers=[], value=b"")
    message = await parse((first,))
    message.raw_message = records
    return message


async def no_decoder(message: Any) -> None:
    """The handler decodes the raw records itself, with the project's codec."""
    return None


def records_of(message: Any) -> tuple[ConsumerRecord[Any, Any], ...]:
    records = message.raw_message
    return records if isinstance(records, tuple) else (records,)


class Backoff:
    """Pauses between retries of a transient failure: 0.5 s doubling to 30 s; reset on success."""

    def __init__(self, first: float = 0.5, longest: float = 30.0) -> None:
        self.first = first
        self.longest = longest
        self.failures = 0

    def next_pause(self) -> float:
        self.failures += 1
        return min(self.longest, self.first * 2 ** (self.failures - 1))

    def reset(self) -> None:
        self.failures = 0


Apply = Callable[[list[Envelope[Any]]], Awaitable[Any]]


class BatchConsumer:
    """A service's side of the loop: hand it each batch with the service's `apply`."""

    def __init__(
        self,
        dead_letters: DeadLetters,
        log: Any,
        *,
        max_record_bytes: int = MAX_RECORD_BYTES,
        backoff: Backoff | None = None,
    ) -> None:
        self.dead_letters = dead_letters
        self.log = log
        self.max_record_bytes = max_record_bytes
        self.backoff = backoff or Backoff()

    def sort(
        self, records: Sequence[ConsumerRecord[Any, Any]]
    ) -> tuple[list[tuple[ConsumerRecord[Any, Any], Envelope[Any]]], list[tuple[Any, Problem]]]:
        """Decoded events (with their records) and the records that are not events."""
        good: list[tuple[ConsumerRecord[Any, Any], Envelope[Any]]] = []
        bad: list[tuple[ConsumerRecord[Any, Any], Problem]] = []
        limit = self.max_record_bytes
        for record in records:
            outcome = decode_record(record, limit)
            if type(outcome) is Problem:
                bad.append((record, outcome))
            else:
                good.append((record, outcome))  # type: ignore[arg-type]
        return good, bad

    async def handle(self, records: Sequence[ConsumerRecord[Any, Any]], apply: Apply) -> None:
        """Decode, dead-letter, apply. Raises (after a pause) on a transient failure, so the
        caller's consumer rewinds and the batch comes again; returns once every record either
        took effect or is durably on the dead-letter topic."""
        try:
            good, bad = self.sort(records)
            if bad:
                await self.dead_letters.send(bad)
            if good:
                await self.apply_isolating(good, apply)
        except Exception as exc:
            # Transient (the only kind expected here): the part comes back. Anything else is a
            # fault of ours; retried too, but never at full speed.
            pause = self.backoff.next_pause()
            self.log.warning(
                "batch not applied; retried after a pause",
                transient=is_transient(exc),
                error=repr(exc)[:300],
                pause_seconds=pause,
                failures=self.backoff.failures,
            )
            await asyncio.sleep(pause)
            raise
        self.backoff.reset()

    async def apply_isolating(
        self, events: list[tuple[ConsumerRecord[Any, Any], Envelope[Any]]], apply: Apply
    ) -> None:
        """Apply all events at once; if that fails for a reason that is not transient, apply
        them one by one and dead-letter each one that fails on its own."""
        try:
            await apply([event for _, event in events])
            return
        except Exception as exc:
            if is_transient(exc):
                raise
            if len(events) == 1:
                await self._set_aside(events[0], exc)
                return
            self.log.warning(
                "batch failed; applying its events one by one", error=type(exc).__name__
            )
        for pair in events:
            try:
                await apply([pair[1]])
            except Exception as exc:
                if is_transient(exc):
                    raise
                await self._set_aside(pair, exc)

    async def _set_aside(
        self, pair: tuple[ConsumerRecord[Any, Any], Envelope[Any]], exc: BaseException
    ) -> None:
        record, event = pair
        self.log.error(
            "event could not be applied; dead-lettered",
            event_id=event.id,
            error=type(exc).__name__,
        )
        await self.dead_letters.send(
            [(record, Problem.of(Reason.APPLY_FAILED, f"{type(exc).__name__}: {exc}"))]
        )
