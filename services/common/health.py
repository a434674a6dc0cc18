"""What every Kafka consumer service shows an orchestrator, and the work it does in the background.

`/health` says the process is alive; `/ready` says whether it can do its job now: each readiness
check returns a problem (a short word, never data) or None, and any problem makes it a 503 with
the list. `BackgroundTasks` runs periodic jobs that log a failure and try again next round, and
stops them all at once on shutdown.

Used by the norms and metrics services (feedback's /ready, a FastAPI route, uses
`readiness_problems` too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from faststream.asgi import AsgiResponse, get
from faststream.kafka import KafkaBroker

# A readiness check: None when fine, else what is wrong ("database", "kafka", ...).
ReadinessCheck = Callable[[], Awaitable[str | None]]


def database_check(pool: Callable[[], asyncpg.Pool | None], timeout: float = 2) -> ReadinessCheck:
    """The service's own pool hands out a working connection (`pool` is read when asked: the
    pool is made at start, after the routes)."""

    async def check() -> str | None:
        current = pool()
        if current is None:
            return "database"
        try:
            async with current.acquire(timeout=timeout) as conn:
                await conn.fetchval("SELECT 1")
        except Exception:
            return "database"
        return None

    check.what = "database"  # type: ignore[attr-defined]
    return check


def kafka_check(broker: KafkaBroker, timeout: float = 2) -> ReadinessCheck:
    async def check() -> str | None:
        return None if await broker.ping(timeout=timeout) else "kafka"

    check.what = "kafka"  # type: ignore[attr-defined]
    return check


def partitions_assigned_check(broker: KafkaBroker, what: str) -> ReadinessCheck:
    """The first subscriber was given partitions: a replica that holds none does no work yet."""

    async def check() -> str | None:
        subscriber = broker.subscribers[0] if broker.subscribers else None
        consumer = getattr(subscriber, "consumer", None)
        if consumer is None or not consumer.assignment():
            return f"no {what} partitions assigned yet"
        return None

    return check


# However a part misbehaves (a broker that accepts connections and never answers), /ready
# answers within this many seconds per check.
CHECK_TIMEOUT = 3.0


async def readiness_problems(checks: Sequence[ReadinessCheck]) -> list[str]:
    """Every check's problem; all run at once, each bounded in time (a check that hangs is a
    problem, named by the check's `what`)."""

    async def bounded(check: ReadinessCheck) -> str | None:
        try:
            return await asyncio.wait_for(check(), CHECK_TIMEOUT)
        except Exception:
            return getattr(check, "what", "a readiness check") + " (no answer)"

    found = await asyncio.gather(*(bounded(check) for check in checks))
    return [problem for problem in found if problem is not None]


# The one shape of /health and /ready in every service (JSON).
ALIVE: dict[str, Any] = {"status": "ok"}


def readiness(problems: Sequence[str]) -> tuple[int, dict[str, Any]]:
    """Status code and body of /ready: 200 `{"status": "ready"}`, or 503 `{"status": "not
    ready", "problems": [...]}` (short words such as "database", "kafka", never data)."""
    if problems:
        return 503, {"status": "not ready", "problems": list(problems)}
    return 200, {"status": "ready"}


def health_routes(*checks: ReadinessCheck) -> list[tuple[str, Any]]:
    """`/health` and `/ready` as `asgi_routes` of an `AsgiFastStream`."""
    json_type = {"content-type": "application/json"}

    @get
    async def health(scope: Any) -> AsgiResponse:
        return AsgiResponse(json.dumps(ALIVE).encode(), 200, headers=json_type)

    @get
    async def ready(scope: Any) -> AsgiResponse:
        status, body = readiness(await readiness_problems(checks))
        return AsgiResponse(json.dumps(body).encode(), status, headers=json_type)

    return [("/health", health), ("/ready", ready)]


class BackgroundTasks:
    """The service's own asyncio tasks, stopped together at shutdown."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.tasks: list[asyncio.Task[None]] = []

    def run(self, job: Awaitable[None]) -> None:
        """A job with a loop of its own (a scheduler, a relay)."""
        self.tasks.append(asyncio.ensure_future(job))

    def every(self, seconds: float, action: Callable[[], Awaitable[Any]], name: str) -> None:
        """Run `action` every `seconds`, first after one interval; a failure is logged and the
        next round tries again (a database restart must not end housekeeping for good)."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await action()
                except Exception:
                    self.log.exception("periodic task failed", task=name)

        self.run(loop())

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
