"""The worker loop: works off the notification queue; several run side by side, in several
replicas (claims skip rows another worker holds)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import asyncpg
import structlog

from services.connector.service import Connector

log = structlog.get_logger("connector")


async def work(connector: Connector, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    idle = connector.settings.idle_poll_seconds
    while not stop.is_set():
        try:
            busy = await connector.work_one()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            log.warning("database unavailable; waiting", error=type(exc).__name__)
            busy = False
        except Exception:
            # Whatever it was, the notification stays queued; the worker lives on.
            log.exception("worker step failed; waiting")
            busy = False
        if not busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=idle)


async def prune(connector: Connector) -> None:
    """Forget finished notifications once repeats can no longer come (hourly)."""
    keep = timedelta(days=connector.settings.keep_done_days)
    while True:
        try:
            pruned = await connector.store.prune(keep)
            if pruned:
                log.info("finished notifications forgotten", count=pruned)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("pruning failed", error=type(exc).__name__)
        await asyncio.sleep(3600)
