"""A catalog change gives one answer everywhere (docs/norms.md, "Recompute after a catalog
change"): real Kafka and PostgreSQL, the norms and metrics services as processes, and the
recompute command as an operator runs it.

Public-space reports ("report_reaction": a reaction within 3 working days), week of Monday
9 November 2026, decided in event time. Two revisions, one after the other:

1. the target goes from 3 to 2 working days (catalog b);
2. Friday 13 November becomes a closing day, after the fact (catalog c).

| case | opened | reaction | a (3 days) | b (2 days) | c (2 days, 13 Nov closed) |
| --- | --- | --- | --- | --- | --- |
| A | Mon 9 10:00 | Wed 11 15:00 | met | met | met |
| B | Mon 9 10:00 | Thu 12 15:00 | met | missed | missed |
| C | Mon 9 10:00 | Fri 13 15:00 | missed | missed | missed |
| D | Thu 12 10:00 | Tue 17 12:00 | met (due Tue 17) | missed (due Mon 16) | met (due Tue 17) |
| E | Tue 17 10:00 | — | running, due Fri 20 | overdue since Thu 19 | overdue |
| F | Fri 20 12:00 | — | running, due Wed 25 | running, due Tue 24 | running |

The last event (Fri 20 13:00) concerns no norm: with no allowed lateness the watermark ("now")
stands at it, so F runs and E is overdue under a 2-day target.
The first test takes 40-90 s, by load (three norms service starts, two recompute runs).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
import yaml

from schemas.common import Channel
from schemas.envelope import Envelope, encode, new_event
from schemas.events import CaseOpened, CaseResponded, EventData
from services.common.kafka import durable_producer, send_records
from services.metrics.report.__main__ import load_facts
from services.metrics.report.figures import Period, compute
from services.norms.config import load_catalogs
from services.norms.service import NormsService
from tests.integration.metrics.support import (
    config_with,
    fresh_municipality,
    scrape,
    start_group_at_end,
)
from tests.integration.metrics.traffic import sample_key
from tests.integration.norms.support import (
    DATABASE_URL,
    REPO_ROOT,
    SOURCE,
    decoded,
    drop_schema,
    fetchval,
    free_ports,
    new_schema,
    read_all,
    repository,
    service_env,
)
from tests.support.kafka import BOOTSTRAP, private_topics
from tests.support.services import running_service

pytestmark = pytest.mark.integration

AMS = ZoneInfo("Europe/Amsterdam")
NORM = "report_reaction"
REPORT = "melding-openbare-ruimte"


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=AMS)


def catalog_config(
    tmp: Path, municipality: str, version: str, days: int, closing: list[date]
) -> Path:
    """deploy/config serving `municipality`, with the catalog under `version`, report_reaction
    at `days` working days and the extra closing days."""
    target = config_with(tmp / version, municipality)
    norms_path = target / "norms" / "default.yaml"
    catalog = yaml.safe_load(norms_path.read_text())
    catalog["version"] = version
    for norm in catalog["norms"]:
        if norm["id"] == NORM:
            norm["target"]["amount"] = days
    norms_path.write_text(yaml.safe_dump(catalog, sort_keys=False))
    calendar_path = target / "calendars" / "buch.yaml"
    calendar = yaml.safe_load(calendar_path.read_text())
    calendar["closing_days"] = [*calendar["closing_days"], *closing]
    calendar_path.write_text(yaml.safe_dump(calendar, sort_keys=False))
    return target


def recompute(env: dict[str, str], municipality: str) -> str:
    """The operator's command: preview and revise November."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.norms.recompute",
            "--municipality",
            municipality,
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--emit",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stderr


async def metrics_state(url: str, municipality: str) -> dict[str, float]:
    samples = await scrape(url)

    def value(name: str, **labels: str) -> float:
        return samples.get(sample_key(name, municipality=municipality, norm=NORM, **labels), 0.0)

    return {
        "met": value("servicepuls_norm_clocks_stopped_total", outcome="met"),
        "missed": value("servicepuls_norm_clocks_stopped_total", outcome="missed"),
        "running": value("servicepuls_norm_clocks_running"),
        "overdue": value("servicepuls_norm_clocks_overdue"),
    }


async def wait_for_metrics(url: str, municipality: str, expected: dict[str, float]) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    seen: dict[str, float] = {}
    while asyncio.get_running_loop().time() < deadline:
        seen = await metrics_state(url, municipality)
        if seen == expected:
            return
        await asyncio.sleep(1)
    raise AssertionError(f"metrics {seen}, expected {expected}")


