"""Settings of the metrics service (env prefix `SERVICEPULS_METRICS_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MetricsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICEPULS_METRICS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8083
    consumer_group: str = "metrics"
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
