"""Settings of the norms service (env prefix `SERVICEPULS_NORMS_`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import TOPICS, Family
from services.common.process import batch_gc_thresholds


class NormsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICEPULS_NORMS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8081
    # "wall": now is the wall clock (production). "event": now is the watermark, the highest
    # event time seen on the intake topic (per-partition minimum, see docs/norms.md) minus the
    # allowed lateness, so a simulation can run in compressed time and a replay decides alike.
    clock: Literal["wall", "event"] = "wall"
    # Event-time mode: how far behind the watermark an event may arrive and still be applied
    # before any decision it could change is taken.
    allowed_lateness_seconds: float = Field(default=300.0, ge=0)
    # Event-time mode: a partition read to its end by the consumer and without records for this
    # long no longer holds the watermark back (otherwise one quiet partition would stop every
    # clock). One with unread records in Kafka holds it back however long it is not delivered.
    idle_partition_seconds: float = Field(default=10.0, gt=0)
    # Event-time mode: an event may move the watermark to at most the wall clock plus this; an
    # event further ahead is applied to its clocks but does not move "now" (one event dated
    # 2090 would otherwise decide every open clock at once).
    future_tolerance_seconds: float = Field(default=3600.0, ge=0)
    # Wall-clock mode, importing history (docs/norms.md): an intake event dated more than the
    # horizon before the wall clock is historical; while one was applied less than the settle
    # time ago, warnings and breaches dated before the horizon are held, so a clock whose stop
    # arrives within the import raises no alert. 0: no hold.
    history_horizon_seconds: float = Field(default=86_400.0, ge=0)
    history_settle_seconds: float = Field(default=300.0, ge=0)
    consumer_group: str = "norms"
    # PostgreSQL schema owned by this service (tests and recompute use their own).
    db_schema: str = Field(default="norms", pattern=r"^[a-z_][a-z0-9_]{0,40}$")
    intake_topic: str = TOPICS[Family.INTAKE]
    norms_topic: str = TOPICS[Family.NORMS]
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    max_batch: int = Field(default=2000, ge=1, le=50_000)
    batch_timeout_ms: int = Field(default=50, ge=1, le=10_000)
    # Bytes fetched from a partition per request (aiokafka's default; larger fetches made no
    # measurable difference: docs/benchmarks.md, "Norms").
    max_partition_fetch_bytes: int = Field(default=1 << 20, ge=1 << 16)
    # Intake events per PostgreSQL transaction: a consumed batch larger than this is applied in
    # transactions of this size, each prepared while the one before is being applied (smaller
    # transactions cost more statements per event: docs/benchmarks.md, "Norms").
    commit_batch: int = Field(default=5000, ge=1, le=50_000)
    # Scheduler: how often it looks for due warnings and breaches, and how many per transaction.
    # Default: 0.1 s with the wall clock (a breach goes out within that of its due instant);
    # 1 s in event-time mode, where decisions wait for the watermark anyway and the longer the
    # watermark moved between two looks, the more of a clock's decisions one look takes at once
    # (fewer reads and updates of its row in a replay).
    scheduler_interval_seconds: float | None = Field(default=None, gt=0)
    scheduler_batch: int = Field(default=2000, ge=1)
    # Outbox relay: rows per Kafka round, and whether this process relays at all (a test turns
    # it off to crash between the database commit and the Kafka write).
    relay_batch: int = Field(default=5000, ge=1)
    relay_enabled: bool = True
    # What this process does. All three by default; a busy deployment runs the consumer in one
    # process and the scheduler and relay in another (`CONSUMER_ENABLED=false`), so the
    # consumer's core is spent on intake events alone. Replicas share the work either way.
    consumer_enabled: bool = True
    scheduler_enabled: bool = True
    # Thresholds of Python's cycle collector (gc.set_threshold). Default: above what the
    # consumer keeps alive for its batches (see `gc_thresholds_for_batches`); CPython's
    # default collects many times per large batch (what that cost: docs/benchmarks.md,
    # "Norms", fourth round).
    gc_thresholds: tuple[int, int, int] | None = None
    # How long processed-event keys are kept for deduplication.
    dedupe_retention_days: int = Field(default=30, ge=1)

    @property
    def scheduler_interval(self) -> float:
        if self.scheduler_interval_seconds is not None:
            return self.scheduler_interval_seconds
        return 0.1 if self.clock == "wall" else 1.0

    def gc_thresholds_for_batches(self) -> tuple[int, int, int]:
        return self.gc_thresholds or batch_gc_thresholds(self.max_batch)
