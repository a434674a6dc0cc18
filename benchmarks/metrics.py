"""Metrics benchmark: freshness (event posted to intake -> visible in /metrics) at a steady load,
and the metrics consumer's throughput against a raw aiokafka read-and-decode consumer.

    .venv/bin/python -m benchmarks.metrics                       # 50 events/s for 20 s; 20,000 events
    .venv/bin/python -m benchmarks.metrics --rate 100 --seconds 30 --events 50000

Freshness uses the real topics and intake (the one on 8080 if it is up, else one started here);
the metrics service under test runs on its own port with a consumer group of its own starting at
the end of the topics. Throughput uses private copies of the three topics (deleted after), so
other traffic on the stack does not count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.common import Channel
from schemas.envelope import decode, encode, new_event
from schemas.events import CaseOpened
from services.common.kafka import durable_producer, seek_to_start, send_records
from tests.integration.metrics.support import (
    DATABASE_URL,
    config_with,
    fresh_municipality,
    scrape,
)
from tests.integration.metrics.traffic import make_traffic, mismatches
from tests.support.services import running_service

BOOTSTRAP = os.environ.get("SERVICEPULS_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
INTAKE = "http://127.0.0.1:8080"
METRICS_PORT = 18083
QUIET = {"SERVICEPULS_LOG_LEVEL": "WARNING"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- freshness ---------------------------------------------------------------------------------


async def _opened_count(client: httpx.AsyncClient, url: str, case_type: str) -> int:
    text = (await client.get(url, timeout=5)).text
    pattern = rf'^servicepuls_cases_opened_total\{{[^}}]*case_type="{case_type}"[^}}]*\}} (\S+)$'
    return sum(int(float(m)) for m in re.findall(pattern, text, flags=re.M))


def _case_document(case_type: str, number: int) -> dict[str, object]:
    event = new_event(
        CaseOpened(
            case_id=f"bench-{case_type}-{number}", case_type=case_type, channel=Channel.WEBFORM
        ),
        source="/bench/metrics",
        municipality="GM0383",
        time=datetime.now(UTC) - timedelta(seconds=1),
    )
    return event.model_dump(mode="json", exclude_none=True)


async def freshness(rate: float, seconds: float) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    case_type = f"bench_{run}"
    # A case type of this run only, so other traffic does not count: declared in a config of
    # its own (an undeclared one would be counted as `other`).
    config = tempfile.TemporaryDirectory()
    env = {
        **QUIET,
        "SERVICEPULS_CONFIG_DIR": str(
            config_with(Path(config.name), fresh_municipality(), case_types=[case_type])
        ),
        "SERVICEPULS_METRICS_PORT": str(METRICS_PORT),
        "SERVICEPULS_METRICS_CONSUMER_GROUP": f"metrics-bench-{run}",
        "SERVICEPULS_METRICS_AUTO_OFFSET_RESET": "latest",
    }
    async with AsyncExitStack() as stack:
        stack.enter_context(config)
        client = await stack.enter_async_context(
            httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=500))
        )
        intake = INTAKE
        try:
            up = (await client.get(INTAKE + "/ready", timeout=2)).status_code == 200
        except httpx.HTTPError:
            up = False
        if not up:
            service = await stack.enter_async_context(
                running_service(
                    "intake", port=18080, env={**QUIET, "SERVICEPULS_INTAKE_PORT": "18080"}
                )
            )
            intake = service.base_url
        metrics = await stack.enter_async_context(
            running_service("metrics", port=METRICS_PORT, env=env)
        )
        url = metrics.base_url + "/metrics"
        headers = {"Authorization": "Bearer dev-test"}

        async def post(number: int) -> None:
            response = await client.post(
                intake + "/v1/events", json=_case_document(case_type, number), headers=headers
            )
            response.raise_for_status()

        # Wait until the new consumer group owns its partitions (it starts at the end of the
        # topics, so probes posted before that are never seen): one probe must come through.
        deadline = time.monotonic() + 90
        probes = 0
        while await _opened_count(client, url, case_type) < 1:
            if time.monotonic() > deadline:
                raise TimeoutError("probe event never visible in /metrics")
            probes += 1
            await post(-probes)
            await asyncio.sleep(2)
        await asyncio.sleep(2.5)  # probes still in flight become visible before we start
        base = await _opened_count(client, url, case_type)

        total = int(rate * seconds)
        posted_at: list[float] = [0.0] * total
        acked_at: list[float] = [0.0] * total
        visible_at: list[float | None] = [None] * total

        async def post_timed(i: int) -> None:
            await post(i + 1)
            acked_at[i] = time.perf_counter()

        async def load() -> None:
            start = time.perf_counter()
            tasks = []
            for i in range(total):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                posted_at[i] = time.perf_counter()
                tasks.append(asyncio.create_task(post_timed(i)))
            await asyncio.gather(*tasks)

        async def watch() -> None:
            seen = 0
            end = time.perf_counter() + seconds + 60
            while seen < total and time.perf_counter() < end:
                count = await _opened_count(client, url, case_type) - base
                now = time.perf_counter()
                for i in range(seen, min(count, total)):
                    visible_at[i] = now
                seen = max(seen, min(count, total))
                await asyncio.sleep(0.05)  # a scrape costs the service ~15 ms of CPU

        await asyncio.gather(load(), watch())
    # Count-based: the i-th event is visible once the counter shows i events (Kafka partitions
    # do not keep order across each other; the mean effect on the percentiles is small).
    lags = [v - p for p, v in zip(posted_at, visible_at, strict=True) if v is not None]
    missing = sum(v is None for v in visible_at)
    if missing:
        print(f"  warning: {missing} events not visible within 60 s", file=sys.stderr)
    acks = [a - p for p, a in zip(posted_at, acked_at, strict=True)]
    return {
        "events": float(total),
        "intake_p50": statistics.median(acks),
        "intake_p99": percentile(acks, 0.99),
        "p50": statistics.median(lags),
        "p99": percentile(lags, 0.99),
        "max": max(lags),
    }


async def _time_until_exact(
    client: httpx.AsyncClient, base_url: str, n: int, expected: dict
) -> float:
    """Seconds from the first record the service consumed until every figure is exact."""
    consumed = re.compile(r"^servicepuls_metrics_records_consumed_total\{[^}]*\} (\S+)$", re.M)
    started = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        text = (await client.get(base_url + "/metrics", timeout=5)).text
        now = time.perf_counter()
        records = sum(float(v) for v in consumed.findall(text))
        if started is None and records > 0:
            started = now
        if records >= n and not mismatches(expected, await scrape(base_url)):
            return now - (started or now)
        await asyncio.sleep(0.25)
    raise TimeoutError("metrics never reached the exact counts")


# --- throughput --------------------------------------------------------------------------------


async def unused_municipality() -> str:
    """A GM9xxx code with no counts yet, so the run's expected figures are the totals."""
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        used = {
            r[0] for r in await conn.fetch("SELECT DISTINCT labels[1] FROM metrics.series") if r[0]
        }
    finally:
        await conn.close()
    return next(
        f"GM9{n:03d}" for n in random.sample(range(1000), 1000) if f"GM9{n:03d}" not in used
    )


