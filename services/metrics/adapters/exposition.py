"""The in-memory view /metrics renders: loaded from PostgreSQL, advanced only after commits.

The view starts as a snapshot of the durable store. After each batch's transaction committed,
the batch's tally is added (fresh numbers without a database read per scrape); every
`refresh_seconds` the whole view is reloaded from the store, which picks up the work of other
replicas and makes the "now" gauges exact. Only one replica — the one holding a PostgreSQL
advisory lock — exposes the business metrics, so Prometheus never sees the same total twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from services.metrics.adapters.store import Snapshot
from services.metrics.domain.definitions import (
    BY_NAME,
    DEFINITIONS,
    UNKNOWN_MUNICIPALITY,
    Kind,
    declared_or_other,
)
from services.metrics.domain.tally import Labels, SeriesKey, Tally

# Gauges over state tables, and the counter whose label sets they take (so a gauge shows 0,
# not a vanished series, when the last open case of a type closes).
_GAUGE_LABELS_FROM = {
    "servicepuls_cases_open": "servicepuls_cases_opened",
    "servicepuls_norm_clocks_running": "servicepuls_norm_clocks_started",
    "servicepuls_norm_clocks_at_risk": "servicepuls_norm_clocks_started",
    "servicepuls_norm_clocks_overdue": "servicepuls_norm_clocks_started",
}


# Per metric, where its `channel_system` label is (stored: the event's source).
_CHANNEL_SYSTEM_AT = {
    d.name: d.labels.index("channel_system") for d in DEFINITIONS if "channel_system" in d.labels
}

# Per metric, where its `case_type` label is.
_CASE_TYPE_AT = {
    d.name: d.labels.index("case_type") for d in DEFINITIONS if "case_type" in d.labels
}


class AggregateView(Collector):
    def __init__(
        self,
        phone_answer_norm_seconds: float,
        served: Iterable[str],
        channel_system: Callable[[str], str] | None = None,
        case_types: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.snapshot = Snapshot()
        self.exporting = False
        self.loaded = False
        self.phone_answer_norm_seconds = phone_answer_norm_seconds
        self.served = frozenset(served)
        self.channel_system = channel_system
        self.case_types = case_types

    def public(self, metric: str, labels: Labels) -> Labels:
        """Municipalities this deployment does not serve become one `unknown` label value, so
        a wrong code from a channel system cannot grow the number of series; an event source
        (stored as sent) becomes the configured channel system that may post it; a case type
        the municipality did not declare becomes `other` (the consumer stores it so already;
        this covers rows stored before the municipality declared its list, state tables included)."""
        at = _CASE_TYPE_AT.get(metric)
        if at is not None and self.case_types is not None:
            shown = declared_or_other(labels[at], self.case_types.get(labels[0], ()))
            labels = (*labels[:at], shown, *labels[at + 1 :])
        if labels and BY_NAME[metric].labels[0] == "municipality" and labels[0] not in self.served:
            labels = (UNKNOWN_MUNICIPALITY, *labels[1:])
        at = _CHANNEL_SYSTEM_AT.get(metric)
        if at is not None and self.channel_system is not None:
            labels = (*labels[:at], self.channel_system(labels[at]), *labels[at + 1 :])
        return labels

    def replace(self, snapshot: Snapshot) -> None:
        public = Snapshot()
        self._add_counters(public, snapshot.counters)
        self._add_histograms(public, snapshot.histograms)
        public.gauges = self._public_gauges(snapshot.gauges)
        self.snapshot = public
        self.loaded = True

    def replace_gauges(self, gauges: dict[str, dict[Labels, float]]) -> None:
        self.snapshot.gauges = self._public_gauges(gauges)

    def add(self, t: Tally) -> None:
        """Add a committed batch's tally."""
        self._add_counters(self.snapshot, t.counters)
        self._add_histograms(
            self.snapshot,
            {
                key: ([float(b) for b in d.buckets], d.sum, float(d.count))
                for key, d in t.histograms.items()
            },
        )

    def _add_counters(self, target: Snapshot, counters: dict[SeriesKey, float]) -> None:
        for (metric, labels), value in counters.items():
            key = (metric, self.public(metric, labels))
            target.counters[key] = target.counters.get(key, 0.0) + value

    def _add_histograms(
        self, target: Snapshot, histograms: dict[SeriesKey, tuple[list[float], float, float]]
    ) -> None:
        for (metric, labels), (add_buckets, add_sum, add_count) in histograms.items():
            key = (metric, self.public(metric, labels))
            buckets, total, count = target.histograms.get(key, ([0.0] * len(add_buckets), 0.0, 0.0))
            target.histograms[key] = (
                [a + b for a, b in zip(buckets, add_buckets, strict=True)],
                total + add_sum,
                count + add_count,
            )

    def _public_gauges(
        self, gauges: dict[str, dict[Labels, float]]
    ) -> dict[str, dict[Labels, float]]:
        public: dict[str, dict[Labels, float]] = {}
        for metric, values in gauges.items():
            folded: dict[Labels, float] = {}
            for labels, value in values.items():
                key = self.public(metric, labels)
                if metric == "servicepuls_norm_compliance_goal_ratio":
                    folded[key] = max(folded.get(key, 0.0), value)  # a goal does not add up
                else:
                    folded[key] = folded.get(key, 0.0) + value
            public[metric] = folded
        return public

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
