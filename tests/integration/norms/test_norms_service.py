"""The norms service as a real process against real Kafka and PostgreSQL.

Inputs go through the intake service over HTTP (as channel systems post them) or straight to
Kafka where the test is about Kafka delivery itself; outputs are read from the norms topic.
Every test uses its own catalog version, schema and consumer group, so it sees only its own
outcomes even when other norms services run on the same topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.common import Channel
from schemas.events import (
    TOPICS,
    CaseClosed,
    CaseOpened,
    CaseOutcome,
    ContactCompleted,
    ContactReceived,
    Family,
)
from services.common.kafka import durable_producer, publish
from tests.integration.norms.support import (
    drop_schema,
    email_answer,
    event,
    fetchval,
    free_ports,
    new_schema,
    outbox_records,
    private_config,
    service_env,
    structured,
)
from tests.support.kafka import BOOTSTRAP, topic_tail
from tests.support.services import running_service

pytestmark = pytest.mark.integration

NORMS_TOPIC = TOPICS[Family.NORMS]
INTAKE_PORT, NORMS_PORT, CRASH_PORT = free_ports(3)
AUTH = {"Authorization": "Bearer dev-test"}


@pytest.fixture(scope="module")
def version() -> str:
    return f"it-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def norms_service(tmp_path_factory: pytest.TempPathFactory, version: str) -> Any:
    schema = new_schema("norms_it")
    config = private_config(tmp_path_factory.mktemp("norms"), version)
    env = service_env(config, schema, port=NORMS_PORT, auto_offset_reset="latest")
    try:
        async with running_service("norms", port=NORMS_PORT, env=env) as service:
            yield service
    finally:
        await drop_schema(schema)


@pytest.fixture(scope="module")
async def intake() -> Any:
    env = {"SERVICEPULS_INTAKE_PORT": str(INTAKE_PORT)}
    async with (
        running_service("intake", port=INTAKE_PORT, env=env) as service,
        httpx.AsyncClient(base_url=service.base_url, headers=AUTH, timeout=30) as client,
    ):
        yield client


async def post(intake: httpx.AsyncClient, *envelopes: Any) -> None:
    for envelope in envelopes:
        response = await intake.post("/v1/events", json=structured(envelope))
        assert response.status_code == 202, response.text


async def drain(tail: Any, seconds: float) -> None:
    """Keep reading the topic for `seconds` (so late duplicates would be seen)."""
    with contextlib.suppress(TimeoutError):
        await tail.wait_for(lambda e: False, timeout=seconds)


def of(version: str, clock: str, kind: str | None = None) -> Any:
    def predicate(e: Any) -> bool:
        return (
            e.data.norm_version == version
            and e.data.clock_id == clock
            and (kind is None or e.type == f"nl.servicepuls.norm.{kind}.v1")
        )

    return predicate


async def test_intake_events_produce_norm_events_and_a_breach_while_the_case_is_open(
    norms_service: Any, intake: httpx.AsyncClient, version: str
) -> None:
    now = datetime.now(UTC)
    case_id = f"Z-{uuid.uuid4()}"
    mail_id = f"E-{uuid.uuid4()}"
    quick = f"GM0383/test_quick_case/{case_id}"
    mail = f"GM0383/email_answered/{mail_id}"
    async with topic_tail(NORMS_TOPIC) as tail:
        await post(
            intake,
            event(CaseOpened(case_id=case_id, case_type="test-snel", channel=Channel.WEBFORM), now),
            event(ContactReceived(contact_id=mail_id, channel=Channel.EMAIL, topic="afval"), now),
            event(email_answer(mail_id, now), now + timedelta(seconds=1)),
        )
        [started] = await tail.wait_for(of(version, quick, "clock_started"), timeout=30)
        [breached] = await tail.wait_for(of(version, quick, "breached"), timeout=30)
        seen_at = time.time()
        [warning] = await tail.wait_for(of(version, quick, "warning"))
        # The breach is emitted at the due instant, while the case is still open.
        assert breached.time == breached.data.due_at == started.data.due_at
        assert breached.data.due_at == now + timedelta(seconds=3)
        assert seen_at - breached.data.due_at.timestamp() < 5
        assert warning.data.threshold == "50%"
        assert warning.time == now + timedelta(seconds=1.5)
        assert breached.data.elapsed_business_seconds == pytest.approx(3)
        assert breached.source == "/servicepuls/norms"
        assert breached.subject == case_id

        [met] = await tail.wait_for(of(version, mail, "met"))
        assert met.data.stopped_at == now + timedelta(seconds=1)
        assert met.data.target.amount == 2 and met.data.target.unit == "working_days"
        assert met.data.compliance_goal == 0.85
        assert met.data.channel == "email"

        await post(
            intake,
            event(
                CaseClosed(case_id=case_id, case_type="test-snel", outcome=CaseOutcome.RESOLVED),
                datetime.now(UTC),
            ),
        )
        [missed] = await tail.wait_for(of(version, quick, "missed"))
        assert missed.data.due_at == breached.data.due_at
        # Each decision once.
        mine = [e for e in tail.seen if of(version, quick)(e)]
        assert sorted(e.type.split(".")[-2] for e in mine) == [
            "breached",
            "clock_started",
            "missed",
            "warning",
        ]

    async with httpx.AsyncClient(base_url=norms_service.base_url) as client:
        report = (await client.get("/v1/compliance", params={"municipality": "GM0383"})).json()
        by_norm = {n["norm_id"]: n for n in report["norms"]}
        assert by_norm["test_quick_case"]["missed"] >= 1
        assert by_norm["email_answered"]["met"] >= 1
        metrics = (await client.get("/metrics")).text
        assert "servicepuls_norms_events_processed_total" in metrics
        assert "servicepuls_norms_outbox_backlog" in metrics


async def test_a_phone_call_is_judged_from_the_contact_itself(
    norms_service: Any, intake: httpx.AsyncClient, version: str
) -> None:
    now = datetime.now(UTC)
    slow, fast = f"T-{uuid.uuid4()}", f"T-{uuid.uuid4()}"

    def call(contact_id: str, wait: float) -> Any:
        return event(
            ContactCompleted(
                contact_id=contact_id,
                channel=Channel.PHONE,
                topic="afval",
                started_at=now - timedelta(seconds=wait + 60),
                wait_seconds=wait,
                handling_seconds=60,
            ),
            now,
        )

    async with topic_tail(NORMS_TOPIC) as tail:
        await post(intake, call(slow, 45), call(fast, 12))
        [missed] = await tail.wait_for(of(version, f"GM0383/phone_answered/{slow}", "missed"))
        [met] = await tail.wait_for(of(version, f"GM0383/phone_answered/{fast}", "met"))
    assert missed.data.elapsed_business_seconds == 45
    assert met.data.due_at == met.data.started_at + timedelta(seconds=30)
    assert missed.time == now  # the contact event's own time


async def test_an_event_delivered_twice_has_effect_once(norms_service: Any, version: str) -> None:
    """Kafka may deliver a record twice (a producer retry, a rebalance): one effect only."""
    now = datetime.now(UTC)
    case_id = f"Z-{uuid.uuid4()}"
    opened = event(
        CaseOpened(case_id=case_id, case_type="test-snel", channel=Channel.WEBFORM),
        now,
    )
    producer = durable_producer(BOOTSTRAP, "norms-test")
    await producer.start()
    try:
        async with topic_tail(NORMS_TOPIC) as tail:
            await publish(producer, [opened])
            await publish(producer, [opened])  # the very same event again
            clock = f"GM0383/test_quick_case/{case_id}"
            await tail.wait_for(of(version, clock, "breached"), timeout=30)
            await drain(tail, 3)  # room for a wrongly duplicated outcome to show up
            mine = [e for e in tail.seen if of(version, clock)(e)]
    finally:
        await producer.stop()
    assert sorted(e.type.split(".")[-2] for e in mine) == ["breached", "clock_started", "warning"]


async def test_a_crash_between_the_database_commit_and_the_kafka_write_loses_nothing(
    tmp_path: Path,
) -> None:
    """The decision is committed with its outbox row; the process dies before relaying it.
    After a restart the relay publishes it, once."""
    version = f"crash-{uuid.uuid4().hex[:8]}"
    schema = new_schema("norms_crash")
    config = private_config(tmp_path, version)
    port = CRASH_PORT
    now = datetime.now(UTC)
    case_id = f"Z-{uuid.uuid4()}"
    clock = f"GM0383/test_quick_case/{case_id}"
    producer = durable_producer(BOOTSTRAP, "norms-test")
    await producer.start()
    try:
        env = service_env(
            config, schema, port=port, auto_offset_reset="latest", relay_enabled="false"
        )
        async with topic_tail(NORMS_TOPIC) as tail:
            async with running_service("norms", port=port, env=env) as service:
                opened = event(
                    CaseOpened(case_id=case_id, case_type="test-snel", channel=Channel.WEBFORM),
                    now,
                )
                # Published again every 2 s until applied: a consumer that starts at the latest
                # offset may settle its position just after the first copy (the copies are one
                # event to the service: its dedupe key).
                deadline, again = time.monotonic() + 30, 0.0
                while not any(r.key == case_id.encode() for r in await outbox_records(schema)):
                    assert time.monotonic() < deadline, "decision never committed"
                    if time.monotonic() >= again:
                        await publish(producer, [opened])
                        again = time.monotonic() + 2
                    await asyncio.sleep(0.2)
                service.kill()  # committed in PostgreSQL, not written to Kafka
            assert not [e for e in tail.seen if of(version, clock)(e)]
            env["SERVICEPULS_NORMS_RELAY_ENABLED"] = "true"
            async with running_service("norms", port=port, env=env):
                await tail.wait_for(of(version, clock, "breached"), timeout=30)
                await drain(tail, 3)
            mine = [e for e in tail.seen if of(version, clock)(e)]
            assert sorted(e.type.split(".")[-2] for e in mine) == [
                "breached",
                "clock_started",
                "warning",
            ]
            assert await fetchval(f'SELECT count(*) FROM "{schema}".outbox') == 0
    finally:
        await producer.stop()
        await drop_schema(schema)
