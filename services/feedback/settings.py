"""Feedback settings (env prefix `SERVICEPULS_FEEDBACK_`; SMTP under `SERVICEPULS_SMTP_`)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import TOPICS, Family
from services.common.settings import InfraSettings


class SmtpSettings(BaseSettings):
    """The mail relay surveys go out through (the local stack's sink on 127.0.0.1:2525)."""

    model_config = SettingsConfigDict(env_prefix="SERVICEPULS_SMTP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 2525
    username: str | None = None
    password: str | None = None
    start_tls: bool = False
    timeout_seconds: float = Field(default=30, gt=0)
    from_address: str = "Gemeente <kto@servicepuls.invalid>"


class FeedbackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICEPULS_FEEDBACK_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8082
    # Own PostgreSQL schema and Kafka consumer group (tests run isolated copies side by side).
    db_schema: str = Field(default="feedback", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    consumer_group: str = "feedback"
    # Where a consumer group without committed offsets starts: earliest loses nothing.
    start_from: Literal["earliest", "latest"] = "earliest"
    # Where residents open their survey: the start of every survey link.
    public_base_url: str = "http://127.0.0.1:8082"
    # wall: delays, sending hours and expiry follow the real clock. event: they follow the event
    # time of the intake topic (the latest event time seen), for the simulator's compressed time.
    clock: Literal["wall", "event"] = "wall"
    # Event time: how far ahead of the wall clock an event may move the clock. A later event is
    # applied but does not move it (a wrong or far-future time cannot drag every delay and
    # expiry ahead for good).
    clock_max_ahead_seconds: float = Field(default=300, ge=0)
    # The topic of intake events (a test can point one instance at a private copy).
    intake_topic: str = TOPICS[Family.INTAKE]
    # Demo/test overrides of every policy: a fixed delay, and sending at any hour.
    delay_seconds: float | None = Field(default=None, ge=0)
    sending_hours: Literal["policy", "always"] = "policy"
    # Test override of how long links stay valid (seconds).
    link_valid_seconds: float | None = Field(default=None, gt=0)
    # Key signing survey links (base64url); from state_dir/keys/feedback-links.key when absent.
    link_key: str | None = None
    staff_tokens_file: Path | None = None
    # Dispatcher: how often it looks for due work, how much it takes at once, and retries.
    poll_seconds: float = Field(default=1.0, gt=0)
    dispatch_batch: int = Field(default=50, gt=0)
    dispatch_concurrency: int = Field(default=8, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    retry_base_seconds: float = Field(default=60, gt=0)
    retry_max_seconds: float = Field(default=3600, gt=0)
    # A claimed delivery whose sender vanished for this long is reported, never re-sent.
    sending_lease_seconds: float = Field(default=300, gt=0)
    # Opened cases whose resident is kept for a survey at close are forgotten after this.
    case_resident_retention_days: int = Field(default=400, gt=0)
    # Rate limits (per replica; docs/security.md). Per client address: requests to the survey
    # page per minute (also the burst), and look-ups that found nothing (forged or unknown survey
    # links, unknown staff tokens) per hour; per staff token: staff API requests per minute.
    page_requests_per_minute: float = Field(default=120, gt=0)
    failed_lookups_per_hour: float = Field(default=30, gt=0)
    staff_requests_per_minute: float = Field(default=600, gt=0)
    # Client addresses never limited (JSON list of networks). Loopback by default: the local
    # simulator and tests answer from there, and a reverse proxy on the same host must pass the
    # resident's address in X-Forwarded-For (uvicorn's forwarded_allow_ips), or nobody is limited.
    rate_limit_exempt: list[str] = ["127.0.0.0/8", "::1/128"]
    # Retention job (docs/security.md): how often it runs, and how long a dedupe key is kept:
    # at least as long as an input event can be delivered again (the intake topic's retention).
    retention_interval_seconds: float = Field(default=3600, gt=0)
    dedupe_retention_days: int = Field(default=30, ge=1)
    # SMS gateway adapter (HTTP); without a URL, SMS surveys fail as "sms_not_configured".
    sms_gateway_url: str | None = None
    sms_gateway_token: str | None = None
    infra: InfraSettings = Field(default_factory=InfraSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)

    def clock_max_ahead(self) -> timedelta:
        return timedelta(seconds=self.clock_max_ahead_seconds)

    def staff_tokens_path(self) -> Path:
        return self.staff_tokens_file or (self.infra.config_dir / "surveys" / "staff_tokens.yaml")

    def link_key_bytes(self) -> bytes:
        """The link-signing key; in development generated once under the state directory so all
        local replicas share it."""
        import base64

        text = self.link_key
        if not text:
            path = self.infra.state_dir / "keys" / "feedback-links.key"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
                tmp.write_text(secrets.token_urlsafe(32))
                tmp.chmod(0o600)
                if not path.exists():
                    tmp.replace(path)
                else:
                    tmp.unlink()
            text = path.read_text().strip()
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
