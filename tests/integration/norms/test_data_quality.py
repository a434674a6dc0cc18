"""Events dated before their clock's start, through real Kafka and PostgreSQL.

A case closed "before" it was opened (real exports have these) must not leave its clock open and
overdue for ever: the clock is cancelled with reason `stopped_before_start`, a `norm.data_quality`
event reports the closure, and `servicepuls_norms_data_quality_problems_total` counts it per
channel system. In event time, a replay and the recompute command decide exactly alike."""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import orjson
import pytest
from rich.console import Console

from schemas.common import Channel, Duration, DurationUnit
from schemas.envelope import Envelope, encode, new_event
from schemas.events import (
    CaseClosed,
    CaseExtended,
    CaseOpened,
    CaseOutcome,
    CaseSuspended,
    ContactCompleted,
    ContactReceived,
    EventData,
    SuspensionReason,
)
from services.common.calendar import to_us
from services.common.kafka import durable_producer, send_records
from services.common.migrations import migrate
from services.norms.adapters.repository import MIGRATIONS
from services.norms.config import load_catalogs
from services.norms.domain.catalog import NormCatalog
from services.norms.recompute import compliance_table, read_topic, recompute
from services.norms.service import NormsService
from tests.integration.norms.support import (
    DATABASE_URL,
    MUNICIPALITY,
    SOURCE,
    decoded,
    drop_schema,
    event,
    fetchval,
    fingerprint,
    free_ports,
    new_schema,
    outbox_records,
    private_config,
    read_all,
    replayed,
    repository,
    service_env,
    wait_until_settled,
)
from tests.support.kafka import BOOTSTRAP, private_topics
from tests.support.services import running_service

pytestmark = pytest.mark.integration

AMS = ZoneInfo("Europe/Amsterdam")
CASE_SYSTEM = "/buch/zaaksysteem"  # intake's channel system `zaaksysteem` may post this source


