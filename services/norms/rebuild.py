"""Rebuild the norms state from the intake topic in bulk, and hand over to the live consumer.

    servicepuls rebuild [--workers 2] [--replace]

What the live consumer and scheduler would have stored and published after reading the intake
topic to its current end — clock rows, dedupe keys, compliance counts, partition progress, and
the outcome events with their deterministic ids — computed in memory from the pure clock
(`planning.plan_events`, `planning.advance_clock`, the functions the live path goes through),
loaded with COPY, published, and then the consumer group's offsets committed at the ends read
to: a norms service started afterwards goes on from there. docs/norms.md, "Rebuilding state
from the log".

How it is fast (docs/benchmarks.md, "Rebuilding norms state"):

- Worker processes (one per core by default) each read a share of the intake partitions,
  decode, plan and load the dedupe keys while reading.
- A record is admitted (`admit`) by a cheaper path than `schemas.envelope.decode`: the data is
  validated by its pydantic model from JSON as always, but the CloudEvents attributes are
  checked by hand against the envelope's constraints instead of building a validated
  `Envelope`. Anything the cheap checks do not accept goes through `decode_record`, the live
  path's own decoding, so a record is refused (dead-lettered) exactly when the live consumer
  refuses it, with the same reason.
- A clock is decided by the worker that read most of its events (the one that reads the
  partition of the clock's subject); the few transitions read elsewhere (an answer to an
  e-mail has a key of its own) are sent to it once all is read.
- Rows go to PostgreSQL by COPY in chunks while the worker goes on, and outcome records to
  Kafka in record batches while it goes on.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import re
import resource
import sys
import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, NamedTuple, cast

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from schemas.common import EARLIEST, LATEST
from schemas.envelope import HEADER_NAMES, MUNICIPALITY_ATTRIBUTE, SPECVERSION, Envelope
from schemas.events import CATALOG
from services.common.calendar import from_us, to_us
from services.common.consumer import MAX_RECORD_BYTES, decode_record
from services.common.deadletters import DEADLETTER_TOPIC, DeadLetters, Problem, dead_letter_counter
from services.common.kafka import durable_producer, send_grouped, topic_partitions
from services.common.migrations import migrate
from services.common.murmur import murmur2
from services.common.settings import InfraSettings
from services.norms.adapters.clock_rows import stored_form, transitions_json
from services.norms.adapters.repository import MIGRATIONS
from services.norms.config import load_catalogs
from services.norms.domain.catalog import NormCatalog
from services.norms.domain.clock import (
    FINAL_KINDS,
    STOPPED_BEFORE_START,
    DecisionKind,
    Transition,
    TransitionKind,
    new_transition,
)
from services.norms.domain.outcomes import Outcome
from services.norms.domain.planning import (
    StoredClock,
    advance_clock,
    compliance_increments,
    plan_events,
)
from services.norms.settings import NormsSettings

# Events planned at a time, rows per COPY, records per send: large enough that the per-call
# costs vanish, small enough that the next chunk is worked out while the last one travels.
PLAN_CHUNK = 5_000
COPY_CHUNK = 20_000
SEND_CHUNK = 20_000
# Record batches as large as the broker takes (message.max.bytes, 1 MiB by default) and requests
# carrying many of them: the producer sends one request at a time and moves on only when the
# worker yields to the event loop, so fewer, larger requests keep the outcomes moving.
BATCH_BYTES = 1_000_000
REQUEST_BYTES = 32 << 20
PROGRESS_SECONDS = 0.25
# How long reading may go without a record before the rebuild gives up and says where.
STALL_SECONDS = 60.0
NORMS_TABLES = ("clock", "processed_event", "outbox", "compliance_daily", "partition_progress")
CLOCK_COLUMNS = (
    "clock_id",
    "municipality",
    "norm_id",
    "subject_id",
    "transitions",
    "taken",
    "next_decision_at",
    "norm_version",
    "outcome",
    "started_at",
    "due_at",
    "stopped_at",
)


class RebuildRefused(Exception):
    """The rebuild would overwrite state it was not told to replace (or has nothing to read)."""


# ---- admitting a record ------------------------------------------------------------------------

# What the cheap path accepts of `ce_time`: the extended ISO 8601 form with an offset, as intake
# writes it. Anything else goes through pydantic (`decode_record`), which decides.
_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3}|\.[0-9]{6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})"
)
_MUNICIPALITY = re.compile(r"GM[0-9]{4}")
# `source` must match `^\S+$`: the cheap path takes printable ASCII without spaces only.
_SOURCE = re.compile(r"[!-~]{1,256}")


# Attribute values that repeat across records (types, sources, municipalities), decoded and
# checked once. Bounded: the values come from outside.
_KNOWN_MAX = 10_000
_types: dict[bytes, tuple[str, Any]] = {}
_sources: dict[bytes, str] = {}
_municipalities: dict[bytes, str] = {}


def _framed_by_intake(headers: Sequence[Any]) -> bool:
    """Whether the headers are intake's, in its order (`binary_headers`): read by position."""
    return all(headers[index][0] == HEADER_NAMES[index] for index in range(8))


