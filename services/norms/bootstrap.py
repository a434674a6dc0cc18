"""Composition root of the norms service: configuration (catalogs, intake's channel systems),
PostgreSQL (the repository) and the service (services/norms/service.py), its Kafka subscriber
of the intake topic (consumer group `norms`), its scheduled jobs (the scheduler of due
decisions, the outbox relay, the backlog gauge, the dedupe-key purge) and its HTTP face
(/v1/compliance, /v1/clocks, /v1/revisions, /health, /ready, /metrics).

Each consumed batch is applied in PostgreSQL transactions (dedupe keys + clocks + outbox +
compliance); only then are the offsets committed to Kafka. The scheduler takes warnings and
breaches at their due instant; the relay publishes the outbox to the norms topic. Settings
decide which of consumer, scheduler and relay run in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, make_asgi_app

from services.common.consumer import BatchConsumer
from services.common.deadletters import DeadLetters, dead_letter_counter
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
from services.norms.domain.catalog import NormCatalog
from services.norms.entrypoints.consumer import IntakeConsumer, register_consumer
from services.norms.entrypoints.http import PrefixRoutes, http_routes
from services.norms.entrypoints.jobs import (
    breaches_published,
    purge_dedupe_keys,
    schedule,
    watch_backlog,
)
from services.norms.metrics import NormsMetrics
from services.norms.service import NormsService
from services.norms.settings import NormsSettings


@dataclass
class _Lifecycle:
    """What is made at start and closed at stop: the pool, the service on it, the producer of
    the relay and the background jobs."""

    settings: NormsSettings
    infra: InfraSettings
    catalogs: dict[str, NormCatalog]
    metrics: NormsMetrics
    registry: CollectorRegistry
    dead_letters: DeadLetters
    log: Any
    pool: asyncpg.Pool | None = None
    service: NormsService | None = None
    producer: RenewingProducer | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    forget_collections: Any = None  # stops timing the cycle collector's runs
    consumer: IntakeConsumer | None = None

    def service_of(self) -> NormsService:
        assert self.service is not None, "the norms service has not started"
        return self.service

    async def start(self) -> None:
        settings, log = self.settings, self.log
        for catalog in self.catalogs.values():  # load the holiday tables now, not in a batch
            catalog.calendar.is_working_day(date.today())
        # With the default thresholds, each full pass would walk every remembered timeline.
        quiet_cycle_collector(settings.gc_thresholds_for_batches())
        self.forget_collections = observe_collections(self.registry)
        await self.dead_letters.start()
        self.pool = await asyncpg.create_pool(self.infra.database_url, min_size=2, max_size=6)
        async with self.pool.acquire() as conn:
            applied = await migrate(conn, settings.db_schema, MIGRATIONS)
        if applied:
            log.info("migrations applied", versions=applied)
        service = self.service = NormsService(
            ClockRepository.configured(self.pool, self.catalogs, settings)
        )
        self.tasks = [asyncio.create_task(watch_backlog(service, self.metrics))]
        if settings.scheduler_enabled:
            self.tasks.append(asyncio.create_task(schedule(service, settings, self.metrics, log)))
        if settings.consumer_enabled:
            self.tasks.append(asyncio.create_task(purge_dedupe_keys(service, settings)))
        if settings.relay_enabled:
            self.producer = RenewingProducer(self.infra.kafka_bootstrap, "servicepuls-norms-relay")
            await self.producer.start()
            relay = OutboxRelay(
                self.infra.database_url,
                settings.db_schema,
                self.producer,
                batch=settings.relay_batch,
                log=log,
                on_published=breaches_published(settings, self.metrics),
            )
            self.tasks.append(asyncio.create_task(relay.run()))
        log.info(
            "norms service started",
            clock=settings.clock,
            consumer=settings.consumer_enabled,
            scheduler=settings.scheduler_enabled,
            relay=settings.relay_enabled,
            municipalities=sorted(self.catalogs),
            schema=settings.db_schema,
        )

    async def drain(self) -> None:
        """Before the consumer stops: its last transaction finishes and its offsets commit."""
        if self.consumer is not None:
            await self.consumer.drain()

    async def stop(self) -> None:
        await self.drain()
        if self.forget_collections is not None:
            self.forget_collections()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.producer is not None:
            await self.producer.stop()
        await self.dead_letters.stop()
        if self.pool is not None:
            await self.pool.close()


def build_app(
    settings: NormsSettings | None = None, infra: InfraSettings | None = None
) -> AsgiFastStream:
    settings = settings or NormsSettings()
    infra = infra or InfraSettings()
    log = configure_logging("norms", infra.log_level, infra.log_format)
    catalogs = load_catalogs(infra.config_dir)  # fails at start, naming file and field
    registry = CollectorRegistry()
    # Data-quality problems are counted per channel system: intake's channel systems.
    channel_system = SourceLabels.from_file(IntakeSettings(infra=infra).channel_systems_path())
    metrics = NormsMetrics(registry, channel_system)
    dead_letters = DeadLetters(
        infra.kafka_bootstrap, "norms", dead_letter_counter(registry), log=log
    )
    lifecycle = _Lifecycle(settings, infra, catalogs, metrics, registry, dead_letters, log)
    broker = KafkaBroker(
        infra.kafka_bootstrap, client_id="servicepuls-norms", logger=log, log_level=logging.DEBUG
    )
    if settings.consumer_enabled:
        lifecycle.consumer = IntakeConsumer(
            lifecycle.service_of,
            settings,
            BatchConsumer(dead_letters, log),
            dead_letters,
            metrics,
            log,
        )
        register_consumer(broker, lifecycle.consumer)
    routes, prefix_routes = http_routes(lifecycle.service_of)
    return PrefixRoutes(
        broker,
        asgi_routes=[
            *health_routes(
                database_check(lambda: lifecycle.pool),
                kafka_check(broker),
                *(
                    [partitions_assigned_check(broker, "intake")]
                    if settings.consumer_enabled
                    else []
                ),
            ),
            ("/metrics", make_asgi_app(registry)),
            *routes,
        ],
        prefix_routes=prefix_routes,
        on_startup=[lifecycle.start],
        on_shutdown=[lifecycle.drain],
        after_shutdown=[lifecycle.stop],
    )
