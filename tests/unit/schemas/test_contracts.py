"""The event contracts: codec round trips, official SDK compatibility, generated documents."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.envelope import UnknownEventType, decode, deterministic_id, encode, new_event
from schemas.events import (
    CATALOG,
    TOPICS,
    CaseClosed,
    ContactCompleted,
    NormBreached,
    SurveyResponded,
    topic_for,
)
from services import contracts as generate

AMSTERDAM_WINTER = timezone(timedelta(hours=1))

EXAMPLES = [
    ContactCompleted(
        contact_id="T-1",
        channel="phone",
        topic="afval",
        started_at=datetime(2026, 3, 2, 9, 0, tzinfo=AMSTERDAM_WINTER),
        wait_seconds=42.5,
        answered=True,
        handling_seconds=180,
    ),
    CaseClosed(case_id="Z-9", case_type="klacht", outcome="resolved", complaint_verdict="gegrond"),
    NormBreached(
        clock_id="c1",
        norm_id="email-2wd",
        norm_version="1",
        subject_id="C-1",
        target={"amount": 2, "unit": "working_days"},
        compliance_goal=0.85,
        started_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
        due_at=datetime(2026, 3, 4, 9, tzinfo=UTC),
        elapsed_business_seconds=57600,
        paused_seconds=0,
    ),
    SurveyResponded(
        survey_id="S-1", subject_id="Z-9", subject_kind="case", score=8, answered_via="web"
    ),
]


@pytest.mark.parametrize("data", EXAMPLES, ids=lambda d: d.event_type)
def test_kafka_record_round_trips_and_is_keyed_by_subject(data):
    event = new_event(
        data,
        source="/gm0383/test",
        municipality="GM0383",
        time=datetime(2026, 3, 2, 9, 5, tzinfo=AMSTERDAM_WINTER),
    )
    record = encode(event)
    assert record.key == data.subject().encode()
    assert record.topic == topic_for(data.event_type)
    assert decode(record.headers, record.value) == event


@pytest.mark.parametrize("data", EXAMPLES, ids=lambda d: d.event_type)
def test_the_official_cloudevents_sdk_reads_our_records(data):
    event = new_event(
        data,
        source="/gm0383/test",
        municipality="GM0383",
        time=datetime(2026, 3, 2, 9, 5, tzinfo=UTC),
    )
    record = encode(event)
    parsed = from_binary_event(
        KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
    )
    assert parsed.get_type() == data.event_type
    assert parsed.get_id() == event.id
    assert parsed.get_source() == "/gm0383/test"
    assert parsed.get_subject() == data.subject()
    assert parsed.get_time() == datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
    assert parsed.get_extension("municipality") == "GM0383"
    assert parsed.get_data() == data.model_dump(mode="json", exclude_none=True)


def test_unknown_type_on_the_wire_is_refused():
    record = encode(
        new_event(EXAMPLES[1], source="/x", municipality="GM0383", time=datetime.now(UTC))
    )
    headers = [
        (k, b"nl.servicepuls.case.teleported.v1" if k == "ce_type" else v)
        for k, v in record.headers
    ]
    with pytest.raises(UnknownEventType):
        decode(headers, record.value)


def test_naive_times_are_refused():
    with pytest.raises(ValidationError, match="timezone"):
        ContactCompleted(
            contact_id="T", channel="phone", topic="x", started_at=datetime(2026, 1, 1)
        )


@pytest.mark.parametrize(
    "text", ["2026-03-02T09:15:00+01:00", "2026-07-01T09:15:00.5Z", "2026-07-01T23:00:00-03:30"]
)
def test_parsed_times_share_one_untracked_zone_per_offset(text):
    """A consumer holds thousands of decoded events: their times must not each carry a zone
    object the cycle collector walks. The shared zone keeps instant, offset, name and JSON."""
    parsed = [
        ContactCompleted(contact_id="T", channel="phone", topic="x", started_at=text)
        for _ in range(2)
    ]
    first, second = (p.started_at for p in parsed)
    reference = datetime.fromisoformat(text)
    assert first == reference and first.utcoffset() == reference.utcoffset()
    assert first.isoformat() == reference.isoformat()
    assert first.tzname() == (text[-6:] if text[-1] != "Z" else "UTC")
    assert first.tzinfo is second.tzinfo and not gc.is_tracked(first.tzinfo)
    assert parsed[0].model_dump_json() == parsed[1].model_dump_json()
    assert f'"started_at":"{text[:-6] if text[-1] != "Z" else text[:-1]}' in (
        parsed[0].model_dump_json()
    )


def test_a_given_zone_is_kept():
    """Only the zones pydantic makes while parsing are swapped: a named zone (with its
    daylight-saving rules) given as a datetime stays."""
    amsterdam = ZoneInfo("Europe/Amsterdam")
    started = datetime(2026, 3, 28, 9, tzinfo=amsterdam)
    data = ContactCompleted(contact_id="T", channel="phone", topic="x", started_at=started)
    assert data.started_at.tzinfo is amsterdam


def test_every_type_is_versioned_and_routed_to_a_topic():
    for event_type, model in CATALOG.items():
        assert event_type.startswith("nl.servicepuls.") and event_type.rsplit(".", 1)[1].startswith(
            "v"
        )
        assert topic_for(event_type) in TOPICS.values()
        assert model.event_type == event_type


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=4))
def test_deterministic_ids_depend_only_on_their_parts(parts):
    assert deterministic_id(*parts) == deterministic_id(*parts)
    assert deterministic_id(*parts) != deterministic_id(*parts, "other")


def test_generated_schemas_asyncapi_and_openapi_are_up_to_date():
    stale = [
        str(path.relative_to(generate.REPO))
        for path, content in generate.artifacts().items()
        if not path.exists() or path.read_text() != content
    ]
    assert stale == [], f"run `python -m services.contracts` (or `make schemas`): stale {stale}"


def test_the_documented_headers_are_the_ones_every_producer_frames() -> None:
    from schemas.envelope import HEADER_NAMES

    assert tuple(generate.HEADERS_SCHEMA["properties"]) == HEADER_NAMES
    assert tuple(generate.HEADERS_SCHEMA["required"]) == HEADER_NAMES
