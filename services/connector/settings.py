from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import TOPICS, Family
from services.common.settings import InfraSettings

DEAD_LETTER_TOPIC = "servicepuls.deadletter.v1"


class ConnectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICEPULS_CONNECTOR_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8084
    # The sources per municipality; default deploy/config/connector/sources.yaml.
    sources_file: Path | None = None
    # The connector's PostgreSQL schema (its queue and what it knows of each zaak).
    db_schema: str = Field(default="connector", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # Where admitted events go (intake's topic); another only for a test of its own.
    topic: str = TOPICS[Family.INTAKE]
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    # Fetching a resource: per request, and how often the HTTP client tries before giving up.
    fetch_timeout_seconds: float = Field(default=10.0, gt=0)
    fetch_tries: int = Field(default=3, ge=1)
    fetch_backoff_seconds: float = Field(default=0.5, ge=0)
    # A notification whose processing failed is retried this often (backoff doubling from
    # retry_backoff_seconds, capped at an hour) and then dead-lettered.
    max_attempts: int = Field(default=8, ge=1)
    retry_backoff_seconds: float = Field(default=30.0, ge=0)
    # How long a worker waits for Kafka to acknowledge a notification's events.
    publish_timeout_seconds: float = Field(default=30.0, gt=0)
    # Kafka not taking the events: the notification waits this long, no attempt counted.
    kafka_retry_seconds: float = Field(default=5.0, ge=0)
    # Notifications processed side by side by one process (each holds its zaak's lock).
    workers: int = Field(default=2, ge=0)
    idle_poll_seconds: float = Field(default=1.0, gt=0)
    # Processed notifications are kept this long to recognise Open Notificaties' repeats
    # (it retries for about a day).
    keep_done_days: int = Field(default=7, ge=1)
    infra: InfraSettings = Field(default_factory=InfraSettings)

    def sources_path(self) -> Path:
        return self.sources_file or (self.infra.config_dir / "connector" / "sources.yaml")
