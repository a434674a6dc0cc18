"""A case closed before it was opened, through real Kafka and PostgreSQL: the metrics service
counts it as a data-quality problem of the channel system that sent it — not as closed, not as
open, and its norm clocks neither met nor missed nor running — as the norms service decides.

The norm events are what the norms service's own pure code (`plan_events`, `advance_clock`)
decides for the same intake events, so the two halves are held to one rule."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.common import Channel
from schemas.envelope import Envelope, new_event
from schemas.events import CaseClosed, CaseOpened, CaseOutcome, EventData
from services.common.calendar import to_us
from services.norms.config import load_catalogs
from services.norms.domain.planning import StoredClock, advance_clock, plan_events
from tests.integration.metrics.support import (
    Publisher,
    config_with,
    fresh_municipality,
    scrape,
    start_group_at_end,
)
from tests.integration.metrics.traffic import sample_key
from tests.integration.norms.support import free_ports
from tests.support.services import running_service

pytestmark = pytest.mark.integration

CASE_SYSTEM = "/buch/meldingen"  # intake's channel system `meldingen` may post this source
MELDING = "melding-openbare-ruimte"


def norm_events(events: list[Envelope[Any]], config: Path, municipality: str) -> list[Any]:
    """What the norms service publishes for `events`, every decision taken."""
    catalog = load_catalogs(config)[municipality]
    plan = plan_events(events, {municipality: catalog})
    now = max(to_us(e.time) for e in events) + 400 * 86_400 * 10**6
    outcomes = []
    for blank, transitions in plan.transitions.values():
        clock = StoredClock(blank.clock_id, blank.municipality, blank.norm_id, blank.subject_id)
        for transition, context in transitions:
            clock.add(transition, context)
        outcomes += [o.envelope() for o in advance_clock(clock, catalog, now).events]
    return outcomes


@pytest.mark.timeout(180)
async def test_a_case_closed_before_it_was_opened_counts_as_data_quality(tmp_path: Path) -> None:
    municipality = fresh_municipality()
    config = config_with(tmp_path, municipality)

    def case_event(data: EventData, at: datetime) -> Envelope[Any]:
        return new_event(data, source=CASE_SYSTEM, municipality=municipality, time=at)

    bad, good = f"Z-{uuid.uuid4()}", f"Z-{uuid.uuid4()}"
    opened_at = datetime.now(UTC) - timedelta(days=30)
    intake = [
        case_event(CaseOpened(case_id=bad, case_type=MELDING, channel=Channel.WEBFORM), opened_at),
        case_event(
            CaseClosed(case_id=bad, case_type=MELDING, outcome=CaseOutcome.RESOLVED),
            opened_at - timedelta(hours=2),  # closed "before" it was opened
        ),
        case_event(CaseOpened(case_id=good, case_type=MELDING, channel=Channel.WEBFORM), opened_at),
        case_event(
            CaseClosed(case_id=good, case_type=MELDING, outcome=CaseOutcome.RESOLVED),
            opened_at + timedelta(hours=2),
        ),
    ]
    norms = norm_events(intake, config, municipality)
    kinds = sorted(e.type.split(".")[-2] for e in norms if e.data.subject_id == bad)
    assert kinds == ["cancelled"] * 2 + ["clock_started"] * 2 + ["data_quality"] * 2

    group = f"metrics-test-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(group)
    [port] = free_ports(1)
    env = {
        "SERVICEPULS_METRICS_PORT": str(port),
        "SERVICEPULS_METRICS_CONSUMER_GROUP": group,
        "SERVICEPULS_CONFIG_DIR": str(config),
        "SERVICEPULS_METRICS_REFRESH_SECONDS": "1",
    }
    m = municipality
    expected = {
        sample_key(
            "servicepuls_case_data_quality_problems_total",
            municipality=m,
            channel_system="meldingen",
            problem="closed_before_opened",
        ): 1.0,
        sample_key(
            "servicepuls_cases_closed_total", municipality=m, case_type=MELDING, outcome="resolved"
        ): 1.0,
        sample_key("servicepuls_cases_open", municipality=m, case_type=MELDING): 0.0,
        **{
            sample_key(
                "servicepuls_norm_data_quality_problems_total",
                municipality=m,
                norm=norm,
                channel_system="meldingen",
                problem="stopped_before_start",
            ): 1.0
            for norm in ("report_reaction", "report_resolved")
        },
        **{
            sample_key(
                "servicepuls_norm_clocks_stopped_total", municipality=m, norm=norm, outcome=outcome
            ): 1.0
            for norm in ("report_reaction", "report_resolved")
            for outcome in ("data_quality", "met")
        },
        sample_key("servicepuls_norm_clocks_running", municipality=m, norm="report_resolved"): 0.0,
        sample_key("servicepuls_norm_clocks_overdue", municipality=m, norm="report_resolved"): 0.0,
    }
    # One histogram observation (the good case), none for the bad one.
    lead = sample_key("servicepuls_case_lead_time_seconds_count", municipality=m, case_type=MELDING)
    absent = [
        sample_key(
            "servicepuls_norm_clocks_stopped_total", municipality=m, norm=norm, outcome=outcome
        )
        for norm in ("report_reaction", "report_resolved")
        for outcome in ("missed", "cancelled")
    ]
    async with Publisher() as publisher, running_service("metrics", port=port, env=env):
        await publisher.send(intake)
        await publisher.send(norms)
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            samples = await scrape(f"http://127.0.0.1:{port}")
            wrong = {
                key: samples.get(key)
                for key, value in expected.items()
                if samples.get(key) != value
            }
            if not wrong or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(1)
    assert not wrong, wrong
    assert samples[lead] == 1.0
    assert all(samples.get(key, 0.0) == 0.0 for key in absent)
