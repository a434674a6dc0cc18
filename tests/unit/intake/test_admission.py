"""Admission of posted events: validation, personal data screening, authorisation, sealing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.resident import ContactDetails
from services.common.sealing import generate_keys, open_sealed, pseudonym
from services.intake.domain import admission
from services.intake.domain.admission import NotAdmitted, admit
from services.intake.domain.channel_systems import (
    ChannelSystem,
    ChannelSystems,
    Gatekeeper,
    token_digest,
)

KEYS = generate_keys()
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SYSTEM = ChannelSystem(
    name="zaaksysteem",
    token_sha256=token_digest("secret"),
    sources=["/gm0383/zaken"],
    event_types=["nl.servicepuls.case.*"],
    municipalities=["GM0383"],
)


def opened(**data_overrides):
    data = {"case_id": "Z-2026-001", "case_type": "melding_openbare_ruimte", "channel": "webform"}
    data.update(data_overrides)
    return {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "/gm0383/zaken",
        "type": "nl.servicepuls.case.opened.v1",
        "time": "2026-03-02T10:15:00+01:00",
        "municipality": "GM0383",
        "data": data,
    }


def problems_of(document, system=SYSTEM):
    with pytest.raises(NotAdmitted) as caught:
        admit(document, system=system, keys=KEYS, now=NOW)
    return caught.value.status, {p.pointer: p.detail for p in caught.value.problems}


def test_a_valid_event_is_admitted_with_subject_and_event_time():
    event = admit(opened(), system=SYSTEM, keys=KEYS, now=NOW).envelope()
    assert event.subject == "Z-2026-001"
    assert event.time == datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
    assert event.data.channel == "webform"


def test_each_bad_field_is_named_by_json_pointer():
    document = opened(channel="fax", case_type="Bad Type", surprise=1)
    document["time"] = "2026-03-02T10:15:00"
    status, problems = problems_of(document)
    assert status == 422
    assert set(problems) == {"/time", "/data/channel", "/data/case_type", "/data/surprise"}
    assert "timezone" in problems["/time"]


def test_unknown_and_internal_types_are_refused():
    _, problems = problems_of({**opened(), "type": "nl.servicepuls.case.teleported.v1"})
    assert "unknown event type" in problems["/type"]
    _, problems = problems_of({**opened(), "type": "nl.servicepuls.norm.breached.v1"})
    assert "emitted by Servicepuls itself" in problems["/type"]
    assert problems_of([opened()])[1] == {"": "must be a JSON object (one CloudEvent)"}
    for not_a_name in ({}, [], 7, None):  # found by the schemathesis fuzz test: {} crashed once
        assert "/type" in problems_of({**opened(), "type": not_a_name})[1]


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("case_id", "111222333", "BSN"),
        ("case_id", "jan@example.nl", "e-mail address"),
        ("topic", "0612345678", "phone number"),
    ],
)
def test_personal_identifiers_outside_the_resident_are_refused(field, value, kind):
    status, problems = problems_of(opened(**{field: value}))
    assert status == 422
    assert kind in problems[f"/data/{field}"]
    assert value not in json.dumps(problems)  # the error itself does not echo the personal data


def test_ids_that_merely_contain_nine_digits_are_fine():
    admit(opened(case_id="Z-111222333"), system=SYSTEM, keys=KEYS, now=NOW)


def test_subject_must_match_the_case():
    _, problems = problems_of({**opened(), "subject": "Z-other"})
    assert "/subject" in problems


def test_event_time_in_the_future_is_refused():
    _, problems = problems_of({**opened(), "time": (NOW + timedelta(hours=1)).isoformat()})
    assert "future" in problems["/time"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"source": "/gm0383/telefonie"}, "source"),
        ({"municipality": "GM0363"}, "municipality"),
        (
            {
                "type": "nl.servicepuls.contact.received.v1",
                "data": {"contact_id": "C-1", "channel": "email", "topic": "afval"},
            },
            "type",
        ),
    ],
)
def test_a_channel_system_posts_only_what_it_is_granted(change, reason):
    status, problems = problems_of({**opened(), **change})
    assert status == 403
    assert reason in problems[""]


def test_the_resident_leaves_intake_sealed_and_pseudonymous():
    resident = {
        "bsn": "111222333",
        "email": "jan@example.nl",
        "phone": "06-12345678",
        "survey_consent": True,
        "language": "en",
    }
    admitted = admit(opened(resident=resident), system=SYSTEM, keys=KEYS, now=NOW)
    on_topic = admitted.record.value + b"".join(value for _, value in admitted.record.headers)
    for secret in (b"111222333", b"jan@example.nl", b"12345678"):
        assert secret not in on_topic
    event = admitted.envelope()
    ref = event.data.resident
    assert ref.ref == pseudonym(KEYS.pseudonym, "111222333")
    assert ref.survey_consent is True and ref.language == "en"
    assert [m.value for m in ref.reachable_by] == ["email", "sms", "phone"]
    details = ContactDetails.model_validate_json(
        open_sealed(KEYS.sealing_private, ref.sealed_contact)
    )
    assert details.email == "jan@example.nl" and details.phone == "06-12345678"


def test_an_invalid_bsn_in_the_resident_is_named():
    _, problems = problems_of(opened(resident={"bsn": "123456789"}))
    assert "elfproef" in problems["/data/resident/bsn"]


@given(
    st.dictionaries(
        st.text(max_size=10), st.one_of(st.none(), st.integers(), st.text(max_size=30)), max_size=6
    )
)
def test_arbitrary_documents_are_refused_cleanly_never_crash(document):
    with pytest.raises(NotAdmitted):
        admit(document, system=SYSTEM, keys=KEYS, now=NOW)


def test_gatekeeper_knows_systems_by_token_digest_only():
    gatekeeper = Gatekeeper(ChannelSystems(channel_systems=[SYSTEM]))
    assert gatekeeper.authenticate("Bearer secret") is SYSTEM
    assert gatekeeper.authenticate("bearer  secret ") is SYSTEM
    for header in (None, "", "Bearer", "Bearer wrong", "Basic secret", "secret"):
        assert gatekeeper.authenticate(header) is None


def test_the_framed_record_is_byte_equal_to_the_envelope_codec():
    """Intake frames records itself (hot path); they must equal `schemas.envelope.encode`."""
    from benchmarks.intake import realistic_events
    from schemas.envelope import encode

    system = _bench_system()
    documents = realistic_events(300, seed=11)
    kinds = {d["type"] for d in documents}
    assert len(kinds) == 3 and any("resident" in d["data"] for d in documents)
    for document in documents:
        admitted = admit(document, system=system, keys=KEYS)
        assert admitted.record == encode(admitted.envelope())
        assert admitted.id == document["id"] and admitted.municipality == "GM0383"
    closed = admit(
        opened(resident={"email": "a@b.nl"}, case_id="Z-9"), system=SYSTEM, keys=KEYS, now=NOW
    )
    assert closed.record == encode(closed.envelope())


def _comparable(admitted):
    """The record with the sealed contact details left out (sealing is randomised)."""
    dumped = admitted.envelope().model_dump()
    if dumped["data"].get("resident"):
        dumped["data"]["resident"]["sealed_contact"] = "sealed"
    return dumped


def _bench_system():
    return ChannelSystem(
        name="bench",
        token_sha256=token_digest("bench"),
        sources=["/buch/*"],
        event_types=["nl.servicepuls.*"],
        municipalities=["GM0383"],
    )


def test_the_fast_path_admits_what_admit_admits_and_nothing_else():
    from benchmarks.intake import realistic_events
    from services.intake.domain.admission import admit_json

    system = _bench_system()
    documents = realistic_events(200, seed=5)
    fast = admit_json(json.dumps(documents).encode(), system=system, keys=KEYS, many=True)
    assert fast is not None
    slow = [admit(d, system=system, keys=KEYS) for d in documents]
    assert [_comparable(a) for a in fast] == [_comparable(a) for a in slow]
    assert [a.record.headers for a in fast] == [a.record.headers for a in slow]
    one = admit_json(json.dumps(documents[0]).encode(), system=system, keys=KEYS, many=False)
    assert one is not None and _comparable(one[0]) == _comparable(slow[0])


MUTATIONS = [
    ("drop", "time"),
    ("drop", "municipality"),
    ("set", "type", "nl.servicepuls.norm.met.v1"),
    ("set", "type", "nl.servicepuls.nothing.v1"),
    ("set", "time", "2026-03-02T10:15:00"),
    ("set", "time", "2999-01-01T00:00:00+00:00"),
    ("set", "source", "/elders/zaken"),
    ("set", "municipality", "GM9999"),
    ("set", "subject", "not-the-case"),
    ("set", "id", "06-12345678"),
    ("set", "extra", "field"),
    ("data", "case_id", "111222333"),
    ("data", "case_id", "jan@example.nl"),
    ("data", "channel", "pigeon"),
    ("data", "resident", {"bsn": "123456789"}),
    ("data", "resident", {"email": "not-an-address"}),
]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: "-".join(map(str, m[:2])))
def test_the_fast_path_refuses_whatever_admit_refuses(mutation):
    from services.intake.domain.admission import admit_json

    document = opened()
    document["time"] = NOW.isoformat()
    if mutation[0] == "drop":
        del document[mutation[1]]
    elif mutation[0] == "set":
        document[mutation[1]] = mutation[2]
    else:
        document["data"][mutation[1]] = mutation[2]
    with pytest.raises(NotAdmitted):
        admit(document, system=SYSTEM, keys=KEYS, now=NOW)
    batch = [opened(), document]
    assert (
        admit_json(json.dumps(batch).encode(), system=SYSTEM, keys=KEYS, many=True, now=NOW) is None
    )
    assert (
        admit_json(json.dumps(document).encode(), system=SYSTEM, keys=KEYS, many=False, now=NOW)
        is None
    )


def _one_of_each_type():
    """A valid document of every posted event type, from a simulated week."""
    from simulator.generator import SimulatedMunicipality, SimulationPlan, generate
    from simulator.office_hours import AMSTERDAM

    plan = SimulationPlan(
        municipalities=(SimulatedMunicipality("GM0383", "Castricum", 36_500),),
        start=datetime(2025, 3, 3, tzinfo=AMSTERDAM),
        days=14,
        seed=3,
        run_id="unit",
    )
    found = {}
    for event in generate(plan):
        found.setdefault(event.type, event.cloudevent())
    return found


def test_every_free_string_of_every_event_type_is_screened():
    """Personal data injected into any data field that holds free text is refused, by both
    paths: the fast path's list of free-text fields misses none."""
    from enum import Enum

    from services.intake.domain.admission import POSTED_MODELS, admit_json

    documents = _one_of_each_type()
    assert set(documents) == set(POSTED_MODELS)
    system = _bench_system().model_copy(update={"sources": ["**"]})
    screened = 0
    for document in documents.values():
        document["municipality"] = "GM0383"
        data = admit(document, system=system, keys=KEYS).envelope().data
        free = [
            name
            for name, value in data.__dict__.items()
            if isinstance(value, str) and not isinstance(value, Enum) and name != "resident"
        ]
        for name in free:
            tainted = json.loads(json.dumps(document))
            tainted["data"][name] = "0612345678"
            with pytest.raises(NotAdmitted) as caught:
                admit(tainted, system=system, keys=KEYS)
            assert f"/data/{name}" in {p.pointer for p in caught.value.problems}
            body = json.dumps([document, tainted]).encode()
            assert admit_json(body, system=system, keys=KEYS, many=True) is None
            screened += 1
    assert screened >= 2 * len(documents)


