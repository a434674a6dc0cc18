from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import TOPICS, Family
from services.common.settings import InfraSettings


class IntakeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICEPULS_INTAKE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    # Which channel systems may post, with their hashed tokens; default deploy/config/intake/.
    channel_systems_file: Path | None = None
    max_event_bytes: int = Field(default=256 * 1024, gt=0)
    max_batch_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    max_batch_events: int = Field(default=1000, gt=0)
    # How long a request waits for Kafka's acknowledgement before answering 503.
    publish_timeout_seconds: float = Field(default=5.0, gt=0)
    retry_after_seconds: int = Field(default=5, gt=0)
    # Where accepted events go; another topic only for a test or benchmark of its own.
    topic: str = TOPICS[Family.INTAKE]
    infra: InfraSettings = Field(default_factory=InfraSettings)

    def channel_systems_path(self) -> Path:
        return self.channel_systems_file or (
            self.infra.config_dir / "intake" / "channel_systems.yaml"
        )
