"""Composition root of the metrics service: configuration (municipalities, calendars, declared
case types), the service (services/metrics/service.py), its Kafka subscriber (consumer group
`metrics`) and its HTTP face (/health, /ready, /metrics)."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    make_asgi_app,
)

from services.common.calendar import BusinessCalendar
from services.common.calendar_files import load_calendars
from services.common.config import load_case_types, load_municipalities
from services.common.consumer import BatchConsumer
from services.common.deadletters import DeadLetters, dead_letter_counter
from services.common.health import (
    database_check,
    health_routes,
    kafka_check,
)
from services.common.logging import configure_logging
from services.common.settings import InfraSettings
from services.intake.domain.channel_systems import SourceLabels
from services.intake.settings import IntakeSettings
from services.metrics.adapters.exposition import AggregateView
from services.metrics.adapters.lag import ConsumerLag
from services.metrics.domain.tally import Policy
from services.metrics.entrypoints.consumer import register_consumer
from services.metrics.metrics import ServiceMetrics
from services.metrics.service import MetricsService
from services.metrics.settings import MetricsSettings


def build_app(
    settings: MetricsSettings | None = None, infra: InfraSettings | None = None
) -> AsgiFastStream:
    settings = settings or MetricsSettings()
    infra = infra or InfraSettings()
    log = configure_logging("metrics", infra.log_level, infra.log_format)
    municipalities = load_municipalities(infra.config_dir)
    policy = Policy(
        municipalities={m.code: m.zone for m in municipalities.municipalities},
        phone_answer_norm_seconds=settings.phone_answer_norm_seconds,
        complaint_case_types=frozenset(settings.complaint_case_types),
        calendars=load_calendars(infra.config_dir, municipalities),
        default_calendar=BusinessCalendar(zone=ZoneInfo("Europe/Amsterdam")),
        case_types=load_case_types(infra.config_dir, municipalities),
    )

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    view = AggregateView(
        settings.phone_answer_norm_seconds,
        policy.municipalities,
        # Data-quality problems per channel system: intake's channel systems.
        SourceLabels.from_file(IntakeSettings(infra=infra).channel_systems_path()),
        policy.case_types,
    )
    registry.register(view)
    lag = ConsumerLag(infra.kafka_bootstrap, settings.lag_groups, settings.topics)
    registry.register(lag)
    dead_letters = DeadLetters(
        infra.kafka_bootstrap, "metrics", dead_letter_counter(registry), log=log
    )
    service = MetricsService(
        settings=settings,
        infra=infra,
        policy=policy,
        view=view,
        lag=lag,
        dead_letters=dead_letters,
        metrics=ServiceMetrics(registry),
        registry=registry,
        log=log,
    )
    broker = KafkaBroker(
        infra.kafka_bootstrap, client_id="servicepuls-metrics", logger=log, log_level=logging.DEBUG
    )
    register_consumer(broker, service, BatchConsumer(dead_letters, log))
    return AsgiFastStream(
        broker,
        asgi_routes=[
            *health_routes(
                database_check(lambda: service.pool),
                kafka_check(broker),
                service.aggregates_loaded,
            ),
            ("/metrics", make_asgi_app(registry)),
        ],
        on_startup=[service.start],
        after_shutdown=[service.stop],
    )
