"""The clock repository against a real PostgreSQL: new clocks are written in one row version,
and a clock another replica creates meanwhile is not overwritten (the batch is applied again)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from schemas.common import Channel
from schemas.events import ContactReceived
from services.norms.adapters.repository import ClockRepository
from services.norms.domain.catalog import NormCatalog
from tests.integration.norms.support import email_answer, event, repository

pytestmark = pytest.mark.integration


def mail_and_answer(mail_id: str, at: datetime) -> tuple[Any, Any]:
    received = event(ContactReceived(contact_id=mail_id, channel=Channel.EMAIL, topic="afval"), at)
    answer = at + timedelta(hours=1)
    answered = event(email_answer(mail_id, answer), answer)
    return received, answered


async def clock_row(pool: asyncpg.Pool, schema: str, clock_id: str) -> Any:
    async with pool.acquire() as conn:
        return await conn.fetchrow(
            f"""SELECT transitions::text, taken, outcome, ctid::text
                FROM "{schema}".clock WHERE clock_id = $1""",
            clock_id,
        )


async def test_a_new_clock_is_written_complete_in_one_row_version(
    pool: tuple[asyncpg.Pool, str], catalogs: dict[str, NormCatalog]
) -> None:
    db, schema = pool
    mail_id = f"E-{uuid.uuid4()}"
    received, _ = mail_and_answer(mail_id, datetime.now(UTC) - timedelta(hours=2))
    result = await repository(db, schema, catalogs).apply_batch([(0, received)])
    assert result.applied == 1
    row = await clock_row(db, schema, f"GM0383/email_answered/{mail_id}")
    assert row["taken"] == "started"
    assert '"start"' in row["transitions"]
    # The table's first tuple: a blank row updated in the same transaction would be its second.
    assert row["ctid"] == "(0,1)"


async def test_a_clock_created_meanwhile_by_another_replica_is_applied_to_not_overwritten(
    pool: tuple[asyncpg.Pool, str], catalogs: dict[str, NormCatalog]
) -> None:
    db, schema = pool
    mail_id = f"E-{uuid.uuid4()}"
    received, answered = mail_and_answer(mail_id, datetime.now(UTC) - timedelta(hours=2))
    other = repository(db, schema, catalogs)

    class RacingRepository(ClockRepository):
        """Another replica applies the e-mail's arrival after this one found no clock."""

        raced = 0

        async def _lock_clocks(self, *args: Any, **kwargs: Any) -> Any:
            found = await super()._lock_clocks(*args, **kwargs)
            if not RacingRepository.raced:
                RacingRepository.raced += 1
                await other.apply_batch([(1, received)])
            return found

    racing = repository(db, schema, catalogs, RacingRepository)
    result = await racing.apply_batch([(0, answered)])
    assert RacingRepository.raced == 1
    assert result.applied == 1
    row = await clock_row(db, schema, f"GM0383/email_answered/{mail_id}")
    # Both events are in the clock: the answer did not overwrite the arrival.
    assert '"start"' in row["transitions"] and '"stop"' in row["transitions"]
    assert row["outcome"] == "met"
    async with db.acquire() as conn:
        kinds = [
            r["kind"]
            for r in await conn.fetch(
                f"""SELECT convert_from(headers, 'UTF8') AS kind
                    FROM "{schema}".outbox ORDER BY id"""
            )
        ]
    assert len(kinds) == 2  # started (by the other replica), met (by this one), nothing twice
    assert "clock_started" in kinds[0] and "norm.met" in kinds[1]
