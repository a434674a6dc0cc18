"""The generator: same seed, same stream; valid events; a realistic mix, rhythm and lifecycles."""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import pytest

from schemas.common import is_valid_bsn
from schemas.envelope import parse_structured
from schemas.resident import ResidentIn
from simulator.generator import (
    SimEvent,
    SimulatedMunicipality,
    SimulationPlan,
    channel_system_name,
    generate,
)
from simulator.office_hours import AMSTERDAM, OfficeHours
from simulator.residents import fake_bsn

MONDAY = datetime(2025, 3, 3, 0, 0, tzinfo=AMSTERDAM)
CASTRICUM = SimulatedMunicipality("GM0383", "Castricum", 36_500)
UITGEEST = SimulatedMunicipality("GM0450", "Uitgeest", 13_800)
PREFIX = "nl.servicepuls."


def plan(**overrides: Any) -> SimulationPlan:
    values: dict[str, Any] = {
        "municipalities": (CASTRICUM, UITGEEST),
        "start": MONDAY,
        "days": 7,
        "seed": 7,
        "run_id": "unit",
    }
    values.update(overrides)
    return SimulationPlan(**values)


@lru_cache(maxsize=4)
def week(seed: int = 7) -> tuple[SimEvent, ...]:
    return tuple(generate(plan(seed=seed)))


def of_type(events: tuple[SimEvent, ...], suffix: str) -> list[SimEvent]:
    return [e for e in events if e.type == PREFIX + suffix]


def test_the_same_seed_gives_the_same_stream() -> None:
    again = [e.cloudevent() for e in generate(plan())]
    assert again == [e.cloudevent() for e in week()]


def test_another_seed_gives_another_stream() -> None:
    first = [e.cloudevent() for e in week(7)]
    other = [e.cloudevent() for e in week(8)]
    assert first != other
    assert abs(len(first) - len(other)) < 0.1 * len(first)  # same model, other draws


def test_every_event_is_what_intake_accepts() -> None:
    for event in week():
        document = event.cloudevent()
        resident = document["data"].pop("resident", None)
        envelope = parse_structured(document)  # raises on anything outside the contract
        assert envelope.subject == event.subject
        assert envelope.time.utcoffset() is not None
        if resident is not None:
            checked = ResidentIn.model_validate(resident)
            if checked.bsn:
                assert checked.bsn.startswith("99")
            if checked.email:
                assert checked.email.endswith(("@example.nl", "@example.org"))


def test_ids_are_unique_and_times_in_order_within_the_simulated_period() -> None:
    events = week()
    assert len({(e.source, e.id) for e in events}) == len(events)
    assert all(a.at <= b.at for a, b in itertools.pairwise(events))
    assert events[0].at >= MONDAY and events[-1].at < MONDAY + timedelta(days=7)


def test_sources_are_the_channel_systems_registered_with_intake() -> None:
    systems = {"telefonie", "balie", "kcc", "zaaksysteem", "meldingen"}
    for event in week():
        assert event.source.startswith("/buch/")
        assert channel_system_name(event.source) in systems
        if event.type.startswith(PREFIX + "case."):
            assert channel_system_name(event.source) in {"zaaksysteem", "meldingen"}


def test_channel_mix_is_phone_first_and_every_channel_is_used() -> None:
    inbound = Counter(
        e.data["channel"]
        for e in week()
        if e.type in (PREFIX + "contact.completed.v1", PREFIX + "contact.received.v1")
        and e.data.get("direction", "inbound") == "inbound"
    )
    opened_reports = sum(
        1 for e in of_type(week(), "case.opened.v1") if e.data["channel"] == "public_space_report"
    )
    assert opened_reports > 0
    assert set(inbound) >= {
        "phone",
        "counter",
        "email",
        "webform",
        "letter",
        "social_media",
        "chat",
    }
    assert inbound.most_common(1)[0][0] == "phone"
    assert 0.3 < inbound["phone"] / sum(inbound.values()) < 0.7
    assert inbound["letter"] < inbound["email"]


def test_volume_scales_with_inhabitants() -> None:
    small = sum(1 for _ in generate(plan(municipalities=(UITGEEST,), days=3)))
    large = sum(1 for _ in generate(plan(municipalities=(UITGEEST,), days=3, scale=3.0)))
    assert 2.5 < large / small < 3.5


