"""Surveys across a restart, and links that expire: a feedback process with short timings."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from schemas.common import Channel
from schemas.events import TOPICS, Family
from tests.integration.feedback.harness import (
    INFRA,
    Intake,
    MailCatcher,
    axe_checked_browser,
    case_closed,
    contact_completed,
    drop_schema,
    feedback_env,
    for_subject,
    free_port,
    private_intake_topic,
    resident,
    survey_link,
    wait_row,
    write_config,
)
from tests.support.kafka import topic_tail
from tests.support.services import ServiceProcess, running_service

pytestmark = pytest.mark.integration

FEEDBACK_TOPIC = TOPICS[Family.FEEDBACK]
ANY_HOUR = """
delay_hours: 0
sending_hours: {weekdays: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", until: "23:59:59", skip_public_holidays: false}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def feedback(tmp_path_factory: Any, mail: MailCatcher) -> AsyncIterator[ServiceProcess]:
    schema = f"feedback_t{uuid.uuid4().hex[:8]}"
    config = write_config(
        tmp_path_factory.mktemp("config"),
        {"anyhour": ANY_HOUR},
        {code: "anyhour" for code in ("GM0373", "GM0450", "GM0383", "GM0399")},
    )
    port = free_port()
    env = feedback_env(
        config,
        schema,
        port,
        mail.port,
        SERVICEPULS_FEEDBACK_DELAY_SECONDS="6",
        SERVICEPULS_FEEDBACK_LINK_VALID_SECONDS="4",
    )
    try:
        async with running_service("feedback", port=port, env=env) as service:
            service.schema = schema  # type: ignore[attr-defined]
            yield service
    finally:
        await drop_schema(schema)


async def test_a_restart_between_scheduling_and_sending_still_sends_once(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    case_id = f"Z-{uuid.uuid4()}"
    email = f"inwoner-{uuid.uuid4().hex[:10]}@example.org"
    async with topic_tail(FEEDBACK_TOPIC) as events, Intake() as intake:
        await intake.send(case_closed(case_id, resident(email=email)))
        await wait_row(feedback.schema, case_id, lambda r: r["status"] == "scheduled")  # type: ignore[attr-defined]
        restarted_at = datetime.now(UTC)
        await feedback.restart()  # SIGTERM, start again, wait until ready
        await mail.wait_for(email, timeout=30)
        await events.wait_for(for_subject(case_id, "sent"))
        await asyncio.sleep(2)
        assert len(mail.to(email)) == 1
        row = await wait_row(feedback.schema, case_id, lambda r: r["status"] in ("sent", "expired"))  # type: ignore[attr-defined]
        assert row["attempts"] == 1
        assert row["sent_at"] > restarted_at  # due only after the restart: the new process sent it


async def test_an_unanswered_link_expires_with_a_friendly_410_and_the_address_is_erased(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    case_id = f"Z-{uuid.uuid4()}"
    email = f"inwoner-{uuid.uuid4().hex[:10]}@example.org"
    async with (
        topic_tail(FEEDBACK_TOPIC) as events,
        Intake() as intake,
        httpx.AsyncClient() as client,
    ):
        await intake.send(case_closed(case_id, resident(email=email)))
        link = survey_link(await mail.wait_for(email, timeout=30))
        sent = await wait_row(feedback.schema, case_id, lambda r: r["status"] == "sent")  # type: ignore[attr-defined]
        assert sent["sealed_contact"] is not None
        expired = await events.wait_for(for_subject(case_id, "expired"), timeout=20)
        assert expired[0].data.survey_id == str(sent["survey_id"])
        row = await wait_row(feedback.schema, case_id, lambda r: r["status"] == "expired")  # type: ignore[attr-defined]
        assert row["sealed_contact"] is None
        page = await client.get(link)
        assert page.status_code == 410
        assert "Deze vragenlijst is verlopen" in page.text
        english = await client.get(link + "?lang=en")
        assert english.status_code == 410 and "This survey has expired" in english.text
        # The same axe check as the form (test_feedback_surveys.py), in both languages.
        async with axe_checked_browser(feedback.base_url) as (_, accessible):
            assert "Deze vragenlijst is verlopen" in await accessible(link)
            assert "This survey has expired" in await accessible(link + "?lang=en")
        one_click = await client.get(link + "?score=9")
        assert one_click.status_code == 410
        await asyncio.sleep(0.5)
        assert not [e for e in events.seen if for_subject(case_id, "responded")(e)]


async def test_in_event_time_the_delay_counts_in_event_time_and_a_far_future_event_moves_nothing(
    tmp_path_factory: Any, mail: MailCatcher
) -> None:
    """SERVICEPULS_FEEDBACK_CLOCK=event (the simulator's compressed time): a survey due an hour
    after closing goes out when the intake topic's event time passes that hour, not before. An
    event dated 2090 is then applied without moving the clock: the open survey does not expire.

    The events go to a private intake topic: no other producer's event times move this
    instance's clock, and nothing this test writes moves anyone else's."""
    schema = f"feedback_t{uuid.uuid4().hex[:8]}"
    config = write_config(
        tmp_path_factory.mktemp("config"),
        {"anyhour": ANY_HOUR},
        {code: "anyhour" for code in ("GM0373", "GM0450", "GM0383", "GM0399")},
    )
    port = free_port()
    closed_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    case_id = f"Z-{uuid.uuid4()}"
    email = f"inwoner-{uuid.uuid4().hex[:10]}@example.org"
    try:
        async with private_intake_topic() as topic:
            env = feedback_env(
                config,
                schema,
                port,
                mail.port,
                SERVICEPULS_FEEDBACK_CLOCK="event",
                SERVICEPULS_FEEDBACK_CLOCK_MAX_AHEAD_SECONDS="300",
                SERVICEPULS_FEEDBACK_DELAY_SECONDS="3600",
                SERVICEPULS_FEEDBACK_INTAKE_TOPIC=topic,
                SERVICEPULS_FEEDBACK_START_FROM="earliest",
            )
            async with (
                running_service("feedback", port=port, env=env) as service,
                Intake(topic) as intake,
                httpx.AsyncClient() as client,
            ):
                await intake.send(case_closed(case_id, resident(email=email), at=closed_at))
                row = await wait_row(schema, case_id, lambda r: r["status"] == "scheduled")
                assert row["send_at"] == closed_at + timedelta(hours=1)
                await asyncio.sleep(2)
                assert mail.to(email) == []
                await intake.send(chat_contact(closed_at + timedelta(hours=2)))
                link = survey_link(await mail.wait_for(email, timeout=20))
                sent = await wait_row(schema, case_id, lambda r: r["status"] == "sent")
                assert sent["sent_at"] == closed_at + timedelta(hours=2)

                far_future = datetime(2090, 3, 6, 10, 0, tzinfo=UTC)
                await intake.send(chat_contact(far_future))
                await _counted_ahead(client, service.base_url)
                assert await _event_clock(schema) == closed_at + timedelta(hours=2)
                await asyncio.sleep(1.5)  # a few dispatcher rounds: nothing may expire
                row = await wait_row(schema, case_id, lambda r: True)
                assert row["status"] == "sent", "a far-future event expired an open survey"
                assert (await client.get(link)).status_code == 200
    finally:
        await drop_schema(schema)


def chat_contact(at: datetime) -> Any:
    contact = contact_completed(f"C-{uuid.uuid4()}", resident(), Channel.CHAT)
    return contact.model_copy(update={"time": at})


async def _counted_ahead(client: httpx.AsyncClient, base_url: str, timeout: float = 20) -> None:
    """Wait until the instance applied an event too far ahead (its own counter says so)."""
    name = "servicepuls_feedback_events_ahead_of_clock_total"
    for _ in range(int(timeout * 5)):
        text = (await client.get(base_url + "/metrics")).text
        counted = [line for line in text.splitlines() if line.startswith(name + " ")]
        if counted and float(counted[0].split()[1]) >= 1:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("the far-future event was not applied")


async def _event_clock(schema: str) -> datetime:
    conn = await asyncpg.connect(INFRA.database_url)
    try:
        return await conn.fetchval(f'SELECT watermark FROM "{schema}".event_clock')
    finally:
        await conn.close()
