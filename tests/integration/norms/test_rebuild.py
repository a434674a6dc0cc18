"""The rebuild command (`servicepuls rebuild`) leaves exactly what the live path leaves: the same
outcome records, byte for byte, and the same rows in every norms table; and the live consumer
goes on from where the rebuild read to."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.common import Channel
from schemas.envelope import KafkaRecord, encode
from schemas.events import ContactCompleted, ContactReceived
from services.common.kafka import durable_producer, send_records
from services.common.settings import InfraSettings
from services.norms.rebuild import RebuildRefused, rebuild
from services.norms.settings import NormsSettings
from tests.integration.norms.support import (
    DATABASE_URL,
    drop_schema,
    event,
    fetchval,
    fingerprint,
    free_ports,
    new_schema,
    private_config,
    read_all,
    service_env,
    wait_until_settled,
)
from tests.integration.norms.test_replay import BASE, LATENESS, history
from tests.support.kafka import BOOTSTRAP, private_topics
from tests.support.services import running_service

pytestmark = pytest.mark.integration

# Every column of every norms table, but the wall-clock instants a row was written at
# (`updated_at`, `processed_at`, the partitions' `caught_up_since`), which no two runs share.
TABLES = {
    "clock": """SELECT clock_id, municipality, norm_id, subject_id, taken, next_decision_at,
                       norm_version, outcome, started_at, due_at, stopped_at,
                       transitions::text
                FROM {s}.clock ORDER BY clock_id""",
    "processed_event": "SELECT dedupe_key FROM {s}.processed_event ORDER BY dedupe_key",
    "compliance_daily": """SELECT municipality, norm_id, day, met, missed, cancelled, data_quality
                           FROM {s}.compliance_daily ORDER BY municipality, norm_id, day""",
    "partition_progress": """SELECT topic, partition, max_event_time, historical_at,
                                    caught_up_since IS NOT NULL AS caught_up
                             FROM {s}.partition_progress ORDER BY topic, partition""",
    "outbox": "SELECT count(*) FROM {s}.outbox",
}


async def table_contents(schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every norms table; a clock's transitions in event-time order (the live
    consumer stores them in the order they arrived, which across partitions depends on how the
    fetches interleaved; nothing reads that order)."""
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        contents = {
            name: [tuple(r) for r in await conn.fetch(query.format(s=f'"{schema}"'))]
            for name, query in TABLES.items()
        }
    finally:
        await conn.close()
    contents["clock"] = [
        (*row[:-1], sorted(orjson.loads(row[-1]), key=lambda t: (t[0], t[1], t[2])))
        for row in contents["clock"]
    ]
    return contents


async def committed(group: str, topic: str, partitions: int) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        await consumer.stop()


def differences(ours: list[tuple[Any, ...]], theirs: list[tuple[Any, ...]]) -> list[Any]:
    """The first rows that differ, column by column (index: rebuilt, live)."""
    found = [
        (row[0], [(i, a, b) for i, (a, b) in enumerate(zip(row, other, strict=True)) if a != b])
        for row, other in zip(ours, theirs, strict=False)
        if row != other
    ]
    return [len(ours), len(theirs), *found[:5]]


def flush_event(days: int) -> Any:
    """A phone call far ahead, so the watermark passes every due instant before it."""
    at = BASE + timedelta(days=days)
    return event(
        ContactCompleted(
            contact_id=f"T-{uuid.uuid4()}",
            channel=Channel.PHONE,
            topic="afval",
            started_at=at,
            wait_seconds=5,
        ),
        at,
    )


