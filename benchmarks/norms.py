"""Norms benchmark: breach-detection lag with many open clocks, consumer throughput against a
raw aiokafka read-and-parse baseline, and replay time.

    .venv/bin/python -m benchmarks.norms                     # 1,000,000 clocks, 200,000 events
    .venv/bin/python -m benchmarks.norms --clocks 100000 --events 50000

Runs against the local stack, on private topics and a private PostgreSQL schema (dropped after).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import random
import resource
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from benchmarks.procstat import cpu_of, cpu_seconds
from schemas.common import Channel
from schemas.envelope import KafkaRecord, decode, encode
from schemas.events import CaseClosed, CaseOpened, CaseOutcome, ContactCompleted, ContactReceived
from services.common.kafka import durable_producer, seek_to_start, send_records, topic_partitions
from services.common.migrations import migrate
from services.common.settings import InfraSettings
from services.norms.adapters.repository import MIGRATIONS
from services.norms.rebuild import rebuild
from services.norms.settings import NormsSettings
from tests.integration.norms.support import (
    DATABASE_URL,
    MUNICIPALITY,
    SOURCE,
    drop_schema,
    email_answer,
    event,
    free_ports,
    private_config,
    service_env,
)
from tests.support.kafka import BOOTSTRAP, private_topics
from tests.support.services import running_service


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


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
                tps = await topic_partitions(consumer, norms_topic)
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


def traffic(
    count: int, rng: random.Random, per_year: int | None = None
) -> Iterator[tuple[datetime, Any]]:
    """A realistic mix, in event-time order over one year: phone calls (half), e-mails with an
    answer 1–96 hours later (30 %), public-space reports closed 0.5–20 days later (20 %).
    Yields (event time, model) lazily: a follow-up waits in a heap until its time comes, so
    millions of events need no list of millions."""
    # A year that ended a week ago (its last answers and closings included): the service caps
    # the watermark at the wall clock (plus a tolerance), so events from the future would leave
    # their clocks undecided.
    today = datetime.now(UTC).date()
    base = datetime.combine(today - timedelta(days=today.weekday() + 7 * 56), dtime(8), UTC)
    year = 365 * 24 * 3600
    # ~1.5 events per first event: first events arrive as a Poisson process over the year.
    # `per_year`: as dense as a municipality with that many events a year (fewer days).
    mean_gap = year / ((per_year or count) / 1.5)
    follow_ups: list[tuple[datetime, int, Any]] = []
    emitted, seq, offset = 0, 0, 0.0
    while emitted < count:
        offset += rng.expovariate(1 / mean_gap)
        t = base + timedelta(seconds=offset)
        while follow_ups and follow_ups[0][0] <= t and emitted < count:
            at, _, model = heapq.heappop(follow_ups)
            yield at, model
            emitted += 1
        if emitted >= count:
            return
        kind = rng.random()
        if kind < 0.5:
            first: Any = ContactCompleted(
                contact_id=f"T-{uuid.uuid4()}",
                channel=Channel.PHONE,
                topic="afval",
                started_at=t,
                wait_seconds=rng.uniform(0, 120),
                handling_seconds=180,
            )
        elif kind < 0.8:
            mail = f"E-{uuid.uuid4()}"
            first = ContactReceived(contact_id=mail, channel=Channel.EMAIL, topic="afval")
            answer = t + timedelta(hours=rng.uniform(1, 96))
            reply = email_answer(mail, answer)
            heapq.heappush(follow_ups, (answer, seq := seq + 1, reply))
        else:
            case = f"Z-{uuid.uuid4()}"
            first = CaseOpened(
                case_id=case,
                case_type="melding-openbare-ruimte",
                channel=Channel.PUBLIC_SPACE_REPORT,
            )
            closed = t + timedelta(days=rng.uniform(0.5, 20))
            close = CaseClosed(
                case_id=case, case_type="melding-openbare-ruimte", outcome=CaseOutcome.RESOLVED
            )
            heapq.heappush(follow_ups, (closed, seq := seq + 1, close))
        yield t, first
        emitted += 1


def traffic_records(
    count: int, rng: random.Random, topic: str, per_year: int | None = None
) -> Iterator[KafkaRecord]:
    """`traffic` as intake records, framed directly (~28 µs an event): building every event as
    an envelope and `encode`-ing it cost ~70 µs, minutes for a year of a large municipality
    (3,000,000 events). The first 200 are checked byte for byte against `encode(event(...))`."""
    checked = 0
    for at, model in traffic(count, rng, per_year):
        if checked < 200:
            checked += 1
            envelope = event(model, at)
            reference = encode(envelope)
            record = _record(model, at, topic, envelope.id)
            assert (record.key, record.value, record.headers) == (
                reference.key,
                reference.value,
                reference.headers,
            ), (record, reference)
            yield record
        else:
            yield _record(model, at, topic, str(uuid.uuid4()))


def _record(model: Any, at: datetime, topic: str, event_id: str) -> KafkaRecord:
    subject = model.subject().encode()
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", SOURCE.encode()),
        ("ce_type", model.event_type.encode()),
        ("ce_time", at.isoformat().encode()),
        ("ce_subject", subject),
        ("ce_municipality", MUNICIPALITY.encode()),
        ("content-type", b"application/json"),
    ]
    return KafkaRecord(topic, subject, model.model_dump_json(exclude_none=True).encode(), headers)


async def raw_read(topic: str, count: int) -> tuple[float, float]:
    """Baseline: a plain aiokafka consumer that only reads and parses the same records.
    Returns events per second of wall time and per second of CPU time."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        consumer.assign(tps)
        await seek_to_start(consumer, tps)
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


