"""Loading municipality configuration (YAML in deploy/config/) with errors that name the file and
field, so an operator who mistypes a norm or a calendar sees exactly where at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.common import Code, MunicipalityCode

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """Configuration that cannot be used; the message names the file and each bad field."""


def load_yaml_model(path: Path, model: type[M]) -> M:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return model.model_validate(document if document is not None else {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(top level)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc


class Municipality(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: MunicipalityCode
    name: str = Field(min_length=1)
    timezone: str = "Europe/Amsterdam"
    inhabitants: int = Field(default=30_000, gt=0)
    calendar: str = Field(default="default", pattern=r"^[a-z0-9_\-]+$")
    norms: str = Field(default="default", pattern=r"^[a-z0-9_\-]+$")
    survey_policy: str = Field(default="default", pattern=r"^[a-z0-9_\-]+$")
    # The case types it reports on: a file in case_types/ (docs/metrics.md, "Bounded labels").
    case_types: str = Field(default="default", pattern=r"^[a-z0-9_\-]+$")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except ZoneInfoNotFoundError as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Municipalities(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    municipalities: list[Municipality] = Field(min_length=1)

    @field_validator("municipalities")
    @classmethod
    def _unique_codes(cls, value: list[Municipality]) -> list[Municipality]:
        codes = [m.code for m in value]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"municipality codes listed twice: {', '.join(duplicates)}")
        return value

    def by_code(self) -> dict[str, Municipality]:
        return {m.code: m for m in self.municipalities}


def load_municipalities(config_dir: Path) -> Municipalities:
    return load_yaml_model(config_dir / "municipalities.yaml", Municipalities)


# Label values the metrics service gives itself: a declared case type may not take them.
RESERVED_CASE_TYPES = frozenset({"other", "none"})


class CaseTypeFile(BaseModel):
    """The case types a municipality reports on (code: description). Metrics count any other
    code a channel system sends under `other`, so the number of series stays bounded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_types: dict[Code, str] = Field(min_length=1)

    @field_validator("case_types")
    @classmethod
    def _not_reserved(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(RESERVED_CASE_TYPES & set(value))
        if reserved:
            raise ValueError(f"reserved, not a case type: {', '.join(reserved)}")
        return value


def load_case_types(config_dir: Path, municipalities: Municipalities) -> dict[str, frozenset[str]]:
    """Per served municipality, the case types it declared (`case_types/<name>.yaml`)."""
    files: dict[str, frozenset[str]] = {}
    for m in municipalities.municipalities:
        if m.case_types not in files:
            path = config_dir / "case_types" / f"{m.case_types}.yaml"
            files[m.case_types] = frozenset(load_yaml_model(path, CaseTypeFile).case_types)
    return {m.code: files[m.case_types] for m in municipalities.municipalities}
