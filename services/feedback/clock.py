"""The service clock: wall time, or the event time of the intake topic (for compressed time).

In event time the clock is the latest event time seen, but an event further ahead of the wall
clock than a tolerance (`SERVICEPULS_FEEDBACK_CLOCK_MAX_AHEAD_SECONDS`) does not move it: one
event with a wrong or far-future time (a channel system's broken clock, a test) would otherwise
drag the clock — and with it every delay, sending hour and link expiry — years ahead, for good,
since it only moves forward. Such an event is still applied; it just does not move the clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from services.feedback.adapters import postgres as db

_BEFORE_ANYTHING = datetime(1970, 1, 2, tzinfo=UTC)
DEFAULT_MAX_AHEAD = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Advance:
    """Where a batch of event times may move the event clock to."""

    to: datetime | None  # None: no event time of the batch may move the clock
    ahead: int  # events later than wall time + the tolerance (applied, but not moving it)


def advance_for(
    event_times: Iterable[datetime], wall_now: datetime, max_ahead: timedelta
) -> Advance:
    """The latest event time no later than wall time + `max_ahead`."""
    cap = wall_now + max_ahead
    latest: datetime | None = None
    ahead = 0
    for seen in event_times:
        if seen > cap:
            ahead += 1
        elif latest is None or seen > latest:
            latest = seen
    return Advance(latest, ahead)


class Clock:
    def __init__(
        self, mode: str, pool: asyncpg.Pool, max_ahead: timedelta = DEFAULT_MAX_AHEAD
    ) -> None:
        self.mode = mode
        self.pool = pool
        self.max_ahead = max_ahead

    async def now(self, conn: asyncpg.Connection | None = None) -> datetime:
        """Wall clock; in event mode the latest event time seen (nothing is due before the first
        event), capped here too: a clock stored before the cap existed cannot run ahead."""
        wall = datetime.now(UTC)
        if self.mode == "wall":
            return wall
        if conn is not None:
            seen = await db.event_clock(conn)
        else:
            async with self.pool.acquire() as c:
                seen = await db.event_clock(c)
        return min(seen or _BEFORE_ANYTHING, wall + self.max_ahead)
