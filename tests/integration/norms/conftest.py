"""Fixtures of the norms integration tests: a private catalog, a migrated schema of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.common.migrations import migrate
from services.norms.adapters.repository import MIGRATIONS
from services.norms.config import load_catalogs
from services.norms.domain.catalog import NormCatalog
from tests.integration.norms.support import DATABASE_URL, drop_schema, new_schema, private_config


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, NormCatalog]:
    version = f"repo-{uuid.uuid4().hex[:6]}"
    return load_catalogs(private_config(Path(tmp_path_factory.mktemp("norms")), version))


@pytest.fixture
async def pool() -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    schema = new_schema("norms_repo")
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=4)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, schema, MIGRATIONS)
        yield pool, schema
    finally:
        await pool.close()
        await drop_schema(schema)
