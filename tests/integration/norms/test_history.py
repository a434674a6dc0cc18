"""History through real Kafka and PostgreSQL: a deadline explains itself (`GET /v1/clocks/{id}`
agrees with the outcome events), and an import of past cases in two passes — all openings,
then the closures seconds later — gives the right final outcomes and no warning or breach for a
clock whose stop arrived within the import."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from schemas.common import Channel, Duration, DurationUnit
from schemas.envelope import Envelope, encode
from schemas.events import (
    CaseClosed,
    CaseExtended,
    CaseOpened,
    CaseOutcome,
    CaseResumed,
    CaseSuspended,
    ContactReceived,
    SuspensionReason,
)
from services.common.calendar import to_us
from services.common.kafka import durable_producer, send_records
from services.norms.config import load_catalogs
from services.norms.domain.clock import DecisionKind
from services.norms.domain.planning import StoredClock, advance_clock, plan_events
from tests.integration.norms.support import (
    MUNICIPALITY,
    decoded,
    drop_schema,
    email_answer,
    event,
    fetchval,
    free_ports,
    new_schema,
    private_config,
    read_all,
    service_env,
    wait_until_settled,
)
from tests.support.kafka import BOOTSTRAP, private_topics
from tests.support.services import running_service

pytestmark = pytest.mark.integration

AMS = ZoneInfo("Europe/Amsterdam")
ALERTS = {"nl.servicepuls.norm.warning.v1", "nl.servicepuls.norm.breached.v1"}


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=AMS)


async def produce(producer: Any, topic: str, events: list[Envelope[Any]]) -> None:
    await send_records(producer, [replace(encode(e), topic=topic) for e in events])


async def test_a_clock_explains_its_deadline_as_its_outcome_events_do(tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    intake_topic, norms_topic = f"servicepuls.test-{run}.intake", f"servicepuls.test-{run}.norms"
    config = private_config(tmp_path, f"explain-{run}")
    application, complaint, mail = f"Z-{uuid.uuid4()}", f"Z-{uuid.uuid4()}", f"E-{uuid.uuid4()}"
    vergunning, klacht = "omgevingsvergunning", "klacht"
    events = [
        # Awb 4:13 with a suspension (Awb 4:15) of 9 days: due at the end of 6 May 2026.
        event(
            CaseOpened(case_id=application, case_type=vergunning, channel=Channel.WEBFORM),
            local("2026-03-02T10:00"),
        ),
        event(
            CaseSuspended(
                case_id=application,
                case_type=vergunning,
                reason=SuspensionReason.AWAITING_INFORMATION,
            ),
            local("2026-03-10T10:00"),
        ),
        event(CaseResumed(case_id=application, case_type=vergunning), local("2026-03-20T10:00")),
        event(
            CaseClosed(case_id=application, case_type=vergunning, outcome=CaseOutcome.GRANTED),
            local("2026-05-06T16:00"),
        ),
        # An e-mail on the Friday before King's Day: answered a day late.
        event(
            ContactReceived(contact_id=mail, channel=Channel.EMAIL, topic="afval"),
            local("2026-04-24T16:00"),
        ),
        event(email_answer(mail, local("2026-04-30T10:00")), local("2026-04-30T10:00")),
        # A complaint extended by 4 weeks (Awb 9:11 lid 2): 70 days, to the end of 10 August.
        event(
            CaseOpened(case_id=complaint, case_type=klacht, channel=Channel.EMAIL),
            local("2026-06-01T09:00"),
        ),
        event(
            CaseExtended(
                case_id=complaint,
                case_type=klacht,
                extension=Duration(amount=4, unit=DurationUnit.WEEKS),
            ),
            local("2026-06-15T09:00"),
        ),
        event(
            CaseClosed(case_id=complaint, case_type=klacht, outcome=CaseOutcome.RESOLVED),
            local("2026-08-05T12:00"),
        ),
    ]
    schema = new_schema("norms_explain")
    [port] = free_ports(1)
    env = service_env(
        config,
        schema,
        port=port,
        intake_topic=intake_topic,
        norms_topic=norms_topic,
        auto_offset_reset="earliest",
        history_horizon_seconds="0",  # (no import here: see the next test)
    )
    producer = durable_producer(BOOTSTRAP, "norms-explain-test")
    await producer.start()
    answers: dict[tuple[str, str], Any] = {}
    try:
        async with (
            private_topics(intake_topic, norms_topic),
            running_service("norms", port=port, env=env) as service,
            httpx.AsyncClient(base_url=service.base_url, timeout=30) as client,
        ):
            await produce(producer, intake_topic, events)
            await wait_until_settled(schema, expect_clocks=True)
            for clock_id in (
                f"{MUNICIPALITY}/decision_made/{application}",
                f"{MUNICIPALITY}/email_answered/{mail}",
                f"{MUNICIPALITY}/complaint_handled/{complaint}",
            ):
                for lang in ("nl", "en"):
                    response = await client.get(f"/v1/clocks/{clock_id}", params={"lang": lang})
                    assert response.status_code == 200, response.text
                    answers[(clock_id, lang)] = response.json()
            missing = await client.get(f"/v1/clocks/{MUNICIPALITY}/email_answered/nobody")
            wrong_lang = await client.get(
                f"/v1/clocks/{MUNICIPALITY}/email_answered/{mail}", params={"lang": "fr"}
            )
            outcomes = decoded(await read_all(norms_topic))
    finally:
        await producer.stop()
        await drop_schema(schema)

    assert missing.status_code == 404 and "nobody" in missing.json()["error"]
    assert wrong_lang.status_code == 400 and "lang" in wrong_lang.json()["error"]
    finals = {o.data.clock_id: o for o in outcomes if o.type.split(".")[-2] in ("met", "missed")}
    assert len(finals) == 3
    for (clock_id, lang), answer in answers.items():
        final = finals[clock_id]
        # The explanation agrees with what the clock published.
        assert answer["due_at"] == final.data.due_at.isoformat()
        assert answer["summary"] == final.data.explanation.model_dump()
        assert answer["status"] == final.type.split(".")[-2]
        assert answer["clock_id"] == clock_id and answer["lang"] == lang
        assert all(isinstance(line, str) and line for line in answer["explanation"])

    decision = answers[(f"{MUNICIPALITY}/decision_made/{application}", "nl")]
    assert decision["due_at"] == "2026-05-07T00:00:00+02:00"
    [suspension] = decision["suspensions"]
    assert (suspension["reason"], suspension["days"]) == ("awaiting_information", 9)
    assert decision["summary"]["suspended_days"] == 9
    assert any(
        "wachtten op informatie van de aanvrager" in line for line in decision["explanation"]
    )

    email_nl = answers[(f"{MUNICIPALITY}/email_answered/{mail}", "nl")]
    email_en = answers[(f"{MUNICIPALITY}/email_answered/{mail}", "en")]
    assert email_nl["status"] == "missed"
    assert email_nl["due_at"] == "2026-04-30T00:00:00+02:00"
    assert [(d["date"], d["status"], d.get("name")) for d in email_nl["days"]] == [
        ("2026-04-25", "weekend", "zaterdag"),
        ("2026-04-26", "weekend", "zondag"),
        ("2026-04-27", "holiday", "Koningsdag"),
        ("2026-04-28", "counted", None),
        ("2026-04-29", "counted", None),
    ]
    assert email_en["days"][2]["name"] == "King's Day"
    assert email_nl["summary"]["skipped_days"] == {"weekend": 2, "holiday": 1, "closing_day": 0}
    assert any("maandag 27 april (Koningsdag)" in line for line in email_nl["explanation"])
    assert any("Monday 27 April (King's Day)" in line for line in email_en["explanation"])

    handled = answers[(f"{MUNICIPALITY}/complaint_handled/{complaint}", "en")]
    assert handled["due_at"] == "2026-08-11T00:00:00+02:00"
    [extension] = handled["extensions"]
    assert extension["counted"] == {"amount": 4.0, "unit": "weeks"} and not extension["refused"]
    assert handled["summary"]["counted_days"] == 70
    assert handled["summary"]["extension_days"] == 28.0


async def test_an_import_in_two_passes_raises_no_alert_for_cases_closed_within_it(
    tmp_path: Path,
) -> None:
    """Openings of 2025 first, the closures seconds later (the shape of a public export): the
    same final outcomes as computed directly from the events, no warning or breach for a clock
    whose stop came within the import, and the alerts of cases never closed once it settled."""
    run = uuid.uuid4().hex[:8]
    intake_topic, norms_topic = f"servicepuls.test-{run}.intake", f"servicepuls.test-{run}.norms"
    version = f"import-{run}"
    config = private_config(tmp_path, version)
    rng = random.Random(15)
    openings: list[Envelope[Any]] = []
    closures: list[Envelope[Any]] = []
    still_open: set[str] = set()
    base = local("2025-02-03T08:00")
    for index in range(60):
        received = base + timedelta(days=rng.uniform(0, 300), hours=rng.uniform(0, 9))
        if index % 2:  # an e-mail, answered in 2 hours to 6 days
            mail = f"E-{uuid.uuid4()}"
            openings.append(
                event(
                    ContactReceived(contact_id=mail, channel=Channel.EMAIL, topic="afval"), received
                )
            )
            subject = mail
            answered = received + timedelta(hours=rng.uniform(2, 144))
            closing = event(email_answer(mail, answered), answered)
        else:  # a public-space report, resolved in half a day to 20 days
            case = f"Z-{uuid.uuid4()}"
            kind = "melding-openbare-ruimte"
            openings.append(
                event(CaseOpened(case_id=case, case_type=kind, channel=Channel.WEBFORM), received)
            )
            subject = case
            closed = received + timedelta(days=rng.uniform(0.5, 20))
            closing = event(
                CaseClosed(case_id=case, case_type=kind, outcome=CaseOutcome.RESOLVED), closed
            )
        if index % 15 == 0:
            still_open.add(subject)  # never closed: a real backlog
        else:
            closures.append(closing)

    # The independent computation: every clock decided from all the events at once.
    catalog = load_catalogs(config)[MUNICIPALITY]
    plan = plan_events(openings + closures, {MUNICIPALITY: catalog})
    expected_finals: dict[str, str] = {}
    expected_alerts: dict[str, int] = {}
    now = to_us(datetime.now(AMS))
    for blank, transitions in plan.transitions.values():
        clock = StoredClock(blank.clock_id, blank.municipality, blank.norm_id, blank.subject_id)
        for transition, context in transitions:
            clock.add(transition, context)
        update = advance_clock(clock, catalog, now)
        for outcome in update.events:
            if outcome.kind in (DecisionKind.MET, DecisionKind.MISSED):
                expected_finals[blank.clock_id] = outcome.kind.value
            elif outcome.kind in (DecisionKind.WARNING, DecisionKind.BREACHED):
                expected_alerts[blank.clock_id] = expected_alerts.get(blank.clock_id, 0) + 1
    closed_alerting = {
        c for c in expected_alerts if c.rsplit("/", 1)[1] not in still_open
    }  # what a plain wall-clock import would have raised
    assert len(closed_alerting) > 20

    schema = new_schema("norms_import")
    [port] = free_ports(1)
    env = service_env(
        config,
        schema,
        port=port,
        intake_topic=intake_topic,
        norms_topic=norms_topic,
        auto_offset_reset="earliest",
        history_settle_seconds="6",
    )
    producer = durable_producer(BOOTSTRAP, "norms-import-test")
    await producer.start()
    try:
        async with (
            private_topics(intake_topic, norms_topic),
            running_service("norms", port=port, env=env),
        ):
            # Pass 1: every opening, applied before the closures come.
            await produce(producer, intake_topic, openings)
            expected_clocks = len({t for t in plan.transitions if "test_quick" not in t})
            for _ in range(120):
                started = await fetchval(
                    f"SELECT count(*) FROM \"{schema}\".clock WHERE taken <> ''"
                )
                if started >= expected_clocks:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)  # "the closures seconds later"
            importing = await fetchval(
                f'SELECT max(historical_at) FROM "{schema}".partition_progress'
            )
            assert importing is not None  # (the openings marked an import in progress)
            # Pass 2: the closures.
            await produce(producer, intake_topic, closures)
            await wait_until_settled(schema, timeout=120)
            outcomes = decoded(await read_all(norms_topic))
    finally:
        await producer.stop()
        await drop_schema(schema)

    finals = {
        o.data.clock_id: o.type.split(".")[-2]
        for o in outcomes
        if o.type.split(".")[-2] in ("met", "missed")
    }
    assert finals == expected_finals
    alerts: dict[str, int] = {}
    for o in outcomes:
        if o.type in ALERTS:
            alerts[o.data.clock_id] = alerts.get(o.data.clock_id, 0) + 1
    # No alert for a clock whose stop came within the import ...
    assert not [c for c in alerts if c.rsplit("/", 1)[1] not in still_open]
    # ... and the cases never closed raise theirs, once the import settled.
    assert alerts == {c: n for c, n in expected_alerts.items() if c.rsplit("/", 1)[1] in still_open}
    assert len(alerts) >= len(still_open)
    assert len({o.id for o in outcomes}) == len(outcomes)
