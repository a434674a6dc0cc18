"""Which closure of a resident is surveyed does not depend on read order (docs/reliability.md,
Findings; services/feedback/domain/resident_interval.py).

Two residents, each with two closures inside the survey interval, on two cases whose keys fall
on two partitions of a private intake topic. One resident's closures are read earlier-first,
the other's later-first (the later one read and scheduled before the earlier one is published).
Both must end the same way: the earlier closure surveyed and mailed, the later one throttled —
with the same survey events on the feedback topic. Through the real broker, PostgreSQL and SMTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from schemas.envelope import Envelope
from schemas.events import TOPICS, Family
from services.common.kafka import murmur2
from tests.integration.feedback.harness import (
    Intake,
    MailCatcher,
    case_closed,
    drop_schema,
    feedback_env,
    free_port,
    resident,
    wait_row,
    write_config,
)
from tests.support.kafka import TopicTail, private_topics, topic_tail
from tests.support.services import ServiceProcess, running_service

pytestmark = pytest.mark.integration

FEEDBACK_TOPIC = TOPICS[Family.FEEDBACK]
PARTITIONS = 2
DELAY = timedelta(seconds=30)  # the window in which an earlier closure can still take over
ANY_HOUR = """
delay_hours: 4
sending_hours: {weekdays: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", until: "23:59:59", skip_public_holidays: false}
resident_interval_days: 90
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def feedback(tmp_path_factory: Any, mail: MailCatcher) -> AsyncIterator[ServiceProcess]:
    schema = f"feedback_t{uuid.uuid4().hex[:8]}"
    topic = f"servicepuls.intake.v1.test-{uuid.uuid4().hex[:10]}"
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
        SERVICEPULS_FEEDBACK_DELAY_SECONDS=str(int(DELAY.total_seconds())),
        SERVICEPULS_FEEDBACK_INTAKE_TOPIC=topic,
        SERVICEPULS_FEEDBACK_START_FROM="earliest",
    )
    try:
        async with (
            private_topics(topic, partitions=PARTITIONS),
            running_service("feedback", port=port, env=env) as service,
        ):
            service.schema = schema  # type: ignore[attr-defined]
            service.topic = topic  # type: ignore[attr-defined]
            yield service
    finally:
        await drop_schema(schema)


def partition_of(case_id: str) -> int:
    return (murmur2(case_id.encode()) & 0x7FFFFFFF) % PARTITIONS


def two_cases_on_two_partitions() -> tuple[str, str]:
    first = f"Z-{uuid.uuid4()}"
    while True:
        second = f"Z-{uuid.uuid4()}"
        if partition_of(second) != partition_of(first):
            return first, second


async def read_for(tail: TopicTail, seconds: float) -> None:
    """Take in what arrives on the tail for a while (to see that nothing more comes)."""
    with contextlib.suppress(TimeoutError):
        await tail.wait_for(lambda _: False, timeout=seconds)


def story(events: list[Envelope[Any]], roles: dict[str, str]) -> list[tuple[str, str, Any]]:
    """The survey events about a pair of closures, by role (earlier/later), type and reason."""
    told = [
        (roles[e.subject], e.type.split(".")[-2], getattr(e.data, "reason", None))
        for e in events
        if e.subject in roles
    ]
    return sorted(told, key=str)


async def test_the_earlier_closure_is_surveyed_whatever_the_read_order(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    schema: str = feedback.schema  # type: ignore[attr-defined]
    now = datetime.now(UTC).replace(microsecond=0)
    email = {order: f"inwoner-{uuid.uuid4().hex[:10]}@example.org" for order in ("ef", "lf")}
    # Per pair: two cases on two partitions, closed 3 s apart (event time), one resident.
    cases = {
        order: dict(zip(("earlier", "later"), two_cases_on_two_partitions(), strict=True))
        for order in ("ef", "lf")
    }
    closed = {"earlier": now - timedelta(seconds=5), "later": now - timedelta(seconds=2)}

    closing = {
        (order, role): case_closed(case_id, resident(email=email[order]), at=closed[role])
        for order, pair in cases.items()
        for role, case_id in pair.items()
    }
    first_read = [closing["ef", "earlier"], closing["lf", "later"]]
    second_read = [closing["ef", "later"], closing["lf", "earlier"]]
    async with topic_tail(FEEDBACK_TOPIC) as events, Intake(feedback.topic) as intake:  # type: ignore[attr-defined]
        await intake.send(*first_read)
        for event in first_read:
            await wait_row(schema, event.subject, lambda r: r["status"] == "scheduled")
        # Only now the other closure of each resident: read order is fixed by the test.
        await intake.send(*second_read)
        for order in ("ef", "lf"):
            await wait_row(
                schema, cases[order]["earlier"], lambda r: r["status"] in ("scheduled", "sent")
            )
            later = await wait_row(
                schema, cases[order]["later"], lambda r: r["status"] == "suppressed"
            )
            assert later["suppression"] == "throttled", order
            assert later["sealed_contact"] is None and later["send_at"] is None

        # The earlier closure is mailed; the later one not, also after its own send time.
        for order in ("ef", "lf"):
            await mail.wait_for(email[order], timeout=DELAY.total_seconds() + 30)
        await events.wait_for(
            lambda e: e.subject in {cases[o]["earlier"] for o in cases} and "sent" in e.type,
            count=2,
            timeout=30,
        )
        await asyncio.sleep(
            max(0.0, (closed["later"] + DELAY - datetime.now(UTC)).total_seconds()) + 3
        )
        await read_for(events, 1)
        for order in ("ef", "lf"):
            assert len(mail.to(email[order])) == 1, order

        roles = {
            order: {case_id: role for role, case_id in cases[order].items()} for order in cases
        }
        expected = [
            ("earlier", "scheduled", None),
            ("earlier", "sent", None),
            ("later", "suppressed", "throttled"),
        ]
        assert story(events.seen, roles["ef"]) == expected
        assert story(events.seen, roles["lf"]) == expected, "read order changed the outcome"
        # The throttled closure's event is the one its own decision gives: its time, not later.
        for order in cases:
            (suppressed,) = [e for e in events.seen if e.subject == cases[order]["later"]]
            assert suppressed.time == closed["later"]

        # A redelivery of the later-first pair has no second effect.
        seen = len(events.seen)
        await intake.send(closing["lf", "later"], closing["lf", "earlier"])
        await read_for(events, 4)
        assert [e for e in events.seen[seen:] if e.subject in roles["lf"]] == []
        assert len(mail.to(email["lf"])) == 1
