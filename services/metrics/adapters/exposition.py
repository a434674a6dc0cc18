"""The in-memory view /metrics renders: loaded from PostgreSQL, advanced only after commits.

The view starts as a snapshot of the durable store. After each batch's transaction committed,
the batch's tally is added (fresh numbers without a database read per scrape); every
`refresh_seconds` the whole view is reloaded from the store, which picks up the work of other
replicas and makes the "now" gauges exact. Only one replica — the one holding a PostgreSQL
advisory lock — exposes the business metrics, so Prometheus never sees the same total twice.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from services.metrics.adapters.store import Snapshot
from services.metrics.domain.definitions import BY_NAME, DEFINITIONS, Kind
from services.metrics.domain.tally import Labels, Tally

# Gauges over state tables, and the counter whose label sets they take (so a gauge shows 0,
# not a vanished series, when the last open case of a type closes).
_GAUGE_LABELS_FROM = {
    "servicepuls_cases_open": "servicepuls_cases_opened",
    "servicepuls_norm_clocks_running": "servicepuls_norm_clocks_started",
    "servicepuls_norm_clocks_at_risk": "servicepuls_norm_clocks_started",
    "servicepuls_norm_clocks_overdue": "servicepuls_norm_clocks_started",
}


class AggregateView(Collector):
    def __init__(self, phone_answer_norm_seconds: float) -> None:
        self.snapshot = Snapshot()
        self.exporting = False
        self.loaded = False
        self.phone_answer_norm_seconds = phone_answer_norm_seconds

    def replace(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.loaded = True

    def replace_gauges(self, gauges: dict[str, dict[Labels, float]]) -> None:
        self.snapshot.gauges = gauges

    def add(self, t: Tally) -> None:
        """Add a committed batch's tally."""
        counters = self.snapshot.counters
        for key, value in t.counters.items():
            counters[key] = counters.get(key, 0.0) + value
        histograms = self.snapshot.histograms
        for key, delta in t.histograms.items():
            buckets, total, count = histograms.get(key, ([0.0] * len(delta.buckets), 0.0, 0.0))
            histograms[key] = (
                [a + b for a, b in zip(buckets, delta.buckets, strict=True)],
                total + delta.sum,
                count + delta.count,
            )

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "servicepuls_metrics_exporting",
            "1 if this replica exposes the business metrics (holds the exporter lock), else 0.",
            value=1.0 if self.exporting else 0.0,
        )
        if not (self.exporting and self.loaded):
            return
        yield GaugeMetricFamily(
            "servicepuls_phone_answer_norm_seconds",
            "The phone service-level norm: a call answered within this many seconds.",
            value=self.phone_answer_norm_seconds,
        )
        snap = self.snapshot
        by_metric: dict[str, list[Labels]] = {}
        for metric, labels in [*snap.counters, *snap.histograms]:
            by_metric.setdefault(metric, []).append(labels)
        for definition in DEFINITIONS:
            names = list(definition.labels)
            if definition.kind is Kind.COUNTER:
                family = CounterMetricFamily(definition.name, definition.help, labels=names)
                for labels in sorted(by_metric.get(definition.name, [])):
                    family.add_metric(list(labels), snap.counters[(definition.name, labels)])
                yield family
            elif definition.kind is Kind.HISTOGRAM:
                hist = HistogramMetricFamily(definition.name, definition.help, labels=names)
                edges = [floatToGoString(b) for b in definition.buckets] + ["+Inf"]
                for labels in sorted(by_metric.get(definition.name, [])):
                    buckets, total, _count = snap.histograms[(definition.name, labels)]
                    cumulative, running = [], 0.0
                    for edge, count in zip(edges, buckets, strict=True):
                        running += count
                        cumulative.append((edge, running))
                    hist.add_metric(list(labels), cumulative, sum_value=total)
                yield hist
            else:
                gauge = GaugeMetricFamily(definition.name, definition.help, labels=names)
                values = dict(snap.gauges.get(definition.name, {}))
                source = _GAUGE_LABELS_FROM.get(definition.name)
                if source is not None:
                    width = len(BY_NAME[definition.name].labels)
                    for labels in by_metric.get(source, []):
                        values.setdefault(labels[:width], 0.0)
                for labels, value in sorted(values.items()):
                    gauge.add_metric(list(labels), value)
                yield gauge
