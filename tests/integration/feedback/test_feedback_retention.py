"""The retention job against a real PostgreSQL: each kind of row goes when its period is over,
and not a day earlier (services/feedback/retention.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from services.common.migrations import migrate_url
from services.feedback.adapters import postgres as db
from services.feedback.bootstrap import MIGRATIONS
from services.feedback.config import load_policy_book
from services.feedback.retention import apply_retention
from tests.integration.feedback.harness import INFRA, drop_schema, write_config

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
# Castricum keeps less than the defaults; the others use them (24 / 12 / 60 months).
SHORT = """
resident_interval_days: 30
retention: {survey_months: 6, remark_months: 3, opt_out_months: 12}
"""


def ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


@pytest_asyncio.fixture(loop_scope="session")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    schema = f"feedback_r{uuid.uuid4().hex[:8]}"
    await migrate_url(INFRA.database_url, schema, MIGRATIONS)
    created = await db.create_pool(INFRA.database_url, schema=schema, max_size=2)
    try:
        yield created
    finally:
        await created.close()
        await drop_schema(schema)


async def survey(
    conn: asyncpg.Connection,
    municipality: str,
    closed_days_ago: int,
    *,
    status: str = "answered",
    comment: str | None = "Prima geholpen",
    resident_ref: str | None = None,
) -> str:
    subject = f"Z-{uuid.uuid4()}"
    await db.insert_survey(
        conn,
        survey_id=uuid.uuid4(),
        municipality=municipality,
        subject_kind="case",
        subject_id=subject,
        status=status,
        language="nl",
        low_score=5,
        resident_ref=resident_ref,
        decided_at=ago(closed_days_ago),
        closed_at=ago(closed_days_ago),
        answered_at=ago(closed_days_ago) if status == "answered" else None,
        score=8 if status == "answered" else None,
        comment=comment if status == "answered" else None,
    )
    return subject


async def resident(
    conn: asyncpg.Connection, surveyed_days_ago: int | None, opted_out_days_ago: int | None
) -> str:
    ref = uuid.uuid4().hex * 2
    await conn.execute(
        "INSERT INTO residents (resident_ref, last_surveyed_at, opted_out_at) VALUES ($1, $2, $3)",
        ref,
        ago(surveyed_days_ago) if surveyed_days_ago is not None else None,
        ago(opted_out_days_ago) if opted_out_days_ago is not None else None,
    )
    return ref


def purged_total(what: str) -> float:
    return REGISTRY.get_sample_value("servicepuls_feedback_purged_total", {"what": what}) or 0.0


async def test_retention_purges_each_kind_after_its_period(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    book = load_policy_book(
        write_config(tmp_path, {"short": SHORT, "default": ""}, {"GM0383": "short"})
    )
    async with pool.acquire() as conn:
        # Castricum: surveys 6 months (186 days), remarks 3 months (93 days).
        castricum_old = await survey(conn, "GM0383", 200)
        castricum_remark_old = await survey(conn, "GM0383", 100)
        castricum_recent = await survey(conn, "GM0383", 50)
        open_ref = await resident(conn, 100, None)
        castricum_open = await survey(conn, "GM0383", 200, status="sent", resident_ref=open_ref)
        # Bergen: the defaults, 24 months (744 days) and 12 months (372 days).
        bergen_kept = await survey(conn, "GM0373", 200)
        bergen_remark_old = await survey(conn, "GM0373", 400)
        bergen_old = await survey(conn, "GM0373", 800)
        # A municipality no longer served: the defaults.
        gone_old = await survey(conn, "GM0001", 800)
        gone_kept = await survey(conn, "GM0001", 200, comment=None)
        # Residents: the longest throttle window is 90 days (the default policy), the longest
        # opt-out 60 months (1860 days).
        throttle_over = await resident(conn, 100, None)
        in_throttle = await resident(conn, 80, None)
        opted_out = await resident(conn, 400, 400)
        opt_out_over = await resident(conn, 2000, 1900)
        never_surveyed = await resident(conn, None, None)
        kept_for_case = await resident(conn, 100, None)
        await conn.execute(
            "INSERT INTO case_residents (municipality, case_id, resident_ref, opened_at)"
            " VALUES ('GM0383', 'Z-open', $1, $2), ('GM0383', 'Z-forgotten', $3, $4)",
            kept_for_case,
            ago(10),
            uuid.uuid4().hex * 2,
            ago(500),
        )
        await conn.execute(
            "INSERT INTO processed_events (dedupe_key, processed_at)"
            " VALUES ('/test\x1fold', $1), ('/test\x1fnew', $2)",
            ago(40),
            ago(20),
        )

    before = {w: purged_total(w) for w in ("surveys", "remarks", "residents", "dedupe_keys")}
    purged = await apply_retention(
        pool,
        book,
        dedupe_retention=timedelta(days=30),
        case_resident_retention=timedelta(days=400),
        now=NOW,
    )
    assert purged == {
        "surveys": 3,
        "remarks": 2,
        "case_residents": 1,
        "residents": 3,
        "dedupe_keys": 1,
    }
    assert purged_total("surveys") - before["surveys"] == 3
    assert purged_total("remarks") - before["remarks"] == 2
    assert purged_total("residents") - before["residents"] == 3
    assert purged_total("dedupe_keys") - before["dedupe_keys"] == 1

    async with pool.acquire() as conn:
        rows: dict[str, Any] = {
            r["subject_id"]: r for r in await conn.fetch("SELECT * FROM surveys")
        }
        assert set(rows) == {
            castricum_remark_old,
            castricum_recent,
            castricum_open,
            bergen_kept,
            bergen_remark_old,
            gone_kept,
        }
        assert castricum_old not in rows and bergen_old not in rows and gone_old not in rows
        # Remarks go before the rest of the answer; the score stays.
        assert rows[castricum_remark_old]["comment"] is None
        assert rows[castricum_remark_old]["score"] == 8
        assert rows[bergen_remark_old]["comment"] is None
        assert rows[castricum_recent]["comment"] == "Prima geholpen"
        assert rows[bergen_kept]["comment"] == "Prima geholpen"
        residents = {r["resident_ref"] for r in await conn.fetch("SELECT * FROM residents")}
        assert residents == {open_ref, in_throttle, opted_out, kept_for_case}
        assert {throttle_over, opt_out_over, never_surveyed}.isdisjoint(residents)
        cases = {r["case_id"] for r in await conn.fetch("SELECT case_id FROM case_residents")}
        assert cases == {"Z-open"}
        keys = {r["dedupe_key"] for r in await conn.fetch("SELECT * FROM processed_events")}
        assert keys == {"/test\x1fnew"}

    # Nothing more is due: a second run (or another replica) purges nothing.
    again = await apply_retention(
        pool,
        book,
        dedupe_retention=timedelta(days=30),
        case_resident_retention=timedelta(days=400),
        now=NOW,
    )
    assert sum(again.values()) == 0
