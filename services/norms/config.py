"""Loading the norm catalogs and calendars of every municipality this deployment serves."""

from __future__ import annotations

from pathlib import Path

from services.common.config import ConfigError, load_municipalities, load_yaml_model
from services.norms.domain.catalog import CalendarFile, NormCatalog, NormFile


def load_catalogs(config_dir: Path) -> dict[str, NormCatalog]:
    """Municipality code → its norm catalog (with its business calendar). Raises `ConfigError`
    naming the file and field of the first mistake."""
    municipalities = load_municipalities(config_dir)
    calendars: dict[str, CalendarFile] = {}
    norm_files: dict[str, NormFile] = {}
    catalogs: dict[str, NormCatalog] = {}
    for municipality in municipalities.municipalities:
        if municipality.calendar not in calendars:
            calendars[municipality.calendar] = load_yaml_model(
                config_dir / "calendars" / f"{municipality.calendar}.yaml", CalendarFile
            )
        if municipality.norms not in norm_files:
            norm_files[municipality.norms] = load_yaml_model(
                config_dir / "norms" / f"{municipality.norms}.yaml", NormFile
            )
        try:
            calendar = calendars[municipality.calendar].build(municipality.zone)
        except ValueError as exc:  # pragma: no cover - validated by the model already
            raise ConfigError(f"calendars/{municipality.calendar}.yaml: {exc}") from exc
        catalogs[municipality.code] = NormCatalog(
            municipality.code, calendar, norm_files[municipality.norms]
        )
    return catalogs