# UUID-shaped ids skip the full screening; whatever the hex digits, the full check agrees.
_hex_group = st.text(alphabet="0123456789abcdefABCDEF", min_size=1, max_size=1)
_digit_heavy = st.text(alphabet="00123456789a", min_size=1, max_size=1)


def _uuid_form(characters: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def group(size: int) -> st.SearchStrategy[str]:
        return st.lists(characters, min_size=size, max_size=size).map("".join)

    prefix = st.one_of(st.just(""), st.text(alphabet="TEZabcXYZ", min_size=1, max_size=16))
    return st.tuples(prefix, group(8), group(4), group(4), group(4), group(12)).map(
        lambda p: (f"{p[0]}-" if p[0] else "") + "-".join(p[1:])
    )


@given(st.one_of(_uuid_form(_hex_group), _uuid_form(_digit_heavy), st.uuids().map(str)))
def test_a_uuid_shaped_id_never_holds_a_personal_identifier(text: str) -> None:
    assert admission._UUID_FORM.fullmatch(text)
    assert admission._screen_fully(text) is None


def test_the_uuid_shortcut_takes_nothing_else() -> None:
    for text in ("0612345678", "06-12345678", "111222333", "a@b.nl", "T-0612345678"):
        assert not admission._UUID_FORM.fullmatch(text)
        assert admission._screen(text) is not None
