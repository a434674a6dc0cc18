"""Intake's Prometheus metrics, in a registry of their own (one per app). Labels are bounded:
route, status, municipality code, channel system name, reason."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


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
