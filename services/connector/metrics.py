"""The connector's Prometheus metrics (labels bounded: municipality, kanaal, outcome, reason)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common.deadletters import dead_letter_counter


class ConnectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.notifications = Counter(
            "servicepuls_connector_notifications",
            "Notifications received, by outcome (queued, repeated, ignored, unauthorized)",
            ["municipality", "kanaal", "outcome"],
            registry=self.registry,
        )
        self.events = Counter(
            "servicepuls_connector_events",
            "Events admitted through intake's admission and acknowledged by Kafka",
            ["municipality", "type"],
            registry=self.registry,
        )
        self.retries = Counter(
            "servicepuls_connector_retries",
            "Notifications whose processing failed and was scheduled again, by reason",
            ["reason"],
            registry=self.registry,
        )
        # Every service's dead letters by one name (services.common.deadletters).
        self.dead_letters = dead_letter_counter(self.registry)
        # The queue as the database has it (all replicas), read when /metrics is scraped.
        self.queue = Gauge(
            "servicepuls_connector_queue_notifications",
            "Notifications in the connector's queue by state (pending, done, dead; done and "
            "dead are kept keep_done_days)",
            ["state"],
            registry=self.registry,
        )
        self.oldest_pending = Gauge(
            "servicepuls_connector_oldest_pending_seconds",
            "How long the oldest pending notification has waited since it came in",
            registry=self.registry,
        )
        self.processing = Histogram(
            "servicepuls_connector_processing_seconds",
            "Time to process one notification (fetching, mapping, admitting, publishing)",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
