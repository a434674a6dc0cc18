"""Norms benchmark: breach-detection lag with many open clocks, consumer throughput against a
raw aiokafka read-and-parse baseline, and replay time.

    .venv/bin/python -m benchmarks.norms                     # 1,000,000 clocks, 200,000 events
    .venv/bin/python -m benchmarks.norms --clocks 100000 --events 50000

Runs against the local stack, on private topics and a private PostgreSQL schema (dropped after).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.common import Channel, Direction
from schemas.envelope import decode, encode
from schemas.events import CaseClosed, CaseOpened, CaseOutcome, ContactCompleted, ContactReceived
from services.common.kafka import durable_producer, send_records
from services.common.migrations import migrate
from services.norms.app import MIGRATIONS
from tests.integration.norms.support import (
    DATABASE_URL,
    drop_schema,
    event,
    free_ports,
    private_config,
    private_topics,
    service_env,
)
from tests.support.kafka import BOOTSTRAP
from tests.support.services import running_service


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    cluster = await consumer._client.fetch_all_metadata()
    return [TopicPartition(topic, p) for p in cluster.partitions_for_topic(topic) or []]


# ---- 1. breach-detection lag -------------------------------------------------------------------


async def breach_lag(config: Path, clocks: int, due: int) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    schema, norms_topic = f"norms_bench_{run}", f"servicepuls.bench-{run}.norms"
    intake_topic = f"servicepuls.bench-{run}.intake"
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await migrate(conn, schema, MIGRATIONS)
        now = datetime.now(UTC)
        start_us = int(now.timestamp() * 1e6)
        print(f"  loading {clocks:,} open clocks into PostgreSQL …", flush=True)
        loaded = time.perf_counter()
        chunk = 100_000
        for offset in range(0, clocks, chunk):
            rows = []
            for i in range(offset, min(clocks, offset + chunk)):
                subject = f"Z-{i}"
                transitions = orjson.dumps(
                    [[start_us, "start", f"bench\x1f{i}", 0, "", {}]]
                ).decode()
                rows.append(
                    (
                        f"GM0383/decision_made/{subject}",
                        "GM0383",
                        "decision_made",
                        subject,
                        transitions,
                        "started",
                        now + timedelta(days=20, seconds=i % 86_400),
                    )
                )
            await conn.copy_records_to_table(
                "clock",
                schema_name=schema,
                columns=[
                    "clock_id",
                    "municipality",
                    "norm_id",
                    "subject_id",
                    "transitions",
                    "taken",
                    "next_decision_at",
                ],
                records=rows,
            )
        print(f"  loaded in {time.perf_counter() - loaded:.1f}s", flush=True)
    finally:
        await conn.close()
    [port] = free_ports(1)
    env = service_env(
        config,
        schema,
        port=port,
        norms_topic=norms_topic,
        intake_topic=intake_topic,
        auto_offset_reset="latest",
    )
    lags: list[float] = []
    try:
        async with (
            private_topics(intake_topic, norms_topic),
            running_service("norms", port=port, env=env),
        ):
            consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
            await consumer.start()
            try:
                tps = await partitions_of(consumer, norms_topic)
                consumer.assign(tps)
                await consumer.seek_to_end(*tps)
                for tp in tps:
                    await consumer.position(tp)
                # Quick clocks (3 s target) started now, due 3 s later, spread over ~10 s.
                conn = await asyncpg.connect(DATABASE_URL)
                try:
                    base = datetime.now(UTC) + timedelta(seconds=2)
                    rows = []
                    for i in range(due):
                        started = base + timedelta(seconds=10 * i / due)
                        s_us = int(started.timestamp() * 1e6)
                        rows.append(
                            (
                                f"GM0383/test_quick_case/Q-{run}-{i}",
                                "GM0383",
                                "test_quick_case",
                                f"Q-{run}-{i}",
                                orjson.dumps([[s_us, "start", f"q\x1f{i}", 0, "", {}]]).decode(),
                                "started|warning:50%",
                                started + timedelta(seconds=3),
                            )
                        )
                    await conn.copy_records_to_table(
                        "clock",
                        schema_name=schema,
                        columns=[
                            "clock_id",
                            "municipality",
                            "norm_id",
                            "subject_id",
                            "transitions",
                            "taken",
                            "next_decision_at",
                        ],
                        records=rows,
                    )
                finally:
                    await conn.close()
                deadline = time.monotonic() + 60
                while len(lags) < due and time.monotonic() < deadline:
                    batch = await consumer.getmany(timeout_ms=200)
                    received = time.time()
                    for records in batch.values():
                        for record in records:
                            e = decode(record.headers, record.value)
                            if e.type.endswith("norm.breached.v1"):
                                lags.append(received - e.time.timestamp())
            finally:
                await consumer.stop()
    finally:
        await drop_schema(schema)
    return {
        "breaches": len(lags),
        "p50": statistics.median(lags) if lags else float("nan"),
        "p99": percentile(lags, 0.99) if lags else float("nan"),
        "max": max(lags) if lags else float("nan"),
    }


# ---- 2. consumer throughput and replay ------------------------------------------------------------


def traffic(count: int, rng: random.Random) -> list[Any]:
    """A realistic mix: phone calls, e-mails with answers, public-space reports."""
    events: list[Any] = []
    base = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    year = 365 * 24 * 3600
    while len(events) < count:
        t = base + timedelta(seconds=rng.uniform(0, year))
        kind = rng.random()
        if kind < 0.5:
            events.append(
                event(
                    ContactCompleted(
                        contact_id=f"T-{uuid.uuid4()}",
                        channel=Channel.PHONE,
                        topic="afval",
                        started_at=t,
                        wait_seconds=rng.uniform(0, 120),
                        handling_seconds=180,
                    ),
                    t,
                )
            )
        elif kind < 0.8:
            mail = f"E-{uuid.uuid4()}"
            events.append(
                event(ContactReceived(contact_id=mail, channel=Channel.EMAIL, topic="afval"), t)
            )
            answer = t + timedelta(hours=rng.uniform(1, 96))
            events.append(
                event(
                    ContactCompleted(
                        contact_id=f"E-{uuid.uuid4()}",
                        channel=Channel.EMAIL,
                        direction=Direction.OUTBOUND,
                        topic="afval",
                        started_at=answer,
                        in_reply_to=mail,
                    ),
                    answer,
                )
            )
        else:
            case = f"Z-{uuid.uuid4()}"
            events.append(
                event(
                    CaseOpened(
                        case_id=case,
                        case_type="melding-openbare-ruimte",
                        channel=Channel.PUBLIC_SPACE_REPORT,
                    ),
                    t,
                )
            )
            closed = t + timedelta(days=rng.uniform(0.5, 20))
            events.append(
                event(
                    CaseClosed(
                        case_id=case,
                        case_type="melding-openbare-ruimte",
                        outcome=CaseOutcome.RESOLVED,
                    ),
                    closed,
                )
            )
    events.sort(key=lambda e: e.time)
    return events[:count]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def raw_read(topic: str, count: int) -> tuple[float, float]:
    """Baseline: a plain aiokafka consumer that only reads and parses the same records.
    Returns events per second of wall time and per second of CPU time."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        began, cpu = time.perf_counter(), time.process_time()
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                for record in records:
                    decode(record.headers, record.value)
                    seen += 1
        return seen / (time.perf_counter() - began), seen / (time.process_time() - cpu)
    finally:
        await consumer.stop()


