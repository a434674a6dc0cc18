"""Helpers for the norms integration tests: a private configuration, events, topics, DB."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import yaml
from aiokafka import AIOKafkaConsumer

from schemas.common import Channel, Direction
from schemas.envelope import Envelope, KafkaRecord, decode, new_event
from schemas.events import ContactCompleted, EventData
from services.common.kafka import seek_to_start, topic_partitions
from services.common.settings import InfraSettings
from services.norms.adapters.outbox import records_of
from services.norms.adapters.repository import ClockRepository
from services.norms.domain.catalog import NormCatalog
from tests.support.kafka import BOOTSTRAP
from tests.support.services import running_service

REPO_ROOT = Path(__file__).resolve().parents[3]
DATABASE_URL = InfraSettings().database_url
SOURCE = "/buch/test"
MUNICIPALITY = "GM0383"

# A norm short enough to breach during a test: a "quick" case must be closed within 3 seconds.
QUICK_NORM = {
    "id": "test_quick_case",
    "name": {"nl": "Testzaak binnen 3 seconden gesloten", "en": "Test case closed within 3 s"},
    "target": {"amount": 3, "unit": "seconds"},
    "compliance_goal": 0.9,
    "warnings": [{"at": 0.5}],
    "start": [{"type": "case.opened", "case_type": ["test-snel"]}],
    "stop": [{"type": "case.closed"}],
}


def private_config(tmp: Path, version: str) -> Path:
    """deploy/config with the default catalog under its own version, plus the quick norm, so
    this test's outcomes are told apart from any other norms service on the shared topics."""
    target = tmp / f"config-{version}"
    shutil.copytree(REPO_ROOT / "deploy" / "config", target)
    path = target / "norms" / "default.yaml"
    catalog = yaml.safe_load(path.read_text())
    catalog["version"] = version
    catalog["norms"].append(QUICK_NORM)
    path.write_text(yaml.safe_dump(catalog, sort_keys=False))
    return target


def service_env(config: Path, schema: str, *, port: int, **settings: str) -> dict[str, str]:
    env = {
        "SERVICEPULS_CONFIG_DIR": str(config),
        "SERVICEPULS_NORMS_PORT": str(port),
        "SERVICEPULS_NORMS_DB_SCHEMA": schema,
        "SERVICEPULS_NORMS_CONSUMER_GROUP": f"norms-test-{schema}",
    }
    env.update({f"SERVICEPULS_NORMS_{k.upper()}": v for k, v in settings.items()})
    return env


def event(data: EventData, time: datetime, *, event_id: str | None = None) -> Envelope[Any]:
    return new_event(data, source=SOURCE, municipality=MUNICIPALITY, time=time, id=event_id)


def structured(envelope: Envelope[Any]) -> dict[str, Any]:
    """The CloudEvent as a channel system POSTs it to intake."""
    return envelope.model_dump(mode="json", exclude_none=True)


async def drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def fetchval(query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def outbox_records(schema: str, pool: asyncpg.Pool | None = None) -> list[KafkaRecord]:
    """The records waiting in a schema's outbox, in the order the relay sends them."""
    query = f'SELECT * FROM "{schema}".outbox ORDER BY id'
    if pool is not None:
        async with pool.acquire() as conn:
            rows = await conn.fetch(query)
    else:
        conn = await asyncpg.connect(DATABASE_URL)
        try:
            rows = await conn.fetch(query)
        finally:
            await conn.close()
    return [record for row in rows for record in records_of(row)]


async def read_all(topic: str, *, quiet_seconds: float = 2.0) -> list[Any]:
    """Every record of `topic`, once nothing new arrived for `quiet_seconds`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic)
        consumer.assign(partitions)
        await seek_to_start(consumer, partitions)
        records: list[Any] = []
        idle = 0.0
        while idle < quiet_seconds:
            batch = await consumer.getmany(timeout_ms=500)
            got = [r for rs in batch.values() for r in rs]
            records.extend(got)
            idle = 0.0 if got else idle + 0.5
        return records
    finally:
        await consumer.stop()


def decoded(records: list[Any]) -> list[Envelope[Any]]:
    return [decode(r.headers, r.value) for r in records]


def free_ports(count: int) -> list[int]:
    """Distinct ports nothing listens on now: two runs of these tests at once (two engineers,
    one host) must not find each other's service on a fixed port."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def new_schema(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def email_answer(mail_id: str, at: datetime) -> ContactCompleted:
    """The outbound e-mail that answers `mail_id` (stops its "answered within" clock)."""
    return ContactCompleted(
        contact_id=f"E-{uuid.uuid4()}",
        channel=Channel.EMAIL,
        direction=Direction.OUTBOUND,
        topic="afval",
        started_at=at,
        in_reply_to=mail_id,
    )


def repository(
    pool: asyncpg.Pool,
    schema: str,
    catalogs: dict[str, NormCatalog],
    kind: type[ClockRepository] = ClockRepository,
    **settings: Any,
) -> Any:
    """A repository on a test's own schema (wall clock unless `event_clock=True` is given)."""
    options: dict[str, Any] = {
        "intake_topic": "intake",
        "norms_topic": "norms",
        "event_clock": False,
        "allowed_lateness_seconds": 0,
        "idle_partition_seconds": 10,
    }
    options.update(settings)
    return kind(pool, schema, catalogs, **options)


async def wait_until_settled(
    schema: str, timeout: float = 180, expect_clocks: bool = False
) -> None:
    """All clocks decided and every outcome relayed."""
    deadline = time.monotonic() + timeout
    while expect_clocks and not await fetchval(f'SELECT count(*) FROM "{schema}".clock'):
        assert time.monotonic() < deadline, f"nothing consumed into {schema}"
        await asyncio.sleep(0.5)
    while True:
        pending = await fetchval(
            f'SELECT (SELECT count(*) FROM "{schema}".clock WHERE next_decision_at IS NOT NULL)'
            f' + (SELECT count(*) FROM "{schema}".outbox)'
        )
        if pending == 0:
            return
        assert time.monotonic() < deadline, f"{pending} decisions still pending in {schema}"
        await asyncio.sleep(0.5)


async def replayed(config: Path, schema: str, norms_topic: str, **settings: str) -> list[Any]:
    """A norms service on the empty `schema` replays the intake topic (`settings`) into
    `norms_topic`: what it published once every clock is decided, the idle partitions having
    released the watermark."""
    [port] = free_ports(1)
    env = service_env(config, schema, port=port, norms_topic=norms_topic, **settings)
    async with running_service("norms", port=port, env=env):
        await wait_until_settled(schema, expect_clocks=True)
        await asyncio.sleep(3)  # idle partitions (idle_partition_seconds=2) release the watermark
        await wait_until_settled(schema)
    return await read_all(norms_topic)


def fingerprint(records: list[Any]) -> list[tuple[bytes, bytes, tuple[tuple[str, bytes], ...]]]:
    return sorted((r.key, r.value, tuple(r.headers)) for r in records)
