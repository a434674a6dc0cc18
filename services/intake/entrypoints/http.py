"""Intake's HTTP routes: thin. Each reads the request (token, body within its limit), hands it to
the service layer (services/intake/service.py), and renders the answer: 202 with the ids, or the
refusal as an RFC 9457 problem."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.health import ALIVE, readiness
from services.intake.domain.admission import POSTED_MODELS, Admitted, FieldProblem
from services.intake.domain.channel_systems import ChannelSystem
from services.intake.entrypoints.openapi import (
    batch_request_body,
    event_request_body,
    problem_responses,
)
from services.intake.metrics import IntakeMetrics
from services.intake.service import Intake, Refusal

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://servicepuls.nl/problems/"


def problem(refusal: Refusal) -> JSONResponse:
    """An RFC 9457 problem details response."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + refusal.kind,
        "title": refusal.title,
        "status": refusal.status,
        "detail": refusal.detail,
    }
    if refusal.errors:
        body["errors"] = [{"pointer": e.pointer, "detail": e.detail} for e in refusal.errors]
    if refusal.items:
        body["items"] = refusal.items
    body.update(refusal.extra)
    return JSONResponse(
        body, status_code=refusal.status, media_type=PROBLEM_JSON, headers=refusal.headers or None
    )


def answer(result: list[Admitted] | Refusal) -> Response:
    if isinstance(result, Refusal):
        return problem(result)
    # 202 with the ids of the accepted events (orjson: a batch answers a thousand ids).
    body = orjson.dumps({"accepted": len(result), "ids": [e.id for e in result]})
    return Response(body, status_code=202, media_type="application/json")


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it exceeds `limit` bytes (checked while reading)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class ObserveRequests:
    """Counts requests and measures their duration per route (a plain ASGI middleware: cheaper
    than Starlette's BaseHTTPMiddleware on every request)."""

    def __init__(self, app: ASGIApp, metrics: IntakeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(path, str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - started)


def install_problem_handlers(app: FastAPI) -> None:
    """Errors FastAPI raises itself answer as problems too."""

    @app.exception_handler(StarletteHTTPException)
    async def _http_problem(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(Refusal(exc.status_code, "http", str(exc.detail), str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def _validation_problem(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            FieldProblem("/" + "/".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()
        ]
        return problem(
            Refusal(422, "invalid-request", "The request is not valid", "see errors", errors)
        )


def routes(intake: Intake) -> APIRouter:
    router = APIRouter()

    async def receive(request: Request, limit: int) -> tuple[ChannelSystem, bytes] | Response:
        """The channel system posting and the body, or the problem with either."""
        system = intake.authenticate(request.headers.get("authorization"))
        if isinstance(system, Refusal):
            return problem(system)
        refused = intake.out_of_tokens(system)
        if refused is not None:
            return problem(refused)
        body = await read_body(request, limit)
        if body is None:
            return problem(intake.too_large(limit))
        return system, body

    @router.post(
        "/v1/events",
        status_code=202,
        summary="Post one event",
        openapi_extra={"requestBody": event_request_body()},
        responses=problem_responses(single=True),
    )
    async def post_event(request: Request) -> Response:
        received = await receive(request, intake.settings.max_event_bytes)
        if isinstance(received, Response):
            return received
        return answer(await intake.post_event(*received))

    @router.post(
        "/v1/events:batch",
        status_code=202,
        summary="Post a batch of events, all or nothing",
        openapi_extra={"requestBody": batch_request_body()},
        responses=problem_responses(single=False),
    )
    async def post_batch(request: Request) -> Response:
        received = await receive(request, intake.settings.max_batch_bytes)
        if isinstance(received, Response):
            return received
        return answer(await intake.post_batch(*received))

    @router.get("/v1/event-types", summary="The event types intake accepts")
    async def event_types() -> dict[str, list[str]]:
        return {"event_types": sorted(POSTED_MODELS)}

    @router.get("/health", summary="Alive", include_in_schema=False)
    async def health() -> dict[str, Any]:
        return ALIVE

    @router.get(
        "/ready", summary="Ready to accept events (Kafka reachable)", include_in_schema=False
    )
    async def ready() -> Response:
        status, body = readiness([] if await intake.writer.reachable() else ["kafka"])
        return JSONResponse(body, status_code=status)

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(intake.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
