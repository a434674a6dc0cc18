"""Consumer lag of every Servicepuls consumer group, read from Kafka (committed vs. end offsets).

Exported by the metrics service so one alert rule watches all consumers, including the ones
that are stuck and can no longer report anything themselves.
"""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = structlog.get_logger("metrics.lag")


class ConsumerLag(Collector):
    def __init__(self, bootstrap: str, groups: list[str], topics: list[str]) -> None:
        self.bootstrap = bootstrap
        self.groups = groups
        self.topics = topics
        self.lag: dict[tuple[str, str], float] = {}
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None

    async def _connect(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        # Connected lazily (and again after a failure) so Kafka being away at start-up delays
        # the lag figures, not the service.
        if self._admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            await admin.start()
            self._admin = admin
        if self._offsets is None:
            offsets = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
            await offsets.start()
            self._offsets = offsets
        return self._admin, self._offsets

    async def stop(self) -> None:
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
        if self._offsets is not None:
            await self._offsets.stop()
            self._offsets = None

    async def measure(self) -> None:
        try:
            await self._measure()
        except Exception:
            await self.stop()
            raise

    async def _measure(self) -> None:
        admin, offsets = await self._connect()
        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in sorted(offsets.partitions_for_topic(topic) or [])
        ]
        if not partitions:
            await offsets._client.force_metadata_update()  # not fetched yet; next time
            return
        ends = await offsets.end_offsets(partitions)
        lag: dict[tuple[str, str], float] = {}
        for group in self.groups:
            committed = await admin.list_consumer_group_offsets(group)
            if not committed:
                continue  # a group that never committed (not deployed): nothing to watch
            for tp in partitions:
                meta = committed.get(tp)
                position = meta.offset if meta is not None and meta.offset >= 0 else 0
                key = (group, tp.topic)
                lag[key] = lag.get(key, 0.0) + max(0, ends[tp] - position)
        self.lag = lag

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "servicepuls_kafka_consumer_group_lag",
            "Records on a topic not yet committed by a consumer group (end offset - committed).",
            labels=["group", "topic"],
        )
        for (group, topic), value in sorted(self.lag.items()):
            gauge.add_metric([group, topic], value)
        yield gauge
