"""Two schedulers at once on one database (replicas, DESIGN.md: nothing may assume it is the only
replica): the outcomes are exactly those of a single process, and each decision is taken — and
published — once.

The same intake topic is decided twice, in event time: by one process that consumes, schedules
and relays; and by a consumer-only process beside two scheduler+relay processes on one schema,
with small scheduler batches so the two race for the same due clocks (`FOR UPDATE SKIP
LOCKED`) and for the outbox (the relay's advisory lock)."""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.common import Channel
from schemas.envelope import encode
from schemas.events import CaseClosed, CaseOpened, CaseOutcome, ContactCompleted
from services.common.kafka import durable_producer, send_records
from tests.integration.norms.support import (
    decoded,
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
from tests.integration.norms.test_replay import BASE, history
from tests.support.kafka import BOOTSTRAP, private_topics
from tests.support.services import running_service

pytestmark = pytest.mark.integration

LATENESS = timedelta(hours=2)


async def decided(url: str) -> float:
    """Decisions this process took (its `servicepuls_norms_decisions_total`, all labels)."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(url + "/metrics")).text
    return sum(
        float(value)
        for value in re.findall(r"^servicepuls_norms_decisions_total\{[^}]*\} (\S+)$", text, re.M)
    )


async def compliance_rows(schema: str) -> Any:
    return await fetchval(
        f"""SELECT json_agg(c ORDER BY municipality, norm_id, day)::text
            FROM "{schema}".compliance_daily c"""
    )


@pytest.mark.timeout(600)
async def test_two_schedulers_decide_exactly_like_one_and_take_each_decision_once(
    tmp_path: Path,
) -> None:
    run = uuid.uuid4().hex[:8]
    intake_topic, single_topic, pair_topic = (
        f"servicepuls.test-{run}.intake",
        f"servicepuls.test-{run}.norms-single",
        f"servicepuls.test-{run}.norms-pair",
    )
    config = private_config(tmp_path, f"sched-{run}")
    rng = random.Random(run)
    events = history(rng) + history(rng)
    arrival = sorted(events, key=lambda e: e.time + timedelta(minutes=rng.uniform(0, 60)))
    flush = event(
        ContactCompleted(
            contact_id=f"T-{uuid.uuid4()}",
            channel=Channel.PHONE,
            topic="afval",
            started_at=BASE + timedelta(days=200),
            wait_seconds=5,
        ),
        BASE + timedelta(days=200),
    )
    single, pair = new_schema("norms_sched_one"), new_schema("norms_sched_two")
    common = {
        "clock": "event",
        "allowed_lateness_seconds": str(LATENESS.total_seconds()),
        "idle_partition_seconds": "2",
        "intake_topic": intake_topic,
        "auto_offset_reset": "earliest",
        "scheduler_batch": "3",  # many small rounds: the two schedulers meet on the same clocks
        "scheduler_interval_seconds": "0.05",
        "relay_batch": "7",
    }
    producer = durable_producer(BOOTSTRAP, "norms-two-schedulers-test")
    await producer.start()
    try:
        async with private_topics(intake_topic, single_topic, pair_topic):
            await send_records(
                producer, [replace(encode(e), topic=intake_topic) for e in [*arrival, flush]]
            )
            # One process does everything.
            [port] = free_ports(1)
            env = service_env(config, single, port=port, norms_topic=single_topic, **common)
            async with running_service("norms", port=port, env=env):
                await wait_until_settled(single, expect_clocks=True)
                await _settle_after_idle(single)
            # One consumer, two schedulers (each with a relay) on one schema.
            ports = free_ports(3)
            consumer_env = service_env(
                config,
                pair,
                port=ports[0],
                norms_topic=pair_topic,
                **common,
                scheduler_enabled="false",
                relay_enabled="false",
            )
            scheduler_envs = [
                service_env(
                    config, pair, port=p, norms_topic=pair_topic, **common, consumer_enabled="false"
                )
                for p in ports[1:]
            ]
            async with (
                running_service("norms", port=ports[1], env=scheduler_envs[0]) as first,
                running_service("norms", port=ports[2], env=scheduler_envs[1]) as second,
                running_service("norms", port=ports[0], env=consumer_env),
            ):
                await wait_until_settled(pair, expect_clocks=True)
                await _settle_after_idle(pair)
                shares = [await decided(first.base_url), await decided(second.base_url)]
                taken = await fetchval(
                    f"""SELECT sum(cardinality(string_to_array(taken, '|')))
                        FROM "{pair}".clock WHERE taken <> ''"""
                )
            one, two = await read_all(single_topic), await read_all(pair_topic)
            compliance = [await compliance_rows(single), await compliance_rows(pair)]
    finally:
        await producer.stop()
        for schema in (single, pair):
            await drop_schema(schema)

    assert len(one) > 300
    ids = Counter(e.id for e in decoded(two))
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1][:5]  # published once
    assert fingerprint(two) == fingerprint(one)  # byte for byte what one process decided
    assert compliance[1] == compliance[0]
    # Each decision taken once: the two schedulers' decisions add up to the clocks' decisions
    # (instant norms are judged by the consumer, not by a scheduler).
    clock_outcomes = [
        e for e in decoded(two) if not e.data.norm_id.startswith(("phone", "counter"))
    ]
    assert sum(shares) == len(clock_outcomes) == taken
    assert min(shares) > 0, shares  # both schedulers took part


async def _settle_after_idle(schema: str) -> None:
    """Once the idle partitions release the watermark, every clock is decided and relayed."""
    await asyncio.sleep(3)
    await wait_until_settled(schema)


@pytest.mark.timeout(300)
async def test_two_schedulers_with_the_wall_clock_take_each_warning_and_breach_once(
    tmp_path: Path,
) -> None:
    """Production mode: the consumer decides what is due at once (the start), the schedulers
    take warnings and breaches at their instants — racing each other and the consumer."""
    run = uuid.uuid4().hex[:8]
    intake_topic, norms_topic = f"servicepuls.test-{run}.intake", f"servicepuls.test-{run}.norms"
    config = private_config(tmp_path, f"sched-wall-{run}")
    schema = new_schema("norms_sched_wall")
    cases = [f"Z-{uuid.uuid4()}" for _ in range(60)]
    common = {
        "intake_topic": intake_topic,
        "norms_topic": norms_topic,
        "auto_offset_reset": "earliest",
        "scheduler_batch": "2",
        "scheduler_interval_seconds": "0.02",
    }
    ports = free_ports(3)
    producer = durable_producer(BOOTSTRAP, "norms-two-schedulers-wall-test")
    await producer.start()
    try:
        async with (
            private_topics(intake_topic, norms_topic),
            running_service(
                "norms", port=ports[0], env=service_env(config, schema, port=ports[0], **common)
            ),
            running_service(
                "norms",
                port=ports[1],
                env=service_env(config, schema, port=ports[1], **common, consumer_enabled="false"),
            ),
            running_service(
                "norms",
                port=ports[2],
                env=service_env(config, schema, port=ports[2], **common, consumer_enabled="false"),
            ),
        ):
            # Dated from a second ahead, once every process runs: the warnings and breaches
            # are the schedulers' (the consumer takes only what is due when it reads).
            now = datetime.now(UTC) + timedelta(seconds=1)
            events = []
            for number, case in enumerate(cases):
                opened = now + timedelta(milliseconds=50 * number)
                events.append(
                    event(
                        CaseOpened(case_id=case, case_type="test-snel", channel=Channel.WEBFORM),
                        opened,
                    )
                )
                if number % 2:  # closed within the 3 s of the quick norm: met
                    events.append(
                        event(
                            CaseClosed(
                                case_id=case, case_type="test-snel", outcome=CaseOutcome.RESOLVED
                            ),
                            opened + timedelta(seconds=1),
                        )
                    )
            await send_records(producer, [replace(encode(e), topic=intake_topic) for e in events])
            await wait_until_settled(schema, expect_clocks=True)
            await asyncio.sleep(5)  # every quick clock is past its due instant
            await wait_until_settled(schema)
            shares = [await decided(f"http://127.0.0.1:{p}") for p in ports]
            outcomes = [
                e
                for e in decoded(await read_all(norms_topic))
                if e.data.norm_id == "test_quick_case"
            ]
    finally:
        await producer.stop()
        await drop_schema(schema)

    ids = Counter(e.id for e in outcomes)
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1][:5]
    by_case: dict[str, list[str]] = {}
    for e in sorted(outcomes, key=lambda e: e.time):
        by_case.setdefault(e.data.subject_id, []).append(e.type.split(".")[-2])
    for number, case in enumerate(cases):
        expected = (
            ["clock_started", "met"] if number % 2 else ["clock_started", "warning", "breached"]
        )
        assert by_case[case] == expected, (case, by_case[case])
    # Each decision taken once, and both schedulers took part.
    assert sum(shares) == len(outcomes) and min(shares[1:]) > 0, shares
