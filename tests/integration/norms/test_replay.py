"""Event time decides: a replay of the intake topic into an empty database gives exactly the
outcomes of the live run, byte for byte; and the recompute command decides alike."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schemas.common import Channel, Direction, Duration, DurationUnit
from schemas.envelope import encode
from schemas.events import (
    CaseClosed,
    CaseExtended,
    CaseOpened,
    CaseOutcome,
    CaseReopened,
    CaseResponded,
    CaseResumed,
    CaseSuspended,
    ContactCompleted,
    ContactReceived,
    SuspensionReason,
)
from services.common.calendar import to_us
from services.common.kafka import durable_producer, send_records
from services.norms.config import load_catalogs
from services.norms.recompute import read_topic, recompute
from tests.integration.norms.support import (
    MUNICIPALITY,
    decoded,
    drop_schema,
    event,
    fingerprint,
    free_ports,
    new_schema,
    private_config,
    read_all,
    replayed,
    service_env,
    wait_until_settled,
)
from tests.support.kafka import BOOTSTRAP, private_topics
from tests.support.services import running_service

pytestmark = pytest.mark.integration

AMS = ZoneInfo("Europe/Amsterdam")
BASE = datetime(2026, 2, 2, 9, 0, tzinfo=AMS)  # a Monday
LATENESS = timedelta(hours=2)


def history(rng: random.Random) -> list[Any]:
    """A few weeks of one municipality: answered and unanswered mail, reports, applications
    with suspension and extension, complaints, phone calls."""
    events: list[Any] = []

    def at(hours: float) -> datetime:
        return BASE + timedelta(hours=hours)

    for _ in range(25):
        start = rng.uniform(0, 24 * 21)
        mail = f"E-{uuid.uuid4()}"
        events.append(
            event(ContactReceived(contact_id=mail, channel=Channel.EMAIL, topic="afval"), at(start))
        )
        if rng.random() < 0.8:
            answered = start + rng.uniform(1, 24 * 5)
            events.append(
                event(
                    ContactCompleted(
                        contact_id=f"E-{uuid.uuid4()}",
                        channel=Channel.EMAIL,
                        direction=Direction.OUTBOUND,
                        topic="afval",
                        started_at=at(answered),
                        in_reply_to=mail,
                    ),
                    at(answered),
                )
            )
    for number in range(15):
        start = rng.uniform(0, 24 * 21)
        case = f"Z-{uuid.uuid4()}"
        kind = "melding-openbare-ruimte"
        events.append(
            event(
                CaseOpened(case_id=case, case_type=kind, channel=Channel.PUBLIC_SPACE_REPORT),
                at(start),
            )
        )
        events.append(
            event(
                CaseResponded(case_id=case, case_type=kind, channel=Channel.EMAIL),
                at(start + rng.uniform(1, 24 * 6)),
            )
        )
        outcome = rng.choice([CaseOutcome.RESOLVED, CaseOutcome.RESOLVED, CaseOutcome.WITHDRAWN])
        closed = start + rng.uniform(24 * 6, 24 * 20)
        events.append(event(CaseClosed(case_id=case, case_type=kind, outcome=outcome), at(closed)))
        reopen(events, case, kind, closed, rng, always=number == 0)
    for _ in range(15):
        start = rng.uniform(0, 24 * 21)
        case = f"Z-{uuid.uuid4()}"
        kind = rng.choice(["omgevingsvergunning", "klacht"])
        events.append(
            event(CaseOpened(case_id=case, case_type=kind, channel=Channel.WEBFORM), at(start))
        )
        if kind != "klacht" and rng.random() < 0.5:
            pause = start + rng.uniform(24, 24 * 10)
            events.append(
                event(
                    CaseSuspended(
                        case_id=case, case_type=kind, reason=SuspensionReason.AWAITING_INFORMATION
                    ),
                    at(pause),
                )
            )
            events.append(
                event(
                    CaseResumed(case_id=case, case_type=kind), at(pause + rng.uniform(1, 24 * 15))
                )
            )
        if rng.random() < 0.4:
            events.append(
                event(
                    CaseExtended(
                        case_id=case,
                        case_type=kind,
                        extension=Duration(amount=4, unit=DurationUnit.WEEKS),
                    ),
                    at(start + rng.uniform(24 * 7, 24 * 35)),
                )
            )
        if rng.random() < 0.8:
            closed = start + rng.uniform(24 * 20, 24 * 70)
            events.append(
                event(
                    CaseClosed(case_id=case, case_type=kind, outcome=CaseOutcome.GRANTED),
                    at(closed),
                )
            )
            reopen(events, case, kind, closed, rng)
    for _ in range(20):
        start = rng.uniform(0, 24 * 21)
        wait = rng.uniform(0, 90)
        events.append(
            event(
                ContactCompleted(
                    contact_id=f"T-{uuid.uuid4()}",
                    channel=Channel.PHONE,
                    topic="afval",
                    started_at=at(start),
                    wait_seconds=wait,
                    callback_requested=rng.random() < 0.3,
                ),
                at(start) + timedelta(seconds=wait + 120),
            )
        )
    return events


def reopen(
    events: list[Any],
    case: str,
    kind: str,
    closed: float,
    rng: random.Random,
    *,
    always: bool = False,
) -> None:
    """Now and then a closed case is reopened (a new cycle of the norms that restart), and
    perhaps closed again."""
    if rng.random() < 0.3 or always:
        again = closed + rng.uniform(1, 24 * 5)
        events.append(
            event(CaseReopened(case_id=case, case_type=kind), BASE + timedelta(hours=again))
        )
        if rng.random() < 0.6:
            events.append(
                event(
                    CaseClosed(case_id=case, case_type=kind, outcome=CaseOutcome.RESOLVED),
                    BASE + timedelta(hours=again + rng.uniform(24, 24 * 20)),
                )
            )


async def test_replay_into_an_empty_database_gives_exactly_the_live_outcomes(
    tmp_path: Path,
) -> None:
    run = uuid.uuid4().hex[:8]
    intake_topic, live_topic, replay_topic = (
        f"servicepuls.test-{run}.intake",
        f"servicepuls.test-{run}.norms-live",
        f"servicepuls.test-{run}.norms-replay",
    )
    version = f"replay-{run}"
    config = private_config(tmp_path, version)
    rng = random.Random(run)
    events = history(rng)
    # Arrival order: each event late by up to an hour (less than the allowed lateness).
    arrival = sorted(events, key=lambda e: e.time + timedelta(minutes=rng.uniform(0, 60)))
    # One event far in the future lets the watermark pass every due instant at the end.
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
    schemas = [new_schema("norms_live"), new_schema("norms_replay")]
    common = {
        "clock": "event",
        "allowed_lateness_seconds": str(LATENESS.total_seconds()),
        "idle_partition_seconds": "2",
        "intake_topic": intake_topic,
        "auto_offset_reset": "earliest",
    }
    producer = durable_producer(BOOTSTRAP, "norms-replay-test")
    await producer.start()
    try:
        async with private_topics(intake_topic, live_topic, replay_topic):
            [live_port] = free_ports(1)
            live_env = service_env(
                config, schemas[0], port=live_port, norms_topic=live_topic, **common
            )
            async with running_service("norms", port=live_port, env=live_env):
                for start in range(0, len(arrival), 20):  # traffic trickles in while it runs
                    await send_records(
                        producer,
                        [
                            replace(encode(e), topic=intake_topic)
                            for e in arrival[start : start + 20]
                        ],
                    )
                    await asyncio.sleep(0.3)
                await send_records(producer, [replace(encode(flush), topic=intake_topic)])
                await wait_until_settled(schemas[0], expect_clocks=True)
            live = await read_all(live_topic)

            replay = await replayed(config, schemas[1], replay_topic, **common)

            # The recompute command decides alike, from the same topic, in memory.
            catalog = load_catalogs(config)[MUNICIPALITY]
            read = await read_topic(BOOTSTRAP, intake_topic, MUNICIPALITY)
            assert read, f"recompute read nothing from {intake_topic}"
            highest = max(to_us(e.time) for _, e in read)
            recomputed = recompute(
                [e for _, e in read],
                catalog,
                0,
                1 << 62,
                highest - int(LATENESS.total_seconds() * 1e6),
            )
    finally:
        await producer.stop()
        for schema in schemas:
            await drop_schema(schema)

    kinds = {e.type.split(".")[-2] for e in decoded(live)}
    assert kinds == {"clock_started", "warning", "breached", "met", "missed", "cancelled"}
    starts = Counter(e.data.clock_id for e in decoded(live) if e.type.endswith("clock_started.v1"))
    assert max(starts.values()) > 1  # a reopened case's clock ran a second cycle
    assert len(live) > 150
    assert fingerprint(replay) == fingerprint(live)
    assert sorted((e.id, e.data.model_dump_json()) for e in recomputed) == sorted(
        (e.id, e.data.model_dump_json()) for e in decoded(live)
    )