async def report_figures(municipality: str) -> tuple[int, int]:
    """met and missed of report_reaction in the period report for November."""
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        period = Period(date(2026, 11, 1), date(2026, 11, 30))
        facts = await load_facts(conn, municipality, period)
    finally:
        await conn.close()
    figures = compute(municipality, "test", period, period, facts, {})
    [norm] = [n for n in figures.norms if n.norm == NORM]
    return norm.met, norm.missed


async def wait_decided(schema: str, timeout: float = 90) -> None:
    """Every decision due by the last event taken and relayed: the report clocks exist, none
    waits for an instant before "now" (Fri 20 13:00), the outbox is empty. (Clocks still
    running have decisions to come, so `wait_until_settled` would wait for ever.)"""
    deadline = asyncio.get_running_loop().time() + timeout
    pending: Any = None
    while asyncio.get_running_loop().time() < deadline:
        pending = await fetchval(
            f"""SELECT json_build_array(
                  (SELECT count(*) FROM "{schema}".clock WHERE norm_id = $1),
                  (SELECT count(*) FROM "{schema}".clock WHERE next_decision_at < $2),
                  (SELECT count(*) FROM "{schema}".outbox))::text""",
            NORM,
            at(20, 13),
        )
        if pending == "[6, 0, 0]":
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"(report clocks, due decisions, outbox rows) = {pending}")


async def compliance(base_url: str, municipality: str) -> tuple[int, int]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        body = (
            await client.get(
                "/v1/compliance",
                params={"municipality": municipality, "from": "2026-11-01", "to": "2026-11-30"},
            )
        ).json()
    [row] = [n for n in body["norms"] if n["norm_id"] == NORM]
    return row["met"], row["missed"]