def _event_type(raw: bytes) -> tuple[str, Any]:
    """The type's text and its data model (None: not an event type of the catalog)."""
    known = _types.get(raw)
    if known is None:
        if len(_types) >= _KNOWN_MAX:
            _types.clear()
        text = raw.decode()
        known = _types[raw] = (text, CATALOG.get(text))
    return known


def _checked(raw: bytes, pattern: re.Pattern[str], known: dict[bytes, str]) -> str:
    """The value's text if `pattern` matches all of it, else ""."""
    text = known.get(raw)
    if text is None:
        if len(known) >= _KNOWN_MAX:
            known.clear()
        text = raw.decode()
        text = known[raw] = text if pattern.fullmatch(text) else ""
    return text


@dataclass(slots=True, init=False)
class Admitted:
    """What planning needs of an intake event (`plan_events` reads `municipality`, `type` and
    `data` of an envelope), admitted without building the validated `Envelope`."""

    municipality: str
    type: str
    data: Any
    at: int  # event time, microseconds since the epoch
    key: str  # Envelope.dedupe_key

    def __init__(  # (written out: the generated one would run as Python code when compiled)
        self, municipality: str, type: str, data: Any, at: int, key: str
    ) -> None:
        self.municipality, self.type, self.data, self.at, self.key = (
            municipality,
            type,
            data,
            at,
            key,
        )


def admit(record: Any, max_bytes: int = MAX_RECORD_BYTES) -> Admitted | Problem:
    """The event of an intake record, or why it is none — exactly what `decode_record` (the
    live consumer's decoding) accepts and refuses. The data is validated by its model; the
    CloudEvents attributes by the checks below, which accept a subset of what the envelope
    model accepts: whatever they do not accept is decoded by `decode_record`, which decides."""
    value = record.value
    if value and len(value) <= max_bytes:
        headers = record.headers
        try:
            if len(headers) == 8 and _framed_by_intake(headers):  # (the values by position)
                spec = headers[0][1]
                event_id = headers[1][1].decode()
                raw_source, raw_type = headers[2][1], headers[3][1]
                moment = headers[4][1].decode()
                subject = headers[5][1].decode()
                raw_municipality = headers[6][1]
            else:
                attributes: dict[str, Any] = {}
                for name, raw in headers:
                    if name[:3] == "ce_":
                        attributes[name[3:]] = raw
                spec = attributes.get("specversion")
                event_id = attributes["id"].decode()
                raw_source, raw_type = attributes["source"], attributes["type"]
                moment = attributes["time"].decode()
                subject = attributes["subject"].decode()
                raw_municipality = attributes[MUNICIPALITY_ATTRIBUTE]
            event_type, model = _event_type(raw_type)
            source = _checked(raw_source, _SOURCE, _sources)
            municipality = _checked(raw_municipality, _MUNICIPALITY, _municipalities)
        except (KeyError, AttributeError, UnicodeDecodeError, TypeError):
            model = None
        if (
            model is not None
            and (spec is None or spec == b"1.0")
            and 0 < len(event_id) <= 128
            and 0 < len(subject) <= 128
            and source
            and municipality
            and _TIME.fullmatch(moment)
        ):
            try:
                instant: datetime | None = datetime.fromisoformat(moment)
            except ValueError:  # (a 30th of February): decode_record says why
                instant = None
            if instant is not None and EARLIEST <= instant < LATEST:
                try:  # (`model_validate_json` without its Python frame: the same validator)
                    data = model.__pydantic_validator__.validate_json(value)
                except ValueError:
                    pass  # decode_record says why, as the live consumer does
                else:
                    return Admitted(
                        municipality,
                        event_type,
                        data,
                        to_us(instant),
                        f"{source}\x1f{event_id}",
                    )
    decoded = decode_record(record, max_bytes)
    if type(decoded) is Problem:
        return decoded
    envelope = cast(Envelope[Any], decoded)
    return Admitted(
        envelope.municipality,
        envelope.type,
        envelope.data,
        to_us(envelope.time),
        envelope.dedupe_key,
    )


assert SPECVERSION == "1.0"  # what the cheap path compares `ce_specversion` with


# ---- a worker's job ------------------------------------------------------------------------------


