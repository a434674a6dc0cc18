"""A transient failure is not a dead letter: with its database cut away, a consumer retries with
a pause, sets nothing aside, says it is not ready, and once the database is back it resumes
where it was — every event counted once."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
from aiokafka import AIOKafkaProducer

from schemas.envelope import encode
from services.common.deadletters import read_all
from services.common.kafka import durable_producer
from tests.integration.feedback.harness import case_opened, resident
from tests.integration.metrics.support import DATABASE_URL, config_with, fresh_municipality, scrape
from tests.integration.norms.support import free_ports
from tests.integration.test_dead_letters import metric_sum, until
from tests.support.kafka import BOOTSTRAP, private_topics
from tests.support.services import running_service
from tests.support.tcp_proxy import TcpProxy

OPENED = "servicepuls_cases_opened_total"


def through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    auth = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{proxy.port}"))


async def publish(producer: AIOKafkaProducer, topic: str, municipality: str, n: int) -> None:
    someone = resident(email=f"t-{uuid.uuid4().hex[:6]}@example.org")
    for _ in range(n):
        framed = encode(case_opened(f"Z-T-{uuid.uuid4().hex[:8]}", someone, municipality))
        await producer.send_and_wait(
            topic, value=framed.value, key=framed.key, headers=framed.headers
        )


async def test_database_outage_is_retried_not_dead_lettered_and_resumes(tmp_path: Path) -> None:
    municipality = fresh_municipality()
    topic = f"servicepuls.intake.v1.test-tr-{uuid.uuid4().hex[:8]}"
    target = urlsplit(DATABASE_URL)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    (port,) = free_ports(1)
    env = {
        "SERVICEPULS_CONFIG_DIR": str(config_with(tmp_path, municipality)),
        "SERVICEPULS_DATABASE_URL": through(proxy, DATABASE_URL),
        "SERVICEPULS_METRICS_PORT": str(port),
        "SERVICEPULS_METRICS_CONSUMER_GROUP": f"metrics-tr-{uuid.uuid4().hex[:8]}",
        "SERVICEPULS_METRICS_TOPICS": json.dumps([topic]),
        "SERVICEPULS_METRICS_REFRESH_SECONDS": "1",
    }
    producer = durable_producer(BOOTSTRAP, "transient-test")
    try:
        async with private_topics(topic, partitions=1):
            await producer.start()
            async with running_service("metrics", port=port, env=env) as metrics:

                async def counted(n: int) -> bool:
                    return metric_sum(await scrape(metrics.base_url), OPENED, municipality) == n

                await publish(producer, topic, municipality, 5)
                await until(lambda: counted(5), "the first five counted")

                proxy.cut()
                await publish(producer, topic, municipality, 5)
                async with httpx.AsyncClient() as client:
                    started = time.monotonic()
                    ready = await client.get(metrics.base_url + "/ready", timeout=10)
                    assert ready.status_code == 503 and "database" in ready.json()["problems"]
                    assert time.monotonic() - started < 5  # answers, bounded, during the outage
                await asyncio.sleep(6)  # several tries, each failing
                # (Without its database the replica stops exporting business metrics: it cannot
                # hold the exporter lock. What it counted shows again afterwards.)
                assert not [d for d in await read_all(BOOTSTRAP) if d.origin_topic == topic]
                log = metrics.log_path.read_text()
                assert "batch not applied; retried after a pause" in log

                proxy.restore()
                await until(lambda: counted(10), "all ten counted once the database is back")
                await asyncio.sleep(2)
                assert await counted(10)  # and not more
                assert not [d for d in await read_all(BOOTSTRAP) if d.origin_topic == topic]
    finally:
        await producer.stop()
        await proxy.stop()