async def revisions(base_url: str, municipality: str) -> tuple[list[Any], dict[str, Any]]:
    """GET /v1/revisions, and the latest with its clocks (GET /v1/revisions/{id})."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        listed = (await client.get("/v1/revisions", params={"municipality": municipality})).json()[
            "revisions"
        ]
        latest = (await client.get(f"/v1/revisions/{listed[-1]['revision_id']}")).json()
    return listed, latest


async def outcomes_by_case(schema: str, municipality: str) -> dict[str, tuple[str, str | None]]:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        rows = await conn.fetch(
            f"""SELECT subject_id, norm_version, outcome FROM "{schema}".clock
                WHERE municipality = $1 AND norm_id = $2""",
            municipality,
            NORM,
        )
    finally:
        await conn.close()
    return {r["subject_id"]: (r["norm_version"], r["outcome"]) for r in rows}


@pytest.mark.timeout(300)
async def test_a_catalog_change_gives_one_answer_everywhere(tmp_path: Path) -> None:
    municipality = fresh_municipality()
    run = uuid.uuid4().hex[:8]
    intake_topic = f"servicepuls.test-{run}.intake"
    schema = new_schema("norms_rev")
    a, b, c = f"rev-a-{run}", f"rev-b-{run}", f"rev-c-{run}"
    config_a = catalog_config(tmp_path, municipality, a, 3, [])
    config_b = catalog_config(tmp_path, municipality, b, 2, [])
    config_c = catalog_config(tmp_path, municipality, c, 2, [date(2026, 11, 13)])
    case = {name: f"MOR-{run}-{name}" for name in "ABCDEF"}

    def report(data: EventData, time: datetime) -> Envelope[Any]:
        return new_event(data, source=SOURCE, municipality=municipality, time=time)

    def opened(name: str, time: datetime) -> Envelope[Any]:
        return report(
            CaseOpened(case_id=case[name], case_type=REPORT, channel=Channel.WEBFORM), time
        )

    def responded(name: str, time: datetime) -> Envelope[Any]:
        return report(
            CaseResponded(case_id=case[name], case_type=REPORT, channel=Channel.EMAIL), time
        )

    events = [
        opened("A", at(9, 10)),
        opened("B", at(9, 10)),
        opened("C", at(9, 10)),
        responded("A", at(11, 15)),
        opened("D", at(12, 10)),
        responded("B", at(12, 15)),
        responded("C", at(13, 15)),
        opened("E", at(17, 10)),
        responded("D", at(17, 12)),
        opened("F", at(20, 12)),
        # Concerns no norm; moves "now" past F's start, so F runs.
        report(
            CaseOpened(case_id=f"X-{run}", case_type="test-overig", channel=Channel.WEBFORM),
            at(20, 13),
        ),
    ]
    [norms_port, metrics_port] = free_ports(2)
    settings = {
        "intake_topic": intake_topic,
        "clock": "event",
        "allowed_lateness_seconds": "0",
        "idle_partition_seconds": "2",
        "auto_offset_reset": "earliest",
    }

    def norms_env(config: Path) -> dict[str, str]:
        return service_env(config, schema, port=norms_port, **settings)

    group = f"metrics-rev-{run}"
    await start_group_at_end(group)
    metrics_env = {
        "SERVICEPULS_METRICS_PORT": str(metrics_port),
        "SERVICEPULS_METRICS_CONSUMER_GROUP": group,
        "SERVICEPULS_CONFIG_DIR": str(config_a),
        "SERVICEPULS_METRICS_REFRESH_SECONDS": "1",
    }
    producer = durable_producer(BOOTSTRAP, "norms-revision-test")
    await producer.start()
    try:
        async with (
            private_topics(intake_topic),
            running_service("metrics", port=metrics_port, env=metrics_env) as metrics,
        ):
            await send_records(producer, [replace(encode(e), topic=intake_topic) for e in events])
            # Catalog a decides, live.
            async with running_service("norms", port=norms_port, env=norms_env(config_a)) as norms:
                await wait_decided(schema)
                assert await compliance(norms.base_url, municipality) == (3, 1)
            await wait_for_metrics(
                metrics.base_url,
                municipality,
                {"met": 3, "missed": 1, "running": 2, "overdue": 0},
            )
            assert await report_figures(municipality) == (3, 1)

            # Revision 1: 3 → 2 working days. The service is stopped, revised, started again
            # with the new catalog (docs/norms.md: no moment where two versions mix).
            recompute(norms_env(config_b), municipality)
            async with running_service("norms", port=norms_port, env=norms_env(config_b)) as norms:
                await wait_decided(schema)
                assert await compliance(norms.base_url, municipality) == (1, 3)
                listed, detail = await revisions(norms.base_url, municipality)
                async with httpx.AsyncClient(base_url=norms.base_url) as client:
                    assert (await client.get("/v1/revisions/not-a-uuid")).status_code == 400
                    assert (await client.get(f"/v1/revisions/{uuid.uuid4()}")).status_code == 404
            [first] = listed
            assert first["catalog_version"] == b
            assert (first["outcomes_changed"], first["alerts_published"]) == (2, 1)
            changed = {
                (x["clock_id"].rsplit("/", 1)[1], x["previous_outcome"], x["outcome"])
                for x in detail["clocks"]
                if not x["running"]
            }
            assert changed == {(case["B"], "met", "missed"), (case["D"], "met", "missed")}
            # The running clocks' due instants moved (working days end at midnight): E from
            # the end of Friday 20 to the end of Thursday 19, F from Wednesday 25 to Tuesday 24.
            running = {
                x["clock_id"].rsplit("/", 1)[1]: (
                    datetime.fromisoformat(x["previous_due_at"]),
                    datetime.fromisoformat(x["due_at"]),
                )
                for x in detail["clocks"]
                if x["running"]
            }
            assert running == {
                case["E"]: (at(21, 0), at(20, 0)),
                case["F"]: (at(26, 0), at(25, 0)),
            }
            rows = await outcomes_by_case(schema, municipality)
            assert rows[case["B"]] == (b, "missed")
            assert rows[case["D"]] == (b, "missed")
            assert rows[case["E"]] == (b, None)
            await wait_for_metrics(
                metrics.base_url,
                municipality,
                {"met": 1, "missed": 3, "running": 2, "overdue": 1},
            )
            assert await report_figures(municipality) == (1, 3)

            # Revision 2: Friday 13 November was a closing day after all.
            recompute(norms_env(config_c), municipality)
            async with running_service("norms", port=norms_port, env=norms_env(config_c)) as norms:
                await wait_decided(schema)
                assert await compliance(norms.base_url, municipality) == (2, 2)
                listed, detail = await revisions(norms.base_url, municipality)
            assert [r["catalog_version"] for r in listed] == [b, c]
            assert [
                (x["clock_id"].rsplit("/", 1)[1], x["previous_outcome"], x["outcome"])
                for x in detail["clocks"]
                if x["norm_id"] == NORM
            ] == [(case["D"], "missed", "met")]
            # The closing day moves every term it falls in: "resolved within 10 working days"
            # of the four reports received before it now ends a working day later.
            assert {
                x["clock_id"].rsplit("/", 1)[1]
                for x in detail["clocks"]
                if x["norm_id"] == "report_resolved" and x["running"]
            } == {case[n] for n in "ABCD"}
            assert (await outcomes_by_case(schema, municipality))[case["D"]] == (c, "met")
            await wait_for_metrics(
                metrics.base_url,
                municipality,
                {"met": 2, "missed": 2, "running": 2, "overdue": 1},
            )
            assert await report_figures(municipality) == (2, 2)
            published = [
                e
                for e in decoded(await read_all("servicepuls.norms.v1", quiet_seconds=1))
                if e.municipality == municipality
            ]
    finally:
        await producer.stop()
        await drop_schema(schema)

    revised = [
        e
        for e in published
        if e.type == "nl.servicepuls.norm.revised.v1" and e.data.norm_id == NORM
    ]
    assert sorted((e.data.subject_id, e.data.norm_version) for e in revised) == sorted(
        [(case["B"], b), (case["D"], b), (case["E"], b), (case["F"], b), (case["D"], c)]
    )
    # C breached live under catalog a; E's breach under the 2-day target went out once, with
    # version b's id; none for B or D (their cycles had ended: history raises no alert), and
    # no met or missed was published a second time.
    breaches = [
        (e.data.subject_id, e.data.norm_version)
        for e in published
        if e.type == "nl.servicepuls.norm.breached.v1" and e.data.norm_id == NORM
    ]
    assert sorted(breaches) == [(case["C"], a), (case["E"], b)]
    finals = [
        e
        for e in published
        if e.type.split(".")[-2] in ("met", "missed") and e.data.norm_id == NORM
    ]
    assert sorted(e.data.subject_id for e in finals) == sorted(case[n] for n in "ABCD")


async def test_a_revision_touches_only_the_clocks_of_its_period(
    tmp_path: Path, pool: tuple[asyncpg.Pool, str]
) -> None:
    """PostgreSQL only (the repository, wall clock). Under 2 working days B (opened 9
    November) and D (12 November) would both be missed; a revision of 1-10 November changes
    B alone, one of 10-30 November D alone, each in its row and in compliance; the other's row
    keeps the version it had. Revising again with the same catalog changes nothing and is
    recorded as such. About 2 s."""
    db, schema = pool
    municipality = fresh_municipality()
    old = load_catalogs(catalog_config(tmp_path, municipality, "a", 3, []))
    new = load_catalogs(catalog_config(tmp_path, municipality, "b", 2, []))

    def report(data: EventData, time: datetime) -> tuple[int, Envelope[Any]]:
        return 0, new_event(data, source=SOURCE, municipality=municipality, time=time)

    def opened(case: str, time: datetime) -> tuple[int, Envelope[Any]]:
        return report(CaseOpened(case_id=case, case_type=REPORT, channel=Channel.WEBFORM), time)

    def responded(case: str, time: datetime) -> tuple[int, Envelope[Any]]:
        return report(CaseResponded(case_id=case, case_type=REPORT, channel=Channel.EMAIL), time)

    live = NormsService(repository(db, schema, old))
    await live.apply_batch(
        [
            opened("B", at(9, 10)),
            responded("B", at(12, 15)),
            opened("D", at(12, 10)),
            responded("D", at(17, 12)),
        ]
    )
    revising = NormsService(repository(db, schema, new))

    async def state() -> tuple[dict[str, tuple[str, str]], tuple[int, int]]:
        async with db.acquire() as conn:
            rows = await conn.fetch(
                f'SELECT subject_id, norm_version, outcome FROM "{schema}".clock'
                " WHERE norm_id = $1",
                NORM,
            )
        [counts] = [
            (r["met"], r["missed"])
            for r in await revising.compliance(municipality, date(2026, 11, 1), date(2026, 11, 30))
            if r["norm_id"] == NORM
        ]
        return {r["subject_id"]: (r["norm_version"], r["outcome"]) for r in rows}, counts

    assert await state() == ({"B": ("a", "met"), "D": ("a", "met")}, (2, 0))
    earlier = await revising.revise(municipality, date(2026, 11, 1), date(2026, 11, 10))
    assert await state() == ({"B": ("b", "missed"), "D": ("a", "met")}, (1, 1))
    later = await revising.revise(municipality, date(2026, 11, 10), date(2026, 11, 30))
    assert await state() == ({"B": ("b", "missed"), "D": ("b", "missed")}, (0, 2))
    again = await revising.revise(municipality, date(2026, 11, 1), date(2026, 11, 30))
    assert await state() == ({"B": ("b", "missed"), "D": ("b", "missed")}, (0, 2))
    changed = [(r["outcomes_changed"], r["clocks_changed"]) for r in (earlier, later, again)]
    assert changed == [(1, 1), (1, 1), (0, 0)]
    assert [r["revision_id"] for r in await revising.revisions(municipality)] == [
        r["revision_id"] for r in (earlier, later, again)
    ]