async def throughput(events_wanted: int) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    municipality = await unused_municipality()
    topics = [f"bench.metrics.{run}.{family}" for family in ("intake", "norms", "feedback")]
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    await admin.create_topics([NewTopic(t, num_partitions=6, replication_factor=1) for t in topics])
    scale = max(1, events_wanted // 440)
    traffic = make_traffic(municipality, scale=scale, seed=11)
    family_topic = dict(zip(("intake", "norms", "feedback"), topics, strict=True))
    records = []
    for event in traffic.events:
        record = encode(event)
        records.append(
            type(record)(
                family_topic[event.data.family.value], record.key, record.value, record.headers
            )
        )
    try:
        producer = durable_producer(BOOTSTRAP, "bench-metrics")
        await producer.start()
        try:
            for start in range(0, len(records), 2000):
                await send_records(producer, records[start : start + 2000])
        finally:
            await producer.stop()
        n = len(records)

        # Baseline: a raw consumer that reads and decodes every record (no database).
        consumer = AIOKafkaConsumer(
            bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        partitions = [TopicPartition(t, p) for t in topics for p in range(6)]
        consumer.assign(partitions)
        await seek_to_start(consumer, partitions)
        seen, first = 0, None
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            for recs in batch.values():
                if first is None and recs:
                    first = time.perf_counter()
                for rec in recs:
                    decode(rec.headers, rec.value)
                    seen += 1
        raw_seconds = time.perf_counter() - (first or time.perf_counter())
        await consumer.stop()

        # The metrics service: from its first visible count until every figure is exact.
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **QUIET,
                "SERVICEPULS_CONFIG_DIR": str(config_with(Path(tmp), municipality)),
                "SERVICEPULS_METRICS_PORT": str(METRICS_PORT),
                "SERVICEPULS_METRICS_CONSUMER_GROUP": f"metrics-bench-{run}",
                "SERVICEPULS_METRICS_TOPICS": "[" + ",".join(f'"{t}"' for t in topics) + "]",
                "SERVICEPULS_METRICS_REFRESH_SECONDS": "30",
            }
            async with (
                running_service("metrics", port=METRICS_PORT, env=env) as service,
                httpx.AsyncClient() as client,
            ):
                metrics_seconds = await _time_until_exact(
                    client, service.base_url, n, traffic.expected
                )
    finally:
        await admin.delete_topics(topics)
        await admin.close()
    return {
        "events": float(n),
        "raw_per_second": n / raw_seconds,
        "metrics_per_second": n / metrics_seconds,
    }


async def main_async(args: argparse.Namespace) -> None:
    print(
        f"metrics benchmark: freshness at {args.rate}/s for {args.seconds}s; throughput on {args.events} events"
    )
    fresh = await freshness(args.rate, args.seconds)
    print(
        f"freshness (intake POST -> /metrics), {fresh['events']:.0f} events at {args.rate}/s: "
        f"p50 {fresh['p50'] * 1000:.0f} ms, p99 {fresh['p99'] * 1000:.0f} ms, max {fresh['max'] * 1000:.0f} ms"
    )
    print(
        f"  of which intake POST -> 202 (baseline, same run): p50 {fresh['intake_p50'] * 1000:.0f} ms, "
        f"p99 {fresh['intake_p99'] * 1000:.0f} ms; ratio of p50s "
        f"{fresh['p50'] / fresh['intake_p50']:.1f}"
    )
    result = await throughput(args.events)
    ratio = result["metrics_per_second"] / result["raw_per_second"]
    print(
        f"throughput on {result['events']:.0f} events: metrics consumer "
        f"{result['metrics_per_second']:.0f} events/s; raw read+decode consumer "
        f"{result['raw_per_second']:.0f} events/s; ratio {ratio:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metrics", description=__doc__)
    parser.add_argument(
        "--rate", type=float, default=50.0, help="events per second posted to intake"
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--events", type=int, default=20_000, help="events for the throughput run")
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
