"""The connector's tables in PostgreSQL: the notification queue and the zaak states."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

from services.connector.domain.notification import Notification
from services.connector.domain.zaken import ZaakState

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


@dataclass(frozen=True, slots=True)
class Queued:
    """A notification the worker claimed."""

    id: int
    municipality: str
    kanaal: str
    resource: str
    actie: str
    hoofd_object: str
    resource_url: str
    aanmaakdatum: datetime
    attempts: int


class Store:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        self._notifications = f'"{schema}".notifications'
        self._zaak_states = f'"{schema}".zaak_states'

    async def enqueue(self, municipality: str, notification: Notification) -> bool:
        """Store a notification durably; False when the same message was stored before."""
        row = await self.pool.fetchval(
            f"""INSERT INTO {self._notifications}
                (municipality, dedupe_key, kanaal, resource, actie, hoofd_object,
                 resource_url, aanmaakdatum)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (municipality, dedupe_key) DO NOTHING
                RETURNING id""",
            municipality,
            notification.dedupe_key(),
            notification.kanaal,
            notification.resource,
            notification.actie,
            notification.hoofd_object,
            notification.resource_url,
            notification.aanmaakdatum,
        )
        return row is not None

    async def claim(self, conn: asyncpg.Connection) -> Queued | None:
        """The oldest due notification, locked for this transaction (replicas skip it), with
        its hoofdObject locked too: one zaak is reconciled by one worker at a time."""
        row = await conn.fetchrow(
            f"""SELECT id, municipality, kanaal, resource, actie, hoofd_object, resource_url,
                       aanmaakdatum, attempts
                FROM {self._notifications}
                WHERE state = 'pending' AND next_attempt_at <= now()
                ORDER BY next_attempt_at, aanmaakdatum
                LIMIT 1
                FOR UPDATE SKIP LOCKED"""
        )
        if row is None:
            return None
        lock = zlib.crc32(f"{self.schema}:{row['municipality']}:{row['hoofd_object']}".encode())
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock)
        return Queued(**dict(row))

    async def done(self, conn: asyncpg.Connection, queued: Queued) -> None:
        await conn.execute(
            f"""UPDATE {self._notifications}
                SET state = 'done', attempts = attempts + 1, finished_at = now(),
                    last_error = NULL
                WHERE id = $1""",
            queued.id,
        )

    async def failed(self, queued: Queued, error: str, retry_in: timedelta) -> None:
        await self.pool.execute(
            f"""UPDATE {self._notifications}
                SET attempts = attempts + 1, last_error = $2,
                    next_attempt_at = now() + $3
                WHERE id = $1 AND state = 'pending'""",
            queued.id,
            error[:500],
            retry_in,
        )

    async def postpone(self, queued: Queued, error: str, retry_in: timedelta) -> None:
        """Try again later without counting an attempt (the fault was not the notification's)."""
        await self.pool.execute(
            f"""UPDATE {self._notifications}
                SET last_error = $2, next_attempt_at = now() + $3
                WHERE id = $1 AND state = 'pending'""",
            queued.id,
            error[:500],
            retry_in,
        )

    async def dead(self, queued: Queued, error: str) -> None:
        await self.pool.execute(
            f"""UPDATE {self._notifications}
                SET state = 'dead', attempts = attempts + 1, last_error = $2,
                    finished_at = now()
                WHERE id = $1""",
            queued.id,
            error[:500],
        )

    async def zaak_state(
        self, conn: asyncpg.Connection, municipality: str, zaak_url: str
    ) -> ZaakState | None:
        raw = await conn.fetchval(
            f"SELECT state FROM {self._zaak_states} WHERE municipality = $1 AND zaak_url = $2",
            municipality,
            zaak_url,
        )
        return ZaakState.model_validate_json(raw) if raw is not None else None

    async def keep_zaak_state(
        self, conn: asyncpg.Connection, municipality: str, zaak_url: str, state: ZaakState
    ) -> None:
        await conn.execute(
            f"""INSERT INTO {self._zaak_states} (municipality, zaak_url, state)
                VALUES ($1, $2, $3::jsonb)
                ON CONFLICT (municipality, zaak_url)
                DO UPDATE SET state = EXCLUDED.state, updated_at = now()""",
            municipality,
            zaak_url,
            state.model_dump_json(),
        )

    async def prune(self, keep: timedelta) -> int:
        """Forget finished notifications older than `keep` (repeats come within a day)."""
        result = await self.pool.execute(
            f"""DELETE FROM {self._notifications}
                WHERE state <> 'pending' AND finished_at < now() - $1::interval""",
            keep,
        )
        return int(result.split()[-1])

    async def oldest_pending_seconds(self) -> float:
        """How long the oldest notification still to be worked has waited since it came in
        (0 when none waits): a queue that no longer drains shows here first."""
        age = await self.pool.fetchval(
            f"""SELECT extract(epoch FROM now() - min(received_at))
                FROM {self._notifications} WHERE state = 'pending'"""
        )
        return float(age or 0)

    async def backlog(self) -> dict[str, int]:
        rows = await self.pool.fetch(
            f"SELECT state, count(*) AS n FROM {self._notifications} GROUP BY state"
        )
        return {row["state"]: row["n"] for row in rows}
