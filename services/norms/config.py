"""Loading the norm catalogs and calendars of every municipality this deployment serves."""

from __future__ import annotations

from pathlib import Path

from services.common.calendar_files import load_calendars
from services.common.config import load_municipalities, load_yaml_model
from services.norms.domain.catalog import NormCatalog, NormFile


def load_catalogs(config_dir: Path) -> dict[str, NormCatalog]:
    """Municipality code → its norm catalog (with its business calendar). Raises `ConfigError`
    naming the file and field of the first mistake."""
    municipalities = load_municipalities(config_dir)
    calendars = load_calendars(config_dir, municipalities)
    norm_files: dict[str, NormFile] = {}
    catalogs: dict[str, NormCatalog] = {}
    for municipality in municipalities.municipalities:
        if municipality.norms not in norm_files:
            norm_files[municipality.norms] = load_yaml_model(
                config_dir / "norms" / f"{municipality.norms}.yaml", NormFile
            )
        catalogs[municipality.code] = NormCatalog(
            municipality.code, calendars[municipality.code], norm_files[municipality.norms]
        )
    return catalogs