class Job(NamedTuple):
    """What one worker process reads and where it writes (picklable: sent to a spawned process;
    a named tuple, as a compiled frozen dataclass cannot be unpickled)."""

    worker: int  # 0, 1, …
    workers: int
    partitions: tuple[tuple[int, int, int], ...]  # partition, first offset, end offset
    partition_count: int
    bootstrap: str
    database_url: str
    schema: str
    intake_topic: str
    norms_topic: str
    deadletter_topic: str
    config_dir: Path
    limit_us: int  # progress moves no further than this (wall clock plus the future tolerance)
    history_before_us: int | None  # wall-clock mode: older events are historical (an import)
    max_partition_fetch_bytes: int = 4 << 20


def subject_hash(subject_id: str) -> int:
    """What the default partitioner makes of a subject (the key of its intake events and of
    its outcome events): Kafka's murmur2, positive."""
    return murmur2(subject_id.encode()) & 0x7FFFFFFF


def owner_of(subject_id: str, partition_count: int, workers: int) -> int:
    """The worker that decides a clock: the one that reads the partition the clock's subject is
    keyed to (so most of a clock's events are its own)."""
    return (subject_hash(subject_id) % partition_count) % workers


# A clock's transitions as sent between processes: compact tuples.
Fragment = tuple[str, str, str, str, list[list[Any]]]  # (clock_rows.stored_form)
_KINDS = {kind.value: kind for kind in TransitionKind}