async def test_rebuild_leaves_what_the_live_path_leaves_and_hands_over(tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    intake_topic, live_topic, rebuilt_topic = (
        f"servicepuls.test-{run}.intake",
        f"servicepuls.test-{run}.norms-live",
        f"servicepuls.test-{run}.norms-rebuilt",
    )
    config = private_config(tmp_path, f"rebuild-{run}")
    rng = random.Random(run)
    events = history(rng)
    # Arrival order: each event late by up to an hour (less than the allowed lateness); some
    # events twice (a channel system retrying: no second effect), one record no event at all.
    arrival = sorted(events, key=lambda e: e.time + timedelta(minutes=rng.uniform(0, 60)))
    arrival[10:10] = [arrival[3], arrival[7]]
    records = [replace(encode(e), topic=intake_topic) for e in arrival]
    broken = KafkaRecord(intake_topic, b"broken", b"{not json", records[0].headers)
    records[20:20] = [broken]
    records.append(replace(encode(flush_event(200)), topic=intake_topic))
    schemas = [new_schema("norms_live"), new_schema("norms_rebuilt")]
    common = {
        "clock": "event",
        "allowed_lateness_seconds": str(LATENESS.total_seconds()),
        "idle_partition_seconds": "2",
        "intake_topic": intake_topic,
        "auto_offset_reset": "earliest",
    }
    settings = NormsSettings(
        db_schema=schemas[1],
        consumer_group=f"norms-test-{schemas[1]}",
        norms_topic=rebuilt_topic,
        intake_topic=intake_topic,
        clock="event",
        allowed_lateness_seconds=LATENESS.total_seconds(),
        idle_partition_seconds=2,
    )
    infra = InfraSettings(config_dir=config)
    producer = durable_producer(BOOTSTRAP, "norms-rebuild-test")
    await producer.start()
    try:
        async with private_topics(intake_topic, live_topic, rebuilt_topic):
            # The live path: a norms service while the traffic trickles in.
            [live_port] = free_ports(1)
            live_env = service_env(
                config, schemas[0], port=live_port, norms_topic=live_topic, **common
            )
            async with running_service("norms", port=live_port, env=live_env):
                for start in range(0, len(records), 20):
                    await send_records(producer, records[start : start + 20])
                    await asyncio.sleep(0.3)
                await wait_until_settled(schemas[0], expect_clocks=True)
                await asyncio.sleep(3)  # idle partitions (2 s) release the watermark
                await wait_until_settled(schemas[0])
            live = await read_all(live_topic)
            live_tables = await table_contents(schemas[0])

            # The rebuild of the same topic.
            report = await asyncio.to_thread(rebuild, infra, settings, workers=2)
            rebuilt = await read_all(rebuilt_topic)
            rebuilt_tables = await table_contents(schemas[1])
            ends = await committed(settings.consumer_group, intake_topic, 6)

            # A second rebuild would overwrite that state: refused unless told to replace it.
            with pytest.raises(RebuildRefused):
                await asyncio.to_thread(rebuild, infra, settings, workers=2)

            # Hand-over: a norms service on the rebuilt state goes on at the ends read to.
            mail = f"E-{uuid.uuid4()}"
            later = [
                event(
                    ContactReceived(contact_id=mail, channel=Channel.EMAIL, topic="afval"),
                    BASE + timedelta(days=201),
                ),
                flush_event(210),
            ]
            [port] = free_ports(1)
            env = service_env(config, schemas[1], port=port, norms_topic=rebuilt_topic, **common)
            async with running_service("norms", port=port, env=env):
                await send_records(
                    producer, [replace(encode(e), topic=intake_topic) for e in later]
                )
                clock = f"{later[0].municipality}/email_answered/{mail}"
                for _ in range(120):
                    if await fetchval(
                        f'SELECT count(*) FROM "{schemas[1]}".clock WHERE clock_id = $1', clock
                    ):
                        break
                    await asyncio.sleep(0.5)
                else:
                    raise AssertionError("the live consumer did not go on after the rebuild")
                # While it consumes, a rebuild (even one told to replace) leaves its state alone.
                with pytest.raises(RebuildRefused, match="member"):
                    await asyncio.to_thread(rebuild, infra, settings, workers=2, replace=True)
                applied = await fetchval(f'SELECT count(*) FROM "{schemas[1]}".processed_event')
                await asyncio.sleep(2)
                after = await read_all(rebuilt_topic)
    finally:
        await producer.stop()
        for schema in schemas:
            await drop_schema(schema)

    assert len(live) > 150
    assert report.read == len(records)
    assert (report.duplicates, report.dead_lettered) == (2, 1)
    assert report.outcomes == len(rebuilt)
    # Every outcome record, byte for byte (key, value, headers), each once.
    assert fingerprint(rebuilt) == fingerprint(live)
    # Every row of every table. (All clocks are decided here, the flush having passed them.)
    assert rebuilt_tables["clock"] and rebuilt_tables["processed_event"]
    for name in TABLES:
        assert rebuilt_tables[name] == live_tables[name], (
            name,
            differences(rebuilt_tables[name], live_tables[name]),
        )
    # Handed over at the ends of the partitions as they were read.
    assert ends == report.offsets
    assert sum(report.offsets.values()) == len(records)
    # The service applied only the two new events, and published nothing twice.
    assert applied == len(rebuilt_tables["processed_event"]) + 2
    ids = [dict(r.headers)["ce_id"] for r in after]
    assert len(ids) == len(set(ids)) > len(rebuilt)
