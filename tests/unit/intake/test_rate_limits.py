"""Rate limits per channel system: a token bucket, 429 with Retry-After, all or nothing (issue 18)."""

from __future__ import annotations

import pytest
import yaml

from services.common.config import ConfigError
from services.intake.domain.channel_systems import Gatekeeper
from services.intake.domain.rate_limits import (
    DEFAULT_BURST,
    DEFAULT_EVENTS_PER_SECOND,
    TokenBucket,
    retry_after,
)
from tests.unit.intake.harness import AUTH, DEPLOYED_SYSTEMS, case_opened, serving


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_starts_full_takes_all_or_nothing_and_refills_at_its_rate():
    clock = Clock()
    bucket = TokenBucket(10, 20, clock=clock)
    assert bucket.take(15) == 0
    assert bucket.take(6) == pytest.approx(0.1)  # 5 left, one more in a tenth of a second
    assert bucket.take(5) == 0  # the refused take took nothing
    clock.now += 0.5
    assert bucket.wait_for(5) == 0 and bucket.wait_for(6) == pytest.approx(0.1)
    clock.now += 60
    assert bucket.take(20) == 0  # never more than the burst
    assert bucket.take(1) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        bucket.take(21)
    clock.now += 1
    bucket.debit(50)  # a debit empties the bucket, never below
    assert bucket.wait_for(1) == pytest.approx(0.1)


def test_retry_after_is_whole_seconds_and_never_zero():
    assert [retry_after(w) for w in (0.001, 0.99, 1.0, 1.01, 7.5)] == [1, 1, 1, 2, 8]


def systems_with_limits(**limits: dict) -> str:
    """The deployed channel systems file with these systems' rate limits."""
    document = yaml.safe_load(DEPLOYED_SYSTEMS.read_text())
    for system in document["channel_systems"]:
        if system["name"] in limits:
            system["rate_limit"] = limits[system["name"]]
    return yaml.safe_dump(document)


def test_defaults_apply_where_the_file_gives_none_and_bad_limits_stop_intake(tmp_path):
    gatekeeper = Gatekeeper.from_file(DEPLOYED_SYSTEMS)
    kcc = next(s for s in gatekeeper.systems if s.name == "kcc")
    assert kcc.rate_limit.events_per_second == DEFAULT_EVENTS_PER_SECOND
    assert kcc.rate_limit.burst == DEFAULT_BURST >= 1000  # a full batch always fits
    bad = tmp_path / "systems.yaml"
    bad.write_text(systems_with_limits(kcc={"events_per_second": 0, "burst": 10}))
    with pytest.raises(ConfigError, match=r"rate_limit\.events_per_second"):
        Gatekeeper.from_file(bad)


def test_the_deployed_limits_never_limit_the_simulator_at_demo_and_e2e_speeds():
    """Every development system's bucket, fed the simulator's traffic at the demo's fastest
    documented speed (4000x, all four municipalities, a week) in the batches it posts, never
    runs dry. (The e2e test runs 3600x at scale 0.15; the demo's default is 2000x.)"""
    from datetime import datetime

    from services.common.config import load_yaml_model
    from services.intake.domain.channel_systems import ChannelSystems
    from simulator.generator import SimulatedMunicipality, SimulationPlan, channel_system_name
    from simulator.generator import generate as simulate
    from simulator.office_hours import AMSTERDAM

    municipalities = yaml.safe_load(
        (DEPLOYED_SYSTEMS.parents[1] / "municipalities.yaml").read_text()
    )
    plan = SimulationPlan(
        municipalities=tuple(
            SimulatedMunicipality(m["code"], m["name"], m["inhabitants"])
            for m in municipalities["municipalities"]
        ),
        start=datetime(2025, 3, 3, 8, 0, tzinfo=AMSTERDAM),
        days=7,
        seed=1,
        run_id="limits",
    )
    systems = load_yaml_model(DEPLOYED_SYSTEMS, ChannelSystems).channel_systems
    clock = Clock()
    buckets = {
        s.name: TokenBucket(s.rate_limit.events_per_second, s.rate_limit.burst, clock=clock)
        for s in systems
    }
    speedup, tick = 4000, 0.25  # the simulator posts what fell due each tick
    due: dict[str, int] = {}
    current = 0
    posted = 0
    for event in simulate(plan):
        slot = int((event.at - plan.start).total_seconds() / speedup / tick)
        if slot != current:
            clock.now += (slot - current) * tick
            for name, count in due.items():
                assert buckets[name].take(count) == 0, f"{name}: {count} events limited"
                posted += count
            due, current = {}, slot
        due[channel_system_name(event.source)] = due.get(channel_system_name(event.source), 0) + 1
    assert posted > 5000


