"""A thousand random case types through intake, Kafka and the metrics service: the number of
series on /metrics stays put. Every undeclared code is counted under case_type="other", and the
events that carried one in servicepuls_case_types_undeclared_total of their channel system.

Runs its own intake and metrics service (free ports, a consumer group of its own committed at
the topics' end) on a config that serves a municipality of the test's own. About 30 s."""

from __future__ import annotations

import asyncio
import random
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from schemas.common import Channel
from schemas.envelope import Envelope, new_event
from schemas.events import CaseClosed, CaseOpened, CaseOutcome
from tests.integration.metrics.support import config_with, fresh_municipality, start_group_at_end
from tests.integration.metrics.traffic import parse_metrics
from tests.integration.norms.support import free_ports
from tests.support.services import running_service

pytestmark = pytest.mark.integration

TOKEN = {"Authorization": "Bearer dev-test"}  # intake's channel system `test`: every source
SOURCE = "/test/bounded-case-types"  # shown as channel_system="test"
RANDOM_CASE_TYPES = 1000


def _config(tmp_path: Path, municipality: str) -> Path:
    """deploy/config serving `municipality`, which intake's `test` channel system may post for."""
    config = config_with(tmp_path, municipality)
    path = config / "intake" / "channel_systems.yaml"
    systems = yaml.safe_load(path.read_text())
    for system in systems["channel_systems"]:
        if system["name"] == "test":
            system["municipalities"].append(municipality)
    path.write_text(yaml.safe_dump(systems))
    return config


def _cases(municipality: str, case_types: list[str], at: datetime) -> list[Envelope[Any]]:
    """Each case opened, and every other one closed a day later (lead-time histograms too)."""
    events = []
    for number, case_type in enumerate(case_types):
        case_id = f"Z-{uuid.uuid4()}"
        opened = CaseOpened(case_id=case_id, case_type=case_type, channel=Channel.WEBFORM)
        events.append(new_event(opened, source=SOURCE, municipality=municipality, time=at))
        if number % 2 == 0:
            closed = CaseClosed(case_id=case_id, case_type=case_type, outcome=CaseOutcome.RESOLVED)
            events.append(
                new_event(
                    closed, source=SOURCE, municipality=municipality, time=at + timedelta(days=1)
                )
            )
    return events


async def _post(client: httpx.AsyncClient, intake: str, events: list[Envelope[Any]]) -> None:
    for start in range(0, len(events), 200):
        response = await client.post(
            intake + "/v1/events:batch",
            json=[
                e.model_dump(mode="json", exclude_none=True) for e in events[start : start + 200]
            ],
            headers=TOKEN,
            timeout=30,
        )
        assert response.status_code == 202, response.text[:1000]


async def _wait_for(client: httpx.AsyncClient, metrics: str, sample: str, value: float) -> str:
    """The /metrics page once `sample` (a full sample name with labels) shows `value`."""
    deadline = asyncio.get_running_loop().time() + 90
    while True:
        page = (await client.get(metrics + "/metrics", timeout=10)).text
        lines = [line for line in page.splitlines() if line.startswith(sample + " ")]
        if lines and float(lines[0].split()[-1]) == value:
            return page
        assert asyncio.get_running_loop().time() < deadline, f"{sample} never reached {value}"
        await asyncio.sleep(0.5)


def _series(page: str, municipality: str) -> set[str]:
    return {
        line.rsplit(" ", 1)[0]
        for line in page.splitlines()
        if not line.startswith("#") and f'municipality="{municipality}"' in line
    }


@pytest.mark.timeout(240)
async def test_a_thousand_random_case_types_do_not_add_series(tmp_path: Path) -> None:
    municipality = fresh_municipality()
    config = _config(tmp_path, municipality)
    group = f"metrics-test-bounded-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(group)
    intake_port, metrics_port = free_ports(2)
    rng = random.Random()
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    m = municipality
    other_opened = (
        f'servicepuls_cases_opened_total{{case_type="other",channel="webform",municipality="{m}"}}'
    )
    undeclared = (
        f'servicepuls_case_types_undeclared_total{{channel_system="test",municipality="{m}"}}'
    )
    async with AsyncExitStack() as stack:
        common = {"SERVICEPULS_CONFIG_DIR": str(config), "SERVICEPULS_LOG_LEVEL": "WARNING"}
        intake = await stack.enter_async_context(
            running_service(
                "intake",
                port=intake_port,
                env={**common, "SERVICEPULS_INTAKE_PORT": str(intake_port)},
            )
        )
        metrics = await stack.enter_async_context(
            running_service(
                "metrics",
                port=metrics_port,
                env={
                    **common,
                    "SERVICEPULS_METRICS_PORT": str(metrics_port),
                    "SERVICEPULS_METRICS_CONSUMER_GROUP": group,
                    "SERVICEPULS_METRICS_REFRESH_SECONDS": "1",
                },
            )
        )
        client = await stack.enter_async_context(httpx.AsyncClient())

        # Every kind of series first: declared case types and a few undeclared ones.
        warm_up = ["klacht", "melding-openbare-ruimte", *(f"vooraf-{i}" for i in range(4))]
        events = _cases(m, warm_up, at)
        await _post(client, intake.base_url, events)
        await _wait_for(client, metrics.base_url, other_opened, 4)
        before = _series(
            await _wait_for(client, metrics.base_url, undeclared, 6), m
        )  # 4 opened, 2 closed
        assert any('case_type="klacht"' in s for s in before)
        assert any(
            "servicepuls_case_lead_time_seconds_bucket" in s and "other" in s for s in before
        )

        codes = [f"zt-{rng.getrandbits(64):016x}" for _ in range(RANDOM_CASE_TYPES)]
        events = _cases(m, codes, at)
        await _post(client, intake.base_url, events)
        await _wait_for(client, metrics.base_url, other_opened, 4 + RANDOM_CASE_TYPES)
        page = await _wait_for(client, metrics.base_url, undeclared, 6 + len(events))

        after = _series(page, m)
        assert after == before, f"series added: {sorted(after - before)[:5]}"
        assert not [code for code in codes if code in page]
        closed = parse_metrics(page)
        lead = (
            "servicepuls_case_lead_time_seconds_count",
            frozenset({"municipality": m, "case_type": "other"}.items()),
        )
        assert closed[lead] == 2 + RANDOM_CASE_TYPES // 2