class _OneInFlight:
    """Work handed on in chunks, one chunk in flight while the caller makes the next."""

    def __init__(self) -> None:
        self.in_flight: asyncio.Task[Any] | None = None
        self.waited = 0.0  # seconds the caller waited for the chunk in flight
        self.count = 0  # items handed on

    async def _hand_on(self, work: Any, items: int) -> None:
        await self._wait()
        self.count += items
        self.in_flight = asyncio.create_task(work)

    async def _wait(self) -> None:
        if self.in_flight is not None:
            began = time.perf_counter()
            await self.in_flight
            self.waited += time.perf_counter() - began
            self.in_flight = None

    async def flush(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        await self.flush()
        await self._wait()


class _Copier(_OneInFlight):
    """COPY rows into a table in chunks."""

    def __init__(self, conn: asyncpg.Connection, schema: str, table: str, columns: Sequence[str]):
        super().__init__()
        self.conn, self.schema, self.table, self.columns = conn, schema, table, list(columns)
        self.rows: list[tuple[Any, ...]] = []

    async def add(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)
        if len(self.rows) >= COPY_CHUNK:
            await self.flush()

    async def flush(self) -> None:
        if self.rows:
            rows, self.rows = self.rows, []
            copy = self.conn.copy_records_to_table(
                self.table, records=rows, columns=self.columns, schema_name=self.schema
            )
            await self._hand_on(copy, len(rows))


class _Sender(_OneInFlight):
    """Send outcome records in record batches. Each goes to the partition the default
    partitioner chooses (`send_records`: murmur2 of the key), hashed once per clock rather than
    once per record."""

    def __init__(self, producer: Any, topic: str, partitions: Iterable[int]) -> None:
        super().__init__()
        self.producer, self.topic = producer, topic
        self.partitions = sorted(partitions)
        self.pending: dict[tuple[str, int], list[Outcome]] = {}
        self.size = 0

    def partition_of(self, key: bytes) -> int:
        return self.partitions[(murmur2(key) & 0x7FFFFFFF) % len(self.partitions)]

    async def add(self, outcomes: Sequence[Outcome], partition: int | None = None) -> None:
        """`partition`: where all `outcomes` go (they share their key)."""
        pending, topic = self.pending, self.topic
        for outcome in outcomes:
            where = (topic, self.partition_of(outcome.key) if partition is None else partition)
            group = pending.get(where)
            if group is None:
                pending[where] = [outcome]
            else:
                group.append(outcome)
        self.size += len(outcomes)
        if self.size >= SEND_CHUNK:
            await self.flush()

    async def flush(self) -> None:
        if self.pending:
            chunk, self.pending, size, self.size = self.pending, {}, self.size, 0
            await self._hand_on(send_grouped(self.producer, chunk), size)


@dataclass
class _Tally:
    """Compliance counts per municipality, norm and local day: met, missed, cancelled, data
    quality (as `compliance_daily` holds them)."""

    counts: dict[tuple[str, str, date], list[int]] = field(default_factory=dict)

    def add(
        self,
        outcomes: list[tuple[str, str, int, DecisionKind]],
        catalogs: dict[str, NormCatalog],
    ) -> None:
        if not outcomes:
            return
        for municipality, norm_id, day, *counts in compliance_increments(outcomes, catalogs):
            total = self.counts.setdefault((municipality, norm_id, day), [0, 0, 0, 0])
            for index, count in enumerate(counts):
                total[index] += count

    def merge(self, other: dict[tuple[str, str, date], list[int]]) -> None:
        for key, counts in other.items():
            total = self.counts.setdefault(key, [0, 0, 0, 0])
            for index, count in enumerate(counts):
                total[index] += count


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_main(job: Job, pipe: Connection) -> None:
    """A worker process: read its partitions, then decide the clocks it owns."""
    # No cycle collector: the worker keeps millions of objects alive until it ends (every
    # clock's transitions), and each collection walked all of them — a third of its time in a
    # profile. What it makes holds no reference cycles to speak of, and the process ends.
    gc.disable()
    try:
        asyncio.run(_work(job, pipe))
    except BaseException as exc:
        pipe.send(("failed", f"worker {job.worker}: {type(exc).__name__}: {exc}"))
        raise


async def _work(job: Job, pipe: Connection) -> None:
    catalogs = load_catalogs(job.config_dir)
    conn = await asyncpg.connect(job.database_url)
    # The clock rows' instants go to COPY as microseconds (`_pg_instant`), not as datetimes
    # made only to be taken apart again.
    await conn.set_type_codec(
        "timestamptz",
        schema="pg_catalog",
        encoder=_pg_instant,
        decoder=_from_pg_instant,
        format="tuple",
    )
    # A record batch waits in the producer while the worker computes (it yields to the event
    # loop between chunks only): a long timeout, so that waiting is no failure.
    producer = durable_producer(
        job.bootstrap,
        f"servicepuls-norms-rebuild-{job.worker}",
        request_timeout_ms=300_000,
        max_request_size=REQUEST_BYTES,
        max_batch_size=BATCH_BYTES,
    )
    dead_letters = DeadLetters(
        job.bootstrap,
        "norms",
        dead_letter_counter(CollectorRegistry()),
        topic=job.deadletter_topic,
    )
    await producer.start()
    await dead_letters.start()
    try:
        sender = _Sender(producer, job.norms_topic, await producer.partitions_for(job.norms_topic))
        tally = _Tally()
        began, cpu_began = time.perf_counter(), time.process_time()
        clocks, summary = await _read(job, conn, catalogs, sender, dead_letters, tally, pipe)
        read_at, cpu_read = time.perf_counter(), time.process_time()
        # Hand the transitions of clocks another worker decides to the parent, which passes them
        # on once every worker has read its partitions (and says what "now" is). The subject's
        # hash chooses the owner here and the outcomes' partition later: hashed once per
        # subject (a subject's clocks are next to each other: one event started them).
        foreign: dict[int, list[Fragment]] = {}
        hashes = array("I")  # the subject hash of each clock kept, in the order of `clocks`
        subject, hashed = "", 0
        for cid in list(clocks):
            blank, transitions = clocks[cid]
            if blank.subject_id != subject:
                subject, hashed = blank.subject_id, subject_hash(blank.subject_id)
            owner = (hashed % job.partition_count) % job.workers
            if owner == job.worker:
                hashes.append(hashed)
                continue
            del clocks[cid]
            foreign.setdefault(owner, []).append(
                (cid, blank.municipality, blank.norm_id, blank.subject_id, stored_form(transitions))
            )
        split_at = time.perf_counter()
        summary["foreign"] = sum(len(fragments) for fragments in foreign.values())
        pipe.send(("read", summary, foreign))
        message = pipe.recv()
        assert message[0] == "decide", message
        _, now, hold, fragments = message
        merge_from = time.perf_counter()
        _merge(clocks, hashes, fragments)
        pipe.send(("clocks", len(clocks)))
        decided_from = time.perf_counter()
        decided, rows_waited = await _decide(
            job, conn, catalogs, clocks, hashes, now, hold, sender, tally, pipe
        )
        decided_at = time.perf_counter()
        await sender.close()
        timings = {
            "read": read_at - began,
            "wait": decided_from - read_at,
            "split": split_at - read_at,  # choosing the owner of each clock
            "merge": decided_from - merge_from,
            "foreign": summary["foreign"],  # clocks handed to another worker
            "decide": decided_at - decided_from,
            "send": time.perf_counter() - decided_at,
            "cpu_start": cpu_began,
            "cpu_read": cpu_read - cpu_began,
            "cpu": time.process_time(),
            "keys_waited": summary["keys_waited"],
            "fetch_waited": summary["fetch_waited"],
            "rows_waited": rows_waited,
            "send_waited": sender.waited,
        }
        pipe.send(
            (
                "done",
                {
                    "clocks": decided,
                    "outcomes": sender.count,
                    "compliance": tally.counts,
                    "peak_rss_mb": _rss_mb(),
                    "timings": timings,
                },
            )
        )
    finally:
        await dead_letters.stop()
        await producer.stop()
        await conn.close()


async def _read(
    job: Job,
    conn: asyncpg.Connection,
    catalogs: dict[str, NormCatalog],
    sender: _Sender,
    dead_letters: DeadLetters,
    tally: _Tally,
    pipe: Connection,
) -> tuple[dict[str, tuple[StoredClock, list[tuple[Transition, dict[str, str]]]]], dict[str, Any]]:
    """Read the job's partitions to their ends: admit each record (or dead-letter it), load the
    dedupe keys, frame and send the instant judgements, and gather every clock's transitions."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=job.bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=job.max_partition_fetch_bytes,
    )
    await consumer.start()
    keys = _Copier(conn, job.schema, "processed_event", ("dedupe_key",))
    clocks: dict[str, tuple[StoredClock, list[tuple[Transition, dict[str, str]]]]] = {}
    progress: dict[int, int] = {}
    historical: set[int] = set()
    seen: set[str] = set()
    pending: list[Admitted] = []
    duplicates = dead = 0
    fetch_waited = 0.0
    unknown: set[str] = set()

    async def plan() -> None:
        nonlocal pending
        if not pending:
            return
        events, pending = pending, []
        planned = plan_events(
            cast(list[Envelope[Any]], events),
            catalogs,
            times=[e.at for e in events],
            keys=[e.key for e in events],
        )
        unknown.update(planned.unknown_municipalities)
        for cid, (blank, new) in planned.transitions.items():
            entry = clocks.get(cid)
            if entry is None:
                clocks[cid] = (blank, new)
            else:
                entry[1].extend(new)
        await sender.add(planned.instant_events)
        tally.add(planned.instant_outcomes, catalogs)

    try:
        ends = {TopicPartition(job.intake_topic, p): end for p, _, end in job.partitions}
        consumer.assign(list(ends))
        for p, first, _ in job.partitions:
            consumer.seek(TopicPartition(job.intake_topic, p), first)
        remaining = {tp for tp, end in ends.items() if end > 0}
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
        read = reported = 0
        last_report = last_record = time.monotonic()
        limit, history = job.limit_us, job.history_before_us
        while remaining:
            asked = time.perf_counter()
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=PLAN_CHUNK)
            fetch_waited += time.perf_counter() - asked
            bad: list[tuple[Any, Problem]] = []
            for tp, records in batch.items():
                end = ends[tp]
                partition = tp.partition
                highest = progress.get(partition, -(1 << 62))
                for record in records:
                    if record.offset >= end:
                        continue
                    read += 1
                    admitted = admit(record)
                    if type(admitted) is not Admitted:
                        bad.append((record, cast(Problem, admitted)))
                        continue
                    # A repeated event moves the progress too (as NormsService.prepare
                    # counts every event of a batch), no further than the limit.
                    at = admitted.at
                    if at > limit:
                        at = limit
                    elif history is not None and at < history:
                        historical.add(partition)
                    if at > highest:
                        highest = at
                    key = admitted.key
                    if key in seen:  # a repeated event has no second effect
                        duplicates += 1
                        continue
                    seen.add(key)
                    pending.append(admitted)
                    await keys.add((key,))
                if highest > -(1 << 62):
                    progress[partition] = highest
            if bad:
                await dead_letters.send(bad)
                dead += len(bad)
            if len(pending) >= PLAN_CHUNK:
                await plan()
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            now = time.monotonic()
            if batch:
                last_record = now
            elif now - last_record > STALL_SECONDS:
                behind = {tp.partition: ends[tp] for tp in remaining}
                raise TimeoutError(
                    f"{job.intake_topic}: nothing read for {STALL_SECONDS:.0f} s; partitions "
                    f"not read to their end (partition: end offset): {behind}"
                )
            if now - last_report > PROGRESS_SECONDS:
                pipe.send(("progress", read - reported))
                reported, last_report = read, now
        await plan()
        await keys.close()
        pipe.send(("progress", read - reported))
    finally:
        await consumer.stop()
    summary = {
        "read": read,
        "duplicates": duplicates,
        "dead_lettered": dead,
        "progress": progress,
        "historical": historical,
        "unknown_municipalities": unknown,
        "keys": keys.count,
        "keys_waited": keys.waited,
        "fetch_waited": fetch_waited,
    }
    return clocks, summary


def _merge(
    clocks: dict[str, tuple[StoredClock, list[tuple[Transition, dict[str, str]]]]],
    hashes: array[int],
    fragments: list[Fragment],
) -> None:
    """Add the transitions other workers read to the clocks this worker decides (and the
    subject hash of a clock new to it to `hashes`, which follows the order of `clocks`)."""
    for cid, municipality, norm_id, subject_id, stored in fragments:
        transitions = [
            (new_transition(at, _KINDS[kind], key, extension, reason), context)
            for at, kind, key, extension, reason, context in stored
        ]
        entry = clocks.get(cid)
        if entry is None:
            clocks[cid] = (StoredClock(cid, municipality, norm_id, subject_id), transitions)
            hashes.append(subject_hash(subject_id))
        else:
            entry[1].extend(transitions)


async def _decide(
    job: Job,
    conn: asyncpg.Connection,
    catalogs: dict[str, NormCatalog],
    clocks: dict[str, tuple[StoredClock, list[tuple[Transition, dict[str, str]]]]],
    hashes: array[int],
    now: int | None,
    hold: int | None,
    sender: _Sender,
    tally: _Tally,
    pipe: Connection,
) -> tuple[int, float]:
    """Decide every clock this worker owns up to `now`, as the scheduler would once the live
    consumer had applied all its events; COPY the rows, send the outcomes. Returns how many
    clocks, and how long it waited for their COPY."""
    rows = _Copier(conn, job.schema, "clock", CLOCK_COLUMNS)
    finals: list[tuple[str, str, int, DecisionKind]] = []
    done = reported = 0
    last_report = time.monotonic()
    assert len(hashes) == len(clocks)
    partitions = sender.partitions
    for index, cid in enumerate(list(clocks)):
        blank, transitions = clocks.pop(cid)  # (freed as it goes)
        # In event-time order (the live consumer appends them in the order they arrive, which
        # across partitions no log can tell; nothing depends on the order).
        if len(transitions) > 1:
            transitions.sort(key=_in_event_time)
        clock = blank
        for transition, context in transitions:
            clock.add(transition, context)
        catalog = catalogs[clock.municipality]
        update = advance_clock(clock, catalog, now, hold)
        for outcome in update.events:
            kind = outcome.kind
            if kind in FINAL_KINDS:  # (as NormsService._store counts them)
                if outcome.reason == STOPPED_BEFORE_START:
                    kind = DecisionKind.DATA_QUALITY
                finals.append((clock.municipality, clock.norm_id, outcome.at, kind))
        if update.events:
            await sender.add(update.events, partitions[hashes[index] % len(partitions)])
        # A clock that took no decision yet is the row the consumer inserted without reading
        # it (no catalog version); the scheduler writes the version when it first takes one.
        taken = update.taken
        await rows.add(
            (
                cid,
                clock.municipality,
                clock.norm_id,
                clock.subject_id,
                transitions_json(clock),
                "|".join(sorted(taken)),
                update.next_decision_at,
                update.norm_version if taken else None,
                update.outcome,
                update.started_at,
                update.due_at,
                update.stopped_at,
            )
        )
        done += 1
        if done & 255 == 0:
            await asyncio.sleep(0)  # the COPY and the records in flight go on
        if len(finals) >= COPY_CHUNK:
            tally.add(finals, catalogs)
            finals = []
        if done & 1023 == 0:
            moment = time.monotonic()
            if moment - last_report > PROGRESS_SECONDS:
                pipe.send(("decided", done - reported))
                reported, last_report = done, moment
    tally.add(finals, catalogs)
    await rows.close()
    pipe.send(("decided", done - reported))
    return done, rows.waited


def _in_event_time(item: tuple[Transition, dict[str, str]]) -> tuple[int, int, str]:
    return item[0].sort_key()


# asyncpg's "tuple" form of a timestamptz: microseconds since 2000-01-01 UTC.
_PG_EPOCH_US = 946_684_800 * 1_000_000


def _pg_instant(instant_us: int) -> tuple[int]:
    return (instant_us - _PG_EPOCH_US,)


def _from_pg_instant(value: tuple[int]) -> int:
    return value[0] + _PG_EPOCH_US


def _ts(instant: int | None) -> datetime | None:
    return None if instant is None else from_us(instant)


# ---- the command -------------------------------------------------------------------------------


@dataclass
class Report:
    """What a rebuild did."""

    read: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    clocks: int = 0
    outcomes: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0  # the largest of the parent's and the workers' peaks
    workers_rss_mb: list[float] = field(default_factory=list)
    # Per worker: seconds reading, waiting for the others, deciding, sending the last outcomes,
    # and its CPU seconds.
    timings: list[dict[str, float]] = field(default_factory=list)
    unknown_municipalities: set[str] = field(default_factory=set)
    offsets: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds else 0.0


async def _prepare(
    infra: InfraSettings, settings: NormsSettings, replace: bool
) -> dict[int, tuple[int, int]]:
    """Migrate the schema, check that there is nothing to overwrite (or clear it when told to
    replace it), and return the intake partitions with their first and end offsets."""
    members = await group_members(infra.kafka_bootstrap, settings.consumer_group)
    if members:
        raise RebuildRefused(
            f"consumer group {settings.consumer_group} has {members} member(s): a norms service "
            "is consuming; stop it first (the rebuild hands over to it by the group's offsets)"
        )
    conn = await asyncpg.connect(infra.database_url)
    try:
        await migrate(conn, settings.db_schema, MIGRATIONS)
        s = f'"{settings.db_schema}"'
        filled = [
            t for t in NORMS_TABLES if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {s}.{t})")
        ]
        if filled and not replace:
            raise RebuildRefused(
                f"schema {settings.db_schema} already holds norms state ({', '.join(filled)}); "
                "stop the norms service and pass --replace to rebuild it from the log"
            )
        if filled:
            await conn.execute(f"TRUNCATE {', '.join(f'{s}.{t}' for t in NORMS_TABLES)}")
    finally:
        await conn.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=infra.kafka_bootstrap,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, settings.intake_topic, STALL_SECONDS)
        committed = {tp.partition: await consumer.committed(tp) for tp in partitions}
        if any(offset is not None for offset in committed.values()) and not replace:
            raise RebuildRefused(
                f"consumer group {settings.consumer_group} has committed offsets on "
                f"{settings.intake_topic}: a norms service consumed it; stop it and pass "
                "--replace to rebuild its state from the log"
            )
        first = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        return {tp.partition: (first[tp], end[tp]) for tp in partitions}
    finally:
        await consumer.stop()


async def group_members(bootstrap: str, group: str) -> int:
    """How many members the consumer group has now (a running service of the group has one)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        # Kafka's DescribeGroups: (error, group, state, protocol type, protocol, members, ...)
        return sum(len(entry[5]) for entry in response.groups)
    finally:
        await admin.close()


async def _finish(
    infra: InfraSettings,
    settings: NormsSettings,
    offsets: dict[int, tuple[int, int]],
    progress: dict[int, int],
    historical: set[int],
    compliance: _Tally,
) -> None:
    """Write the compliance counts and the partitions' progress, then commit the consumer
    group's offsets at the ends read to: the live consumer goes on from there."""
    conn = await asyncpg.connect(infra.database_url)
    s = f'"{settings.db_schema}"'
    try:
        async with conn.transaction():
            rows = [(m, n, d, *c) for (m, n, d), c in sorted(compliance.counts.items())]
            if rows:
                await conn.copy_records_to_table(
                    "compliance_daily",
                    records=rows,
                    columns=[
                        "municipality",
                        "norm_id",
                        "day",
                        "met",
                        "missed",
                        "cancelled",
                        "data_quality",
                    ],
                    schema_name=settings.db_schema,
                )
            event_clock = settings.clock == "event"
            # Every partition read to its end (as the consumer reports it in event-time mode);
            # in wall-clock mode, historical events mark an import in progress.
            await conn.execute(
                f"""INSERT INTO {s}.partition_progress
                        (topic, partition, max_event_time, caught_up_since, historical_at)
                    SELECT $1, u.partition, u.at, CASE WHEN $4 THEN now() END,
                           CASE WHEN u.partition = ANY($5::int[]) THEN now() END
                    FROM unnest($2::int[], $3::timestamptz[]) AS u(partition, at)""",
                settings.intake_topic,
                sorted(offsets),
                [_ts(progress.get(p)) for p in sorted(offsets)],
                event_clock,
                sorted(historical),
            )
    finally:
        await conn.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=infra.kafka_bootstrap,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        ends = {TopicPartition(settings.intake_topic, p): end for p, (_, end) in offsets.items()}
        consumer.assign(list(ends))  # (assigned by hand: refused while the group has members)
        await consumer.commit(ends)
    finally:
        await consumer.stop()


def now_and_hold(
    settings: NormsSettings, progress: dict[int, int], historical: set[int], wall_us: int
) -> tuple[int | None, int | None]:
    """The `now` the live service reaches once every partition is read and idle, and what it
    holds back (an import of history, wall-clock mode): see `ClockRepository.now`."""
    if settings.clock == "event":
        if not progress:
            return None, None
        return max(progress.values()) - round(settings.allowed_lateness_seconds * 1_000_000), None
    horizon = round(settings.history_horizon_seconds * 1_000_000)
    hold = wall_us - horizon if horizon and historical else None
    return wall_us, hold


def rebuild(
    infra: InfraSettings,
    settings: NormsSettings,
    *,
    workers: int = 2,
    replace: bool = False,
    console: Console | None = None,
) -> Report:
    """Rebuild the norms state of `settings.db_schema` from `settings.intake_topic` (see the
    module's docstring). The norms service must not run meanwhile."""
    began = time.perf_counter()
    console = console or Console(stderr=True)
    offsets = asyncio.run(_prepare(infra, settings, replace))
    wall = time.time()
    limit = round((wall + settings.future_tolerance_seconds) * 1_000_000)
    horizon = round(settings.history_horizon_seconds * 1_000_000)
    history = round(wall * 1_000_000) - horizon if settings.clock == "wall" and horizon else None
    workers = max(1, min(workers, len(offsets)))
    context = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    processes = []
    for index in range(workers):
        job = Job(
            worker=index,
            workers=workers,
            partitions=tuple(
                (p, first, end)
                for p, (first, end) in sorted(offsets.items())
                if p % workers == index
            ),
            partition_count=len(offsets),
            bootstrap=infra.kafka_bootstrap,
            database_url=infra.database_url,
            schema=settings.db_schema,
            intake_topic=settings.intake_topic,
            norms_topic=settings.norms_topic,
            deadletter_topic=DEADLETTER_TOPIC,
            config_dir=infra.config_dir,
            limit_us=limit,
            history_before_us=history,
        )
        ours, theirs = context.Pipe()
        process = context.Process(target=worker_main, args=(job, theirs), daemon=True)
        process.start()
        theirs.close()
        pipes.append(ours)
        processes.append(process)
    report = Report()
    total = sum(end - first for first, end in offsets.values())
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console) as bar:
            reading = bar.add_task("reading intake", total=total)
            summaries = _gather(pipes, "read", bar, reading)
            progress: dict[int, int] = {}
            historical: set[int] = set()
            fragments: dict[int, list[Fragment]] = {index: [] for index in range(workers)}
            for summary, foreign in summaries:
                report.read += summary["read"]
                report.duplicates += summary["duplicates"]
                report.dead_lettered += summary["dead_lettered"]
                report.unknown_municipalities |= summary["unknown_municipalities"]
                progress.update(summary["progress"])
                historical |= summary["historical"]
                for owner, items in foreign.items():
                    fragments[owner].extend(items)
            bar.update(reading, completed=total)
            now, hold = now_and_hold(settings, progress, historical, round(wall * 1_000_000))
            for index, pipe in enumerate(pipes):
                pipe.send(("decide", now, hold, fragments.pop(index)))
            counts = [message[0] for message in _gather(pipes, "clocks", bar, None)]
            deciding = bar.add_task("deciding clocks", total=sum(counts))
            results = [message[0] for message in _gather(pipes, "done", bar, deciding)]
        compliance = _Tally()
        for result in results:
            report.clocks += result["clocks"]
            report.outcomes += result["outcomes"]
            report.workers_rss_mb.append(result["peak_rss_mb"])
            report.timings.append(result["timings"])
            compliance.merge(result["compliance"])
        asyncio.run(_finish(infra, settings, offsets, progress, historical, compliance))
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    report.offsets = {p: end for p, (_, end) in offsets.items()}
    report.seconds = time.perf_counter() - began
    report.peak_rss_mb = max([_rss_mb(), *report.workers_rss_mb])
    return report


