"""The intake HTTP API: channel systems post CloudEvents; a 202 means they are durably in Kafka."""

from __future__ import annotations

import asyncio
import time
from collections import Counter as Tally
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.health import ALIVE, readiness
from services.common.kafka import PRODUCER_STATE_ERRORS, SharedBatches, durable_producer
from services.common.process import quiet_cycle_collector
from services.common.sealing import Keys, Sealer, load_keys
from services.intake.domain.admission import (
    MAX_NESTING_DEPTH,
    POSTED_MODELS,
    Admitted,
    FieldProblem,
    NotAdmitted,
    admit,
    admit_json,
    nesting_problem,
)
from services.intake.domain.channel_systems import ChannelSystem, Gatekeeper
from services.intake.domain.rate_limits import RateLimiter, retry_after
from services.intake.openapi import (
    batch_request_body,
    component_schemas,
    event_request_body,
    problem_responses,
)
from services.intake.publishing import PublishOutcome, failure_answer, publish_outcome
from services.intake.settings import IntakeSettings

log = structlog.get_logger("intake")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://servicepuls.nl/problems/"


class IntakeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "servicepuls_intake_requests",
            "HTTP requests to intake, by route and status code",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "servicepuls_intake_request_duration_seconds",
            "Time from request to response, publishing to Kafka included",
            ["route"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.accepted = Counter(
            "servicepuls_intake_events_accepted",
            "Events acknowledged by Kafka and answered with 202",
            ["municipality", "channel_system"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "servicepuls_intake_events_rejected",
            "Events refused, by reason (invalid, forbidden, too_large)",
            ["reason"],
            registry=self.registry,
        )
        self.rate_limited_requests = Counter(
            "servicepuls_intake_rate_limited_requests",
            "Requests answered 429 because the channel system was over its rate limit",
            ["channel_system"],
            registry=self.registry,
        )
        self.rate_limited_events = Counter(
            "servicepuls_intake_rate_limited_events",
            "Events in requests answered 429 (where the request was read far enough to count)",
            ["channel_system"],
            registry=self.registry,
        )
        self.publish_failures = Counter(
            "servicepuls_intake_publish_failures",
            "Requests answered 503 because Kafka did not acknowledge in time",
            registry=self.registry,
        )
        self.publish_unknown_outcomes = Counter(
            "servicepuls_intake_publish_unknown_outcomes",
            "Of those, the requests whose events may still be written (answered: outcome unknown)",
            registry=self.registry,
        )


class ObserveRequests:
    """Counts requests and measures their duration per route (a plain ASGI middleware: cheaper
    than Starlette's BaseHTTPMiddleware on every request)."""

    def __init__(self, app: ASGIApp, metrics: Callable[[], IntakeMetrics | None]) -> None:
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
            metrics = self.metrics()
            if metrics is not None:
                path = getattr(scope.get("route"), "path", "unmatched")
                metrics.requests.labels(path, str(status)).inc()
                metrics.latency.labels(path).observe(time.perf_counter() - started)


@dataclass
class Intake:
    settings: IntakeSettings
    gatekeeper: Gatekeeper
    keys: Keys
    metrics: IntakeMetrics
    limiter: RateLimiter
    # The producer, through which concurrent requests' records share record batches; None
    # until connected to Kafka (and while a broken producer is being replaced).
    kafka: SharedBatches | None = None


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str,
    *,
    errors: list[FieldProblem] | None = None,
    items: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem details response."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [{"pointer": e.pointer, "detail": e.detail} for e in errors]
    if items:
        body["items"] = items
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _accepted(events: list[Admitted]) -> Response:
    """202 with the ids of the accepted events (orjson: a batch answers a thousand ids)."""
    body = orjson.dumps({"accepted": len(events), "ids": [e.id for e in events]})
    return Response(body, status_code=202, media_type="application/json")


def _not_admitted(error: NotAdmitted) -> JSONResponse:
    if error.status == 403:
        return problem(
            403, "forbidden", "Not allowed for this channel system", error.problems[0].detail
        )
    return problem(
        422,
        "invalid-event",
        "The event is not valid",
        f"{len(error.problems)} problem(s); each names the field (JSON Pointer) and why",
        errors=error.problems,
    )


async def _read_body(request: Request, limit: int) -> bytes | None:
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


def create_app(
    settings: IntakeSettings | None = None, *, producer: AIOKafkaProducer | None = None
) -> FastAPI:
    settings = settings or IntakeSettings()
    state: dict[str, Intake] = {}
    tasks: dict[str, asyncio.Task[None]] = {}
    # Configuration first: a mistake in it stops the service before anything connects.
    gatekeeper = Gatekeeper.from_file(settings.channel_systems_path())
    keys = load_keys(settings.infra.state_dir)
    sealer = Sealer(keys.sealing_public)

    def new_producer() -> AIOKafkaProducer:
        return producer or durable_producer(
            settings.infra.kafka_bootstrap,
            "servicepuls-intake",
            request_timeout_ms=int(settings.publish_timeout_seconds * 1000),
            **SharedBatches.PRODUCER_OPTIONS,
        )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        quiet_cycle_collector()  # a batch request makes thousands of short-lived objects
        state["intake"] = Intake(
            settings=settings,
            gatekeeper=gatekeeper,
            keys=keys,
            metrics=IntakeMetrics(),
            limiter=RateLimiter((s.name, s.rate_limit) for s in gatekeeper.systems),
        )
        # Kafka may not be up yet (or be restarting): serve anyway, answer 503 until connected.
        tasks["connect"] = asyncio.create_task(_connect())
        try:
            yield
        finally:
            for task in tasks.values():
                task.cancel()
            if intake().kafka is not None:
                await intake().kafka.producer.stop()

    def _renew_producer(broken: SharedBatches) -> None:
        """Replace a producer whose idempotence state the broker no longer accepts (e.g. an
        out-of-order sequence after a broker restart): a new producer gets a new producer id.
        Requests meanwhile get 503; their clients retry, and repeats are harmless."""
        if intake().kafka is not broken:
            return  # another request already renewed it
        intake().kafka = None
        log.warning("renewing the kafka producer")
        tasks["close"] = asyncio.create_task(broken.producer.stop())
        tasks["connect"] = asyncio.create_task(_connect())

    async def _connect() -> None:
        delay = 0.5
        while True:
            kafka = new_producer()
            try:
                await kafka.start()
            except KafkaError as exc:
                await kafka.stop()
                log.warning("kafka not reachable yet", error=type(exc).__name__, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
                continue
            intake().kafka = SharedBatches(kafka)
            log.info(
                "intake connected to kafka",
                kafka=settings.infra.kafka_bootstrap,
                port=settings.port,
            )
            return

    app = FastAPI(
        title="Servicepuls intake",
        version="1.0.0",
        summary="Channel systems post contact and case events as CloudEvents.",
        description=(
            "Post one event (`POST /v1/events`) or a batch (`POST /v1/events:batch`, all or "
            "nothing) as CloudEvents 1.0 in structured JSON. A `202 Accepted` means every event "
            "is durably written to Kafka (acknowledged by all in-sync replicas). Posting the "
            "same event again (same `source` and `id`) is safe: it has no second effect. Errors "
            "are RFC 9457 problem details naming each bad field by JSON Pointer. A `503` says "
            "in `outcome` whether nothing was written (`not-written`) or the events may still "
            "be written (`unknown`: Kafka's producer had them and did not confirm in time); "
            "retry the same request after `Retry-After` either way. A `429` means the channel "
            "system is over its rate limit; nothing was accepted; retry after `Retry-After`."
        ),
        lifespan=lifespan,
    )

    def intake() -> Intake:
        return state["intake"]

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
    app.add_middleware(
        ObserveRequests, metrics=lambda: intake().metrics if "intake" in state else None
    )

    @app.exception_handler(StarletteHTTPException)
    async def _http_problem(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, "http", str(exc.detail), str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_problem(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            FieldProblem("/" + "/".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()
        ]
        return problem(
            422, "invalid-request", "The request is not valid", "see errors", errors=errors
        )

    def _authenticate(request: Request) -> ChannelSystem | JSONResponse:
        system = intake().gatekeeper.authenticate(request.headers.get("authorization"))
        if system is None:
            return problem(
                401,
                "unauthenticated",
                "Authentication required",
                "send Authorization: Bearer <token of your channel system>",
                headers={"WWW-Authenticate": 'Bearer realm="servicepuls-intake"'},
            )
        return system

    async def _publish(events: list[Admitted], system: ChannelSystem) -> JSONResponse | None:
        """Write to Kafka and wait for the acknowledgement; a 503 problem when that fails."""
        ctx = intake()
        kafka = ctx.kafka  # the producer this request writes with, whatever happens meanwhile
        acks: list[asyncio.Future[None]] | None = None  # set once the records are in batches
        try:
            if kafka is None:
                raise TimeoutError("not connected to kafka yet")
            async with asyncio.timeout(ctx.settings.publish_timeout_seconds):
                acks = await kafka.hand_over((e.record for e in events), topic=ctx.settings.topic)
                if acks:
                    await asyncio.wait(acks)  # every batch acknowledged or failed (not cancelled)
        except (TimeoutError, KafkaError) as exc:
            failure: BaseException | None = exc
        else:
            failure = next((a.exception() for a in acks or [] if a.exception()), None)
        if failure is not None:
            refused = _publish_failed(failure, kafka, acks, len(events))
            if refused is not None:
                return refused
        for municipality, count in Tally(e.municipality for e in events).items():
            ctx.metrics.accepted.labels(municipality, system.name).inc(count)
        return None

    def _publish_failed(
        exc: BaseException,
        kafka: SharedBatches | None,
        acks: list[asyncio.Future[None]] | None,
        events: int,
    ) -> JSONResponse | None:
        """The 503 for a write that did not succeed, saying truly whether anything may still be
        written (services/intake/publishing.py); None if every batch was acknowledged after all."""
        ctx = intake()
        outcome = publish_outcome(handed_over=acks is not None, batches=acks or [])
        if outcome is PublishOutcome.WRITTEN:  # acknowledged just as the time ran out
            return None
        ctx.metrics.publish_failures.inc()
        if outcome is PublishOutcome.UNKNOWN:
            ctx.metrics.publish_unknown_outcomes.inc()
        log.warning(
            "kafka did not acknowledge",
            error=type(exc).__name__,
            cause=type(exc.__cause__).__name__ if exc.__cause__ else None,
            outcome=str(outcome),
            events=events,
        )
        if kafka is not None and (
            isinstance(exc, PRODUCER_STATE_ERRORS)
            or isinstance(exc.__cause__, PRODUCER_STATE_ERRORS)
        ):
            _renew_producer(kafka)
        title, detail = failure_answer(outcome)
        return problem(
            503,
            "kafka-unavailable",
            title,
            detail,
            extra={"outcome": str(outcome), "retry_safe": True},
            headers={"Retry-After": str(ctx.settings.retry_after_seconds)},
        )

    def _too_large(limit: int) -> JSONResponse:
        intake().metrics.rejected.labels("too_large").inc()
        return problem(
            413, "too-large", "Request too large", f"the body may be at most {limit} bytes"
        )

    def _rate_limited(system: ChannelSystem, events: int | None, wait: float) -> JSONResponse:
        metrics = intake().metrics
        metrics.rate_limited_requests.labels(system.name).inc()
        if events is not None:
            metrics.rate_limited_events.labels(system.name).inc(events)
        limit = system.rate_limit
        seconds = retry_after(wait)
        return problem(
            429,
            "rate-limited",
            "Too many events from this channel system",
            f"channel system {system.name!r} may post {limit.events_per_second:g} events per "
            f"second, {limit.burst} at once; nothing of this request was accepted. Retry the "
            f"same request after {seconds} s (Retry-After).",
            headers={"Retry-After": str(seconds)},
        )

    def _charge(system: ChannelSystem, events: int) -> JSONResponse | None:
        """Take a token per event, all or none: None when taken, else the 413 or 429 problem."""
        bucket = intake().limiter.bucket(system.name)
        if events > bucket.burst:
            intake().metrics.rejected.labels("too_large").inc(events)
            return problem(
                413,
                "too-large",
                "Too many events in one request for this channel system",
                f"channel system {system.name!r} may post at most {bucket.burst} events at "
                f"once (its burst); got {events}. Split the batch.",
            )
        wait = bucket.take(events)
        return _rate_limited(system, events, wait) if wait else None

    def _debit_refused(system: ChannelSystem, response: Response) -> Response:
        """A refused request costs its system a token too, so that a flood of bad requests is
        limited like one of good ones (accepted and rate-limited ones were charged already)."""
        if response.status_code in (400, 403, 413, 422):
            intake().limiter.bucket(system.name).debit(1)
        return response

    async def _receive(request: Request, limit: int) -> tuple[ChannelSystem, bytes] | Response:
        """The channel system posting and the body, or the problem with either."""
        system = _authenticate(request)
        if isinstance(system, JSONResponse):
            return system
        # Out of tokens already: refused before the body is read or checked (a flood costs
        # intake next to nothing). Whether a request fits is decided once its events are known.
        wait = intake().limiter.bucket(system.name).wait_for(1)
        if wait:
            return _rate_limited(system, None, wait)
        body = await _read_body(request, limit)
        if body is None:
            return _too_large(limit)
        return system, body

    def _parse_json(body: bytes) -> Any | JSONResponse:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            intake().metrics.rejected.labels("invalid").inc()
            if "depth limit" in exc.msg:  # JSON, but nested beyond what the parser follows
                return problem(
                    422,
                    "invalid-event",
                    "The event is not valid",
                    f"nested deeper than {MAX_NESTING_DEPTH} levels",
                    errors=[nesting_problem(())],
                )
            return problem(
                400, "malformed-json", "The body is not JSON", f"{exc.msg} at position {exc.pos}"
            )

    @app.post(
        "/v1/events",
        status_code=202,
        summary="Post one event",
        openapi_extra={"requestBody": event_request_body()},
        responses=problem_responses(single=True),
    )
    async def post_event(request: Request) -> Response:
        received = await _receive(request, intake().settings.max_event_bytes)
        if isinstance(received, Response):
            return received
        return _debit_refused(received[0], await _post_event(*received))

    async def _post_event(system: ChannelSystem, body: bytes) -> Response:
        fast = admit_json(body, system=system, keys=intake().keys, many=False, sealer=sealer)
        if fast is not None:
            return _charge(system, 1) or await _publish(fast, system) or _accepted(fast)
        document = _parse_json(body)
        if isinstance(document, JSONResponse):
            return document
        try:
            event = admit(document, system=system, keys=intake().keys, sealer=sealer)
        except NotAdmitted as error:
            intake().metrics.rejected.labels(
                "forbidden" if error.status == 403 else "invalid"
            ).inc()
            return _not_admitted(error)
        return _charge(system, 1) or await _publish([event], system) or _accepted([event])

    @app.post(
        "/v1/events:batch",
        status_code=202,
        summary="Post a batch of events, all or nothing",
        openapi_extra={"requestBody": batch_request_body()},
        responses=problem_responses(single=False),
    )
    async def post_batch(request: Request) -> Response:
        received = await _receive(request, intake().settings.max_batch_bytes)
        if isinstance(received, Response):
            return received
        return _debit_refused(received[0], await _post_batch(*received))

    async def _post_batch(system: ChannelSystem, body: bytes) -> Response:
        ctx = intake()
        fast = admit_json(body, system=system, keys=ctx.keys, many=True, sealer=sealer)
        if fast is not None and len(fast) <= ctx.settings.max_batch_events:
            return _charge(system, len(fast)) or await _publish(fast, system) or _accepted(fast)
        # Something is wrong with the batch: find out what, document by document.
        documents = _parse_json(body)
        if isinstance(documents, JSONResponse):
            return documents
        if not isinstance(documents, list) or not documents:
            return problem(
                422,
                "invalid-batch",
                "The batch is not valid",
                "the body must be a non-empty JSON array of CloudEvents",
                errors=[FieldProblem("", "must be a non-empty JSON array")],
            )
        if len(documents) > ctx.settings.max_batch_events:
            ctx.metrics.rejected.labels("too_large").inc()
            return problem(
                413,
                "too-large",
                "Too many events in one batch",
                f"a batch holds at most {ctx.settings.max_batch_events} events; got {len(documents)}",
            )
        events: list[Admitted] = []
        failed: list[dict[str, Any]] = []
        statuses: set[int] = set()
        for index, document in enumerate(documents):
            try:
                events.append(admit(document, system=system, keys=ctx.keys, sealer=sealer))
            except NotAdmitted as error:
                statuses.add(error.status)
                failed.append(
                    {
                        "index": index,
                        "status": error.status,
                        "errors": [
                            {"pointer": f"/{index}{p.pointer}", "detail": p.detail}
                            for p in error.problems
                        ],
                    }
                )
        if failed:
            status = 422 if 422 in statuses else 403
            ctx.metrics.rejected.labels("invalid" if status == 422 else "forbidden").inc(
                len(documents)
            )
            return problem(
                status,
                "invalid-batch" if status == 422 else "forbidden",
                "The batch was not accepted",
                f"{len(failed)} of {len(documents)} events failed; nothing was accepted. "
                "Each item names the event by index, the field and why.",
                items=failed,
            )
        return _charge(system, len(events)) or await _publish(events, system) or _accepted(events)

    @app.get("/v1/event-types", summary="The event types intake accepts")
    async def event_types() -> dict[str, list[str]]:
        return {"event_types": sorted(POSTED_MODELS)}

    @app.get("/health", summary="Alive", include_in_schema=False)
    async def health() -> dict[str, Any]:
        return ALIVE

    @app.get("/ready", summary="Ready to accept events (Kafka reachable)", include_in_schema=False)
    async def ready() -> Response:
        kafka = intake().kafka if "intake" in state else None
        problems = [] if kafka is not None else ["kafka"]
        if kafka is not None:
            try:
                async with asyncio.timeout(2):
                    await kafka.producer.client.fetch_all_metadata()
            except (TimeoutError, KafkaError):
                problems.append("kafka")
        status, body = readiness(problems)
        return JSONResponse(body, status_code=status)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(intake().metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
