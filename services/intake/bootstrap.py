"""Intake's composition root: configuration first (a mistake in it stops the service before
anything connects), then the service layer with its Kafka writer, then the HTTP app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.common.process import quiet_cycle_collector
from services.common.sealing import Sealer, load_keys
from services.intake.adapters.kafka import KafkaWriter
from services.intake.domain.channel_systems import Gatekeeper
from services.intake.domain.rate_limits import RateLimiter
from services.intake.entrypoints.http import ObserveRequests, install_problem_handlers, routes
from services.intake.entrypoints.openapi import component_schemas
from services.intake.metrics import IntakeMetrics
from services.intake.service import Intake
from services.intake.settings import IntakeSettings

DESCRIPTION = (
    "Post one event (`POST /v1/events`) or a batch (`POST /v1/events:batch`, all or "
    "nothing) as CloudEvents 1.0 in structured JSON. A `202 Accepted` means every event "
    "is durably written to Kafka (acknowledged by all in-sync replicas). Posting the "
    "same event again (same `source` and `id`) is safe: it has no second effect. Errors "
    "are RFC 9457 problem details naming each bad field by JSON Pointer. A `503` says "
    "in `outcome` whether nothing was written (`not-written`) or the events may still "
    "be written (`unknown`: Kafka's producer had them and did not confirm in time); "
    "retry the same request after `Retry-After` either way. A `429` means the channel "
    "system is over its rate limit; nothing was accepted; retry after `Retry-After`."
)


def build_intake(settings: IntakeSettings, *, producer: AIOKafkaProducer | None = None) -> Intake:
    gatekeeper = Gatekeeper.from_file(settings.channel_systems_path())
    keys = load_keys(settings.infra.state_dir)
    return Intake(
        settings=settings,
        gatekeeper=gatekeeper,
        keys=keys,
        sealer=Sealer(keys.sealing_public),
        metrics=IntakeMetrics(),
        limiter=RateLimiter((s.name, s.rate_limit) for s in gatekeeper.systems),
        writer=KafkaWriter(settings, producer),
    )


def create_app(
    settings: IntakeSettings | None = None, *, producer: AIOKafkaProducer | None = None
) -> FastAPI:
    intake = build_intake(settings or IntakeSettings(), producer=producer)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        quiet_cycle_collector()  # a batch request makes thousands of short-lived objects
        # Kafka may not be up yet (or be restarting): serve anyway, answer 503 until connected.
        intake.writer.start()
        try:
            yield
        finally:
            await intake.writer.stop()

    app = FastAPI(
        title="Servicepuls intake",
        version="1.0.0",
        summary="Channel systems post contact and case events as CloudEvents.",
        description=DESCRIPTION,
        lifespan=lifespan,
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                component_schemas()
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(ObserveRequests, metrics=intake.metrics)
    install_problem_handlers(app)
    app.include_router(routes(intake))
    return app
