from __future__ import annotations

from pathlib import Path

import pytest

from services.norms.config import load_catalogs
from services.norms.domain.catalog import NormCatalog

CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "config"


@pytest.fixture(scope="module")
def catalogs() -> dict[str, NormCatalog]:
    """Every municipality's catalog of the shipped configuration."""
    return load_catalogs(CONFIG)