RAW_READS = 3


async def produce_traffic(
    intake_topic: str, count: int, rng: random.Random, per_year: int | None
) -> None:
    print(f"  generating and producing {count:,} intake events …", flush=True)
    produced = time.perf_counter()
    producer = durable_producer(BOOTSTRAP, "norms-bench", linger_ms=20)
    await producer.start()
    try:
        chunk: list[KafkaRecord] = []
        for record in traffic_records(count, rng, intake_topic, per_year):
            chunk.append(record)
            if len(chunk) == 20_000:
                await send_records(producer, chunk)
                chunk = []
        await send_records(producer, chunk)
    finally:
        await producer.stop()
    print(f"  produced in {time.perf_counter() - produced:.0f} s", flush=True)


async def best_raw_read(
    intake_topic: str, count: int, times: int = RAW_READS
) -> tuple[float, float]:
    """The best of three reads (events per second of wall time, of CPU time): one read of
    100,000 records lasts ~2 s, and on this shared machine single reads ranged from 27,000 to
    52,000 events/s."""
    reads = [await raw_read(intake_topic, count) for _ in range(times)]
    print("  raw reads: " + ", ".join(f"{r[0]:,.0f}" for r in reads) + " events/s", flush=True)
    return max(r[0] for r in reads), max(r[1] for r in reads)


