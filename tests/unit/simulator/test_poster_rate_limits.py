"""The poster against intake's own HTTP app with tight rate limits: 429s are waited out as
Retry-After says, and every event ends up written once, none lost (issue 18)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from simulator.generator import generate
from simulator.ledger import Ledger, read_ledger
from simulator.poster import IntakePoster, IntakeUnavailable
from tests.unit.intake.harness import serving
from tests.unit.intake.test_rate_limits import systems_with_limits
from tests.unit.simulator.test_poster_and_run import PLAN

TIGHT = {"events_per_second": 4, "burst": 10}
SYSTEMS = ("telefonie", "balie", "kcc", "zaaksysteem", "meldingen")


async def test_the_poster_honours_retry_after_and_loses_nothing(tmp_path: Path) -> None:
    events = list(generate(PLAN))
    limits = systems_with_limits(**dict.fromkeys(SYSTEMS, TIGHT))
    async with serving(tmp_path, channel_systems=limits) as (client, producer):
        ledger = Ledger(tmp_path / "ledger.jsonl")
        poster = IntakePoster(ledger, base_url="http://intake", client=client, max_batch=5)
        await poster.post(events)
        ledger.close()
        metrics = (await client.get("/metrics")).text
    assert poster.stats.rate_limited > 0  # the limits did bite
    assert poster.stats.accepted == len(events) and poster.stats.rejected == 0
    # each event written once: a 429 wrote nothing of its batch, and none was lost
    assert sorted(producer.written_ids) == sorted(e.id for e in events)
    assert len(read_ledger(tmp_path / "ledger.jsonl").events) == len(events)
    assert "servicepuls_intake_rate_limited_requests_total" in metrics


async def test_the_poster_waits_at_most_max_retry_wait_and_gives_up_in_time(tmp_path: Path) -> None:
    def always_limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "3600"}, json={"title": "slow down"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(always_limited))
    poster = IntakePoster(
        Ledger(tmp_path / "ledger.jsonl"),
        base_url="http://intake",
        client=client,
        max_retry_wait=0.05,
        give_up_after=0.3,
    )
    with pytest.raises(IntakeUnavailable, match="429"):
        await poster.post(list(generate(PLAN))[:3])
    assert 3 <= poster.stats.rate_limited <= 8  # waited 0.05 s each time, not an hour
