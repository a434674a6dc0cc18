"""The clock repository against a real PostgreSQL: new clocks are written in one row version,
a clock another replica creates meanwhile is not overwritten (the batch is applied again), and
in event time the consumer only appends transitions, leaving the decisions to the scheduler."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from schemas.common import Channel
from schemas.events import ContactReceived
from services.common.calendar import to_us
from services.norms.adapters.repository import ClockRepository
from services.norms.domain.catalog import NormCatalog
from services.norms.service import NormsService
from tests.integration.norms.support import email_answer, event, outbox_records, repository

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
    result = await NormsService(repository(db, schema, catalogs)).apply_batch([(0, received)])
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

        async def lock_clocks(self, *args: Any, **kwargs: Any) -> Any:
            found = await super().lock_clocks(*args, **kwargs)
            if not RacingRepository.raced:
                RacingRepository.raced += 1
                await NormsService(other).apply_batch([(1, received)])
            return found

    racing = repository(db, schema, catalogs, RacingRepository)
    result = await NormsService(racing).apply_batch([(0, answered)])
    assert RacingRepository.raced == 1
    assert result.applied == 1
    row = await clock_row(db, schema, f"GM0383/email_answered/{mail_id}")
    # Both events are in the clock: the answer did not overwrite the arrival.
    assert '"start"' in row["transitions"] and '"stop"' in row["transitions"]
    assert row["outcome"] == "met"
    kinds = [dict(r.headers)["ce_type"] for r in await outbox_records(schema, db)]
    # started (by the other replica), met (by this one), nothing twice
    assert [k.decode().split(".")[-2] for k in kinds] == ["clock_started", "met"]


async def test_in_event_time_the_consumer_appends_transitions_and_the_scheduler_decides(
    pool: tuple[asyncpg.Pool, str], catalogs: dict[str, NormCatalog]
) -> None:
    """Event-time mode: the consumer writes a clock's transitions without reading it and moves
    its wake-up to the earliest of them; the scheduler takes the decisions once the watermark
    passes them. An event applied twice (its dedupe key purged) counts once."""
    db, schema = pool
    repo = repository(db, schema, catalogs, event_clock=True)
    service = NormsService(repo)
    await repo.register_partitions([0])
    mail_id = f"E-{uuid.uuid4()}"
    clock_id = f"GM0383/email_answered/{mail_id}"
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
    received, answered = mail_and_answer(mail_id, t0)
    later = event(
        ContactReceived(contact_id=f"E-{uuid.uuid4()}", channel=Channel.EMAIL, topic="afval"),
        t0 + timedelta(hours=3),
    )

    async def row() -> Any:
        async with db.acquire() as conn:
            return await conn.fetchrow(
                f"""SELECT jsonb_array_length(transitions) AS n, taken, next_decision_at, outcome
                    FROM "{schema}".clock WHERE clock_id = $1""",
                clock_id,
            )

    result = await service.apply_batch([(0, received)], {0: False})
    assert (result.applied, result.decisions) == (1, [])
    first = await row()
    assert (first["n"], first["taken"], first["next_decision_at"]) == (1, "", t0)
    # The answer, an hour later, is appended; the clock still wakes at its start.
    await service.apply_batch([(0, answered)], {0: False})
    second = await row()
    assert (second["n"], second["next_decision_at"]) == (2, t0)
    # Nothing is decided before the watermark (latest event time, no lateness) passes.
    async with db.acquire() as conn:
        await conn.execute(f'DELETE FROM "{schema}".processed_event')  # purged keys
    await service.apply_batch([(0, answered), (0, later)], {0: False})
    assert (await row())["n"] == 3  # stored twice, counted once
    fired, now = await service.fire_due(100)
    assert now == to_us(t0 + timedelta(hours=3))
    # This clock's start and answer lie before it; the later e-mail starts at it exactly, and
    # an event at the watermark can still change what happens then: not decided yet.
    assert sorted(kind for _, _, kind in fired.decisions) == ["met", "started"]
    done = await row()
    assert (done["taken"], done["next_decision_at"], done["outcome"]) == (
        "final|started",
        None,
        "met",
    )
    kinds = [dict(r.headers)["ce_type"].decode() for r in await outbox_records(schema, db)]
    assert sorted(k.split(".")[-2] for k in kinds) == ["clock_started", "met"]
    async with db.acquire() as conn:  # a transaction's events in one row
        assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".outbox') == 1
