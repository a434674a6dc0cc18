"""Posting like a channel system (tokens, batches, 503 retries) and playing a plan in time."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import httpx

from simulator.clock import SimulatedClock
from simulator.generator import SimulatedMunicipality, SimulationPlan, generate
from simulator.ledger import Ledger, read_ledger
from simulator.office_hours import AMSTERDAM
from simulator.poster import IntakePoster
from simulator.run import Progress, play

PLAN = SimulationPlan(
    municipalities=(SimulatedMunicipality("GM0450", "Uitgeest", 13_800),),
    start=datetime(2025, 3, 3, 8, 0, tzinfo=AMSTERDAM),
    days=1,
    seed=11,
    run_id="poster",
    scale=0.3,
)


class FakeIntake:
    """Answers like intake: 202 for a good token, 503 with Retry-After the first `busy` times."""

    def __init__(self, busy: int = 0, reject_type: str | None = None) -> None:
        self.busy = busy
        self.reject_type = reject_type
        self.batches: list[tuple[str, list[dict]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/events:batch"
        if self.busy:
            self.busy -= 1
            return httpx.Response(503, headers={"Retry-After": "0.01"}, json={"title": "busy"})
        token = request.headers["Authorization"].removeprefix("Bearer ")
        body = json.loads(request.content)
        if self.reject_type and any(e["type"] == self.reject_type for e in body):
            return httpx.Response(422, json={"detail": "no"})
        self.batches.append((token, body))
        return httpx.Response(202, json={"accepted": len(body)})


def poster_for(intake: FakeIntake, ledger: Ledger, **kwargs: object) -> IntakePoster:
    client = httpx.AsyncClient(transport=httpx.MockTransport(intake), base_url="http://intake")
    return IntakePoster(ledger, base_url="http://intake", client=client, **kwargs)  # type: ignore[arg-type]


async def test_each_channel_system_posts_with_its_own_token(tmp_path: Path) -> None:
    intake = FakeIntake()
    ledger = Ledger(tmp_path / "ledger.jsonl")
    poster = poster_for(intake, ledger, max_batch=50)
    events = list(generate(PLAN))
    await poster.post(events)
    ledger.close()
    for token, batch in intake.batches:
        assert len(batch) <= 50
        systems = {e["source"].split("/")[2] for e in batch}
        assert systems == {token.removeprefix("dev-")}
    posted = [e for _, batch in intake.batches for e in batch]
    assert sorted(e["id"] for e in posted) == sorted(e.id for e in events)
    assert [e["id"] for e in read_ledger(tmp_path / "ledger.jsonl").events] == [
        e["id"] for e in posted
    ]


async def test_a_busy_intake_is_retried_after_the_time_it_asks(tmp_path: Path) -> None:
    intake = FakeIntake(busy=3)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    poster = poster_for(intake, ledger)
    events = list(generate(PLAN))[:10]
    await poster.post(events)
    assert poster.stats.retries == 3
    assert poster.stats.accepted == 10


async def test_a_rejected_batch_is_recorded_not_dropped(tmp_path: Path) -> None:
    intake = FakeIntake(reject_type="nl.servicepuls.case.opened.v1")
    ledger = Ledger(tmp_path / "ledger.jsonl")
    poster = poster_for(intake, ledger)
    await poster.post(list(generate(PLAN)))
    ledger.close()
    contents = read_ledger(tmp_path / "ledger.jsonl")
    assert poster.stats.rejected > 0
    assert len(contents.rejected) == poster.stats.rejected
    assert all(r["status"] == 422 for r in contents.rejected)


async def test_play_posts_every_event_once_when_its_simulated_time_has_come(tmp_path: Path) -> None:
    intake = FakeIntake()
    ledger = Ledger(tmp_path / "ledger.jsonl")
    poster = poster_for(intake, ledger)
    wall = [0.0]
    clock = SimulatedClock(PLAN.start, speedup=3600, monotonic=lambda: wall[0])
    progress = Progress(plan=PLAN, sim_now=PLAN.start)
    posted_at: list[tuple[datetime, datetime]] = []

    def on_posted(events: list) -> None:
        for event in events:
            posted_at.append((event.at, clock.now()))

    async def advance_wall_clock() -> None:
        while not progress.finished:
            wall[0] += 0.5  # half a wall second is half a simulated hour
            await asyncio.sleep(0)

    await asyncio.gather(
        play(PLAN, clock, poster, progress, on_posted=on_posted, tick=0), advance_wall_clock()
    )
    expected = [e.id for e in generate(PLAN)]
    posted = [e["id"] for _, batch in intake.batches for e in batch]
    assert sorted(posted) == sorted(expected)
    assert progress.posted == len(expected)
    assert progress.fraction == 1.0
    assert all(event_time <= sim_time for event_time, sim_time in posted_at)


async def test_play_stops_cleanly_when_asked(tmp_path: Path) -> None:
    intake = FakeIntake()
    poster = poster_for(intake, Ledger(tmp_path / "ledger.jsonl"))
    clock = SimulatedClock(PLAN.start, speedup=1)  # real time: would take a day
    progress = Progress(plan=PLAN, sim_now=PLAN.start)
    stop = asyncio.Event()
    task = asyncio.create_task(play(PLAN, clock, poster, progress, stop=stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, timeout=2)
    assert progress.finished and progress.fraction < 0.01
