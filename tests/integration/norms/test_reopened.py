"""A reopened case through real Kafka and PostgreSQL: the norms that restart get a fresh cycle
with outcome events of their own, the first cycle's outcome stays, a redelivered reopening has no
second effect, compliance counts each cycle, and a replay publishes exactly the live outcomes."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from schemas.common import Channel
from schemas.envelope import encode
from schemas.events import (
    CaseClosed,
    CaseOpened,
    CaseOutcome,
    CaseReopened,
    CaseResponded,
    ContactCompleted,
)
from services.common.kafka import durable_producer, send_records
from services.norms.domain.outcomes import outcome_id
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
BASE = datetime(2026, 4, 6, 9, 0, tzinfo=AMS)  # a Monday


def day(days: float) -> datetime:
    return BASE + timedelta(days=days)


async def test_a_reopened_case_restarts_its_norms_with_outcomes_of_their_own(
    tmp_path: Path,
) -> None:
    run = uuid.uuid4().hex[:8]
    intake_topic, live_topic, replay_topic = (
        f"servicepuls.test-{run}.intake",
        f"servicepuls.test-{run}.norms-live",
        f"servicepuls.test-{run}.norms-replay",
    )
    version = f"reopen-{run}"
    config = private_config(tmp_path, version)
    report, complaint, application = (f"Z-{uuid.uuid4()}" for _ in range(3))
    melding, klacht, vergunning = "melding-openbare-ruimte", "klacht", "omgevingsvergunning"
    reopened_report = event(CaseReopened(case_id=report, case_type=melding), day(3))
    events = [
        # A report resolved in a day, reopened two days later, resolved again after 27 days.
        event(CaseOpened(case_id=report, case_type=melding, channel=Channel.WEBFORM), day(0)),
        event(CaseResponded(case_id=report, case_type=melding, channel=Channel.EMAIL), day(0.1)),
        event(CaseClosed(case_id=report, case_type=melding, outcome=CaseOutcome.RESOLVED), day(1)),
        reopened_report,
        event(CaseClosed(case_id=report, case_type=melding, outcome=CaseOutcome.RESOLVED), day(30)),
        # A complaint handled in ten days, reopened, not closed again.
        event(CaseOpened(case_id=complaint, case_type=klacht, channel=Channel.EMAIL), day(0)),
        event(
            CaseClosed(case_id=complaint, case_type=klacht, outcome=CaseOutcome.RESOLVED), day(10)
        ),
        event(CaseReopened(case_id=complaint, case_type=klacht), day(12)),
        # An application decided and reopened: its decision norm does not restart.
        event(
            CaseOpened(case_id=application, case_type=vergunning, channel=Channel.WEBFORM), day(0)
        ),
        event(
            CaseClosed(case_id=application, case_type=vergunning, outcome=CaseOutcome.GRANTED),
            day(20),
        ),
        event(CaseReopened(case_id=application, case_type=vergunning), day(21)),
        # Far later: lets the watermark pass every due instant.
        event(
            ContactCompleted(
                contact_id=f"T-{uuid.uuid4()}",
                channel=Channel.PHONE,
                topic="afval",
                started_at=day(200),
                wait_seconds=5,
            ),
            day(200),
        ),
    ]
    schemas = [new_schema("norms_reopen_live"), new_schema("norms_reopen_replay")]
    common = {
        "clock": "event",
        "allowed_lateness_seconds": "3600",
        "idle_partition_seconds": "2",
        "intake_topic": intake_topic,
        "auto_offset_reset": "earliest",
    }
    producer = durable_producer(BOOTSTRAP, "norms-reopen-test")
    await producer.start()
    try:
        async with private_topics(intake_topic, live_topic, replay_topic):
            [live_port] = free_ports(1)

            async def produce(batch: list[Any]) -> None:
                await send_records(
                    producer, [replace(encode(e), topic=intake_topic) for e in batch]
                )

            live_env = service_env(
                config, schemas[0], port=live_port, norms_topic=live_topic, **common
            )
            async with running_service("norms", port=live_port, env=live_env) as service:
                await produce(events[:-1])
                await produce([reopened_report])  # delivered again: no second effect
                await produce(events[-1:])
                await wait_until_settled(schemas[0], expect_clocks=True)
                async with httpx.AsyncClient(base_url=service.base_url) as client:
                    response = await client.get(
                        "/v1/compliance", params={"municipality": MUNICIPALITY}
                    )
                compliance = {n["norm_id"]: n for n in response.json()["norms"]}
            live = await read_all(live_topic)

            replay = await replayed(config, schemas[1], replay_topic, **common)
    finally:
        await producer.stop()
        for schema in schemas:
            await drop_schema(schema)

    outcomes = decoded(live)
    assert len({e.id for e in outcomes}) == len(outcomes)  # each decision published once

    def ids(norm: str, subject: str) -> list[str]:
        return sorted(e.id for e in outcomes if e.data.clock_id == f"GM0383/{norm}/{subject}")

    def expected(norm: str, subject: str, *keys: str) -> list[str]:
        return sorted(outcome_id(f"GM0383/{norm}/{subject}", version, key) for key in keys)

    first_cycle = ("started", "final")  # closed before any warning
    assert ids("report_resolved", report) == expected(
        "report_resolved",
        report,
        "started",
        "final",
        "2:started",
        "2:warning:50%",
        "2:warning:80%",
        "2:breached",
        "2:final",
    )
    by_id = {e.id: e for e in outcomes}
    [met] = [by_id[i] for i in expected("report_resolved", report, "final")]
    [missed] = [by_id[i] for i in expected("report_resolved", report, "2:final")]
    [restarted] = [by_id[i] for i in expected("report_resolved", report, "2:started")]
    assert met.type.endswith("norm.met.v1") and met.data.stopped_at == day(1)
    assert missed.type.endswith("norm.missed.v1") and missed.data.stopped_at == day(30)
    assert restarted.data.started_at == day(3)
    assert missed.data.started_at == day(3) and missed.data.due_at > day(3) + timedelta(days=10)
    # The reaction was given: that norm has one cycle.
    assert ids("report_reaction", report) == expected("report_reaction", report, "started", "final")
    # The reopened complaint runs again, and breaches, while it stays open.
    assert ids("complaint_handled", complaint) == expected(
        "complaint_handled",
        complaint,
        *first_cycle,
        "2:started",
        "2:warning:50%",
        "2:warning:5 calendar_days before",
        "2:breached",
    )
    assert ids("decision_made", application) == expected("decision_made", application, *first_cycle)
    # Each cycle counts.
    assert (compliance["report_resolved"]["met"], compliance["report_resolved"]["missed"]) == (1, 1)
    assert fingerprint(replay) == fingerprint(live)
