"""Composition root of the metrics service: settings, store, consumer, HTTP face.

Consumes the intake, norms and feedback topics in batches (consumer group `metrics`). Each batch
is applied to PostgreSQL in one transaction (dedupe keys + aggregate increments + state), then
added to the in-memory view, then the offsets are committed to Kafka. A crash anywhere in between
re-delivers the batch; the dedupe keys make the second delivery count nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from faststream import AckPolicy
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    make_asgi_app,
)

from schemas.envelope import Envelope
from services.common.config import load_case_types, load_municipalities, load_yaml_model
from services.common.consumer import BatchConsumer, no_decoder, raw_batch_parser, records_of
from services.common.deadletters import DeadLetters, dead_letter_counter
from services.common.health import (
    BackgroundTasks,
    database_check,
    health_routes,
    kafka_check,
)
from services.common.logging import configure_logging
from services.common.migrations import migrate
from services.common.process import (
    batch_gc_thresholds,
    observe_collections,
    quiet_cycle_collector,
)
from services.common.settings import REPO_ROOT, InfraSettings
from services.intake.domain.channel_systems import SourceLabels
from services.intake.settings import IntakeSettings
from services.metrics.adapters.exposition import AggregateView
from services.metrics.adapters.lag import ConsumerLag
from services.metrics.adapters.store import AggregateStore
from services.metrics.domain.tally import Policy
from services.metrics.settings import MetricsSettings
from services.norms.domain.calendar import BusinessCalendar
from services.norms.domain.catalog import CalendarFile

MIGRATIONS = REPO_ROOT / "services" / "metrics" / "migrations"


@dataclass
class Runtime:
    """What the handlers share once the service started."""

    pool: asyncpg.Pool | None = None
    store: AggregateStore | None = None
    lock_conn: asyncpg.Connection | None = None
    # Serialises "commit + add to view" against "reload view from store" within this process.
    view_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    gauges_dirty: bool = False
    forget_collections: Any = None  # stops timing the cycle collector's runs


def build_app(
    settings: MetricsSettings | None = None, infra: InfraSettings | None = None
) -> AsgiFastStream:
    settings = settings or MetricsSettings()
    infra = infra or InfraSettings()
    log = configure_logging("metrics", infra.log_level, infra.log_format)
    municipalities = load_municipalities(infra.config_dir)
    calendar_files: dict[str, CalendarFile] = {}
    for m in municipalities.municipalities:
        if m.calendar not in calendar_files:
            calendar_files[m.calendar] = load_yaml_model(
                infra.config_dir / "calendars" / f"{m.calendar}.yaml", CalendarFile
            )
    policy = Policy(
        municipalities={m.code: m.zone for m in municipalities.municipalities},
        phone_answer_norm_seconds=settings.phone_answer_norm_seconds,
        complaint_case_types=frozenset(settings.complaint_case_types),
        calendars={
            m.code: calendar_files[m.calendar].build(m.zone) for m in municipalities.municipalities
        },
        default_calendar=BusinessCalendar(zone=ZoneInfo("Europe/Amsterdam")),
        case_types=load_case_types(infra.config_dir, municipalities),
    )
    topics = settings.topics

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    view = AggregateView(
        settings.phone_answer_norm_seconds,
        policy.municipalities,
        # Data-quality problems per channel system: intake's channel systems.
        SourceLabels.from_file(IntakeSettings(infra=infra).channel_systems_path()),
        policy.case_types,
    )
    # One exporter per consumer group (a deployment, or a test run with a group of its own).
    exporter_lock = zlib.crc32(f"servicepuls-metrics-exporter:{settings.consumer_group}".encode())
    registry.register(view)
    lag = ConsumerLag(infra.kafka_bootstrap, settings.lag_groups, topics)
    registry.register(lag)
    duplicates = Counter(
        "servicepuls_metrics_duplicate_events",
        "Events delivered again (redelivery after a crash or rebalance) and not counted again.",
        registry=registry,
    )
    dead_letters = DeadLetters(
        infra.kafka_bootstrap, "metrics", dead_letter_counter(registry), log=log
    )
    consumer = BatchConsumer(dead_letters, log)
    batch_seconds = Histogram(
        "servicepuls_metrics_batch_duration_seconds",
        "Time to apply one consumed batch to the durable aggregates.",
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    )
    events_seen = Counter(
        "servicepuls_metrics_records_consumed",
        "Records consumed from Kafka by this process (duplicates included).",
        ["topic"],
        registry=registry,
    )

    runtime = Runtime()
    broker = KafkaBroker(
        infra.kafka_bootstrap, client_id="servicepuls-metrics", logger=log, log_level=logging.DEBUG
    )

    @broker.subscriber(
        *topics,
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
            events_seen.labels(record.topic).inc()
        await consumer.handle(records, apply_events)

    async def apply_events(events: list[Envelope[Any]]) -> None:
        assert runtime.store is not None
        started = time.perf_counter()
        async with runtime.view_lock:
            result, duplicate_count = await runtime.store.apply(events)
            view.add(result)
        if result.cases or result.clocks or result.goals:
            runtime.gauges_dirty = True  # recounted from the state tables within 0.2 s
        batch_seconds.observe(time.perf_counter() - started)
        if duplicate_count:
            duplicates.inc(duplicate_count)

    async def refresh_view() -> None:
        assert runtime.store is not None
        async with runtime.view_lock:
            runtime.gauges_dirty = False
            view.replace(await runtime.store.snapshot())

    async def refresh_gauges() -> None:
        """The "now" gauges are counts over the state tables: recount them shortly after a
        batch changed those tables (once per interval, however many batches came)."""
        if runtime.gauges_dirty and runtime.store is not None:
            async with runtime.view_lock:
                runtime.gauges_dirty = False
                view.replace_gauges(await runtime.store.gauges())

    async def hold_exporter_lock() -> None:
        """Only the replica holding this session lock exposes business metrics; if it dies,
        PostgreSQL releases the lock and another replica takes over."""
        conn = runtime.lock_conn
        try:
            if conn is None or conn.is_closed():
                view.exporting = False
                runtime.lock_conn = conn = await asyncpg.connect(infra.database_url)
            if not view.exporting:
                view.exporting = bool(
                    await conn.fetchval("SELECT pg_try_advisory_lock($1)", exporter_lock)
                )
            else:
                await conn.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError) as exc:
            view.exporting = False
            log.warning("exporter lock check failed", error=str(exc))
            if conn is not None:
                conn.terminate()
            runtime.lock_conn = None

    async def purge_dedupe_keys() -> None:
        assert runtime.store is not None
        purged = await runtime.store.purge_dedupe_keys(settings.dedupe_retention_days)
        if purged:
            log.info("dedupe keys purged", count=purged, days=settings.dedupe_retention_days)

    background = BackgroundTasks(log)

    async def start() -> None:
        # Above what a batch keeps alive: the collector then runs when something is left over,
        # not several times for every batch (see services.common.process).
        quiet_cycle_collector(batch_gc_thresholds(settings.max_batch))
        runtime.forget_collections = observe_collections(registry)
        await dead_letters.start()
        runtime.pool = await asyncpg.create_pool(infra.database_url, min_size=1, max_size=4)
        async with runtime.pool.acquire() as conn:
            applied = await migrate(conn, "metrics", MIGRATIONS)
        if applied:
            log.info("migrations applied", versions=applied)
        runtime.store = AggregateStore(runtime.pool, policy)
        await refresh_view()
        await hold_exporter_lock()
        background.every(settings.refresh_seconds, refresh_view, "refresh")
        background.every(0.2, refresh_gauges, "gauges")
        background.every(settings.refresh_seconds, hold_exporter_lock, "lock")
        background.every(settings.lag_interval_seconds, lag.measure, "lag")
        background.every(settings.purge_interval_seconds, purge_dedupe_keys, "purge")
        log.info("metrics service started", exporting=view.exporting)

    async def stop() -> None:
        if runtime.forget_collections is not None:
            runtime.forget_collections()
        await background.stop()
        await lag.stop()
        await dead_letters.stop()
        if runtime.lock_conn is not None:
            await runtime.lock_conn.close()
        if runtime.pool is not None:
            await runtime.pool.close()

    async def aggregates_loaded() -> str | None:
        return None if view.loaded else "aggregates not loaded"

    return AsgiFastStream(
        broker,
        asgi_routes=[
            *health_routes(
                database_check(lambda: runtime.pool), kafka_check(broker), aggregates_loaded
            ),
            ("/metrics", make_asgi_app(registry)),
        ],
        on_startup=[start],
        after_shutdown=[stop],
    )
