"""The norms service's own Prometheus metrics, in the service's registry, and how a step's
result is counted in them."""

from __future__ import annotations

import collections
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.norms.service import BatchResult

_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0)


class NormsMetrics:
    def __init__(self, registry: CollectorRegistry, channel_system: Callable[[str], str]) -> None:
        # Data-quality problems are counted per channel system (intake's channel systems).
        self.channel_system = channel_system
        self.processed = Counter(
            "servicepuls_norms_events_processed",
            "Intake events applied to clocks (first delivery only).",
            registry=registry,
        )
        self.duplicates = Counter(
            "servicepuls_norms_duplicate_events",
            "Intake events delivered again and not applied again.",
            registry=registry,
        )
        self.decisions = Counter(
            "servicepuls_norms_decisions",
            "Norm decisions taken (started, warning, breached, met, missed, cancelled).",
            ["municipality", "norm", "kind"],
            registry=registry,
        )
        self.data_quality = Counter(
            "servicepuls_norms_data_quality_problems",
            "Input events dated before the start of a clock they concern, by channel system and "
            "problem (stopped_before_start cancels the clock; the others are ignored).",
            ["municipality", "norm", "channel_system", "problem"],
            registry=registry,
        )
        self.scheduler_lag = Histogram(
            "servicepuls_norms_scheduler_lag_seconds",
            "From a warning's or breach's due instant to the scheduler taking it (wall mode).",
            registry=registry,
            buckets=_LAG_BUCKETS,
        )
        self.breach_publish_lag = Histogram(
            "servicepuls_norms_breach_publish_lag_seconds",
            "From a breach's due instant to Kafka acknowledging the breach event (wall mode).",
            registry=registry,
            buckets=_LAG_BUCKETS,
        )
        self.scheduler_failures = Counter(
            "servicepuls_norms_scheduler_failures",
            "Scheduler rounds that failed (transient: database away; other: a fault to look at).",
            ["kind"],
            registry=registry,
        )
        self.backlog = Gauge(
            "servicepuls_norms_outbox_backlog",
            "Norm events committed but not yet published to Kafka.",
            registry=registry,
        )
        self.now = Gauge(
            "servicepuls_norms_now_seconds",
            "The service's notion of now (wall clock or event-time watermark), Unix seconds.",
            registry=registry,
        )

    def count(self, result: BatchResult) -> None:
        """The decisions and data-quality problems of a step."""
        for (municipality, norm, kind), n in collections.Counter(result.decisions).items():
            self.decisions.labels(municipality, norm, kind).inc(n)
        for municipality, norm, source, problem in result.data_quality:
            self.data_quality.labels(municipality, norm, self.channel_system(source), problem).inc()

    def applied(self, result: BatchResult) -> None:
        """A batch of intake events applied: what it applied, skipped and decided."""
        self.processed.inc(result.applied)
        self.duplicates.inc(result.duplicates)
        self.count(result)