def from_case_system(data: EventData, time: datetime) -> Envelope[Any]:
    return new_event(data, source=CASE_SYSTEM, municipality=MUNICIPALITY, time=time)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text `text` (0 if absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_case_closed_before_it_was_opened_is_cancelled_not_overdue(
    tmp_path: Path,
) -> None:
    """Wall clock, the quick norm (3 s): the bad case would breach within seconds if its
    closure were ignored; a good case beside it is met."""
    run = uuid.uuid4().hex[:8]
    intake_topic, norms_topic = f"servicepuls.test-{run}.intake", f"servicepuls.test-{run}.norms"
    config = private_config(tmp_path, f"dq-{run}")
    schema = new_schema("norms_dq")
    bad, good = f"Z-{uuid.uuid4()}", f"Z-{uuid.uuid4()}"
    now = datetime.now(UTC)
    events = [
        from_case_system(
            CaseOpened(case_id=bad, case_type="test-snel", channel=Channel.WEBFORM), now
        ),
        # Closed an hour "before" it was opened.
        from_case_system(
            CaseClosed(case_id=bad, case_type="test-snel", outcome=CaseOutcome.RESOLVED),
            now - timedelta(hours=1),
        ),
        event(CaseOpened(case_id=good, case_type="test-snel", channel=Channel.WEBFORM), now),
        event(
            CaseClosed(case_id=good, case_type="test-snel", outcome=CaseOutcome.RESOLVED),
            now + timedelta(seconds=1),
        ),
    ]
    [port] = free_ports(1)
    env = service_env(
        config,
        schema,
        port=port,
        intake_topic=intake_topic,
        norms_topic=norms_topic,
        auto_offset_reset="earliest",
    )
    producer = durable_producer(BOOTSTRAP, "norms-dq-test")
    await producer.start()
    try:
        async with (
            private_topics(intake_topic, norms_topic),
            running_service("norms", port=port, env=env) as service,
        ):
            await send_records(producer, [replace(encode(e), topic=intake_topic) for e in events])
            await wait_until_settled(schema, expect_clocks=True)
            await asyncio.sleep(4)  # past the quick norm's due instant: nothing may breach
            await wait_until_settled(schema)
            async with httpx.AsyncClient(base_url=service.base_url) as client:
                text = (await client.get("/metrics")).text
                compliance = (
                    await client.get("/v1/compliance", params={"municipality": MUNICIPALITY})
                ).json()
            outcomes = decoded(await read_all(norms_topic))
            row = await fetchval(
                f"""SELECT json_build_object('outcome', outcome, 'next', next_decision_at)
                    FROM "{schema}".clock WHERE clock_id = $1""",
                f"{MUNICIPALITY}/test_quick_case/{bad}",
            )
    finally:
        await producer.stop()
        await drop_schema(schema)

    def of(case: str) -> list[Any]:
        return [
            e for e in outcomes if e.data.subject_id == case and e.data.norm_id == "test_quick_case"
        ]

    assert [e.type.split(".")[-2] for e in of(bad)] == [
        "clock_started",
        "data_quality",
        "cancelled",
    ]
    _, report, cancelled = of(bad)
    assert cancelled.data.reason == "stopped_before_start"
    assert report.data.problem.value == "stopped_before_start"
    assert report.data.cause_source == CASE_SYSTEM
    assert report.data.cause_time == now - timedelta(hours=1)
    assert report.time == cancelled.time == now  # decided at the start
    assert '"outcome" : "cancelled"' in row and '"next" : null' in row  # nothing left to decide
    assert [e.type.split(".")[-2] for e in of(good)] == ["clock_started", "met"]  # within 1.5 s
    assert (
        metric(
            text,
            "servicepuls_norms_data_quality_problems_total",
            channel_system="zaaksysteem",
            norm="test_quick_case",
            problem="stopped_before_start",
        )
        == 1.0
    )
    [quick] = [n for n in compliance["norms"] if n["norm_id"] == "test_quick_case"]
    counts = (quick["met"], quick["missed"], quick["cancelled"], quick["data_quality"])
    assert counts == (1, 0, 0, 1)  # counted apart: neither met, missed nor withdrawn


async def test_events_before_the_start_decide_alike_live_in_replay_and_in_recompute(
    tmp_path: Path,
) -> None:
    """Event time, the shipped catalog: closures, a suspension and an extension dated before
    the opening, some arriving after the opening and some before it."""
    run = uuid.uuid4().hex[:8]
    intake_topic, live_topic, replay_topic = (
        f"servicepuls.test-{run}.intake",
        f"servicepuls.test-{run}.norms-live",
        f"servicepuls.test-{run}.norms-replay",
    )
    config = private_config(tmp_path, f"dq-replay-{run}")
    base = datetime(2026, 4, 6, 9, 0, tzinfo=AMS)  # a Monday
    report, application, complaint = (f"Z-{uuid.uuid4()}" for _ in range(3))
    melding, vergunning, klacht = "melding-openbare-ruimte", "omgevingsvergunning", "klacht"
    events = [
        # Closed before it was opened (both norms of a report are cancelled).
        from_case_system(
            CaseOpened(case_id=report, case_type=melding, channel=Channel.WEBFORM), base
        ),
        from_case_system(
            CaseClosed(case_id=report, case_type=melding, outcome=CaseOutcome.RESOLVED),
            base - timedelta(days=2),
        ),
        # A suspension dated before the opening, arriving first: ignored, reported; the
        # decision is made in time.
        from_case_system(
            CaseSuspended(
                case_id=application,
                case_type=vergunning,
                reason=SuspensionReason.AWAITING_INFORMATION,
            ),
            base - timedelta(days=1),
        ),
        from_case_system(
            CaseOpened(case_id=application, case_type=vergunning, channel=Channel.WEBFORM), base
        ),
        from_case_system(
            CaseClosed(case_id=application, case_type=vergunning, outcome=CaseOutcome.GRANTED),
            base + timedelta(days=30),
        ),
        # An extension dated before the opening: ignored, so the complaint breaches.
        event(CaseOpened(case_id=complaint, case_type=klacht, channel=Channel.EMAIL), base),
        event(
            CaseExtended(
                case_id=complaint,
                case_type=klacht,
                extension=Duration(amount=4, unit=DurationUnit.WEEKS),
            ),
            base - timedelta(hours=3),
        ),
        # Far later: lets the watermark pass every due instant.
        event(
            ContactCompleted(
                contact_id=f"T-{uuid.uuid4()}",
                channel=Channel.PHONE,
                topic="afval",
                started_at=base + timedelta(days=200),
                wait_seconds=5,
            ),
            base + timedelta(days=200),
        ),
    ]
    schemas = [new_schema("norms_dq_live"), new_schema("norms_dq_replay")]
    common = {
        "clock": "event",
        "allowed_lateness_seconds": "3600",
        "idle_partition_seconds": "2",
        "intake_topic": intake_topic,
        "auto_offset_reset": "earliest",
    }
    producer = durable_producer(BOOTSTRAP, "norms-dq-replay-test")
    await producer.start()
    try:
        async with private_topics(intake_topic, live_topic, replay_topic):
            [port] = free_ports(1)
            env = service_env(config, schemas[0], port=port, norms_topic=live_topic, **common)
            async with running_service("norms", port=port, env=env):
                for e in events:  # one by one, in this order
                    await send_records(producer, [replace(encode(e), topic=intake_topic)])
                await wait_until_settled(schemas[0], expect_clocks=True)
                await asyncio.sleep(3)  # idle partitions release the watermark
                await wait_until_settled(schemas[0])
            live = await read_all(live_topic)
            replay = await replayed(config, schemas[1], replay_topic, **common)
            catalog = load_catalogs(config)[MUNICIPALITY]
            read = await read_topic(BOOTSTRAP, intake_topic, MUNICIPALITY)
            highest = max(to_us(e.time) for _, e in read)
            recomputed = recompute(
                [e for _, e in read], catalog, 0, 1 << 62, highest - 3600 * 10**6
            )
    finally:
        await producer.stop()
        for schema in schemas:
            await drop_schema(schema)

    outcomes = decoded(live)
    by_clock: dict[tuple[str, str], list[str]] = {}
    for e in outcomes:
        name = e.type.split(".")[-2]
        if name in ("data_quality", "cancelled"):
            name += f":{getattr(e.data, 'problem', None) or e.data.reason}"
        by_clock.setdefault((e.data.norm_id, e.data.subject_id), []).append(name)
    cancelled = [
        "clock_started",
        "data_quality:stopped_before_start",
        "cancelled:stopped_before_start",
    ]
    assert by_clock[("report_reaction", report)] == cancelled
    assert by_clock[("report_resolved", report)] == cancelled
    decision = by_clock[("decision_made", application)]
    assert decision[:2] == ["clock_started", "data_quality:suspended_before_start"]
    assert decision[-1] == "met"
    complaint_handled = by_clock[("complaint_handled", complaint)]
    assert complaint_handled[1] == "data_quality:extended_before_start"
    assert "breached" in complaint_handled  # the extension dated before the start counted not
    assert fingerprint(replay) == fingerprint(live)
    assert sorted((e.id, e.data.model_dump_json()) for e in recomputed) == sorted(
        (e.id, e.data.model_dump_json()) for e in outcomes
    )
    # The recompute command's table counts the cancellations for data quality apart.
    console = Console(width=200, record=True)
    console.print(compliance_table(recomputed, catalog))
    rows = {
        line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:6]]
        for line in console.export_text().splitlines()
        if line.count("│") > 5
    }
    # met, missed, cancelled, data quality
    assert rows["report_reaction"] == rows["report_resolved"] == ["0", "0", "0", "1"]