async def consumer_throughput(config: Path, count: int) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    schema = f"norms_bench_{run}"
    intake_topic, norms_topic = f"servicepuls.bench-{run}.intake", f"servicepuls.bench-{run}.norms"
    rng = random.Random(7)
    print(f"  generating {count:,} intake events …", flush=True)
    events = traffic(count, rng)
    try:
        async with private_topics(intake_topic, norms_topic):
            producer = durable_producer(BOOTSTRAP, "norms-bench", linger_ms=20)
            await producer.start()
            try:
                for start in range(0, len(events), 10_000):
                    await send_records(
                        producer,
                        [
                            replace(encode(e), topic=intake_topic)
                            for e in events[start : start + 10_000]
                        ],
                    )
            finally:
                await producer.stop()
            raw_rate, raw_cpu_rate = await raw_read(intake_topic, count)
            [port] = free_ports(1)
            env = service_env(
                config,
                schema,
                port=port,
                norms_topic=norms_topic,
                intake_topic=intake_topic,
                auto_offset_reset="earliest",
                clock="event",
                allowed_lateness_seconds="3600",
                max_batch="5000",
            )
            async with running_service("norms", port=port, env=env) as service:
                # The service is ready once it is assigned partitions; it is already consuming.
                assert service.process is not None
                began, cpu = time.perf_counter(), cpu_seconds(service.process.pid)
                processed = 0.0
                async with httpx.AsyncClient(base_url=service.base_url, timeout=60) as client:
                    while processed < count:
                        await asyncio.sleep(0.25)
                        text = (await client.get("/metrics")).text
                        for line in text.splitlines():
                            if line.startswith("servicepuls_norms_events_processed_total"):
                                processed = float(line.split()[-1])
                elapsed = time.perf_counter() - began
                used = cpu_seconds(service.process.pid) - cpu
    finally:
        await drop_schema(schema)
    rate = count / elapsed
    return {
        "raw_rate": raw_rate,
        "norms_rate": rate,
        "ratio": rate / raw_rate,
        "raw_cpu_rate": raw_cpu_rate,
        "norms_cpu_rate": count / used,
        "cpu_ratio": (count / used) / raw_cpu_rate,
    }


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.norms")
    parser.add_argument("--clocks", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=300)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--skip-lag", action="store_true", help="only the consumer throughput and replay"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        config = private_config(Path(tmp), f"bench-{uuid.uuid4().hex[:6]}")
        if not args.skip_lag:
            print(f"1. breach-detection lag with {args.clocks:,} open clocks", flush=True)
            lag = await breach_lag(config, args.clocks, args.due)
            print(f"   breaches measured: {lag['breaches']}")
            print(
                f"   lag due instant → breach on Kafka: p50 {lag['p50'] * 1000:.0f} ms, "
                f"p99 {lag['p99'] * 1000:.0f} ms, max {lag['max'] * 1000:.0f} ms "
                f"(goal p99 < 1000 ms: {'met' if lag['p99'] < 1 else 'NOT met'})"
            )
        print(
            f"2. consumer throughput on {args.events:,} intake events (replay into an empty "
            "database, event-time clock)",
            flush=True,
        )
        tp = await consumer_throughput(config, args.events)
        print(f"   raw aiokafka read + parse: {tp['raw_rate']:,.0f} events/s (baseline)")
        print(
            f"   norms consumer:            {tp['norms_rate']:,.0f} events/s "
            f"= {tp['ratio']:.0%} of raw (goal ≥ 30%: {'met' if tp['ratio'] >= 0.3 else 'NOT met'})"
        )
        print(
            f"   per CPU second (one core, whatever else runs): raw {tp['raw_cpu_rate']:,.0f}, "
            f"norms {tp['norms_cpu_rate']:,.0f} events = {tp['cpu_ratio']:.0%} "
            "(the norms process relays and schedules too)"
        )
        replay = 3_000_000 / tp["norms_rate"]
        print(
            f"3. replay of one year of a large municipality (3,000,000 events), projected "
            f"from the measured rate: {replay / 60:.1f} min"
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
