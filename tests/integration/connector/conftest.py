"""Fixtures of the connector's integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.connector.support import Rig, connector_rig


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    async with connector_rig(tmp_path, monkeypatch) as made:
        yield made
