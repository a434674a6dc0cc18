"""The callback the Notificaties API posts to: one URL per municipality,
`POST /v1/notificaties/{municipality}`, with the Authorization value its abonnement was
registered with. 204 once the notification is durably queued (or was heard before, or is one
we do not need): Open Notificaties counts any 2xx as delivered and retries anything else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from services.connector.domain.notification import Notification
from services.connector.entrypoints.worker import prune, work
from services.connector.service import Connector

log = structlog.get_logger("connector")

PROBLEM_JSON = "application/problem+json"
# A notification is a few hundred bytes of references; anything near this is not one.
MAX_BODY_BYTES = 64 * 1024


def _problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"https://servicepuls.nl/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    headers = (
        {"WWW-Authenticate": 'Bearer realm="servicepuls-connector"'} if status == 401 else None
    )
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def create_app(
    start: Callable[[], Awaitable[Connector]],
    stop: Callable[[Connector], Awaitable[None]],
    *,
    run_workers: bool = True,
) -> FastAPI:
    state: dict[str, Connector] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connector = await start()
        state["connector"] = connector
        app.state.connector = connector
        halt = asyncio.Event()
        tasks = []
        if run_workers:
            tasks = [
                asyncio.create_task(work(connector, stop=halt))
                for _ in range(connector.settings.workers)
            ]
            tasks.append(asyncio.create_task(prune(connector)))
        try:
            yield
        finally:
            halt.set()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await stop(connector)

    app = FastAPI(
        title="Servicepuls connector",
        version="1.0.0",
        summary="Notificaties API subscriber for Open Zaak and Open Klant.",
        lifespan=lifespan,
    )

    @app.post(
        "/v1/notificaties/{municipality}",
        status_code=204,
        summary="Receive a notification (Notificaties API callback)",
    )
    async def receive(municipality: str, request: Request) -> Response:
        connector = state["connector"]
        source = connector.authenticate(municipality, request.headers.get("authorization"))
        if source is None:
            connector.metrics.notifications.labels("unknown", "other", "unauthorized").inc()
            return _problem(
                401,
                "Unauthorized",
                "send the Authorization value the abonnement of this municipality was "
                "registered with",
            )
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _problem(413, "Too large", f"a notification is at most {MAX_BODY_BYTES} bytes")
        try:
            notification = Notification.model_validate(orjson.loads(body))
        except orjson.JSONDecodeError as exc:
            return _problem(400, "Malformed JSON", f"{exc.msg} at position {exc.pos}")
        except ValidationError as exc:
            errors = [
                {"pointer": "/" + "/".join(str(p) for p in e["loc"]), "detail": e["msg"]}
                for e in exc.errors(include_input=False, include_url=False)
            ]
            return _problem(
                400, "Invalid notification", "not a Notificaties API message", errors=errors
            )
        await connector.hear(source, notification)
        return Response(status_code=204)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", include_in_schema=False)
    async def ready() -> Response:
        connector = state.get("connector")
        if connector is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        try:
            async with asyncio.timeout(2):
                await connector.store.pool.fetchval("SELECT 1")
        except (TimeoutError, OSError, Exception):
            return JSONResponse({"status": "database unreachable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        connector = state["connector"]
        # The queue is the database's, shared by every replica: read it now (two small
        # queries on indexed columns); an unreachable database leaves the last values.
        try:
            async with asyncio.timeout(2):
                backlog = await connector.store.backlog()
                oldest = await connector.store.oldest_pending_seconds()
        except Exception:  # the counters are still worth serving
            log.warning("queue metrics not read: database unavailable")
        else:
            for queue_state in ("pending", "done", "dead"):
                connector.metrics.queue.labels(queue_state).set(backlog.get(queue_state, 0))
            connector.metrics.oldest_pending.set(oldest)
        return Response(generate_latest(connector.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
