"""Which municipalities the connector serves and where their APIs are (sources.yaml), with the
mapping of each (mappings/<GMxxxx>.yaml). Secrets are never in these files: each names the
environment variable that holds it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.common import MunicipalityCode
from services.common.config import ConfigError, load_yaml_model
from services.connector.domain.mapping import Mapping
from services.intake.domain.channel_systems import ChannelSystem

_ENV = r"^[A-Z_][A-Z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JwtAuth(_Strict):
    """ZGW-style JWT (HS256) with a client id and secret, as Open Zaak expects."""

    kind: Literal["jwt"]
    client_id: str = Field(min_length=1)
    secret_env: str = Field(pattern=_ENV)


class TokenAuth(_Strict):
    """`Authorization: Token <token>`, as Open Klant expects."""

    kind: Literal["token"]
    token_env: str = Field(pattern=_ENV)


class Api(_Strict):
    base_url: str = Field(pattern=r"^https?://\S+$")
    auth: JwtAuth | TokenAuth = Field(discriminator="kind")

    def owns(self, url: str) -> bool:
        return url.startswith(self.base_url.rstrip("/") + "/")


class Source(_Strict):
    """One municipality's case and contact systems."""

    municipality: MunicipalityCode
    # The CloudEvents source of the events the connector admits for this municipality.
    source: str = Field(pattern=r"^/\S+$")
    # SHA-256 of the Authorization value the abonnement was registered with (the value itself
    # lives in the environment variable `callback_auth_env`, read by `subscribe` only).
    callback_auth_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    callback_auth_env: str = Field(pattern=_ENV)
    callback_url: str = Field(pattern=r"^https?://\S+$")
    mapping: str = Field(min_length=1, description="file in mappings/, without .yaml")
    zaken: Api | None = None
    catalogi: Api | None = None
    klantinteracties: Api | None = None
    notificaties: Api | None = None

    def api_for(self, url: str) -> Api | None:
        for api in (self.zaken, self.catalogi, self.klantinteracties, self.notificaties):
            if api is not None and api.owns(url):
                return api
        return None

    def channel_system(self) -> ChannelSystem:
        """The connector as intake's admission sees it: it may post case and contact events
        for this municipality under its own source, nothing else."""
        return ChannelSystem(
            name=f"connector-{self.municipality.lower()}",
            description="Notificaties API connector (Open Zaak, Open Klant)",
            token_sha256=self.callback_auth_sha256,
            sources=[self.source],
            event_types=["nl.servicepuls.case.*", "nl.servicepuls.contact.*"],
            municipalities=[self.municipality],
        )


class Sources(_Strict):
    sources: list[Source] = Field(min_length=1)

    @field_validator("sources")
    @classmethod
    def _one_per_municipality(cls, value: list[Source]) -> list[Source]:
        codes = [s.municipality for s in value]
        if len(set(codes)) != len(codes):
            raise ValueError("a municipality is listed twice")
        return value


def callback_digest(authorization: str) -> str:
    return hashlib.sha256(authorization.strip().encode()).hexdigest()


def load_sources(path: Path) -> tuple[Sources, dict[str, Mapping]]:
    """The sources file and the mapping each source names (errors name file and field)."""
    sources = load_yaml_model(path, Sources)
    mappings = {
        source.municipality: load_yaml_model(
            path.parent / "mappings" / f"{source.mapping}.yaml", Mapping
        )
        for source in sources.sources
    }
    return sources, mappings


def secret(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"environment variable {name} is not set (a secret of the connector)")
    return value
