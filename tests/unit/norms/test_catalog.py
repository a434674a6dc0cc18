"""The norm catalog: the shipped configuration loads, mistakes are named, events match rules."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.common import Channel, Direction, Duration, DurationUnit
from schemas.events import (
    CaseClosed,
    CaseExtended,
    CaseOpened,
    CaseOutcome,
    CaseReopened,
    CaseSuspended,
    ContactCompleted,
    ContactReceived,
    SuspensionReason,
)
from services.common.calendar import DAY_US, US
from services.common.config import ConfigError
from services.norms.config import load_catalogs
from services.norms.domain.catalog import NormDefinition, Selector
from services.norms.domain.clock import TransitionKind

CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "config"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog():  # type: ignore[no-untyped-def]
    return load_catalogs(CONFIG)["GM0383"]


def test_default_catalog_has_the_published_norms(catalog) -> None:  # type: ignore[no-untyped-def]
    expected = {
        "email_answered": (2, "working_days", 0.85),
        "report_reaction": (3, "working_days", 0.88),
        "report_resolved": (10, "working_days", 0.91),
        "callback_made": (2, "working_days", 0.80),
        "phone_answered": (30, "seconds", 0.80),
        "counter_helped": (10, "minutes", 0.90),
        "social_media_answered": (4, "office_hours", 0.85),
        "letter_acknowledged": (3, "working_days", 0.85),
        "complaint_handled": (6, "weeks", 0.90),
        "decision_made": (8, "weeks", 0.90),
    }
    for norm_id, (amount, unit, goal) in expected.items():
        definition = catalog.norms[norm_id].definition
        assert (definition.target.amount, definition.target.unit.value) == (amount, unit)
        assert definition.compliance_goal == goal
        assert definition.name.nl and definition.name.en
    assert catalog.norms["complaint_handled"].rule.max_extension == 28 * DAY_US
    assert catalog.norms["decision_made"].rule.legal_term


def test_every_demo_municipality_has_a_catalog() -> None:
    assert set(load_catalogs(CONFIG)) == {"GM0373", "GM0450", "GM0383", "GM0399"}


def _broken_config(tmp_path: Path, file: str, old: str, new: str) -> Path:
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    path = target / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return target


@pytest.mark.parametrize(
    ("file", "old", "new", "named"),
    [
        ("norms/default.yaml", "unit: working_days}", "unit: werkdagen}", "norms.0.target.unit"),
        ("norms/default.yaml", "compliance_goal: 0.85", "compliance_goal: 85", "compliance_goal"),
        ("norms/default.yaml", "type: contact.received", "type: contact.arrived", "start.0.type"),
        (
            "calendars/buch.yaml",
            'monday: ["08:30-17:00"]',
            'monday: ["17:00-08:30"]',
            "opening_hours",
        ),
        (
            "calendars/buch.yaml",
            "liberation_day: lustrum",
            "liberation_day: sometimes",
            "liberation_day",
        ),
    ],
)
def test_mistakes_name_the_file_and_field(
    tmp_path: Path, file: str, old: str, new: str, named: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_catalogs(_broken_config(tmp_path, file, old, new))
    message = str(error.value)
    assert file.split("/")[-1] in message
    assert named in message


def test_email_received_and_answered_match_the_same_clock(catalog) -> None:  # type: ignore[no-untyped-def]
    received = ContactReceived(
        contact_id="c-1", channel=Channel.EMAIL, topic="afval", case_id="z-9"
    )
    [match] = catalog.match(ContactReceived.event_type, received)
    assert (match.norm.id, match.kind, match.subject_id) == (
        "email_answered",
        TransitionKind.START,
        "c-1",
    )
    answer = ContactCompleted(
        contact_id="c-2",
        channel=Channel.EMAIL,
        direction=Direction.OUTBOUND,
        topic="afval",
        started_at=NOW,
        in_reply_to="c-1",
    )
    [match] = catalog.match(ContactCompleted.event_type, answer)
    assert (match.norm.id, match.kind, match.subject_id) == (
        "email_answered",
        TransitionKind.STOP,
        "c-1",
    )


def test_phone_call_is_judged_and_a_callback_request_starts_a_clock(catalog) -> None:  # type: ignore[no-untyped-def]
    call = ContactCompleted(
        contact_id="p-1",
        channel=Channel.PHONE,
        topic="afval",
        started_at=NOW,
        wait_seconds=42.5,
        callback_requested=True,
    )
    [judged] = catalog.judge(ContactCompleted.event_type, call)
    assert judged.norm.id == "phone_answered" and judged.waited == int(42.5 * US)
    [match] = catalog.match(ContactCompleted.event_type, call)
    assert (match.norm.id, match.kind) == ("callback_made", TransitionKind.START)
    callback = ContactCompleted(
        contact_id="p-2",
        channel=Channel.PHONE,
        direction=Direction.OUTBOUND,
        topic="afval",
        started_at=NOW,
        in_reply_to="p-1",
    )
    assert catalog.judge(ContactCompleted.event_type, callback) == []
    [match] = catalog.match(ContactCompleted.event_type, callback)
    assert (match.norm.id, match.kind, match.subject_id) == (
        "callback_made",
        TransitionKind.STOP,
        "p-1",
    )


def test_case_rules_start_pause_extend_stop_and_cancel(catalog) -> None:  # type: ignore[no-untyped-def]
    opened = CaseOpened(
        case_id="z-1", case_type="melding-openbare-ruimte", channel=Channel.PUBLIC_SPACE_REPORT
    )
    assert {(m.norm.id, m.kind) for m in catalog.match(CaseOpened.event_type, opened)} == {
        ("report_reaction", TransitionKind.START),
        ("report_resolved", TransitionKind.START),
    }
    withdrawn = CaseClosed(
        case_id="z-1", case_type="melding-openbare-ruimte", outcome=CaseOutcome.WITHDRAWN
    )
    matches = catalog.match(CaseClosed.event_type, withdrawn)
    assert {(m.norm.id, m.kind, m.reason) for m in matches} >= {
        ("report_resolved", TransitionKind.CANCEL, "withdrawn"),
    }
    suspended = CaseSuspended(
        case_id="z-2", case_type="omgevingsvergunning", reason=SuspensionReason.AWAITING_INFORMATION
    )
    assert [(m.norm.id, m.kind) for m in catalog.match(CaseSuspended.event_type, suspended)] == [
        ("decision_made", TransitionKind.PAUSE)
    ]
    extended = CaseExtended(
        case_id="z-3", case_type="klacht", extension=Duration(amount=4, unit=DurationUnit.WEEKS)
    )
    matches = catalog.match(CaseExtended.event_type, extended)
    assert {(m.norm.id, m.extension) for m in matches} == {("complaint_handled", 28 * DAY_US)}


def test_a_case_event_touches_only_norms_its_case_type_can_start(catalog) -> None:  # type: ignore[no-untyped-def]
    """complaint_handled and decision_made stop at any case.closed, but only a complaint or an
    application can have their clocks: closing a report leaves no clock row without a start."""

    def touched(model: Any) -> set[tuple[str, TransitionKind]]:
        return {(m.norm.id, m.kind) for m in catalog.match(type(model).event_type, model)}

    def closed(case_type: str) -> CaseClosed:
        return CaseClosed(case_id="z-4", case_type=case_type, outcome=CaseOutcome.RESOLVED)

    assert touched(closed("melding-openbare-ruimte")) == {
        ("report_reaction", TransitionKind.STOP),
        ("report_resolved", TransitionKind.STOP),
    }
    assert touched(closed("klacht")) == {("complaint_handled", TransitionKind.STOP)}
    assert touched(closed("omgevingsvergunning")) == {("decision_made", TransitionKind.STOP)}
    assert touched(closed("onbekend-zaaktype")) == set()
    extension = Duration(amount=2, unit=DurationUnit.WEEKS)
    assert touched(
        CaseExtended(case_id="z-5", case_type="parkeervergunning", extension=extension)
    ) == {("decision_made", TransitionKind.EXTEND)}


def test_a_reopened_report_or_complaint_restarts_its_handling_term(catalog) -> None:  # type: ignore[no-untyped-def]
    def restarted(case_type: str) -> set[tuple[str, TransitionKind]]:
        reopened = CaseReopened(case_id="z-9", case_type=case_type)
        return {(m.norm.id, m.kind) for m in catalog.match(CaseReopened.event_type, reopened)}

    # The first reaction to a report was given; only its resolution is promised again.
    assert restarted("melding-openbare-ruimte") == {("report_resolved", TransitionKind.RESTART)}
    assert restarted("klacht") == {("complaint_handled", TransitionKind.RESTART)}
    # A decision on an application is not taken again by reopening the case.
    assert restarted("omgevingsvergunning") == set()


def test_an_instant_norm_cannot_restart() -> None:
    with pytest.raises(ValueError, match="restart"):
        NormDefinition.model_validate(
            {
                "id": "phone",
                "name": {"nl": "Telefoon", "en": "Phone"},
                "target": {"amount": 30, "unit": "seconds"},
                "compliance_goal": 0.8,
                "judge": {"type": "contact.completed", "channel": ["phone"]},
                "restart": [{"type": "case.reopened"}],
            }
        )


selectors = st.builds(
    Selector,
    type=st.sampled_from(["contact.completed", "case.closed", "case.suspended"]),
    channel=st.none() | st.lists(st.sampled_from(list(Channel)), max_size=3),
    case_type=st.none() | st.lists(st.sampled_from(["klacht", "melding"]), max_size=2),
    topic=st.none() | st.lists(st.sampled_from(["afval", "parkeren"]), max_size=2),
    direction=st.none() | st.sampled_from(list(Direction)),
    reply=st.none() | st.booleans(),
    callback_requested=st.none() | st.booleans(),
    outcome=st.none() | st.lists(st.sampled_from(list(CaseOutcome)), max_size=3),
    suspension_reason=st.none() | st.lists(st.sampled_from(list(SuspensionReason)), max_size=2),
)
event_fields = st.fixed_dictionaries(
    {},
    optional={
        "channel": st.none() | st.sampled_from(list(Channel)),
        "case_type": st.none() | st.sampled_from(["klacht", "melding", "vergunning"]),
        "topic": st.none() | st.sampled_from(["afval", "parkeren"]),
        "direction": st.sampled_from(list(Direction)),
        "in_reply_to": st.none() | st.just("E-1"),
        "callback_requested": st.booleans(),
        "outcome": st.sampled_from(list(CaseOutcome)),
        "reason": st.sampled_from(list(SuspensionReason)),
    },
)


@settings(max_examples=500)
@given(selectors, event_fields)
def test_a_compiled_selector_selects_exactly_what_its_definition_selects(
    selector: Selector, fields: dict[str, Any]
) -> None:
    data = SimpleNamespace(**fields)
    assert selector.compile()(fields) == selector.matches_by_definition(data)
    assert selector.matches(data) == selector.matches_by_definition(data)