def batch(count: int) -> list[dict]:
    return [case_opened() for _ in range(count)]


def metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + "{"))


async def test_over_the_limit_429_with_retry_after_and_nothing_written(tmp_path):
    # A slow refill (one token per 100 s), so that a slow machine adds none during the test;
    # that a client honouring Retry-After then gets in: test_poster_rate_limits.
    limits = systems_with_limits(zaaksysteem={"events_per_second": 0.01, "burst": 20})
    async with serving(tmp_path, channel_systems=limits) as (client, producer):
        assert (
            await client.post("/v1/events:batch", json=batch(15), headers=AUTH)
        ).status_code == 202
        written = len(producer.written)
        assert written == 15
        over = await client.post("/v1/events:batch", json=batch(10), headers=AUTH)
        assert over.status_code == 429, over.text
        assert over.headers["content-type"] == "application/problem+json"
        assert int(over.headers["retry-after"]) == 500  # 5 missing at 0.01 a second
        assert "zaaksysteem" in over.json()["detail"] and "nothing" in over.json()["detail"]
        assert len(producer.written) == written  # the batch was not half written
        # another system has a bucket of its own
        other = await client.post(
            "/v1/events", json=case_opened(), headers={"Authorization": "Bearer dev-test"}
        )
        assert other.status_code == 202
        # what fits is still taken: 5 left
        assert (
            await client.post("/v1/events:batch", json=batch(5), headers=AUTH)
        ).status_code == 202
        # the bucket is empty: refused before the body is even read
        single = await client.post("/v1/events", json=case_opened(), headers=AUTH)
        assert single.status_code == 429 and int(single.headers["retry-after"]) >= 1
        # a batch larger than the burst would never fit: 413, not an endless 429
        huge = await client.post("/v1/events:batch", json=batch(21), headers=AUTH)
        assert huge.status_code in (413, 429)
        metrics = (await client.get("/metrics")).text
        assert metric(metrics, "servicepuls_intake_rate_limited_requests_total") >= 2
        assert (
            'servicepuls_intake_rate_limited_requests_total{channel_system="zaaksysteem"}'
            in metrics
        )
        assert metric(metrics, "servicepuls_intake_rate_limited_events_total") == 10
        assert len(producer.written) == 15 + 1 + 5


async def test_a_batch_larger_than_the_burst_is_413(tmp_path):
    limits = systems_with_limits(zaaksysteem={"events_per_second": 5, "burst": 20})
    async with serving(tmp_path, channel_systems=limits) as (client, producer):
        huge = await client.post("/v1/events:batch", json=batch(21), headers=AUTH)
        assert huge.status_code == 413, huge.text
        assert "at most 20" in huge.json()["detail"]
        assert producer.written == []


async def test_refused_requests_cost_a_token_so_a_flood_of_bad_ones_is_limited(tmp_path):
    limits = systems_with_limits(zaaksysteem={"events_per_second": 0.01, "burst": 3})
    async with serving(tmp_path, channel_systems=limits) as (client, _):
        answers = [
            (await client.post("/v1/events", content=b"{nope", headers=AUTH)).status_code
            for _ in range(5)
        ]
        assert answers[:3] == [400, 400, 400] and 429 in answers[3:]
