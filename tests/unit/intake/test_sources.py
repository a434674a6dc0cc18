"""Sources are matched segment by segment on their plain form; odd forms are refused (issue 18)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from services.common.config import ConfigError
from services.common.sealing import generate_keys
from services.intake.domain.admission import NotAdmitted, admit, admit_json
from services.intake.domain.channel_systems import ChannelSystem, Gatekeeper, token_digest
from services.intake.domain.sources import SourcePattern, source_form_problem

REPO = Path(__file__).resolve().parents[3]
KEYS = generate_keys()
KCC = ChannelSystem(
    name="kcc",
    token_sha256=token_digest("kcc"),
    sources=["/buch/kcc", "/buch/kcc/*"],
    event_types=["nl.servicepuls.contact.*"],
    municipalities=["GM0383"],
)


def received(source: str) -> dict:
    return {
        "specversion": "1.0",
        "id": "c-1",
        "source": source,
        "type": "nl.servicepuls.contact.received.v1",
        "time": "2026-03-02T10:15:00+01:00",
        "municipality": "GM0383",
        "data": {"contact_id": "C-1", "channel": "email", "topic": "afval"},
    }


# Each odd form, and the words its refusal must contain.
ODD_SOURCES = [
    ("/buch/kcc/../zaaksysteem", "'..' segment"),
    ("/buch/kcc/..", "'..' segment"),
    ("/buch/kcc/./email", "'.' segment"),
    ("/buch/kcc//email", "empty segment"),
    ("/buch/kcc/", "empty segment"),
    ("/buch/kcc/email/", "empty segment"),
    ("/", "empty segment"),
    ("https://", "empty segment"),
    ("/buch/kcc/%2e%2e/zaaksysteem", "percent-encoded"),
    ("/buch/kcc/%2E%2E/zaaksysteem", "percent-encoded"),
    ("/buch/kcc/..%2Fzaaksysteem", "percent-encoded"),
    ("/buch/kcc/x%2fy", "percent-encoded"),
    ("/buch/kcc/%252e%252e", "percent-encoded"),
    ("/buch/kcc/x%5Cy", "percent-encoded"),
    ("/buch/kcc/%zz", "two hex digits"),
    ("/buch/kcc/%2", "two hex digits"),
    ("/buch/kcc\\..\\zaaksysteem", "backslash"),
    ("/buch/kcc/email\\", "backslash"),
    ("/buch/kcc/e\x00mail", "control character"),
    ("/buch/kcc/e\x1bmail", "control character"),
    ("/buch/kcc/e\x7fmail", "control character"),
    ("/buch/kcc/e\u0085mail", "non-ASCII"),
    ("/buch/kcc\u2215..\u2215zaaksysteem", "non-ASCII"),  # a division slash, not a '/'
    ("/buch/kcc/\uff0e\uff0e", "non-ASCII"),  # fullwidth dots
]


@pytest.mark.parametrize(("source", "reason"), ODD_SOURCES, ids=[s for s, _ in ODD_SOURCES])
def test_an_odd_source_is_refused_with_422_naming_the_field_and_why(source, reason):
    assert reason in (source_form_problem(source) or "")
    with pytest.raises(NotAdmitted) as caught:
        admit(received(source), system=KCC, keys=KEYS)
    assert caught.value.status == 422
    problems = {p.pointer: p.detail for p in caught.value.problems}
    assert reason in problems["/source"]
    body = json.dumps(received(source)).encode()
    assert admit_json(body, system=KCC, keys=KEYS, many=False) is None  # fast path agrees
    assert not any(SourcePattern.parse(p).matches(source) for p in [*KCC.sources, "**"])


def test_the_escape_of_issue_18_is_refused():
    with pytest.raises(NotAdmitted) as caught:
        admit(received("/buch/kcc/../zaaksysteem"), system=KCC, keys=KEYS)
    assert caught.value.status == 422


@pytest.mark.parametrize(
    "source",
    [
        "/buch/kcc",
        "/buch/kcc/email",
        "/buch/kcc/web-formulier_2",
        "/buch/kcc/a%20b",
        "/buch/kcc/...",  # three dots are a name, not a dot segment
        "/buch/kcc/.hidden",
    ],
)
def test_the_grant_admits_its_own_sources(source):
    assert source_form_problem(source) is None
    admit(received(source), system=KCC, keys=KEYS)


@pytest.mark.parametrize(
    "source",
    [
        "/buch/kcc/email/deeper",  # '*' is one segment, not several
        "/buch/kccx",
        "/buch/kcc-email",
        "/buch/zaaksysteem",
        "buch/kcc/email",  # a relative reference is not the rooted path
        "https://buch/kcc/email",
        "/BUCH/kcc",
    ],
)
def test_the_grant_refuses_what_is_outside_it_with_403(source):
    with pytest.raises(NotAdmitted) as caught:
        admit(received(source), system=KCC, keys=KEYS)
    assert caught.value.status == 403
    assert "source" in caught.value.problems[0].detail


@pytest.mark.parametrize(
    ("pattern", "admitted", "refused"),
    [
        ("/buch/*", ["/buch/kcc"], ["/buch", "/buch/kcc/email", "/other/kcc"]),
        ("/buch/*/email", ["/buch/kcc/email"], ["/buch/kcc/chat", "/buch/email"]),
        ("/buch/**", ["/buch/kcc", "/buch/kcc/email/x"], ["/buch", "/other/kcc"]),
        ("**", ["/buch", "urn:gm0383:zaken", "https://zaken.example.nl/api"], []),
        ("*", ["urn:gm0383:zaken"], ["/buch/kcc", "/buch"]),
        ("https://zaken.example.nl/*", ["https://zaken.example.nl/api"], ["/zaken.example.nl/api"]),
        ("urn:gm0383:zaken", ["urn:gm0383:zaken"], ["urn:gm0383:zaken2", "/urn:gm0383:zaken"]),
    ],
)
def test_wildcards_stand_for_whole_segments(pattern, admitted, refused):
    # (a bare '*' is one rootless segment, no longer "anything": the test system has '**')
    parsed = SourcePattern.parse(pattern)
    assert [s for s in admitted if parsed.matches(s)] == admitted
    assert [s for s in refused if parsed.matches(s)] == []


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("/buch/kcc*", "whole segments"),
        ("/buch/**/email", "'**' may only end"),
        ("/buch/../*", "'..' segment"),
        ("/buch/", "empty segment"),
        ("/buch/%2e%2e/*", "percent-encoded"),
    ],
)
def test_a_pattern_in_an_odd_form_stops_intake_at_start(tmp_path, pattern, reason):
    path = tmp_path / "channel_systems.yaml"
    path.write_text(
        "channel_systems:\n"
        "  - name: kcc\n"
        f"    token_sha256: {'0' * 64}\n"
        f"    sources: [{json.dumps(pattern)}]\n"
        "    event_types: ['nl.servicepuls.contact.*']\n"
        "    municipalities: [GM0383]\n"
    )
    with pytest.raises(ConfigError) as caught:
        Gatekeeper.from_file(path)
    assert str(path) in str(caught.value) and "sources" in str(caught.value)
    assert reason in str(caught.value)


def test_every_grant_in_the_deployed_file_admits_what_the_simulator_sends():
    """The development channel systems still admit every event of a simulated fortnight."""
    from simulator.generator import (
        SimulatedMunicipality,
        SimulationPlan,
        channel_system_name,
        generate,
    )
    from simulator.office_hours import AMSTERDAM

    gatekeeper = Gatekeeper.from_file(REPO / "deploy/config/intake/channel_systems.yaml")
    systems = {s.name: s for s in gatekeeper._by_digest.values()}
    plan = SimulationPlan(
        municipalities=(
            SimulatedMunicipality("GM0383", "Castricum", 36_500),
            SimulatedMunicipality("GM0450", "Uitgeest", 13_800),
        ),
        start=datetime(2025, 3, 3, tzinfo=AMSTERDAM),
        days=14,
        seed=3,
        run_id="sources",
    )
    used: dict[str, set[str]] = {}
    for event in generate(plan):
        system = systems[channel_system_name(event.source)]
        verdict = system.may_post(
            source=event.source, event_type=event.type, municipality=event.municipality
        )
        assert verdict is None, verdict
        assert source_form_problem(event.source) is None
        # the test system posts everything, whatever the source
        assert (
            systems["test"].may_post(
                source=event.source, event_type=event.type, municipality=event.municipality
            )
            is None
        )
        used.setdefault(system.name, set()).add(event.source)
    # every development system but `test` was exercised, the kcc one through its '*' pattern
    assert set(used) == set(systems) - {"test"}
    assert len(used["kcc"]) > 1