def _own_and_children_cpu() -> float:
    """CPU seconds of this process and its children that ended (the rebuild's workers)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def rebuild_throughput(
    config: Path, count: int, *, workers: int, per_year: int | None = None, raw_reads: int = 3
) -> dict[str, float]:
    """`servicepuls rebuild` of `count` intake events into an empty schema, against the raw
    read + decode of the same records in the same run (`docs/norms.md`, "Rebuilding state from
    the log"): its rate, and the peak memory of its processes."""
    run = uuid.uuid4().hex[:8]
    schema = f"norms_bench_{run}"
    intake_topic, norms_topic = f"servicepuls.bench-{run}.intake", f"servicepuls.bench-{run}.norms"
    try:
        async with private_topics(intake_topic, norms_topic):
            await produce_traffic(intake_topic, count, random.Random(7), per_year)
            raw_rate, raw_cpu_rate = await best_raw_read(intake_topic, count, raw_reads)
            settings = NormsSettings(
                db_schema=schema,
                consumer_group=f"norms-bench-{run}",
                intake_topic=intake_topic,
                norms_topic=norms_topic,
                clock="event",
                allowed_lateness_seconds=3600,
            )
            infra = InfraSettings(config_dir=config)
            cpu = _own_and_children_cpu()
            report = await asyncio.to_thread(rebuild, infra, settings, workers=workers)
            used = _own_and_children_cpu() - cpu
            print(
                f"  rebuild: {report.read:,} records, {report.clocks:,} clocks, "
                f"{report.outcomes:,} outcomes in {report.seconds:.1f} s; peak RSS per process "
                f"{report.peak_rss_mb:,.0f} MB (workers "
                + ", ".join(f"{m:,.0f}" for m in report.workers_rss_mb)
                + f"); CPU of its processes {used:.0f} s",
                flush=True,
            )
            for index, timing in enumerate(report.timings):
                print(
                    f"  worker {index}: "
                    + ", ".join(
                        f"{name} {value:,.0f} clocks"
                        if name == "foreign"
                        else f"{name} {value:.1f} s"
                        for name, value in timing.items()
                    ),
                    flush=True,
                )
    finally:
        await drop_schema(schema)
    return {
        "raw_rate": raw_rate,
        "raw_cpu_rate": raw_cpu_rate,
        "cpu_rate": report.read / used,
        "rate": report.rate,
        "ratio": report.rate / raw_rate,
        "seconds": report.seconds,
        "peak_rss_mb": report.peak_rss_mb,
        "workers_rss_mb": sum(report.workers_rss_mb),
    }


PY_SPY = "/root/.local/bin/py-spy"


async def consumer_throughput(
    config: Path,
    count: int,
    *,
    split: bool = False,
    relay_with_consumer: bool = False,
    worker_after: bool = False,
    per_year: int | None = None,
    profile: Path | None = None,
    report_every: float = float("inf"),
    overrides: dict[str, str] | None = None,
) -> dict[str, float]:
    """Replay `count` intake events into an empty schema and time the norms consumer.

    `split`: the consumer runs alone in its process (`RELAY_ENABLED=false`,
    `SCHEDULER_ENABLED=false`) and a second process (`CONSUMER_ENABLED=false`) schedules and
    relays (or only schedules, `relay_with_consumer`: the relay runs in the consumer's process);
    otherwise one process does all three. `worker_after` (with `split`): the second process
    starts once the consumer has consumed every event, so the consumer is measured alone, as
    the raw read is, and the scheduler's catching up is timed after it. `report_every` (seconds): print the rate
    and CPU per event of each interval, and the tables' statistics at the end."""
    run = uuid.uuid4().hex[:8]
    schema = f"norms_bench_{run}"
    intake_topic, norms_topic = f"servicepuls.bench-{run}.intake", f"servicepuls.bench-{run}.norms"
    rng = random.Random(7)
    try:
        async with private_topics(intake_topic, norms_topic):
            await produce_traffic(intake_topic, count, rng, per_year)
            raw_rate, raw_cpu_rate = await best_raw_read(intake_topic, count)
            port, worker_port = free_ports(2)
            settings = {
                "norms_topic": norms_topic,
                "intake_topic": intake_topic,
                "auto_offset_reset": "earliest",
                "clock": "event",
                "allowed_lateness_seconds": "3600",
                "max_batch": "5000",
                **(overrides or {}),
            }
            consumer_settings = {"scheduler_enabled": "false"} if split else {}
            worker_settings = {"consumer_enabled": "false"}
            if relay_with_consumer:
                worker_settings["relay_enabled"] = "false"
            elif split:
                consumer_settings["relay_enabled"] = "false"
            env = service_env(config, schema, port=port, **settings, **consumer_settings)
            worker_env = service_env(
                config, schema, port=worker_port, **settings, **worker_settings
            )
            async with contextlib.AsyncExitStack() as stack:
                if split and not worker_after:  # started first: it migrates, then waits
                    worker = await stack.enter_async_context(
                        running_service("norms", port=worker_port, env=worker_env)
                    )
                service = await stack.enter_async_context(
                    running_service("norms", port=port, env=env)
                )
                # The service is ready once it is assigned partitions; it may have consumed a
                # little already: only what it consumes from here on is counted.
                assert service.process is not None
                pids = [service.process.pid]
                if split and not worker_after:
                    assert worker.process is not None
                    pids.append(worker.process.pid)
                async with httpx.AsyncClient(base_url=service.base_url, timeout=60) as client:
                    began, cpu = time.perf_counter(), [cpu_seconds(pid) for pid in pids]
                    machine = {name: cpu_of(name) for name in ("postgres", "java")}
                    first = await processed_so_far(client)
                    collections = await collector_pauses(client)
                    spy = None
                    if profile is not None:  # sampled from outside (--nonblocking: no pauses)
                        spy = await asyncio.create_subprocess_exec(
                            *(PY_SPY, "record", "--nonblocking", "-r", "200", "-f", "raw"),
                            *("-o", str(profile), "-p", str(service.process.pid)),
                            stdout=asyncio.subprocess.DEVNULL,
                        )
                    processed = first
                    mark = (began, first, sum(cpu), machine["postgres"])
                    while processed < count:
                        await asyncio.sleep(0.25)
                        processed = await processed_so_far(client)
                        now = time.perf_counter()
                        if now - mark[0] >= report_every:  # how the rate holds up as tables grow
                            norms_cpu = sum(cpu_seconds(pid) for pid in pids)
                            pg_cpu = cpu_of("postgres")
                            done = processed - mark[1]
                            print(
                                f"    {processed:>10,.0f} events  {done / (now - mark[0]):>6,.0f}/s"
                                f"  CPU per event: norms {(norms_cpu - mark[2]) / done * 1e6:.0f}"
                                f" µs, PostgreSQL {(pg_cpu - mark[3]) / done * 1e6:.0f} µs",
                                flush=True,
                            )
                            mark = (now, processed, norms_cpu, pg_cpu)
                    elapsed = time.perf_counter() - began
                    used = [cpu_seconds(pid) - c for pid, c in zip(pids, cpu, strict=True)]
                    runs, paused = await collector_pauses(client)
                    collections = (runs - collections[0], paused - collections[1])
                    machine = {name: cpu_of(name) - c for name, c in machine.items()}
                    if spy is not None:
                        spy.send_signal(signal.SIGINT)
                        await asyncio.wait_for(spy.wait(), timeout=60)
                if worker_after:  # the consumer is done: now the scheduler and relay
                    worker = await stack.enter_async_context(
                        running_service("norms", port=worker_port, env=worker_env)
                    )
                    assert worker.process is not None
                    worker_began = cpu_seconds(worker.process.pid)
                # Every outcome taken so far published: the outbox is empty.
                conn = await asyncpg.connect(DATABASE_URL)
                try:
                    while True:
                        if not await conn.fetchval(f'SELECT count(*) FROM "{schema}".outbox'):
                            break
                        await asyncio.sleep(0.25)
                    drained = time.perf_counter() - began
                    # And the scheduler caught up: every decision due before the watermark the
                    # last events set (the partitions' lowest latest event time minus the allowed
                    # lateness; beyond it only the idle-partition rule moves it) taken and
                    # published.
                    while True:
                        pending = await conn.fetchval(
                            f"""SELECT (SELECT count(*) FROM "{schema}".outbox)
                                     + (SELECT count(*) FROM "{schema}".clock
                                        WHERE next_decision_at < (
                                          SELECT min(max_event_time)
                                          FROM "{schema}".partition_progress)
                                          - make_interval(secs => $1))""",
                            float(settings["allowed_lateness_seconds"]),
                        )
                        if not pending:
                            break
                        await asyncio.sleep(0.25)
                    settled = time.perf_counter() - began
                    if worker_after:
                        assert worker.process is not None
                        used.append(cpu_seconds(worker.process.pid) - worker_began)
                    outcomes = await conn.fetchval(
                        f'SELECT count(*) FROM "{schema}".clock WHERE outcome IS NOT NULL'
                    )
                    if report_every < float("inf"):
                        await print_table_stats(conn, schema)
                finally:
                    await conn.close()
    finally:
        await drop_schema(schema)
    consumed = count - first
    rate = consumed / elapsed
    return {
        "raw_rate": raw_rate,
        "norms_rate": rate,
        "ratio": rate / raw_rate,
        "raw_cpu_rate": raw_cpu_rate,
        "norms_cpu_rate": consumed / used[0],
        "cpu_ratio": (consumed / used[0]) / raw_cpu_rate,
        "worker_cpu_rate": consumed / used[1] if split else 0.0,
        "postgres_us": machine["postgres"] / consumed * 1e6,
        "kafka_us": machine["java"] / consumed * 1e6,
        "norms_us": sum(used) / consumed * 1e6,
        "elapsed": elapsed,
        "consumed": consumed,
        "drained": drained,
        "settled": settled,
        "final_outcomes": outcomes,
        "gc_runs": collections[0],
        "gc_us": collections[1] / consumed * 1e6,
    }


async def print_table_stats(conn: asyncpg.Connection, schema: str) -> None:
    """Sizes, row versions and vacuums of the norms tables after the replay."""
    await conn.execute("SELECT pg_stat_force_next_flush()")
    rows = await conn.fetch(
        """SELECT relname, n_live_tup, n_dead_tup, n_tup_ins, n_tup_upd, n_tup_hot_upd,
                  n_tup_del, autovacuum_count, autoanalyze_count,
                  pg_size_pretty(pg_table_size(relid)) AS heap,
                  pg_size_pretty(pg_indexes_size(relid)) AS indexes
           FROM pg_stat_user_tables WHERE schemaname = $1 ORDER BY relname""",
        schema,
    )
    for r in rows:
        print(
            f"    {r['relname']:<20} live {r['n_live_tup']:>9,} dead {r['n_dead_tup']:>8,} "
            f"ins {r['n_tup_ins']:>9,} upd {r['n_tup_upd']:>9,} (HOT {r['n_tup_hot_upd']:>7,}) "
            f"del {r['n_tup_del']:>9,} autovacuum {r['autovacuum_count']} "
            f"heap {r['heap']} indexes {r['indexes']}"
        )


async def scraped(client: httpx.AsyncClient, *names: str) -> list[float]:
    """Per metric name, the sum of its samples (over all labels) in the service's /metrics."""
    sums = dict.fromkeys(names, 0.0)
    for line in (await client.get("/metrics")).text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in sums:
            sums[name] += float(line.split()[-1])
    return list(sums.values())


async def processed_so_far(client: httpx.AsyncClient) -> float:
    return (await scraped(client, "servicepuls_norms_events_processed_total"))[0]


async def collector_pauses(client: httpx.AsyncClient) -> tuple[float, float]:
    """Runs of the service's cycle collector so far, and the seconds they held it."""
    runs, paused = await scraped(
        client, "python_gc_pause_seconds_count", "python_gc_pause_seconds_sum"
    )
    return runs, paused


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.norms")
    parser.add_argument("--clocks", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=300)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--skip-lag", action="store_true", help="only the consumer throughput and replay"
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="consumer alone in its process; scheduler and relay in a second one",
    )
    parser.add_argument(
        "--per-year",
        type=int,
        metavar="EVENTS",
        help="traffic as dense as EVENTS a year (default: --events spread over one year); "
        "a short replay with the density of a large municipality: --per-year 3000000",
    )
    parser.add_argument(
        "--relay-with-consumer",
        action="store_true",
        help="with --split: the relay runs in the consumer's process, not the scheduler's",
    )
    parser.add_argument(
        "--worker-after",
        action="store_true",
        help="with --split: start the scheduler and relay only once the consumer has consumed "
        "everything (the consumer measured alone, as the raw read is; their catching up after)",
    )
    parser.add_argument(
        "--report-every",
        type=float,
        default=float("inf"),
        metavar="SECONDS",
        help="print the rate per interval while consuming, and table statistics at the end",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy the consumer process while it consumes (raw stacks)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a norms setting for the replay (e.g. scheduler_interval_seconds=1), repeatable",
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="only `servicepuls rebuild` of --events against the raw read of the same records",
    )
    parser.add_argument("--workers", type=int, default=2, help="with --rebuild: its processes")
    parser.add_argument(
        "--raw-reads",
        type=int,
        default=RAW_READS,
        help="with --rebuild: raw reads, the best counts",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        config = private_config(Path(tmp), f"bench-{uuid.uuid4().hex[:6]}")
        if args.rebuild:
            print(
                f"rebuild of {args.events:,} intake events ({args.workers} workers; as dense as "
                f"{args.per_year or args.events:,} events a year)",
                flush=True,
            )
            rb = await rebuild_throughput(
                config,
                args.events,
                workers=args.workers,
                per_year=args.per_year,
                raw_reads=args.raw_reads,
            )
            print(
                f"   raw aiokafka read + decode: {rb['raw_rate']:,.0f} events/s (best of "
                f"{args.raw_reads})\n   rebuild: {rb['rate']:,.0f} events/s = {rb['ratio']:.0%} of raw "
                f"(goal ≥ 50%: {'met' if rb['ratio'] >= 0.5 else 'NOT met'}), "
                f"{rb['seconds']:.1f} s, peak RSS {rb['peak_rss_mb']:,.0f} MB in one process, "
                f"{rb['workers_rss_mb']:,.0f} MB the workers together\n"
                f"   per CPU second: raw {rb['raw_cpu_rate']:,.0f} events, rebuild "
                f"{rb['cpu_rate']:,.0f} (all its processes) = "
                f"{rb['cpu_rate'] / rb['raw_cpu_rate']:.0%}"
            )
            return 0
        if not args.skip_lag:
            print(f"1. breach-detection lag with {args.clocks:,} open clocks", flush=True)
            lag = await breach_lag(config, args.clocks, args.due)
            print(f"   breaches measured: {lag['breaches']}")
            print(
                f"   lag due instant → breach on Kafka: p50 {lag['p50'] * 1000:.0f} ms, "
                f"p99 {lag['p99'] * 1000:.0f} ms, max {lag['max'] * 1000:.0f} ms "
                f"(goal p99 < 1000 ms: {'met' if lag['p99'] < 1 else 'NOT met'})"
            )
        mode = "one process: consumer, scheduler and relay"
        if args.split:
            mode = (
                "consumer and relay in one process, scheduler in a second"
                if args.relay_with_consumer
                else "consumer alone in its process; scheduler and relay in a second"
                + (", started once the consumer is done" if args.worker_after else "")
            )
        print(
            f"2. consumer throughput on {args.events:,} intake events (replay into an empty "
            f"database, event-time clock; {mode}; as dense as "
            f"{args.per_year or args.events:,} events a year)",
            flush=True,
        )
        tp = await consumer_throughput(
            config,
            args.events,
            split=args.split,
            relay_with_consumer=args.split and args.relay_with_consumer,
            worker_after=args.split and args.worker_after,
            per_year=args.per_year,
            profile=args.profile,
            report_every=args.report_every,
            overrides=dict(item.split("=", 1) for item in args.set),
        )
        print(
            f"   raw aiokafka read + parse: {tp['raw_rate']:,.0f} events/s "
            f"(baseline: the best of {RAW_READS} reads)"
        )
        print(
            f"   norms consumer:            {tp['norms_rate']:,.0f} events/s "
            f"= {tp['ratio']:.0%} of raw (goal ≥ 30%: {'met' if tp['ratio'] >= 0.3 else 'NOT met'})"
        )
        print(
            f"   per CPU second of the consumer process: raw {tp['raw_cpu_rate']:,.0f}, "
            f"norms {tp['norms_cpu_rate']:,.0f} events = {tp['cpu_ratio']:.0%}"
            + (
                f"; the other process: {tp['worker_cpu_rate']:,.0f} events per CPU s"
                if args.split
                else ""
            )
        )
        print(
            f"   CPU per intake event: norms {tp['norms_us']:.0f} µs (all its processes), "
            f"PostgreSQL {tp['postgres_us']:.0f} µs, Kafka broker {tp['kafka_us']:.0f} µs"
        )
        print(
            f"   cycle collector in the consumer's process: {tp['gc_runs']:.0f} runs, "
            f"{tp['gc_us']:.1f} µs per event"
        )
        print(
            f"   consumed in {tp['elapsed']:.1f} s; every outcome taken by then published after "
            f"{tp['drained']:.1f} s; {tp['final_outcomes']:,} clocks had a final outcome by then; "
            f"every decision due by the final watermark taken and published after "
            f"{tp['settled']:.1f} s (= {tp['consumed'] / tp['settled']:,.0f} events/s)"
        )
        print(
            f"3. one year of a large municipality (3,000,000 events) at this rate: "
            f"{3_000_000 / tp['norms_rate'] / 60:.1f} min "
            + ("(measured)" if args.events >= 3_000_000 else "(projected)")
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
