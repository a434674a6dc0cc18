"""services/common/health.py (used by the metrics service): /health, /ready and background jobs."""

from __future__ import annotations

import asyncio
from typing import Any

from services.common.health import BackgroundTasks, health_routes


async def _get(app: Any, path: str) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


def _check(problem: str | None) -> Any:
    async def check() -> str | None:
        return problem

    return check


async def test_ready_lists_every_problem_and_health_stays_alive() -> None:
    routes = dict(health_routes(_check(None), _check("database"), _check("kafka")))
    assert await _get(routes["/ready"], "/ready") == (
        503,
        b'{"status": "not ready", "problems": ["database", "kafka"]}',
    )
    assert await _get(routes["/health"], "/health") == (200, b'{"status": "ok"}')


async def test_a_check_that_hangs_is_a_problem_not_a_hang(monkeypatch: Any) -> None:
    import asyncio

    from services.common import health

    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.05)

    async def kafka_check() -> str | None:
        await asyncio.sleep(10)
        return None

    kafka_check.what = "kafka"  # type: ignore[attr-defined]
    routes = dict(health_routes(_check(None), kafka_check))
    assert await _get(routes["/ready"], "/ready") == (
        503,
        b'{"status": "not ready", "problems": ["kafka (no answer)"]}',
    )


async def test_ready_when_no_check_has_a_problem() -> None:
    routes = dict(health_routes(_check(None), _check(None)))
    assert await _get(routes["/ready"], "/ready") == (200, b'{"status": "ready"}')


class _Log:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def exception(self, event: str, **fields: Any) -> None:
        self.failures.append(fields["task"])


async def test_a_failing_periodic_job_is_logged_and_runs_again_until_stopped() -> None:
    log = _Log()
    rounds: list[int] = []

    async def flaky() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise ConnectionError("database restarting")

    tasks = BackgroundTasks(log)
    tasks.every(0.01, flaky, "purge")
    for _ in range(200):
        if len(rounds) >= 3:
            break
        await asyncio.sleep(0.01)
    await tasks.stop()
    stopped_at = len(rounds)
    await asyncio.sleep(0.05)
    assert stopped_at >= 3 and log.failures == ["purge"]
    assert len(rounds) == stopped_at  # nothing runs after stop()
    assert tasks.tasks == []
