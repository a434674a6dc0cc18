"""Settings shared by all services, read from the environment (prefix `SERVICEPULS_`).

Each service adds its own class with its own prefix (e.g. `SERVICEPULS_INTAKE_`) and reaches the
shared infrastructure settings through `InfraSettings`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


class InfraSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICEPULS_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    database_url: str = "postgresql://servicepuls:servicepuls@127.0.0.1:55432/servicepuls"
    prometheus_url: str = "http://127.0.0.1:9090"
    # Where municipality configuration lives: norm catalogs, calendars, survey policy.
    config_dir: Path = REPO_ROOT / "deploy" / "config"
    # Local state for development (keys generated on first start, exports); not used in
    # production where keys come from the environment.
    state_dir: Path = REPO_ROOT / ".stack"
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|console)$")
