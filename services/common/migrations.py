"""The one SQL migration runner: numbered `NNN_name.sql` files per service, applied in order.

Each service owns a PostgreSQL schema (`norms`, `feedback`, `metrics`) and a folder of migration
files. Applied versions are recorded in `<schema>.schema_migrations`; an advisory lock makes
replicas starting at the same time take turns, so each file runs exactly once.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import asyncpg

_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def migration_files(folder: Path) -> list[tuple[int, Path]]:
    files = []
    for path in sorted(folder.iterdir()):
        match = _FILE.match(path.name)
        if match:
            files.append((int(match.group(1)), path))
        elif path.suffix == ".sql":
            raise ValueError(f"{path}: migration files are named NNN_description.sql")
    versions = [v for v, _ in files]
    if len(set(versions)) != len(versions):
        raise ValueError(f"{folder}: two migration files share a number")
    return files


async def migrate(conn: asyncpg.Connection, schema: str, folder: Path) -> list[int]:
    """Apply the pending migrations of `schema` from `folder`; returns the versions applied."""
    lock = zlib.crc32(f"servicepuls-migrations:{schema}".encode())
    applied_now: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", lock)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            r["version"]
            for r in await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')
        }
        for version, path in migration_files(folder):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
                await conn.execute(path.read_text())
                await conn.execute(
                    f'INSERT INTO "{schema}".schema_migrations (version, name) VALUES ($1, $2)',
                    version,
                    path.name,
                )
            applied_now.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock)
    return applied_now


async def migrate_url(database_url: str, schema: str, folder: Path) -> list[int]:
    conn = await asyncpg.connect(database_url)
    try:
        return await migrate(conn, schema, folder)
    finally:
        await conn.close()