def _gather(pipes: list[Connection], kind: str, bar: Progress, task: Any) -> list[tuple[Any, ...]]:
    """Wait for every worker's `kind` message, moving the progress bar on the way."""
    answers: dict[int, tuple[Any, ...]] = {}
    while len(answers) < len(pipes):
        for pipe in wait([p for i, p in enumerate(pipes) if i not in answers]):
            pipe = cast(Connection, pipe)
            try:
                message = pipe.recv()
            except EOFError:
                raise RuntimeError("a rebuild worker ended without a word") from None
            if message[0] == "failed":
                raise RuntimeError(message[1])
            if message[0] in ("progress", "decided"):
                if task is not None:
                    bar.advance(task, message[1])
            elif message[0] == kind:
                answers[pipes.index(pipe)] = message[1:]
            else:
                raise RuntimeError(f"unexpected message from a rebuild worker: {message[0]}")
    return [answers[i] for i in range(len(pipes))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="servicepuls rebuild", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="processes reading partitions in parallel (default: 2, or fewer cores)",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="clear the schema's norms state and the group's offsets first (service stopped)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    infra, settings = InfraSettings(), NormsSettings()
    console = Console(stderr=True)
    try:
        report = rebuild(
            infra, settings, workers=args.workers, replace=args.replace, console=console
        )
    except RebuildRefused as refused:
        console.print(f"[red]{refused}[/red]")
        return 2
    console.print(
        f"{report.read:,} intake records read in {report.seconds:.1f} s "
        f"({report.rate:,.0f}/s): {report.clocks:,} clocks, {report.outcomes:,} outcomes "
        f"published to {settings.norms_topic}, {report.duplicates:,} repeated events, "
        f"{report.dead_lettered:,} dead-lettered; peak memory {report.peak_rss_mb:,.0f} MB per "
        f"process; consumer group {settings.consumer_group} goes on at "
        + ", ".join(f"{p}:{o}" for p, o in sorted(report.offsets.items()))
    )
    if report.unknown_municipalities:
        console.print(
            "[yellow]events of municipalities without a catalog were not applied: "
            + ", ".join(sorted(report.unknown_municipalities))
            + "[/yellow]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
