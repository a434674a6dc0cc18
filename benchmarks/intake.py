"""Intake throughput and latency against a raw aiokafka producer, measured in one run.

    .venv/bin/python -m benchmarks.intake [--events 30000] [--single-events 4000] [--rounds 3]
        [--runs single,batch100,batch1000] [--profile out/intake-profile]

Starts its own intake process (port 18090) on the running local stack, writing to a private
topic that is deleted afterwards. The baselines are raw aiokafka producers with intake's
producer settings (acks=all, idempotent, no linger: faster for the plain API too) writing the
very same records (already encoded: no HTTP, no validation, no sealing), in two ways: `send` per
record, the plain producer API ("raw send"), and record batches per partition
(`services.common.kafka.SharedBatches`, what intake itself uses: "raw batched"). Intake is
measured with single-event requests and with batches of 100 and 1000, in rounds alternating
with the baselines. Prints the median of each figure and the ratio of intake to each baseline,
then every round's rates and the CPU each side spent per event (intake's process, the load
generator, the broker; the raw producer's process, the broker); writes out/bench-intake.json.
`--profile P` samples the intake process with py-spy during its rounds (raw stacks, P.<run>.txt).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.loadgen import post_all
from benchmarks.procstat import cpu_of, cpu_seconds
from services.common.kafka import SharedBatches, durable_producer
from services.common.sealing import load_keys
from services.common.settings import InfraSettings
from services.intake.domain.admission import admit
from services.intake.domain.channel_systems import Gatekeeper
from tests.support.kafka import private_topics
from tests.support.services import REPO_ROOT, ServiceProcess

PORT = 18090
AUTH = {"Authorization": "Bearer dev-test"}
RUNS = ("single", "batch100", "batch1000")
# A pause before each side's measurement, so that neither starts while the broker may still be
# busy with the burst before it (the raw batched baseline writes 100-160k records/s).
SETTLE_SECONDS = 1.0
PY_SPY = "/root/.local/bin/py-spy"


def realistic_events(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """A mix like a KCC's: mostly phone and counter contacts, some cases with a resident."""
    rng = random.Random(seed)
    base = datetime.now(UTC) - timedelta(days=1)
    events = []
    for i in range(count):
        at = (base + timedelta(seconds=i)).isoformat()
        roll = rng.random()
        if roll < 0.6:
            data = {
                "contact_id": f"T-{uuid.UUID(int=rng.getrandbits(128))}",
                "channel": rng.choice(["phone", "counter"]),
                "topic": rng.choice(["afval", "paspoort", "parkeren", "belastingen"]),
                "started_at": at,
                "wait_seconds": round(rng.expovariate(1 / 40), 1),
                "answered": rng.random() > 0.08,
                "queue": "algemeen",
            }
            if data["answered"]:
                data["handling_seconds"] = round(rng.expovariate(1 / 200), 1)
            kind = "contact.completed"
        elif roll < 0.8:
            data = {
                "contact_id": f"E-{uuid.UUID(int=rng.getrandbits(128))}",
                "channel": "email",
                "topic": "afval",
            }
            kind = "contact.received"
        else:
            data = {
                "case_id": f"Z-{uuid.UUID(int=rng.getrandbits(128))}",
                "case_type": "melding_openbare_ruimte",
                "channel": "webform",
                "resident": {
                    "identifier": f"klant-{rng.randrange(10**6)}",
                    "email": f"bewoner{rng.randrange(10**6)}@example.nl",
                    "survey_consent": True,
                },
            }
            kind = "case.opened"
        events.append(
            {
                "specversion": "1.0",
                "id": str(uuid.UUID(int=rng.getrandbits(128))),
                "source": "/buch/bench",
                "type": f"nl.servicepuls.{kind}.v1",
                "time": at,
                "municipality": "GM0383",
                "data": data,
            }
        )
    return events


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def plain_send(producer: Any, records: list[Any]) -> None:
    """The plain producer API: `send` per record, then wait for every acknowledgement."""
    pending = [
        await producer.send(r.topic, value=r.value, key=r.key, headers=r.headers) for r in records
    ]
    await asyncio.gather(*pending)


