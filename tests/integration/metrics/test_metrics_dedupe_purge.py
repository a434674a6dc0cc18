"""The dedupe table is pruned: a running metrics service forgets keys older than the retention
and keeps the younger ones."""

from __future__ import annotations

import asyncio
import socket
import uuid

import asyncpg
import pytest

from services.common.migrations import migrate
from services.metrics.adapters.store import AggregateStore
from services.metrics.service import MIGRATIONS
from tests.integration.metrics.support import DATABASE_URL, config_with, start_group_at_end
from tests.support.services import running_service

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _plant(conn: asyncpg.Connection, keys_and_ages: dict[str, int]) -> None:
    await conn.executemany(
        "INSERT INTO metrics.processed_event (dedupe_key, processed_at)"
        " VALUES ($1, now() - make_interval(days => $2))",
        list(keys_and_ages.items()),
    )


async def _left(conn: asyncpg.Connection, keys: list[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT dedupe_key FROM metrics.processed_event WHERE dedupe_key = ANY($1::text[])", keys
    )
    return {r["dedupe_key"] for r in rows}


async def test_purge_forgets_only_keys_older_than_the_retention() -> None:
    run = uuid.uuid4().hex[:10]
    ages = {f"/test/purge/{run}#old-{i}": 45 + i for i in range(5)}
    ages |= {f"/test/purge/{run}#young-{i}": 20 + i for i in range(3)}
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, "metrics", MIGRATIONS)
            await _plant(conn, ages)
        store = AggregateStore(pool, policy=None)  # type: ignore[arg-type]  # purge needs none
        # Small batches: the loop must go on until nothing old is left.
        await store.purge_dedupe_keys(30, batch=2)
        async with pool.acquire() as conn:
            left = await _left(conn, list(ages))
            await conn.execute(
                "DELETE FROM metrics.processed_event WHERE dedupe_key = ANY($1::text[])",
                list(ages),
            )
    finally:
        await pool.close()
    assert left == {k for k, age in ages.items() if age < 30}


@pytest.mark.timeout(90)
async def test_the_running_service_purges_periodically(tmp_path) -> None:
    run = uuid.uuid4().hex[:10]
    old = [f"/test/purge/{run}#old-{i}" for i in range(3)]
    young = [f"/test/purge/{run}#young-{i}" for i in range(2)]
    group = f"metrics-test-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(group)
    port = _free_port()
    env = {
        "SERVICEPULS_METRICS_PORT": str(port),
        "SERVICEPULS_METRICS_CONSUMER_GROUP": group,
        "SERVICEPULS_CONFIG_DIR": str(config_with(tmp_path, "GM9999")),
        "SERVICEPULS_METRICS_DEDUPE_RETENTION_DAYS": "7",
        "SERVICEPULS_METRICS_PURGE_INTERVAL_SECONDS": "0.5",
    }
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        async with running_service("metrics", port=port, env=env):
            await _plant(conn, {k: 8 for k in old} | {k: 6 for k in young})
            for _ in range(150):  # 30 s
                if not await _left(conn, old):
                    break
                await asyncio.sleep(0.2)
            assert await _left(conn, old) == set(), "keys past the retention were not purged"
            assert await _left(conn, young) == set(young)
    finally:
        await conn.execute(
            "DELETE FROM metrics.processed_event WHERE dedupe_key = ANY($1::text[])", old + young
        )
        await conn.close()
