"""Feedback's web face: the survey page (entrypoints/survey_page.py) and the staff API
(entrypoints/staff_api.py) in one FastAPI app, with /health, /ready, /metrics, the request timing
histogram and the two error answers both share (422 without the value sent, 429 with
Retry-After)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common.health import ALIVE, readiness
from services.feedback import metrics
from services.feedback.entrypoints.staff_api import staff_api
from services.feedback.entrypoints.survey_page import SECURITY_HEADERS, survey_pages
from services.feedback.ratelimit import RateLimited

STATIC = Path(__file__).resolve().parents[1] / "static"


def create_web_app(ctx: Any) -> FastAPI:
    """`ctx` is the composition root (`services.feedback.bootstrap.Feedback`)."""
    app = FastAPI(title="Servicepuls feedback", version="1", lifespan=ctx.lifespan)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def timing(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.PAGE_SECONDS.labels(getattr(route, "path", "other")).observe(
            time.perf_counter() - started
        )
        return response

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, Any]:
        return ALIVE

    @app.get("/ready", include_in_schema=False)
    async def ready() -> Response:
        status, body = readiness(await ctx.readiness_problems())
        return JSONResponse(body, status)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # Which field and why, never the value sent: it may be a BSN, an address or a remark.
        problems = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": problems}, 422)

    @app.exception_handler(RateLimited)
    async def too_many_requests(request: Request, exc: RateLimited) -> Response:
        # Refused before anything was read or written: the request can be sent again as it was.
        metrics.RATE_LIMITED.labels(exc.face).inc()
        headers = {"Retry-After": str(exc.retry_after)}
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"detail": f"too many requests; retry after {exc.retry_after} s"},
                429,
                headers=headers,
            )
        return PlainTextResponse(
            "Too Many Requests / Te veel verzoeken\n", 429, headers=SECURITY_HEADERS | headers
        )

    app.include_router(survey_pages(ctx))
    app.include_router(staff_api(ctx))
    return app
