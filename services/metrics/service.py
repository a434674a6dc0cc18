"""What the metrics service does: apply a batch of events to the durable aggregates and the
in-memory view, keep the view and the "now" gauges fresh, hold the exporter lock (one replica
exposes the business metrics), and purge old dedupe keys.

Each batch is applied to PostgreSQL in one transaction (dedupe keys + aggregate increments +
state), then added to the in-memory view, then the offsets are committed to Kafka (by the
consumer entrypoint). A crash anywhere in between re-delivers the batch; the dedupe keys make the
second delivery count nothing.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from schemas.envelope import Envelope
from services.common.deadletters import DeadLetters
from services.common.health import BackgroundTasks
from services.common.migrations import migrate
from services.common.process import batch_gc_thresholds, observe_collections, quiet_cycle_collector
from services.common.settings import REPO_ROOT, InfraSettings
from services.metrics.adapters.exposition import AggregateView
from services.metrics.adapters.lag import ConsumerLag
from services.metrics.adapters.store import AggregateStore
from services.metrics.domain.tally import Policy
from services.metrics.metrics import ServiceMetrics
from services.metrics.settings import MetricsSettings

MIGRATIONS = REPO_ROOT / "services" / "metrics" / "migrations"


@dataclass
class MetricsService:
    settings: MetricsSettings
    infra: InfraSettings
    policy: Policy
    view: AggregateView
    lag: ConsumerLag
    dead_letters: DeadLetters
    metrics: ServiceMetrics
    registry: Any
    log: structlog.BoundLogger
    pool: asyncpg.Pool | None = None
    store: AggregateStore | None = None
    lock_conn: asyncpg.Connection | None = None
    # Serialises "commit + add to view" against "reload view from store" within this process.
    view_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    gauges_dirty: bool = False
    forget_collections: Any = None  # stops timing the cycle collector's runs
    background: BackgroundTasks | None = None

    @property
    def exporter_lock(self) -> int:
        """One exporter per consumer group (a deployment, or a test run with a group of its own)."""
        group = self.settings.consumer_group
        return zlib.crc32(f"servicepuls-metrics-exporter:{group}".encode())

    async def apply_events(self, events: list[Envelope[Any]]) -> None:
        assert self.store is not None
        started = time.perf_counter()
        async with self.view_lock:
            result, duplicate_count = await self.store.apply(events)
            self.view.add(result)
        if result.cases or result.clocks or result.goals:
            self.gauges_dirty = True  # recounted from the state tables within 0.2 s
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        if duplicate_count:
            self.metrics.duplicates.inc(duplicate_count)

    async def refresh_view(self) -> None:
        assert self.store is not None
        async with self.view_lock:
            self.gauges_dirty = False
            self.view.replace(await self.store.snapshot())

    async def refresh_gauges(self) -> None:
        """The "now" gauges are counts over the state tables: recount them shortly after a
        batch changed those tables (once per interval, however many batches came)."""
        if self.gauges_dirty and self.store is not None:
            async with self.view_lock:
                self.gauges_dirty = False
                self.view.replace_gauges(await self.store.gauges())

    async def hold_exporter_lock(self) -> None:
        """Only the replica holding this session lock exposes business metrics; if it dies,
        PostgreSQL releases the lock and another replica takes over."""
        conn = self.lock_conn
        try:
            if conn is None or conn.is_closed():
                self.view.exporting = False
                self.lock_conn = conn = await asyncpg.connect(self.infra.database_url)
            if not self.view.exporting:
                self.view.exporting = bool(
                    await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.exporter_lock)
                )
            else:
                await conn.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError) as exc:
            self.view.exporting = False
            self.log.warning("exporter lock check failed", error=str(exc))
            if conn is not None:
                conn.terminate()
            self.lock_conn = None

    async def purge_dedupe_keys(self) -> None:
        assert self.store is not None
        days = self.settings.dedupe_retention_days
        purged = await self.store.purge_dedupe_keys(days)
        if purged:
            self.log.info("dedupe keys purged", count=purged, days=days)

    async def aggregates_loaded(self) -> str | None:
        return None if self.view.loaded else "aggregates not loaded"

    async def start(self) -> None:
        settings = self.settings
        # Above what a batch keeps alive: the collector then runs when something is left over,
        # not several times for every batch (see services.common.process).
        quiet_cycle_collector(batch_gc_thresholds(settings.max_batch))
        self.forget_collections = observe_collections(self.registry)
        await self.dead_letters.start()
        self.pool = await asyncpg.create_pool(self.infra.database_url, min_size=1, max_size=4)
        async with self.pool.acquire() as conn:
            applied = await migrate(conn, "metrics", MIGRATIONS)
        if applied:
            self.log.info("migrations applied", versions=applied)
        self.store = AggregateStore(self.pool, self.policy)
        await self.refresh_view()
        await self.hold_exporter_lock()
        background = self.background = BackgroundTasks(self.log)
        background.every(settings.refresh_seconds, self.refresh_view, "refresh")
        background.every(0.2, self.refresh_gauges, "gauges")
        background.every(settings.refresh_seconds, self.hold_exporter_lock, "lock")
        background.every(settings.lag_interval_seconds, self.lag.measure, "lag")
        background.every(settings.purge_interval_seconds, self.purge_dedupe_keys, "purge")
        self.log.info("metrics service started", exporting=self.view.exporting)

    async def stop(self) -> None:
        if self.forget_collections is not None:
            self.forget_collections()
        if self.background is not None:
            await self.background.stop()
        await self.lag.stop()
        await self.dead_letters.stop()
        if self.lock_conn is not None:
            await self.lock_conn.close()
        if self.pool is not None:
            await self.pool.close()
