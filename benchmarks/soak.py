"""Soak: a steady offered load on all four services for ten minutes, with consumer lag and the
resident memory (RSS) of every service sampled over time.

    python -m benchmarks.soak [--rate 150] [--minutes 10] [--sample-seconds 30]
    bash scripts/bench.sh soak

Starts intake, norms, feedback and metrics as processes on the local stack, on private intake
and norms topics with their own schemas and metrics database (as benchmarks/reliability.py
does), and posts the simulator's traffic for four municipalities (scale 8, so cases open and
close, clocks start and stop, surveys are mailed to the sink) at `--rate` events per second in
batches every half second, in event-time order, as the test channel system (no rate limit).
Every `--sample-seconds` it records, per consumer group, the lag (end offset minus committed
offset over its partitions) and each service's RSS (/proc/<pid>/status), and at the end prints
them as a table over time with: events accepted, the rate achieved, answers other than 202,
error lines in the services' logs, and whether the load was held (the achieved rate within 2%
of the offered rate and no group more than ten seconds of load behind in the second half).
Loopback only; bounded by `--minutes`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.loadgen import Connection
from benchmarks.reliability import BOOTSTRAP, FEEDBACK_TOPIC, Platform
from services.common.kafka import topic_partitions
from simulator.cli import default_start
from simulator.generator import SimulatedMunicipality, SimulationPlan, TrafficGenerator
from simulator.office_hours import AMSTERDAM
from tests.support.kafka import end_offsets
from tests.support.services import REPO_ROOT, ServiceProcess

MUNICIPALITIES = (
    ("GM0373", "Bergen (NH)", 29_900),
    ("GM0383", "Castricum", 36_900),
    ("GM0399", "Heiloo", 24_800),
    ("GM0450", "Uitgeest", 13_900),
)
AUTH = {"Authorization": "Bearer dev-test"}
TICK = 0.5  # seconds between batches
HELD_LAG_SECONDS = 10.0


@dataclass(slots=True)
class Sample:
    at: float  # seconds since the load started
    accepted: int
    lag: dict[str, int]
    rss_mib: dict[str, float]


@dataclass(slots=True)
class SoakResult:
    rate: float
    seconds: float
    accepted: int = 0
    refused: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[Sample] = field(default_factory=list)
    error_lines: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0


def traffic(rate: float, seconds: float, seed: int) -> Iterator[dict[str, Any]]:
    """The simulator's stream for the four municipalities, enough for `rate` × `seconds`."""
    needed = rate * seconds * 1.1
    scale = 8.0
    days = max(2.0, needed / (1_000 * scale))  # about 1,000 events a day at scale 1
    plan = SimulationPlan(
        municipalities=tuple(SimulatedMunicipality(c, n, i) for c, n, i in MUNICIPALITIES),
        start=default_start(days).astimezone(AMSTERDAM),
        days=days,
        seed=seed,
        run_id=f"soak{int(time.time())}",
        scale=scale,
    )
    for event in TrafficGenerator(plan).events():
        yield event.cloudevent()


def norms_memo_code(size: int) -> str:
    """`python -c` code that runs the norms service with its memos bounded at `size`."""
    return (
        "import runpy, services.norms.domain.planning as p, services.norms.domain.outcomes as o, "
        "services.common.calendar as c, services.common.kafka as k; "
        f"p.TIMELINE_MEMO_SIZE = o.EXPLANATION_MEMO_SIZE = {size}; "
        f"c._ADVANCE_MEMO_SIZE = c._ISO_MEMO_SIZE = {size}; "
        f"k.PARTITION_MEMO_SIZE = {size}; "
        "runpy.run_module('services.norms', run_name='__main__', alter_sys=True)"
    )