class Cost:
    """CPU seconds spent meanwhile by the given processes and by the broker."""

    def __init__(self, *pids: int) -> None:
        self.pids = pids
        self.started = (self._own(), cpu_of("java"))

    def _own(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def per_event_us(self, events: int) -> tuple[float, float]:
        """(the processes', the broker's) CPU µs per event since the start."""
        own, broker = self._own() - self.started[0], cpu_of("java") - self.started[1]
        return own / events * 1e6, broker / events * 1e6


async def raw_producer_rate(
    records: list[Any], bootstrap: str, chunk: int, concurrency: int, *, plain: bool
) -> tuple[float, tuple[float, float]]:
    """Events/s of a bare aiokafka producer: `concurrency` writers each sending `chunk` records
    and waiting for their acknowledgement, like intake's requests (a `send` per record when
    `plain`, else shared record batches as intake sends); and the CPU µs per event of this
    process and of the broker."""
    producer = durable_producer(bootstrap, "bench-raw", **SharedBatches.PRODUCER_OPTIONS)
    await producer.start()
    shared = SharedBatches(producer)

    async def send(records: list[Any]) -> None:
        await (plain_send(producer, records) if plain else shared.send(records))

    try:
        await send(records[:100])  # warm-up: metadata, connections
        pending = [records[i : i + chunk] for i in range(0, len(records), chunk)][::-1]

        async def writer() -> None:
            while pending:
                await send(pending.pop())

        cost, started = Cost(os.getpid()), time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(concurrency)))
        return len(records) / (time.perf_counter() - started), cost.per_event_us(len(records))
    finally:
        await producer.stop()