async def test_migration_007_wakes_a_clock_an_earlier_version_left_overdue(
    catalogs: dict[str, NormCatalog], tmp_path: Path
) -> None:
    """Before the rule, a closure dated before the opening was ignored and the clock stayed
    breached and open for ever. The migration wakes such clocks once; the scheduler then cancels
    them (stopped_before_start) and reports the closure."""
    schema = new_schema("norms_dq_migrate")
    before = tmp_path / "migrations-before-007"
    before.mkdir()
    for path in MIGRATIONS.glob("00[1-6]_*.sql"):
        shutil.copy(path, before / path.name)
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, schema, before)
        mail = f"E-{uuid.uuid4()}"
        received_at = datetime.now(UTC) - timedelta(days=10)
        store = NormsService(repository(pool, schema, catalogs))
        await store.apply_batch(
            [
                (
                    0,
                    event(
                        ContactReceived(contact_id=mail, channel=Channel.EMAIL, topic="afval"),
                        received_at,
                    ),
                )
            ]
        )
        cid = f"{MUNICIPALITY}/email_answered/{mail}"
        # As the earlier version left it: the answer dated before the mail stored, ignored.
        early = [
            to_us(received_at - timedelta(hours=1)),
            "stop",
            f"{SOURCE}\x1fanswer-{mail}",
            0,
            "",
            {},
        ]
        async with pool.acquire() as conn:
            await conn.execute(
                f"""UPDATE "{schema}".clock SET transitions = transitions || $2::jsonb,
                        next_decision_at = NULL WHERE clock_id = $1""",
                cid,
                orjson.dumps([early]).decode(),
            )
            stuck = await conn.fetchrow(
                f'SELECT taken, outcome FROM "{schema}".clock WHERE clock_id = $1', cid
            )
            assert "breached" in stuck["taken"] and stuck["outcome"] is None
            await migrate(conn, schema, MIGRATIONS)
        result, _ = await store.fire_due(100)
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                f'SELECT outcome, next_decision_at FROM "{schema}".clock WHERE clock_id = $1', cid
            )
            data_quality = await conn.fetchval(
                f'SELECT sum(data_quality) FROM "{schema}".compliance_daily'
            )
        outbox = decoded(await outbox_records(schema, pool))
    finally:
        await pool.close()
        await drop_schema(schema)
    assert (row["outcome"], row["next_decision_at"]) == ("cancelled", None)
    assert data_quality == 1
    assert [e.type.split(".")[-2] for e in outbox if e.data.clock_id == cid][-2:] == [
        "data_quality",
        "cancelled",
    ]
    assert result.data_quality == [(MUNICIPALITY, "email_answered", SOURCE, "stopped_before_start")]