def cap_norms_memos(size: int) -> Callable[[dict[str, ServiceProcess]], None]:
    """Run norms with every in-memory memo bounded at `size` entries instead of its default
    (timelines and explanations 50,000 per catalog, calendar memos 100,000, the producer's
    partition memo 200,000): if the RSS growth seen with the defaults is those memos filling
    up, it is gone with small ones; a leak would grow all the same."""
    code = norms_memo_code(size)

    def prepare(services: dict[str, ServiceProcess]) -> None:
        norms = services["norms"]

        def start() -> None:
            log = norms.log_path.open("ab")
            norms.process = subprocess.Popen(
                [sys.executable, "-c", code], cwd=REPO_ROOT, env=norms.env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

        norms.start = start  # type: ignore[method-assign]

    return prepare


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def lags(platform: Platform, start: dict[Any, int]) -> dict[str, int]:
    """Per consumer group: end offsets minus committed offsets over the topics it reads (where a
    group has not committed yet: minus where the topic ended when the soak began)."""
    groups = {
        "norms": (f"norms-{platform.uid}", [platform.intake_topic]),
        "feedback": (f"feedback-{platform.uid}", [platform.intake_topic]),
        "metrics": (
            f"metrics-{platform.uid}",
            [platform.intake_topic, platform.norms_topic, FEEDBACK_TOPIC],
        ),
    }
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        result = {}
        for name, (group, topics) in groups.items():
            partitions = [tp for t in topics for tp in await topic_partitions(consumer, t)]
            ends = await consumer.end_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(group)
            result[name] = sum(
                max(0, ends[tp] - (committed[tp].offset if tp in committed else start.get(tp, 0)))
                for tp in partitions
            )
        return result
    finally:
        await consumer.stop()
        await admin.close()


async def soak(
    rate: float, minutes: float, sample_seconds: float, seed: int, norms_memo_size: int | None
) -> SoakResult:
    seconds = minutes * 60
    print(f"generating the simulator's traffic for {rate:g} ev/s × {seconds:.0f} s …", flush=True)
    stream = traffic(rate, seconds, seed)
    platform = Platform("soak", f"soak{seed}", extra_scheduler=False)
    # Surveys go out as soon as they are decided, as in the soak runs measured so far (the fault
    # table waits the policy's delay, the window of its survey choice by event time).
    platform.env["SERVICEPULS_FEEDBACK_DELAY_SECONDS"] = "0"
    result = SoakResult(rate=rate, seconds=seconds)
    if norms_memo_size is not None:
        platform.before_start = cap_norms_memos(norms_memo_size)
    await platform.start()
    start = {
        TopicPartition(FEEDBACK_TOPIC, p): offset
        for p, offset in (await end_offsets(FEEDBACK_TOPIC)).items()
    }
    log_sizes = {n: s.log_path.stat().st_size for n, s in platform.services.items()}
    connection = Connection("127.0.0.1", platform.ports["intake"], AUTH)
    per_tick = rate * TICK
    began = time.monotonic()

    async def sampling() -> None:  # apart from the load, so a slow sample never delays it
        while True:
            at = time.monotonic() - began
            result.samples.append(await _sample(platform, start, at, result.accepted))
            print(_row(result.samples[-1]), flush=True)
            await asyncio.sleep(max(0.0, began + len(result.samples) * sample_seconds
                                    - time.monotonic()))  # fmt: skip

    sampler = asyncio.create_task(sampling())
    try:
        owed = 0.0
        tick = 0
        while time.monotonic() - began < seconds:
            owed += per_tick
            batch = [event for _, event in zip(range(int(owed)), stream, strict=False)]
            owed -= len(batch)
            if batch:
                body = json.dumps(batch).encode()
                try:
                    status, _ = await connection.post("/v1/events:batch", body)
                except (OSError, IndexError, asyncio.IncompleteReadError):
                    # The server closed the keep-alive connection: a new one, the same batch.
                    await connection.close()
                    connection = Connection("127.0.0.1", platform.ports["intake"], AUTH)
                    result.reconnects += 1
                    status, _ = await connection.post("/v1/events:batch", body)
                if status == 202:
                    result.accepted += len(batch)
                else:
                    result.refused[status] += len(batch)
            tick += 1
            await asyncio.sleep(max(0.0, began + tick * TICK - time.monotonic()))
        result.seconds = time.monotonic() - began
        sampler.cancel()
        # The tail: how far behind each group is once the offered load stops.
        await asyncio.sleep(5)
        result.samples.append(
            await _sample(platform, start, time.monotonic() - began, result.accepted)
        )
        print(_row(result.samples[-1]), flush=True)
    finally:
        sampler.cancel()
        await connection.close()
        for name, service in platform.services.items():
            with service.log_path.open("rb") as log:
                log.seek(log_sizes[name])
                result.error_lines[name] = sum(
                    1 for line in log if b'"level": "error"' in line or b"ERROR" in line
                )
        await platform.stop()
        await platform.drop()
    return result


async def _sample(platform: Platform, start: dict[Any, int], at: float, accepted: int) -> Sample:
    rss = {}
    for name, service in platform.services.items():
        if service.process is not None and service.process.poll() is None:
            rss[name] = rss_mib(service.process.pid)
    return Sample(at=at, accepted=accepted, lag=await lags(platform, start), rss_mib=rss)


def _row(sample: Sample) -> str:
    lag = " ".join(f"{sample.lag.get(n, 0):>7}" for n in ("norms", "feedback", "metrics"))
    rss = " ".join(
        f"{sample.rss_mib.get(n, 0):>7.0f}" for n in ("intake", "norms", "feedback", "metrics")
    )
    return f"| {sample.at:6.0f} | {sample.accepted:>8} | {lag} | {rss} |"


def report(result: SoakResult) -> str:
    achieved = result.accepted / result.seconds if result.seconds else 0.0
    last = result.samples[-1]
    # Held: every event offered was taken, and in the second half no group was ever more than
    # HELD_LAG_SECONDS of load behind (a lag that grows would pass that sooner or later; one
    # that comes and goes with batches and commits does not).
    second_half = [s for s in result.samples if s.at >= result.seconds / 2]
    worst = max((max(s.lag.values(), default=0) for s in second_half), default=0)
    held = achieved >= 0.98 * result.rate and worst <= HELD_LAG_SECONDS * result.rate
    first_full = result.samples[1] if len(result.samples) > 1 else result.samples[0]
    growth = {
        n: (last.rss_mib.get(n, 0) - first_full.rss_mib.get(n, 0))
        / max(1e-9, (last.at - first_full.at) / 60)
        for n in last.rss_mib
    }
    header = (
        "|      s | accepted | lag: norms feedback metrics | RSS MiB: intake norms feedback "
        "metrics |"
    )
    return "\n".join(
        [
            header,
            "|---:|---:|---|---|",
            *(_row(s) for s in result.samples),
            "",
            f"offered {result.rate:g} ev/s for {result.seconds:.0f} s; accepted {result.accepted} "
            f"({achieved:.1f} ev/s); answers other than 202: {dict(result.refused) or 'none'} "
            f"(reconnects {result.reconnects}); "
            f"error lines in the services' logs: {result.error_lines}",
            "RSS growth after the first sample (MiB/min): "
            + ", ".join(f"{n} {g:+.1f}" for n, g in growth.items()),
            f"load held: {'yes' if held else 'NO'} (rate within 2% of offered; highest lag in "
            f"the second half {worst} events, at most {HELD_LAG_SECONDS:g} s of load)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--rate", type=float, default=150.0, help="events per second offered")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sample-seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--norms-memo-size", type=int, help="experiment: bound norms' memos at this many entries"
    )
    args = parser.parse_args(argv)
    if not 0 < args.rate <= 5_000 or not 0 < args.minutes <= 60:
        parser.error("--rate must be in (0, 5000] and --minutes in (0, 60]")
    result = asyncio.run(
        soak(args.rate, args.minutes, args.sample_seconds, args.seed, args.norms_memo_size)
    )
    print()
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