async def intake_rate(
    base: tuple[str, int], documents: list[dict[str, Any]], batch: int, concurrency: int
) -> tuple[float, list[float]]:
    """Events/s and per-request latencies posting `documents` in requests of `batch` events."""
    chunks = [documents[i : i + batch] for i in range(0, len(documents), batch)]
    bodies = [json.dumps(chunk[0] if batch == 1 else chunk).encode() for chunk in chunks]
    path = "/v1/events" if batch == 1 else "/v1/events:batch"
    seconds, latencies = await post_all(*base, path, bodies, concurrency=concurrency, headers=AUTH)
    return len(documents) / seconds, latencies


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Everything on a private topic, deleted afterwards: the benchmark's half a million events
    must not reach the services consuming the real intake topic, nor stay on it."""
    topic = f"servicepuls.bench.intake.{uuid.uuid4().hex[:8]}"
    async with private_topics(topic):
        return await _measure(args, topic)


async def _measure(args: argparse.Namespace, topic: str) -> dict[str, Any]:
    infra = InfraSettings()

    # The baseline writes exactly what intake would write for the same documents.
    gatekeeper = Gatekeeper.from_file(infra.config_dir / "intake" / "channel_systems.yaml")
    system = gatekeeper.authenticate(AUTH["Authorization"])
    assert system is not None
    keys = load_keys(infra.state_dir)
    raw_docs = realistic_events(args.events, seed=1)
    records = [replace(admit(d, system=system, keys=keys).record, topic=topic) for d in raw_docs]

    service = ServiceProcess(
        "intake",
        PORT,
        {
            **os.environ,
            "SERVICEPULS_INTAKE_PORT": str(PORT),
            "SERVICEPULS_INTAKE_TOPIC": topic,
            "SERVICEPULS_LOG_LEVEL": "WARNING",
        },
        "/ready",
    )
    service.start()
    results: dict[str, Any] = {"events": args.events, "single_events": args.single_events}
    try:
        await service.wait_ready()
        assert service.process is not None
        intake_pid = service.process.pid
        base = ("127.0.0.1", PORT)
        await intake_rate(base, realistic_events(500, seed=99), 100, 2)  # warm-up
        runs = {
            "single": (realistic_events(args.single_events, seed=2), 1, 32),
            "batch100": (realistic_events(args.events, seed=3), 100, 4),
            "batch1000": (realistic_events(args.events, seed=4), 1000, 2),
        }
        for name, (documents, batch, concurrency) in runs.items():
            if name not in args.runs:
                continue
            # Baselines in the same run, interleaved with intake: the same records, the same
            # number of records per acknowledged write and the same number of writers in
            # flight. Rounds, as a raw run lasts about a second and varies with the machine.
            same = records[: len(documents)]
            raw_send, raw_batched, rates, latencies = [], [], [], []
            cpu: dict[str, list[tuple[float, ...]]] = {"intake": [], "raw_send": []}
            for _ in range(args.rounds):
                await asyncio.sleep(SETTLE_SECONDS)
                rate, raw_cpu = await raw_producer_rate(
                    same, infra.kafka_bootstrap, batch, concurrency, plain=True
                )
                raw_send.append(rate)
                cpu["raw_send"].append(raw_cpu)
                rate, _ = await raw_producer_rate(
                    same, infra.kafka_bootstrap, batch, concurrency, plain=False
                )
                raw_batched.append(rate)
                await asyncio.sleep(SETTLE_SECONDS)
                spy = None
                if args.profile is not None:  # sampled from outside (--nonblocking: no pauses)
                    spy = await asyncio.create_subprocess_exec(
                        *(PY_SPY, "record", "--nonblocking", "-r", "200", "-f", "raw"),
                        *("-o", f"{args.profile}.{name}.txt", "-p", str(intake_pid)),
                        stdout=asyncio.subprocess.DEVNULL,
                    )
                    await asyncio.sleep(1)
                intake_cost, loadgen_cost = Cost(intake_pid), Cost(os.getpid())
                rate, taken = await intake_rate(base, documents, batch, concurrency)
                intake_cpu, broker_cpu = intake_cost.per_event_us(len(documents))
                loadgen_cpu, _ = loadgen_cost.per_event_us(len(documents))
                cpu["intake"].append((intake_cpu, loadgen_cpu, broker_cpu))
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    await spy.wait()
                rates.append(rate)
                latencies += taken
            rate = statistics.median(rates)

            def median_us(side: str, i: int) -> float:
                return round(statistics.median(c[i] for c in cpu[side]), 1)  # noqa: B023

            results[name] = {
                "batch": batch,
                "concurrency": concurrency,
                "rounds": args.rounds,
                "intake_events_per_s": round(rate),
                "raw_send_events_per_s": round(statistics.median(raw_send)),
                "raw_batched_events_per_s": round(statistics.median(raw_batched)),
                "ratio_to_raw_send": round(rate / statistics.median(raw_send), 3),
                "ratio_to_raw_batched": round(rate / statistics.median(raw_batched), 3),
                "cpu_us_per_event": {
                    "intake": median_us("intake", 0),
                    "load_generator": median_us("intake", 1),
                    "broker_during_intake": median_us("intake", 2),
                    "raw_send_producer": median_us("raw_send", 0),
                    "broker_during_raw_send": median_us("raw_send", 1),
                },
                "each_round": {
                    "intake": [round(r) for r in rates],
                    "raw_send": [round(r) for r in raw_send],
                    "raw_batched": [round(r) for r in raw_batched],
                },
                "p50_ms": round(percentile(latencies, 50) * 1000, 2),
                "p99_ms": round(percentile(latencies, 99) * 1000, 2),
                "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
            }
    finally:
        await service.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=30_000, help="events per batched run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per run (medians shown)")
    parser.add_argument(
        "--single-events", type=int, default=4_000, help="events in the single-event run"
    )
    parser.add_argument(
        "--runs",
        type=lambda v: [r for r in v.split(",") if r],
        default=list(RUNS),
        help=f"which runs, comma-separated (default {','.join(RUNS)})",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy the intake process during its rounds (raw stacks)"
    )
    args = parser.parse_args()
    if unknown := set(args.runs) - set(RUNS):
        parser.error(f"--runs: unknown {', '.join(sorted(unknown))}; choose from {', '.join(RUNS)}")
    results = asyncio.run(measure(args))
    print(
        f"{'run':<10} {'intake ev/s':>12} {'raw send':>9} {'ratio':>6} {'raw batched':>12} "
        f"{'ratio':>6} {'p50 ms':>8} {'p99 ms':>8}"
    )
    done = [name for name in RUNS if name in results]
    for name in done:
        r = results[name]
        print(
            f"{name:<10} {r['intake_events_per_s']:>12} {r['raw_send_events_per_s']:>9} "
            f"{r['ratio_to_raw_send']:>6} {r['raw_batched_events_per_s']:>12} "
            f"{r['ratio_to_raw_batched']:>6} {r['p50_ms']:>8} {r['p99_ms']:>8}"
        )
    for name in done:
        rounds = results[name]["each_round"]
        print(f"{name:<10} rounds (ev/s): " + "; ".join(f"{k} {v}" for k, v in rounds.items()))
    for name in done:
        us = results[name]["cpu_us_per_event"]
        print(
            f"{name:<10} CPU µs/event: intake {us['intake']}, load generator "
            f"{us['load_generator']}, broker {us['broker_during_intake']} | raw send producer "
            f"{us['raw_send_producer']}, broker {us['broker_during_raw_send']}"
        )
    out = REPO_ROOT / "out"
    out.mkdir(exist_ok=True)
    Path(out / "bench-intake.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
