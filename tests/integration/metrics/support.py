"""Shared pieces of the metrics integration tests: a config with a municipality of the test's own,
publishing to the real topics, and reading the service's /metrics."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.envelope import Envelope
from schemas.events import TOPICS
from services.common.kafka import durable_producer, publish
from tests.integration.metrics.traffic import TRAFFIC_CASE_TYPES, SampleKey, parse_metrics
from tests.support.services import REPO_ROOT

BOOTSTRAP = os.environ.get("SERVICEPULS_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
DATABASE_URL = os.environ.get(
    "SERVICEPULS_DATABASE_URL", "postgresql://servicepuls:servicepuls@127.0.0.1:55432/servicepuls"
)
PROMETHEUS = os.environ.get("SERVICEPULS_PROMETHEUS_URL", "http://127.0.0.1:9090")


def fresh_municipality() -> str:
    """A CBS-shaped code no real deployment uses (GM9xxx), so counts start at zero."""
    return f"GM9{random.randint(0, 999):03d}"


def config_with(
    tmp_path: Path, municipality: str, case_types: Sequence[str] = TRAFFIC_CASE_TYPES
) -> Path:
    """A copy of deploy/config whose municipality list also serves the test's municipality, and
    whose case-type list (every municipality's) also declares `case_types`."""
    target = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "deploy" / "config", target)
    declared = target / "case_types" / "default.yaml"
    listing = yaml.safe_load(declared.read_text())
    listing["case_types"].update({code: f"test: {code}" for code in case_types})
    declared.write_text(yaml.safe_dump(listing))
    listing = yaml.safe_load((target / "municipalities.yaml").read_text())
    listing["municipalities"].append(
        {
            "code": municipality,
            "name": f"Testgemeente {municipality}",
            "timezone": "Europe/Amsterdam",
            "calendar": "buch",
            "norms": "default",
            "survey_policy": "default",
        }
    )
    (target / "municipalities.yaml").write_text(yaml.safe_dump(listing))
    return target


async def start_group_at_end(group: str, topics: list[str] | None = None) -> None:
    """Commit the current end offsets for a new consumer group, so a service started with it
    reads exactly what is published from now on (and nothing of the topics' history)."""
    topics = topics or list(TOPICS.values())
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: ends[tp] for tp in partitions})
    finally:
        await consumer.stop()


class Publisher:
    def __init__(self) -> None:
        self.producer = durable_producer(BOOTSTRAP, "metrics-tests")

    async def __aenter__(self) -> Publisher:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(
        self, events: Sequence[Envelope[Any]], *, chunk: int = 50, pause: float = 0.0
    ) -> None:
        for start in range(0, len(events), chunk):
            await publish(self.producer, events[start : start + chunk])
            if pause:
                await asyncio.sleep(pause)


async def scrape(base_url: str) -> dict[SampleKey, float]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(base_url + "/metrics")
        response.raise_for_status()
        return parse_metrics(response.text)


async def scrape_text(base_url: str) -> str:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(base_url + "/metrics")
        response.raise_for_status()
        return response.text
