"""Settings of the metrics service (env prefix `SERVICEPULS_METRICS_`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import TOPICS


class MetricsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICEPULS_METRICS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8083
    consumer_group: str = "metrics"
    # The topics consumed (benchmarks point these at private copies).
    topics: list[str] = Field(default_factory=lambda: list(TOPICS.values()))
    # Where a consumer group without committed offsets starts: from the start of the topics
    # (a new deployment counts history), or at the end (a test or benchmark run of its own).
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    # Records per consumed batch and how long to wait for a batch to fill.
    max_batch: int = Field(default=1000, ge=1, le=10_000)
    batch_timeout_ms: int = Field(default=50, ge=1, le=10_000)
    # "Phone answered within 30 seconds": the service-level norm of the KCC.
    phone_answer_norm_seconds: float = Field(default=30.0, gt=0)
    # Case types that are complaints (klachten, Awb chapter 9).
    complaint_case_types: list[str] = ["klacht"]
    # How often the state shared with other replicas (gauges, other replicas' counts) is reloaded.
    refresh_seconds: float = Field(default=2.0, gt=0)
    # Consumer groups whose lag is exported (every Servicepuls consumer).
    lag_groups: list[str] = ["norms", "feedback", "metrics"]
    lag_interval_seconds: float = Field(default=5.0, gt=0)
    # Dedupe keys (`metrics.processed_event`) are kept this long, then purged every
    # `purge_interval_seconds`. Keep it above the topics' retention: an event still on a topic
    # can be delivered again (a replay, a new consumer group) and must find its key.
    dedupe_retention_days: int = Field(default=30, ge=1)
    purge_interval_seconds: float = Field(default=3600.0, gt=0)
