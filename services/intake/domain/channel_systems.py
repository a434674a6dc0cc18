"""Which channel systems may post which events: bearer tokens (stored as SHA-256) and grants."""

from __future__ import annotations

import hashlib
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.common import MunicipalityCode
from services.common.config import load_yaml_model
from services.intake.domain.rate_limits import RateLimit
from services.intake.domain.sources import SourcePattern

VERDICT_MEMO_SIZE = 10_000
_UNSEEN = object()
# Metric label for an event source no configured channel system may post.
UNKNOWN_CHANNEL_SYSTEM = "unknown"


class ChannelSystem(BaseModel):
    """A system that posts events, e.g. the phone platform or the case system of one municipality.

    `sources` are source patterns matched segment by segment (`/gm0383/kcc/*`: `*` is exactly
    one segment, a final `**` one or more; see `services.intake.domain.sources`); `event_types`
    are glob patterns (`nl.servicepuls.case.*`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")
    description: str = ""
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    sources: list[str] = Field(min_length=1)
    event_types: list[str] = Field(min_length=1)
    municipalities: list[MunicipalityCode] = Field(min_length=1)
    # Events per second and burst; the defaults where the file gives none (docs/intake.md).
    rate_limit: RateLimit = Field(default_factory=RateLimit)

    @field_validator("sources")
    @classmethod
    def _source_patterns_in_plain_form(cls, value: list[str]) -> list[str]:
        for pattern in value:
            SourcePattern.parse(pattern)  # ValueError names the pattern and what is wrong
        return value

    @cached_property
    def _source_patterns(self) -> tuple[SourcePattern, ...]:
        return tuple(SourcePattern.parse(pattern) for pattern in self.sources)

    @cached_property
    def _verdicts(self) -> dict[tuple[str, str, str], str | None]:
        """Verdicts already given: a system posts few combinations, and matching globs per event
        is a measurable share of intake's time. Bounded, as sources are the poster's free text.
        (A cached property, as a private attribute of a model is slow to reach.)"""
        return {}

    def may_post(self, *, source: str, event_type: str, municipality: str) -> str | None:
        """None when allowed, else the reason it is not (for a 403 problem)."""
        key = (source, event_type, municipality)
        verdicts = self._verdicts
        verdict = verdicts.get(key, _UNSEEN)
        if verdict is _UNSEEN:
            verdict = self._judge(source=source, event_type=event_type, municipality=municipality)
            if len(verdicts) < VERDICT_MEMO_SIZE:
                verdicts[key] = verdict
        return verdict  # type: ignore[no-any-return]

    def _judge(self, *, source: str, event_type: str, municipality: str) -> str | None:
        if municipality not in self.municipalities:
            return f"channel system {self.name!r} may not post for municipality {municipality}"
        if not any(pattern.matches(source) for pattern in self._source_patterns):
            return f"channel system {self.name!r} may not post with source {source!r}"
        if not any(fnmatchcase(event_type, pattern) for pattern in self.event_types):
            return f"channel system {self.name!r} may not post events of type {event_type!r}"
        return None


class ChannelSystems(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channel_systems: list[ChannelSystem] = Field(min_length=1)

    @field_validator("channel_systems")
    @classmethod
    def _unique(cls, value: list[ChannelSystem]) -> list[ChannelSystem]:
        for attribute in ("name", "token_sha256"):
            seen = [getattr(system, attribute) for system in value]
            if len(set(seen)) != len(seen):
                raise ValueError(f"two channel systems share a {attribute}")
        return value


class SourceLabels:
    """The channel system behind an event's CloudEvents `source`, as a metric label (norms and
    metrics count data-quality problems per channel system): the first system in the file whose
    `sources` match, else `unknown`. Bounded by the configuration, whatever sources arrive."""

    def __init__(self, systems: ChannelSystems) -> None:
        self._systems = systems.channel_systems
        self._memo: dict[str, str] = {}

    @classmethod
    def from_file(cls, path: Path) -> SourceLabels:
        return cls(load_yaml_model(path, ChannelSystems))

    def __call__(self, source: str) -> str:
        label = self._memo.get(source)
        if label is None:
            label = next(
                (
                    system.name
                    for system in self._systems
                    # as intake admits sources: segment by segment, odd forms match nothing
                    if any(pattern.matches(source) for pattern in system._source_patterns)
                ),
                UNKNOWN_CHANNEL_SYSTEM,
            )
            if len(self._memo) < VERDICT_MEMO_SIZE:
                self._memo[source] = label
        return label


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Gatekeeper:
    """Finds the channel system behind a bearer token. Tokens are never kept, only digests."""

    def __init__(self, systems: ChannelSystems) -> None:
        self._by_digest = {system.token_sha256: system for system in systems.channel_systems}

    @classmethod
    def from_file(cls, path: Path) -> Gatekeeper:
        return cls(load_yaml_model(path, ChannelSystems))

    @property
    def systems(self) -> list[ChannelSystem]:
        return list(self._by_digest.values())

    def authenticate(self, authorization: str | None) -> ChannelSystem | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._by_digest.get(token_digest(token.strip()))
