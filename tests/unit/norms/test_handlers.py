"""Events → clocks → norm events, without I/O: the framing is exactly what the models write, and
the remembered timelines change nothing."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.common import Channel, Direction, Duration, DurationUnit, PartyRole
from schemas.envelope import Envelope, decode, deterministic_id, encode, new_event
from schemas.events import (
    CaseClosed,
    CaseExtended,
    CaseOpened,
    CaseOutcome,
    CaseReopened,
    CaseResponded,
    CaseResumed,
    CaseSuspended,
    ContactCompleted,
    ContactReceived,
    EventData,
    SuspensionReason,
)
from services.common.calendar import DAY_US, to_us
from services.norms.adapters.clock_rows import transitions_from_json
from services.norms.adapters.outbox import FORMAT, pack, records_of
from services.norms.config import load_catalogs
from services.norms.domain.catalog import NormCatalog
from services.norms.domain.clock import FINAL_KINDS as FINAL
from services.norms.domain.clock import DecisionKind, timeline
from services.norms.domain.outcomes import NORMS_TOPIC, SOURCE, Outcome, outcome_id
from services.norms.domain.planning import (
    StoredClock,
    advance_clock,
    compliance_increments,
    plan_events,
)

CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "config"
AMS = ZoneInfo("Europe/Amsterdam")
BASE = datetime(2026, 3, 23, 8, 0, tzinfo=AMS)  # a Monday, a week before DST starts


@pytest.fixture(scope="module")
def catalog() -> NormCatalog:
    return load_catalogs(CONFIG)["GM0383"]


def _event(data: EventData, time: datetime) -> Envelope[Any]:
    return new_event(data, source="/buch/unit", municipality="GM0383", time=time)


def history(rng: random.Random) -> list[Envelope[Any]]:
    """Every kind of norm: written contacts on four channels, callbacks, phone and counter,
    reports (resolved and withdrawn), complaints with extension, applications with suspension."""
    events: list[Envelope[Any]] = []

    def at(hours: float) -> datetime:
        return BASE + timedelta(hours=hours)

    for _ in range(40):
        start = rng.uniform(0, 24 * 14)
        channel = rng.choice([Channel.EMAIL, Channel.WEBFORM, Channel.LETTER, Channel.SOCIAL_MEDIA])
        received = f"C-{uuid.uuid4()}"
        role = rng.choice(list(PartyRole))
        events.append(
            _event(
                ContactReceived(
                    contact_id=received, channel=channel, topic="afval", party_role=role
                ),
                at(start),
            )
        )
        if rng.random() < 0.8:
            answered = start + rng.uniform(0.1, 24 * 6)
            events.append(
                _event(
                    ContactCompleted(
                        contact_id=f"C-{uuid.uuid4()}",
                        channel=channel,
                        direction=Direction.OUTBOUND,
                        topic="afval",
                        started_at=at(answered),
                        in_reply_to=received,
                    ),
                    at(answered),
                )
            )
    for _ in range(30):
        start = rng.uniform(0, 24 * 14)
        call = f"T-{uuid.uuid4()}"
        channel = rng.choice([Channel.PHONE, Channel.COUNTER])
        wait = rng.uniform(0, 900)
        callback = channel is Channel.PHONE and rng.random() < 0.4
        events.append(
            _event(
                ContactCompleted(
                    contact_id=call,
                    channel=channel,
                    topic="afval",
                    started_at=at(start),
                    wait_seconds=wait,
                    answered=rng.random() < 0.9,
                    callback_requested=callback,
                ),
                at(start) + timedelta(seconds=wait + 60),
            )
        )
        if callback and rng.random() < 0.8:
            back = start + rng.uniform(1, 24 * 5)
            events.append(
                _event(
                    ContactCompleted(
                        contact_id=f"T-{uuid.uuid4()}",
                        channel=Channel.PHONE,
                        direction=Direction.OUTBOUND,
                        topic="afval",
                        started_at=at(back),
                        in_reply_to=call,
                    ),
                    at(back),
                )
            )
    for index in range(30):
        start = rng.uniform(0, 24 * 14)
        case = f"Z-{uuid.uuid4()}"
        kind = rng.choice(
            ["melding-openbare-ruimte", "klacht", "omgevingsvergunning", "parkeervergunning"]
        )
        events.append(
            _event(CaseOpened(case_id=case, case_type=kind, channel=Channel.WEBFORM), at(start))
        )
        if kind == "melding-openbare-ruimte" and rng.random() < 0.6:
            events.append(
                _event(
                    CaseResponded(case_id=case, case_type=kind, channel=Channel.EMAIL),
                    at(start + rng.uniform(1, 24 * 6)),
                )
            )
        if kind in ("omgevingsvergunning", "parkeervergunning") and rng.random() < 0.6:
            pause = start + rng.uniform(1, 24 * 20)
            events.append(
                _event(
                    CaseSuspended(
                        case_id=case, case_type=kind, reason=SuspensionReason.AWAITING_INFORMATION
                    ),
                    at(pause),
                )
            )
            events.append(
                _event(
                    CaseResumed(case_id=case, case_type=kind), at(pause + rng.uniform(1, 24 * 15))
                )
            )
        if kind != "melding-openbare-ruimte" and rng.random() < 0.4:
            events.append(
                _event(
                    CaseExtended(
                        case_id=case,
                        case_type=kind,
                        extension=Duration(amount=rng.choice([2, 4]), unit=DurationUnit.WEEKS),
                    ),
                    at(start + rng.uniform(24, 24 * 40)),
                )
            )
        if rng.random() < 0.85:
            outcome = rng.choice([CaseOutcome.RESOLVED, CaseOutcome.GRANTED, CaseOutcome.WITHDRAWN])
            # Some closed "before" they were opened (as in real exports: bad data).
            early = index % 8 == 0
            closed = start + (rng.uniform(-24, -1) if early else rng.uniform(2, 24 * 80))
            events.append(
                _event(CaseClosed(case_id=case, case_type=kind, outcome=outcome), at(closed))
            )
            if rng.random() < 0.3:  # reopened, and perhaps closed again
                reopened = closed + rng.uniform(1, 24 * 10)
                events.append(_event(CaseReopened(case_id=case, case_type=kind), at(reopened)))
                if rng.random() < 0.7:
                    events.append(
                        _event(
                            CaseClosed(case_id=case, case_type=kind, outcome=CaseOutcome.RESOLVED),
                            at(reopened + rng.uniform(2, 24 * 30)),
                        )
                    )
    return events


def decide(events: list[Envelope[Any]], catalog: NormCatalog, now: int) -> list[Outcome]:
    plan = plan_events(events, {catalog.municipality: catalog})
    outcomes = list(plan.instant_events)
    for blank, transitions in plan.transitions.values():
        clock = StoredClock(blank.clock_id, blank.municipality, blank.norm_id, blank.subject_id)
        for transition, context in transitions:
            clock.add(transition, context)
        outcomes.extend(advance_clock(clock, catalog, now).events)
    return outcomes


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_norm_events_are_framed_exactly_as_the_models_serialize_them(
    catalog: NormCatalog, seed: int
) -> None:
    events = history(random.Random(seed))
    now = max(to_us(e.time) for e in events) + 200 * DAY_US
    outcomes = decide(events, catalog, now)
    assert {o.kind for o in outcomes} == set(DecisionKind)
    cycles: dict[str, int] = {}  # clock → its cycle (a reopened case's clock has several)
    for outcome in outcomes:
        record = outcome.record()
        envelope = decode(record.headers, record.value)  # valid for the consumers' models
        again = encode(envelope)
        assert (again.key, again.value, again.headers) == (record.key, record.value, record.headers)
        assert envelope.source == SOURCE
        assert envelope.type.split(".")[-2] == (
            "clock_started" if outcome.kind is DecisionKind.STARTED else outcome.kind.value
        )
        assert to_us(envelope.time) == outcome.at
        assert to_us(envelope.data.started_at) == outcome.started_at
        clock = envelope.data.clock_id
        if outcome.kind is DecisionKind.STARTED:
            cycles[clock] = cycles.get(clock, 0) + 1
        key = "final" if outcome.kind in (DecisionKind.MET, DecisionKind.MISSED) else None
        if key or outcome.kind is DecisionKind.STARTED:
            key = key or "started"
            cycle = cycles.get(clock, 1)  # instant norms have no clock_started
            assert envelope.id == deterministic_id(
                SOURCE, clock, envelope.data.norm_version, key if cycle == 1 else f"{cycle}:{key}"
            )
    assert max(cycles.values()) > 1  # reopened cases were decided again


def test_contacts_carry_their_channel_and_party_role(catalog: NormCatalog) -> None:
    events = history(random.Random(4))
    now = max(to_us(e.time) for e in events) + 200 * DAY_US
    roles = {
        e.data.contact_id: e.data.party_role.value
        for e in events
        if isinstance(e.data, ContactReceived)
    }
    seen = 0
    for outcome in decide(events, catalog, now):
        data = outcome.envelope().data
        if data.subject_id in roles:
            assert data.party_role.value == roles[data.subject_id]
            assert data.channel is not None
            seen += 1
    assert seen > 40


def test_a_remembered_timeline_is_the_timeline(catalog: NormCatalog) -> None:
    events = history(random.Random(5))
    plan = plan_events(events, {catalog.municipality: catalog})
    now = max(to_us(e.time) for e in events)
    for blank, transitions in plan.transitions.values():
        norm = catalog.norms[blank.norm_id]
        clock = StoredClock(blank.clock_id, blank.municipality, blank.norm_id, blank.subject_id)
        for transition, context in transitions:
            clock.add(transition, context)
            first = advance_clock(clock, catalog, now)
            second = advance_clock(clock, catalog, now)  # from the memo
            assert [o.record() for o in first.events] == [o.record() for o in second.events]
            assert first.next_decision_at == second.next_decision_at
        assert catalog.timelines[(norm.id, tuple(t for t, _ in clock.transitions))] == timeline(
            norm.rule, [t for t, _ in clock.transitions]
        )


@given(st.text(min_size=1), st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_outcome_ids_are_the_shared_deterministic_ids(clock: str, version: str, key: str) -> None:
    assert outcome_id(clock, version, key) == deterministic_id(SOURCE, clock, version, key)


def test_a_reopened_report_is_decided_again_and_its_first_outcome_stays(
    catalog: NormCatalog,
) -> None:
    case = f"Z-{uuid.uuid4()}"
    kind = "melding-openbare-ruimte"
    cid = f"GM0383/report_resolved/{case}"
    opened = _event(
        CaseOpened(case_id=case, case_type=kind, channel=Channel.PUBLIC_SPACE_REPORT), BASE
    )
    resolved = _event(
        CaseClosed(case_id=case, case_type=kind, outcome=CaseOutcome.RESOLVED),
        BASE + timedelta(days=1),
    )
    reopen_at = BASE + timedelta(days=3)
    reopened = _event(CaseReopened(case_id=case, case_type=kind, reason="niet-opgelost"), reopen_at)
    closed_again = _event(
        CaseClosed(case_id=case, case_type=kind, outcome=CaseOutcome.RESOLVED),
        BASE + timedelta(days=30),
    )
    version = catalog.norms["report_resolved"].version
    clock = StoredClock(cid, "GM0383", "report_resolved", case)

    def apply(*events: Envelope[Any], now: datetime) -> list[Outcome]:
        plan = plan_events(list(events), {catalog.municipality: catalog})
        for transition, context in plan.transitions.get(cid, (None, []))[1]:
            clock.add(transition, context)
        update = advance_clock(clock, catalog, to_us(now))
        clock.taken = update.taken
        return update.events

    first = apply(opened, resolved, now=BASE + timedelta(days=2))
    assert [o.kind for o in first] == [DecisionKind.STARTED, DecisionKind.MET]
    assert apply(now=BASE + timedelta(days=2, hours=1)) == []  # decided once

    second = apply(reopened, now=reopen_at + timedelta(hours=1))
    [started] = [o.envelope() for o in second]
    assert started.id == outcome_id(cid, version, "2:started")
    assert started.data.clock_id == cid  # the same clock, its second cycle
    assert started.data.started_at == reopen_at
    assert apply(reopened, now=reopen_at + timedelta(hours=2)) == []  # redelivered: nothing

    rest = apply(closed_again, now=BASE + timedelta(days=31))
    assert [o.kind for o in rest] == [
        DecisionKind.WARNING,
        DecisionKind.WARNING,
        DecisionKind.BREACHED,
        DecisionKind.MISSED,
    ]
    assert [o.envelope().id for o in rest] == [
        outcome_id(cid, version, key)
        for key in ("2:warning:50%", "2:warning:80%", "2:breached", "2:final")
    ]
    # The first cycle's outcome is what it was, as if the report had never been reopened.
    alone = StoredClock(cid, "GM0383", "report_resolved", case)
    for transition, context in plan_events([opened, resolved], {"GM0383": catalog}).transitions[
        cid
    ][1]:
        alone.add(transition, context)
    assert [o.record() for o in first] == [
        o.record() for o in advance_clock(alone, catalog, to_us(BASE + timedelta(days=31))).events
    ]
    # Each cycle counts towards compliance.
    finals = [(o.municipality, o.norm_id, o.at, o.kind) for o in first + rest if o.kind in FINAL]
    assert [row[3:] for row in compliance_increments(finals, {"GM0383": catalog})] == [
        (1, 0, 0, 0),
        (0, 1, 0, 0),
    ]


def test_stored_transitions_count_an_event_once() -> None:
    """The consumer appends transitions without reading the clock: an event stored twice (its
    dedupe key purged, then delivered again) is read back once, or its extension would count
    twice."""
    start = [0, "start", "src\x1fa", 0, "", {"channel": "email"}]
    extend = [DAY_US, "extend", "src\x1fb", 28 * DAY_US, "", {}]
    stored = transitions_from_json(orjson.dumps([start, extend, extend, start]))
    assert [(t.kind.value, t.event_key, t.extension) for t, _ in stored] == [
        ("start", "src\x1fa", 0),
        ("extend", "src\x1fb", 28 * DAY_US),
    ]
    assert stored[0][1] == {"channel": "email"}


def test_the_outbox_row_of_a_transaction_gives_back_its_records_in_order(
    catalog: NormCatalog,
) -> None:
    events = history(random.Random(4))
    outcomes = decide(events, catalog, max(to_us(e.time) for e in events) + 200 * DAY_US)
    row = {
        "id": 1,
        "topic": NORMS_TOPIC,
        "records": pack([(o.key, o.value, o.headers) for o in outcomes]),
        "format": FORMAT,
    }
    assert records_of(row) == [o.record() for o in outcomes]
    # A row as the outbox held them before migration 005: one record, headers as JSON.
    first = outcomes[0].record()
    legacy = {
        "id": 2,
        "topic": NORMS_TOPIC,
        "records": None,
        "key": first.key,
        "value": first.value,
        "headers": orjson.dumps([[n, v.decode()] for n, v in first.headers]),
    }
    assert records_of(legacy) == [first]
    with pytest.raises(ValueError, match="marshal version"):
        records_of({**row, "format": FORMAT + 1})
