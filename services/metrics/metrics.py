"""The metrics service's own operational metrics (beside the business metrics it exposes), in the
service's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.duplicates = Counter(
            "servicepuls_metrics_duplicate_events",
            "Events delivered again (redelivery after a crash or rebalance) and not counted again.",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "servicepuls_metrics_batch_duration_seconds",
            "Time to apply one consumed batch to the durable aggregates.",
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.records_consumed = Counter(
            "servicepuls_metrics_records_consumed",
            "Records consumed from Kafka by this process (duplicates included).",
            ["topic"],
            registry=registry,
        )
