"""The norms service's scheduled jobs: the scheduler (due warnings, breaches and outcomes), the
outbox backlog gauge, the purge of old dedupe keys, and what the relay reports of published
breaches. Thin: each hands on to the service and counts the result."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg

from schemas.envelope import KafkaRecord, attributes_from_headers
from services.common.consumer import is_transient
from services.norms.metrics import NormsMetrics
from services.norms.service import NormsService
from services.norms.settings import NormsSettings

_BREACHED = "nl.servicepuls.norm.breached.v1"


def _history(settings: NormsSettings, lag: float) -> bool:
    """An alert of an imported clock (dated before the history horizon) is history, not
    lateness: it would swamp the lag histograms (docs/norms.md, "Importing history")."""
    return 0 < settings.history_horizon_seconds < lag


async def schedule(
    service: NormsService, settings: NormsSettings, metrics: NormsMetrics, log: Any
) -> None:
    """Take due warnings and breaches as soon as their instant passes."""
    while True:
        try:
            result, now = await service.fire_due(settings.scheduler_batch)
        except Exception as exc:
            # Never the end of the scheduler: a database away comes back; anything else is
            # logged with its traceback, counted and tried again, not at full speed.
            metrics.scheduler_failures.labels("transient" if is_transient(exc) else "other").inc()
            if is_transient(exc):
                log.warning("scheduler round failed", error=repr(exc))
            else:
                log.exception("scheduler round failed")
            await asyncio.sleep(1.0)
            continue
        if now is not None:
            metrics.now.set(now / 1_000_000)
        metrics.count(result)
        if settings.clock == "wall" and now is not None:
            wall = time.time()
            for event_time in result.decision_times:
                if not _history(settings, wall - event_time / 1_000_000):
                    metrics.scheduler_lag.observe(max(0.0, wall - event_time / 1_000_000))
        if result.applied < settings.scheduler_batch:
            await asyncio.sleep(settings.scheduler_interval)


def breaches_published(
    settings: NormsSettings, metrics: NormsMetrics
) -> Callable[[list[KafkaRecord]], None]:
    """What the relay calls with the records Kafka acknowledged: the lag from each breach's
    due instant to its publication (wall mode)."""

    def published(records: list[KafkaRecord]) -> None:
        if settings.clock != "wall":
            return
        wall = time.time()
        for record in records:
            attributes = attributes_from_headers(record.headers)
            if attributes.get("type") == _BREACHED:
                due = datetime.fromisoformat(attributes["time"]).timestamp()
                if not _history(settings, wall - due):
                    metrics.breach_publish_lag.observe(max(0.0, wall - due))

    return published


async def watch_backlog(service: NormsService, metrics: NormsMetrics) -> None:
    """The outbox backlog gauge, every five seconds."""
    while True:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            metrics.backlog.set(await service.outbox_backlog())
        await asyncio.sleep(5)


async def purge_dedupe_keys(service: NormsService, settings: NormsSettings) -> None:
    """Dedupe keys older than the retention, every hour."""
    while True:
        await asyncio.sleep(3600)
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            await service.purge_dedupe_keys(settings.dedupe_retention_days)