def test_phone_calls_follow_the_opening_hours_and_the_weekly_rhythm() -> None:
    calls = [
        e for e in of_type(week(), "contact.completed.v1")
        if e.data["channel"] == "phone" and e.data.get("direction", "inbound") == "inbound"
    ]  # fmt: skip
    per_weekday: Counter[int] = Counter()
    for call in calls:
        started = datetime.fromisoformat(call.data["started_at"]).astimezone(AMSTERDAM)
        assert started.weekday() < 5
        assert (8, 30) <= (started.hour, started.minute) < (17, 0)
        per_weekday[started.weekday()] += 1
    assert per_weekday[0] > per_weekday[4]  # Monday is busier than Friday


def test_phone_queue_has_waiting_times_abandoned_calls_and_callbacks() -> None:
    calls = {
        e.data["contact_id"]: e
        for e in of_type(week(), "contact.completed.v1")
        if e.data["channel"] == "phone" and e.data.get("direction", "inbound") == "inbound"
    }
    abandoned = [c for c in calls.values() if not c.data["answered"]]
    assert 0.02 < len(abandoned) / len(calls) < 0.3
    assert all("handling_seconds" not in c.data for c in abandoned)
    waits = sorted(c.data["wait_seconds"] for c in calls.values())
    assert waits[len(waits) // 2] < 60 < waits[-1]
    callbacks = [
        e for e in of_type(week(), "contact.completed.v1") if e.data.get("direction") == "outbound"
        and e.data["channel"] == "phone"
    ]  # fmt: skip
    assert callbacks
    for callback in callbacks:
        call = calls[callback.data["in_reply_to"]]
        assert call.data["callback_requested"] is True
        assert callback.at > call.at


def test_written_contacts_are_answered_mostly_in_time_and_sometimes_late() -> None:
    office = OfficeHours()
    received = {e.data["contact_id"]: e for e in of_type(week(), "contact.received.v1")}
    answers = [
        e for e in of_type(week(), "contact.completed.v1")
        if e.data.get("direction") == "outbound" and e.data["channel"] == "email"
    ]  # fmt: skip
    assert answers
    late = 0
    for answer in answers:
        question = received[answer.data["in_reply_to"]]
        assert question.data["channel"] == "email"
        assert answer.at > question.at
        if office.office_seconds_between(question.at, answer.at) > 2 * office.seconds_per_day:
            late += 1
    assert 0 < late < 0.3 * len(answers)  # some breaches, most promises kept


def test_case_lifecycles_are_in_order_and_complete() -> None:
    by_case: dict[str, list[SimEvent]] = defaultdict(list)
    for event in week():
        if ".case." in event.type:
            by_case[event.data["case_id"]].append(event)
    kinds: Counter[str] = Counter()
    for case_id, events in by_case.items():
        types = [e.type.removeprefix(PREFIX + "case.").removesuffix(".v1") for e in events]
        kinds.update(types)
        assert types[0] == "opened", case_id
        assert all(a.at < b.at for a, b in itertools.pairwise(events)), case_id
        assert len({e.data["case_type"] for e in events}) == 1
        if "suspended" in types and "closed" in types:
            assert types.index("suspended") < types.index("resumed") < types.index("closed")
        if "reopened" in types:
            assert types.index("closed") < types.index("reopened")
        if "closed" in types and events[0].data["case_type"] == "klacht":
            closing = events[types.index("closed")]
            assert closing.data["complaint_verdict"]
    assert {"opened", "responded", "status_changed", "suspended", "closed"} <= set(kinds)


def test_long_runs_show_extensions_reopenings_and_cancellations() -> None:
    outcomes: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for event in generate(plan(days=28, municipalities=(CASTRICUM,), seed=3)):
        types[event.type] += 1
        if event.type == PREFIX + "case.closed.v1":
            outcomes[event.data["outcome"]] += 1
    assert types[PREFIX + "case.extended.v1"] > 0
    assert types[PREFIX + "case.reopened.v1"] > 0
    assert types[PREFIX + "case.resumed.v1"] > 0
    assert {"resolved", "granted", "auto_closed", "cancelled"} <= set(outcomes)


def test_residents_come_back_and_are_the_same_person_when_they_do() -> None:
    subjects: dict[str, set[str]] = defaultdict(set)
    for event in week():
        resident = event.data.get("resident")
        if resident and "bsn" in resident:
            subjects[resident["bsn"]].add(event.subject)
    assert any(len(seen) > 1 for seen in subjects.values())


@pytest.mark.parametrize("seed", range(20))
def test_fake_bsns_pass_the_elfproef_and_are_test_numbers(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        bsn = fake_bsn(rng)
        assert is_valid_bsn(bsn) and bsn.startswith("99")


def test_a_plan_needs_a_time_zone_and_a_duration() -> None:
    with pytest.raises(ValueError):
        plan(start=datetime(2025, 3, 3))
    with pytest.raises(ValueError):
        plan(days=0)
