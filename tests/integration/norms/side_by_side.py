"""Two norms services consume the same intake topic side by side, under load, and must publish
byte-identical outcomes (a heavy check, not part of the test suite; run under the bench lock):

    flock /tmp/servicepuls-bench.lock .venv/bin/python -m tests.integration.norms.side_by_side 30000

Event-time mode, idle release at 2 s, batches of 5,000, the benchmark's traffic (a year that
ended a week ago). Each service reads the topic from the start while the other competes for the
machine, so batches arrive at different moments: only decisions that wait for every unread
event come out the same (docs/norms.md, "Idle partitions")."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from benchmarks.norms import processed_so_far, traffic_records
from services.common.kafka import durable_producer, send_records
from tests.integration.norms.support import (
    DATABASE_URL,
    drop_schema,
    fingerprint,
    free_ports,
    new_schema,
    private_config,
    read_all,
    service_env,
)
from tests.support.kafka import BOOTSTRAP, private_topics
from tests.support.services import running_service


async def settled(schema: str, client: httpx.AsyncClient, count: int) -> None:
    """Every event consumed, the outbox empty and no clock changed for 5 s (after the idle
    release has let the watermark run to the end)."""
    while True:  # polled over HTTP: nothing here to wait on
        if await processed_so_far(client) >= count:
            break
        await asyncio.sleep(0.5)
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        stable, last = 0, None
        while stable < 10:
            state = await conn.fetchrow(
                f"""SELECT (SELECT count(*) FROM "{schema}".outbox) AS outbox,
                           (SELECT string_agg(taken, ',' ORDER BY clock_id)
                            FROM "{schema}".clock) AS taken"""
            )
            stable = stable + 1 if (state == last and state["outbox"] == 0) else 0
            last = state
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def main(count: int) -> int:
    run = uuid.uuid4().hex[:8]
    intake = f"servicepuls.check-{run}.intake"
    outputs = [f"servicepuls.check-{run}.norms-a", f"servicepuls.check-{run}.norms-b"]
    config = private_config(Path(f"/tmp/side-by-side-{run}"), f"check-{run}")
    schemas = [new_schema("norms_side_a"), new_schema("norms_side_b")]
    try:
        async with private_topics(intake, *outputs):
            producer = durable_producer(BOOTSTRAP, "norms-side-by-side")
            await producer.start()
            try:
                await send_records(producer, list(traffic_records(count, random.Random(7), intake)))
            finally:
                await producer.stop()
            began = time.perf_counter()
            async with contextlib.AsyncExitStack() as stack:
                clients = []
                for schema, output, port in zip(schemas, outputs, free_ports(2), strict=True):
                    env = service_env(
                        config,
                        schema,
                        port=port,
                        norms_topic=output,
                        intake_topic=intake,
                        auto_offset_reset="earliest",
                        clock="event",
                        allowed_lateness_seconds="3600",
                        max_batch="5000",
                        idle_partition_seconds="2",
                    )
                    service = await stack.enter_async_context(
                        running_service("norms", port=port, env=env)
                    )
                    client = httpx.AsyncClient(base_url=service.base_url, timeout=60)
                    clients.append(await stack.enter_async_context(client))
                await asyncio.gather(
                    *(settled(s, c, count) for s, c in zip(schemas, clients, strict=True))
                )
            print(f"consumed and settled in {time.perf_counter() - began:.0f} s")
            a, b = [await read_all(output) for output in outputs]
    finally:
        for schema in schemas:
            await drop_schema(schema)
    mine, theirs = set(fingerprint(a)), set(fingerprint(b))
    same = fingerprint(a) == fingerprint(b)
    print(f"outcome records: a {len(a):,}, b {len(b):,}; byte-identical: {same}")
    if not same:
        print(f"only in a: {len(mine - theirs):,}, only in b: {len(theirs - mine):,}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 30_000)))
