"""Composition root of the norms service: `bootstrap()` wires settings, catalogs, PostgreSQL,
the intake consumer, the due-clock scheduler, the outbox relay and the HTTP face.

Consumes the intake topic in batches (consumer group `norms`). Each batch is applied in one
PostgreSQL transaction (dedupe keys + clocks + outbox + compliance); only then are the offsets
committed to Kafka. The scheduler takes warnings and breaches at their due instant; the relay
publishes the outbox to the norms topic.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qs

import asyncpg
from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from faststream import AckPolicy
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_asgi_app

from schemas.envelope import Envelope, KafkaRecord, attributes_from_headers
from services.common.consumer import (
    BatchConsumer,
    is_transient,
    no_decoder,
    raw_batch_parser,
    records_of,
)
from services.common.deadletters import DeadLetters, Problem, Reason, dead_letter_counter
from services.common.health import (
    database_check,
    health_routes,
    kafka_check,
    partitions_assigned_check,
)
from services.common.kafka import RenewingProducer
from services.common.logging import configure_logging
from services.common.migrations import migrate
from services.common.process import observe_collections, quiet_cycle_collector
from services.common.settings import InfraSettings
from services.intake.domain.channel_systems import SourceLabels
from services.intake.settings import IntakeSettings
from services.norms.adapters.relay import OutboxRelay
from services.norms.adapters.repository import MIGRATIONS, ClockRepository
from services.norms.config import load_catalogs
from services.norms.domain.explain import report
from services.norms.service import BatchResult, NormsService
from services.norms.settings import NormsSettings

# Records decoded between two chances for the transaction in flight to go on.
_YIELD_EVERY = 50
_BREACHED = "nl.servicepuls.norm.breached.v1"


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
class Runtime:
    pool: asyncpg.Pool | None = None
    repository: ClockRepository | None = None
    service: NormsService | None = None
    relay: OutboxRelay | None = None
    producer: Any = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    forget_collections: Any = None  # stops timing the cycle collector's runs
    partitions: set[int] = field(default_factory=set)
    # The consumer's transaction being applied, and per partition the oldest offset not yet
    # committed to Kafka (where to rewind to on an error).
    in_flight: asyncio.Task[None] | None = None
    uncommitted: dict[TopicPartition, int] = field(default_factory=dict)
    # Set after a failure that is not transient: the records from the rewind point on are then
    # applied one by one, and the one that fails on its own is dead-lettered.
    isolate: bool = False


def bootstrap(
    settings: NormsSettings | None = None, infra: InfraSettings | None = None
) -> AsgiFastStream:
    settings = settings or NormsSettings()
    infra = infra or InfraSettings()
    log = configure_logging("norms", infra.log_level, infra.log_format)
    catalogs = load_catalogs(infra.config_dir)  # fails at start, naming file and field
    # Intake's channel systems: data-quality problems are counted per channel system.
    channel_system = SourceLabels.from_file(IntakeSettings(infra=infra).channel_systems_path())

    registry = CollectorRegistry()
    processed = Counter(
        "servicepuls_norms_events_processed",
        "Intake events applied to clocks (first delivery only).",
        registry=registry,
    )
    duplicates = Counter(
        "servicepuls_norms_duplicate_events",
        "Intake events delivered again and not applied again.",
        registry=registry,
    )
    dead_letters = DeadLetters(
        infra.kafka_bootstrap, "norms", dead_letter_counter(registry), log=log
    )
    batch_consumer = BatchConsumer(dead_letters, log)
    decisions = Counter(
        "servicepuls_norms_decisions",
        "Norm decisions taken (started, warning, breached, met, missed, cancelled).",
        ["municipality", "norm", "kind"],
        registry=registry,
    )
    data_quality = Counter(
        "servicepuls_norms_data_quality_problems",
        "Input events dated before the start of a clock they concern, by channel system and "
        "problem (stopped_before_start cancels the clock; the others are ignored).",
        ["municipality", "norm", "channel_system", "problem"],
        registry=registry,
    )
    scheduler_lag = Histogram(
        "servicepuls_norms_scheduler_lag_seconds",
        "From a warning's or breach's due instant to the scheduler taking it (wall mode).",
        registry=registry,
        buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0),
    )
    breach_publish_lag = Histogram(
        "servicepuls_norms_breach_publish_lag_seconds",
        "From a breach's due instant to Kafka acknowledging the breach event (wall mode).",
        registry=registry,
        buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0),
    )
    scheduler_failures = Counter(
        "servicepuls_norms_scheduler_failures",
        "Scheduler rounds that failed (transient: database away; other: a fault to look at).",
        ["kind"],
        registry=registry,
    )
    backlog = Gauge(
        "servicepuls_norms_outbox_backlog",
        "Norm events committed but not yet published to Kafka.",
        registry=registry,
    )
    watermark_gauge = Gauge(
        "servicepuls_norms_now_seconds",
        "The service's notion of now (wall clock or event-time watermark), Unix seconds.",
        registry=registry,
    )

    runtime = Runtime()
    broker = KafkaBroker(
        infra.kafka_bootstrap, client_id="servicepuls-norms", logger=log, log_level=logging.DEBUG
    )

    def count(result: Any) -> None:
        for (municipality, norm, kind), n in collections.Counter(result.decisions).items():
            decisions.labels(municipality, norm, kind).inc(n)
        for municipality, norm, source, problem in result.data_quality:
            data_quality.labels(municipality, norm, channel_system(source), problem).inc()

    def account(result: BatchResult) -> None:
        processed.inc(result.applied)
        duplicates.inc(result.duplicates)
        count(result)
        if result.unknown_municipalities:
            log.warning(
                "events of municipalities without a catalog skipped",
                municipalities=sorted(result.unknown_municipalities),
            )

    async def applied(prepared: Any, consumer: Any, offsets: dict[TopicPartition, int]) -> None:
        """Apply one prepared transaction; if it ends a consumed batch, then commit the batch's
        offsets to Kafka. On an error, rewind to the oldest offsets not committed, so the
        events are delivered again (what committed already is recognised by its dedupe keys),
        even if no further batch comes to notice the error."""
        try:
            account(await service_of().commit(prepared))
        except BaseException as exc:
            if isinstance(exc, Exception):  # (not a cancellation)
                log.warning("intake events not applied; delivered again", error=repr(exc))
            rewind(consumer)
            raise
        if offsets:
            try:
                await consumer.commit(offsets)
            except (KafkaError, IllegalStateError) as exc:
                # Applied, but not acknowledged to Kafka (a rebalance took the partitions):
                # whoever reads them next applies nothing twice (dedupe keys).
                log.warning("offsets not committed", error=repr(exc))
                return
            # A later batch of these partitions starts at these offsets.
            runtime.uncommitted.update(offsets)

    def rewind(consumer: Any) -> None:
        assigned = consumer.assignment()
        for tp, offset in runtime.uncommitted.items():
            if tp in assigned:
                consumer.seek(tp, offset)

    def service_of() -> NormsService:
        assert runtime.service is not None
        return runtime.service

    async def apply_intake(msg: KafkaMessage) -> None:
        """Apply a batch of intake records, in transactions of `commit_batch` events, one after
        the other. Each transaction is prepared (decoded, matched, planned) while PostgreSQL
        applies the one before, also across batches: the handler returns while the batch's
        last transaction is still being applied, and the next batch is read and prepared
        meanwhile. Offsets are committed once a batch's last transaction is (manually, for
        that batch's records only); on an error the consumer rewinds to the oldest offsets not
        committed, so the events are delivered again."""
        records = records_of(msg)
        consumer = msg.consumer
        service = service_of()
        event_clock = settings.clock == "event"
        last_record: dict[int, int] = {}  # partition → index of its last record in the batch
        first_record: dict[int, int] = {}
        for index, record in enumerate(records):
            last_record[record.partition] = index
            first_record.setdefault(record.partition, index)
        assignment = consumer.assignment()
        for tp in [tp for tp in runtime.uncommitted if tp not in assignment]:
            del runtime.uncommitted[tp]  # revoked
        offsets: dict[TopicPartition, int] = {}  # what to commit once the batch is applied
        for partition, index in last_record.items():
            tp = TopicPartition(records[index].topic, partition)
            runtime.uncommitted.setdefault(tp, records[first_record[partition]].offset)
            offsets[tp] = records[index].offset + 1
        step = settings.commit_batch
        try:
            if event_clock:
                assigned = {tp.partition for tp in assignment}
                if assigned - runtime.partitions:
                    await service.register_partitions(sorted(assigned))
                    runtime.partitions = assigned
            if runtime.isolate:
                await apply_one_by_one(records, consumer, offsets)
                return
            for start in range(0, len(records), step):
                end = min(start + step, len(records))
                events: list[tuple[int, Envelope[Any]]] = []
                bad: list[tuple[Any, Problem]] = []
                for part in range(start, end, _YIELD_EVERY):
                    good, problems = batch_consumer.sort(
                        records[part : min(part + _YIELD_EVERY, end)]
                    )
                    events += [(record.partition, event) for record, event in good]
                    bad += problems
                    await asyncio.sleep(0)  # let the transaction in flight go on
                if bad:  # durable before any offset past them is committed
                    await dead_letters.send(bad)
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
                    log.warning(
                        "events dated beyond the wall clock's tolerance do not move the watermark",
                        events=prepared.ahead_of_wall,
                        tolerance_seconds=settings.future_tolerance_seconds,
                    )
                if runtime.in_flight is not None:
                    await runtime.in_flight  # one transaction at a time, in order
                runtime.in_flight = asyncio.create_task(
                    applied(prepared, consumer, offsets if end == len(records) else {})
                )
        except BaseException as exc:
            # Nothing of this batch is committed to Kafka: wait for what is in flight (it
            # rewinds itself if it fails), then rewind.
            if runtime.in_flight is not None:
                with contextlib.suppress(BaseException):
                    await runtime.in_flight
            runtime.in_flight = None
            rewind(consumer)
            if isinstance(exc, Exception):
                if not is_transient(exc):
                    runtime.isolate = True  # find the event that fails, set it aside
                pause = batch_consumer.backoff.next_pause()
                log.warning(
                    "intake batch not applied; read again after a pause",
                    error=repr(exc)[:300],
                    transient=is_transient(exc),
                    pause_seconds=pause,
                )
                await asyncio.sleep(pause)  # a database that fails: not at full speed
            raise
        batch_consumer.backoff.reset()

    async def apply_one_by_one(
        records: tuple[Any, ...], consumer: Any, offsets: dict[TopicPartition, int]
    ) -> None:
        """After a failure that is not transient: each record in a transaction of its own
        (after what is in flight); one that fails on its own is dead-lettered, the others take
        effect. Then the batch's offsets are committed and the fast path resumes."""
        if runtime.in_flight is not None:
            await runtime.in_flight
            runtime.in_flight = None
        service = service_of()
        for record in records:
            good, bad = batch_consumer.sort((record,))
            if bad:
                await dead_letters.send(bad)
                continue
            event = good[0][1]
            try:
                account(await service.apply_batch([(record.partition, event)], {}))
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.error(
                    "intake event could not be applied; dead-lettered",
                    event_id=event.id,
                    error=type(exc).__name__,
                )
                problem = Problem.of(Reason.APPLY_FAILED, f"{type(exc).__name__}: {exc}")
                await dead_letters.send([(record, problem)])
        await consumer.commit(offsets)
        runtime.uncommitted.update(offsets)
        runtime.isolate = False

    async def drain() -> None:
        """Before the consumer stops: let the last transaction finish and its offsets commit."""
        if runtime.in_flight is not None:
            with contextlib.suppress(BaseException):
                await runtime.in_flight

    if settings.consumer_enabled:
        broker.subscriber(
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
        )(apply_intake)

    async def schedule() -> None:
        """Take due warnings and breaches as soon as their instant passes."""
        service = service_of()
        while True:
            try:
                result, now = await service.fire_due(settings.scheduler_batch)
            except Exception as exc:
                # Never the end of the scheduler: a database away comes back; anything else is
                # logged with its traceback, counted and tried again, not at full speed.
                scheduler_failures.labels("transient" if is_transient(exc) else "other").inc()
                if is_transient(exc):
                    log.warning("scheduler round failed", error=repr(exc))
                else:
                    log.exception("scheduler round failed")
                await asyncio.sleep(1.0)
                continue
            if now is not None:
                watermark_gauge.set(now / 1_000_000)
            count(result)
            if settings.clock == "wall" and now is not None:
                wall = time.time()
                for event_time in result.decision_times:
                    if not _history(wall - event_time / 1_000_000):
                        scheduler_lag.observe(max(0.0, wall - event_time / 1_000_000))
            if result.applied < settings.scheduler_batch:
                await asyncio.sleep(settings.scheduler_interval)

    def _history(lag: float) -> bool:
        """An alert of an imported clock (dated before the history horizon) is history, not
        lateness: it would swamp the lag histograms (docs/norms.md, "Importing history")."""
        return 0 < settings.history_horizon_seconds < lag

    def published(records: list[KafkaRecord]) -> None:
        if settings.clock != "wall":
            return
        wall = time.time()
        for record in records:
            attributes = attributes_from_headers(record.headers)
            if attributes.get("type") == _BREACHED:
                due = datetime.fromisoformat(attributes["time"]).timestamp()
                if not _history(wall - due):
                    breach_publish_lag.observe(max(0.0, wall - due))

    async def housekeeping() -> None:
        assert runtime.repository is not None
        while True:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                backlog.set(await runtime.repository.outbox_backlog())
            await asyncio.sleep(5)

    async def purge() -> None:
        assert runtime.repository is not None
        while True:
            await asyncio.sleep(3600)
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await runtime.repository.purge_dedupe_keys(settings.dedupe_retention_days)

    async def start() -> None:
        for catalog in catalogs.values():  # load the holiday tables now, not in the first batch
            catalog.calendar.is_working_day(date.today())
        # With the default thresholds, each full pass would walk every remembered timeline.
        quiet_cycle_collector(settings.gc_thresholds_for_batches())
        runtime.forget_collections = observe_collections(registry)
        await dead_letters.start()
        runtime.pool = await asyncpg.create_pool(infra.database_url, min_size=2, max_size=6)
        async with runtime.pool.acquire() as conn:
            applied = await migrate(conn, settings.db_schema, MIGRATIONS)
        if applied:
            log.info("migrations applied", versions=applied)
        runtime.repository = ClockRepository.configured(runtime.pool, catalogs, settings)
        runtime.service = NormsService(runtime.repository)
        runtime.tasks = [asyncio.create_task(housekeeping())]
        if settings.scheduler_enabled:
            runtime.tasks.append(asyncio.create_task(schedule()))
        if settings.consumer_enabled:
            runtime.tasks.append(asyncio.create_task(purge()))
        if settings.relay_enabled:
            runtime.producer = RenewingProducer(infra.kafka_bootstrap, "servicepuls-norms-relay")
            await runtime.producer.start()
            runtime.relay = OutboxRelay(
                infra.database_url,
                settings.db_schema,
                runtime.producer,
                batch=settings.relay_batch,
                log=log,
                on_published=published,
            )
            runtime.tasks.append(asyncio.create_task(runtime.relay.run()))
        log.info(
            "norms service started",
            clock=settings.clock,
            consumer=settings.consumer_enabled,
            scheduler=settings.scheduler_enabled,
            relay=settings.relay_enabled,
            municipalities=sorted(catalogs),
            schema=settings.db_schema,
        )

    async def stop() -> None:
        await drain()
        if runtime.forget_collections is not None:
            runtime.forget_collections()
        for task in runtime.tasks:
            task.cancel()
        for task in runtime.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if runtime.producer is not None:
            await runtime.producer.stop()
        await dead_letters.stop()
        if runtime.pool is not None:
            await runtime.pool.close()

    @get
    async def compliance(scope: Any) -> AsgiResponse:
        """GET /v1/compliance?municipality=GM0383&from=2026-01-01&to=2026-03-31"""
        query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        municipality = query.get("municipality", "")
        if municipality not in catalogs:
            return AsgiResponse(b'{"error": "unknown municipality"}', 404)
        try:
            first = date.fromisoformat(query.get("from", "1970-01-01"))
            last = date.fromisoformat(query.get("to", "2999-12-31"))
        except ValueError:
            return AsgiResponse(b'{"error": "from and to are dates (YYYY-MM-DD)"}', 400)
        assert runtime.repository is not None
        report = await runtime.repository.compliance(municipality, first, last)
        body = {"municipality": municipality, "from": str(first), "to": str(last), "norms": report}
        return AsgiResponse(
            json.dumps(body).encode(), 200, headers={"content-type": "application/json"}
        )

    @get
    async def clock(scope: Any) -> AsgiResponse:
        """GET /v1/clocks/{clock_id}?lang=nl|en: why the clock's due instant is what it is
        (the clock id, e.g. GM0383/email_answered/ZAAK-1, holds slashes)."""
        clock_id = scope.get("path", "").removeprefix(CLOCKS_PATH)
        query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        lang = query.get("lang", "nl")
        if lang not in ("nl", "en"):
            return _json({"error": "lang: nl or en"}, 400)
        assert runtime.repository is not None
        stored, now = await runtime.repository.clock(clock_id)
        catalog = catalogs.get(stored.municipality) if stored is not None else None
        norm = catalog.norms.get(stored.norm_id) if catalog and stored else None
        body = None
        if stored is not None and catalog is not None and norm is not None:
            transitions = [t for t, _ in stored.transitions]
            body = report(norm, catalog.calendar, transitions, lang=lang, now=now)
        if stored is None or body is None:
            return _json({"error": f"no clock {clock_id!r} (or it never started)"}, 404)
        head = {
            "clock_id": stored.clock_id,
            "municipality": stored.municipality,
            "subject_id": stored.subject_id,
        }
        return _json(head | body, 200)

    @get
    async def revisions(scope: Any) -> AsgiResponse:
        """GET /v1/revisions?municipality=GM0383: the catalog revisions, oldest first."""
        query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        municipality = query.get("municipality", "")
        if municipality not in catalogs:
            return _json({"error": "unknown municipality"}, 404)
        assert runtime.repository is not None
        listed = await runtime.repository.revisions(municipality)
        return _json({"municipality": municipality, "revisions": listed}, 200)

    @get
    async def revision(scope: Any) -> AsgiResponse:
        """GET /v1/revisions/{revision_id}: one revision and every clock it changed."""
        text = scope.get("path", "").removeprefix(REVISIONS_PATH)
        try:
            revision_id = uuid.UUID(text)
        except ValueError:
            return _json({"error": f"not a revision id (a UUID): {text!r}"}, 400)
        assert runtime.repository is not None
        body = await runtime.repository.revision(revision_id)
        if body is None:
            return _json({"error": f"no revision {text}"}, 404)
        return _json(body, 200)

    return _PrefixRoutes(
        broker,
        asgi_routes=[
            *health_routes(
                database_check(lambda: runtime.pool),
                kafka_check(broker),
                *(
                    [partitions_assigned_check(broker, "intake")]
                    if settings.consumer_enabled
                    else []
                ),
            ),
            ("/metrics", make_asgi_app(registry)),
            ("/v1/compliance", compliance),
            ("/v1/revisions", revisions),
        ],
        prefix_routes=[(CLOCKS_PATH, clock), (REVISIONS_PATH, revision)],
        on_startup=[start],
        on_shutdown=[drain],
        after_shutdown=[stop],
    )


CLOCKS_PATH = "/v1/clocks/"
REVISIONS_PATH = "/v1/revisions/"


def _json(body: dict[str, Any], status: int) -> AsgiResponse:
    return AsgiResponse(
        json.dumps(body, ensure_ascii=False).encode(),
        status,
        headers={"content-type": "application/json"},
    )


class _PrefixRoutes(AsgiFastStream):
    """FastStream's ASGI app routes exact paths; these routes also take what follows their
    prefix (a clock id)."""

    def __init__(self, *args: Any, prefix_routes: Sequence[tuple[str, Any]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.prefix_routes = list(prefix_routes)

    async def not_found(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for prefix, route in self.prefix_routes:
                if scope["path"].startswith(prefix) and len(scope["path"]) > len(prefix):
                    await route(scope, receive, send)
                    return
        await super().not_found(scope, receive, send)
