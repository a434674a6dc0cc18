"""What Servicepuls concluded about this run: norm outcomes and surveys, read from the norms and
feedback topics (the same events the metrics service counts), limited to this run's cases and
contacts by the run tag in their references."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.envelope import Envelope, decode
from schemas.events import TOPICS, Family

NORM = "nl.servicepuls.norm."
SURVEY = "nl.servicepuls.survey."


@dataclass(slots=True)
class NormTally:
    goal: float
    met: int = 0
    missed: int = 0
    breached: int = 0
    warnings: int = 0
    cancelled: int = 0
    started: int = 0

    @property
    def compliance(self) -> float | None:
        decided = self.met + self.missed
        return self.met / decided if decided else None


@dataclass(slots=True)
class Outcomes:
    norms: dict[str, NormTally] = field(default_factory=dict)
    surveys: Counter[str] = field(default_factory=Counter)  # scheduled, sent, responded, ...
    suppressed: Counter[str] = field(default_factory=Counter)
    scores: list[int] = field(default_factory=list)
    scores_by_municipality: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    seen: int = 0

    def add(self, event: Envelope[Any]) -> None:
        self.seen += 1
        data = event.data
        if event.type.startswith(NORM):
            tally = self.norms.setdefault(data.norm_id, NormTally(goal=data.compliance_goal))
            kind = event.type.removeprefix(NORM).removesuffix(".v1")
            if kind == "clock_started":
                tally.started += 1
            elif kind == "met":
                tally.met += 1
            elif kind == "missed":
                tally.missed += 1
            elif kind == "breached":
                tally.breached += 1
            elif kind == "warning":
                tally.warnings += 1
            elif kind == "cancelled":
                tally.cancelled += 1
        elif event.type.startswith(SURVEY):
            kind = event.type.removeprefix(SURVEY).removesuffix(".v1")
            self.surveys[kind] += 1
            if kind == "suppressed":
                self.suppressed[str(data.reason)] += 1
            elif kind == "responded":
                self.scores.append(data.score)
                self.scores_by_municipality[event.municipality].append(data.score)

    @property
    def mean_score(self) -> float | None:
        return sum(self.scores) / len(self.scores) if self.scores else None


class TopicWatcher:
    """Tails the norms and feedback topics from the moment it starts."""

    def __init__(self, run_tag: str, bootstrap: str | None = None) -> None:
        self.marker = f"-{run_tag}-"
        # Subjects of this run without the marker: zaken sent through the connector, whose
        # case id is the zaak's uuid (filled in as they open).
        self.subjects: set[str] = set()
        self.bootstrap = bootstrap or os.environ.get(
            "SERVICEPULS_KAFKA_BOOTSTRAP", "127.0.0.1:9092"
        )
        self.outcomes = Outcomes()
        self.events: list[Envelope[Any]] = []
        self._seen: set[str] = set()
        self.error: str | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        partitions: list[TopicPartition] = []
        for family in (Family.NORMS, Family.FEEDBACK):
            topic = TOPICS[family]
            numbers = consumer.partitions_for_topic(topic)
            if not numbers:
                await consumer._client.force_metadata_update()
                numbers = consumer.partitions_for_topic(topic) or set()
            partitions += [TopicPartition(topic, n) for n in numbers]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        self._consumer = consumer
        self._task = asyncio.create_task(self._tail())

    async def _tail(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    try:
                        event = decode(record.headers, record.value)
                    except Exception as exc:  # another service's bug must not stop the demo
                        self.error = f"undecodable record on {record.topic}: {exc}"
                        continue
                    # The same event twice (source + id) is one event: several replicas or a
                    # replay may write it again.
                    ours = self.marker in event.subject or event.subject in self.subjects
                    if ours and event.dedupe_key not in self._seen:
                        self._seen.add(event.dedupe_key)
                        self.events.append(event)
                        self.outcomes.add(event)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer:
            # Closing may meet a broker that is restarting: that must not turn a finished run
            # (or a passed test) into a failure. A real cancellation of our task still goes on.
            try:
                await asyncio.wait_for(self._consumer.stop(), timeout=15)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
            except Exception:
                pass
