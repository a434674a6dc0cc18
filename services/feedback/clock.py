"""The service clock: wall time, or the event time of the intake topic (for compressed time)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from services.feedback.adapters import postgres as db

_BEFORE_ANYTHING = datetime(1970, 1, 2, tzinfo=UTC)


class Clock:
    def __init__(self, mode: str, pool: asyncpg.Pool) -> None:
        self.mode = mode
        self.pool = pool

    async def now(self, conn: asyncpg.Connection | None = None) -> datetime:
        """Wall clock; in event mode the latest event time seen (nothing is due before the first
        event)."""
        if self.mode == "wall":
            return datetime.now(UTC)
        if conn is not None:
            return await db.event_clock(conn) or _BEFORE_ANYTHING
        async with self.pool.acquire() as c:
            return await db.event_clock(c) or _BEFORE_ANYTHING
