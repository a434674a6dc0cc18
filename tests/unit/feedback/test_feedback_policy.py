"""The survey decision: pure, exhaustive, with properties checked by hypothesis."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.common import Channel, ContactMedium
from schemas.events import CaseOutcome, DeliveryChannel, SuppressionReason
from services.feedback.domain.policy import (
    CASE,
    CONTACT,
    Closure,
    ResidentHistory,
    Schedule,
    SendingHours,
    Suppress,
    SurveyPolicy,
    choose_delivery_channel,
    decide,
    is_low_score,
    next_sending_instant,
    sample_point,
)

AMS = ZoneInfo("Europe/Amsterdam")
REF = "a" * 64
NL_HOLIDAYS = holidays.country_holidays("NL")


def is_holiday(day: date) -> bool:
    return day in NL_HOLIDAYS


def closure(**changes: object) -> Closure:
    base = Closure(
        subject_id="Z-1",
        subject_kind=CASE,
        closed_at=datetime(2026, 3, 4, 10, 0, tzinfo=AMS),  # a Wednesday
        channel=Channel.EMAIL,
        case_type="melding-openbare-ruimte",
        outcome=CaseOutcome.RESOLVED,
        resident_ref=REF,
        has_contact_details=True,
        reachable_by=frozenset({ContactMedium.EMAIL}),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


POLICY = SurveyPolicy()


def test_a_resolved_case_is_surveyed_after_the_delay_by_email() -> None:
    decision = decide(POLICY, closure(), ResidentHistory())
    assert decision == Schedule(
        send_at=datetime(2026, 3, 4, 14, 0, tzinfo=AMS), delivery_channel=DeliveryChannel.EMAIL
    )


@pytest.mark.parametrize(
    ("changes", "history", "reason"),
    [
        ({}, ResidentHistory(subject_already_decided=True), SuppressionReason.ALREADY_SURVEYED),
        ({"outcome": CaseOutcome.CANCELLED}, None, SuppressionReason.EXCLUDED_OUTCOME),
        ({"outcome": CaseOutcome.WITHDRAWN}, None, SuppressionReason.EXCLUDED_OUTCOME),
        ({"outcome": CaseOutcome.AUTO_CLOSED}, None, SuppressionReason.EXCLUDED_OUTCOME),
        ({"case_type": "schuldhulpverlening"}, None, SuppressionReason.EXCLUDED_CASE_TYPE),
        ({"resident_ref": None}, None, SuppressionReason.NO_ADDRESS),
        ({}, ResidentHistory(opted_out=True), SuppressionReason.OPTED_OUT),
        ({"survey_consent": False}, None, SuppressionReason.NO_CONSENT),
        ({"has_contact_details": False}, None, SuppressionReason.NO_ADDRESS),
        ({"reachable_by": frozenset()}, None, SuppressionReason.NO_ADDRESS),
        (
            {},
            ResidentHistory(last_surveyed_at=datetime(2026, 1, 10, tzinfo=UTC)),
            SuppressionReason.THROTTLED,
        ),
    ],
)
def test_every_reason_not_to_survey_is_named(
    changes: dict[str, object], history: ResidentHistory | None, reason: SuppressionReason
) -> None:
    policy = replace(POLICY, excluded_case_types=frozenset({"schuldhulpverlening"}))
    assert decide(policy, closure(**changes), history or ResidentHistory()) == Suppress(reason)


def test_consent_required_means_silence_is_no() -> None:
    policy = replace(POLICY, require_consent=True)
    assert decide(policy, closure(), ResidentHistory()) == Suppress(SuppressionReason.NO_CONSENT)
    assert isinstance(decide(policy, closure(survey_consent=True), ResidentHistory()), Schedule)


def test_throttle_counts_from_the_last_survey() -> None:
    last = datetime(2026, 3, 4, 10, 0, tzinfo=AMS) - timedelta(days=90)
    assert isinstance(decide(POLICY, closure(), ResidentHistory(last_surveyed_at=last)), Schedule)
    nearly = last + timedelta(seconds=1)
    assert decide(POLICY, closure(), ResidentHistory(last_surveyed_at=nearly)) == Suppress(
        SuppressionReason.THROTTLED
    )


def test_a_case_type_that_is_not_surveyed() -> None:
    assert decide(replace(POLICY, surveyed=False), closure(), ResidentHistory()) == Suppress(
        SuppressionReason.EXCLUDED_CASE_TYPE
    )


def test_contacts_are_surveyed_on_the_configured_channels_only() -> None:
    counter = closure(subject_kind=CONTACT, channel=Channel.COUNTER, outcome=None, case_type=None)
    assert isinstance(decide(POLICY, counter, ResidentHistory()), Schedule)
    chat = replace(counter, channel=Channel.CHAT)
    assert decide(POLICY, chat, ResidentHistory()) == Suppress(
        SuppressionReason.NOT_SURVEYED_CHANNEL
    )
    hung_up = replace(counter, answered=False)
    assert decide(POLICY, hung_up, ResidentHistory()) == Suppress(
        SuppressionReason.NOT_SURVEYED_CHANNEL
    )


def test_digital_where_possible_personal_where_needed() -> None:
    prefs = POLICY.delivery_channels
    assert choose_delivery_channel(prefs, [ContactMedium.LETTER, ContactMedium.EMAIL]) == (
        DeliveryChannel.EMAIL
    )
    assert choose_delivery_channel(prefs, [ContactMedium.PHONE, ContactMedium.SMS]) == (
        DeliveryChannel.SMS
    )
    assert choose_delivery_channel(prefs, [ContactMedium.LETTER]) == DeliveryChannel.LETTER_LIST
    assert choose_delivery_channel(prefs, [ContactMedium.PHONE]) == DeliveryChannel.PHONE_LIST
    assert choose_delivery_channel([DeliveryChannel.EMAIL], [ContactMedium.PHONE]) is None


def test_sampling_is_stable_and_roughly_the_rate() -> None:
    policy = replace(POLICY, sampling_rate=0.3)
    decisions = [
        decide(policy, closure(subject_id=f"Z-{i}"), ResidentHistory()) for i in range(2000)
    ]
    surveyed = sum(isinstance(d, Schedule) for d in decisions)
    assert 500 < surveyed < 700
    assert decisions == [
        decide(policy, closure(subject_id=f"Z-{i}"), ResidentHistory()) for i in range(2000)
    ]
    assert decide(replace(POLICY, sampling_rate=0.0), closure(), ResidentHistory()) == Suppress(
        SuppressionReason.SAMPLED_OUT
    )


def test_no_surveys_at_night_or_on_sunday() -> None:
    hours = SendingHours()
    saturday_night = datetime(2026, 3, 7, 21, 30, tzinfo=AMS)
    assert next_sending_instant(saturday_night, hours, AMS) == datetime(
        2026, 3, 9, 9, 0, tzinfo=AMS
    )
    early = datetime(2026, 3, 4, 6, 0, tzinfo=AMS)
    assert next_sending_instant(early, hours, AMS) == datetime(2026, 3, 4, 9, 0, tzinfo=AMS)


def test_no_surveys_on_a_public_holiday() -> None:
    # Koningsdag 2026 is Monday 27 April.
    sunday = datetime(2026, 4, 26, 12, 0, tzinfo=AMS)
    assert next_sending_instant(sunday, SendingHours(), AMS, is_holiday) == datetime(
        2026, 4, 28, 9, 0, tzinfo=AMS
    )


def test_daylight_saving_change_keeps_local_opening_time() -> None:
    # Summer time starts Sunday 29 March 2026.
    saturday_late = datetime(2026, 3, 28, 22, 0, tzinfo=AMS)
    sent = next_sending_instant(saturday_late, SendingHours(), AMS)
    assert sent.astimezone(AMS).time() == time(9, 0)
    assert sent.astimezone(UTC) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)


def test_low_score_threshold() -> None:
    assert is_low_score(POLICY, 5)
    assert not is_low_score(POLICY, 6)


@st.composite
def sending_hours(draw: st.DrawFn) -> SendingHours:
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    start = draw(st.integers(0, 22 * 60))
    end = draw(st.integers(start + 1, 24 * 60 - 1))
    return SendingHours(
        days,
        time(start // 60, start % 60),
        time(end // 60, end % 60),
        draw(st.booleans()),
    )


instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(earliest=instants, hours=sending_hours())
def test_sending_instant_is_never_early_and_always_inside_the_hours(
    earliest: datetime, hours: SendingHours
) -> None:
    sent = next_sending_instant(earliest, hours, AMS, is_holiday)
    local = sent.astimezone(AMS)
    assert sent >= earliest
    assert local.weekday() in hours.weekdays
    assert hours.start <= local.time().replace(tzinfo=None) < hours.end or sent == earliest
    if hours.skip_public_holidays:
        assert local.date() not in NL_HOLIDAYS
    # Nothing earlier was allowed: if it moved, it moved to an opening time.
    if sent != earliest:
        assert local.time() == hours.start


@settings(max_examples=300, deadline=None)
@given(
    opted_out=st.booleans(),
    consent=st.sampled_from([None, True, False]),
    outcome=st.sampled_from(list(CaseOutcome)),
    rate=st.floats(0, 1),
    media=st.frozensets(st.sampled_from(list(ContactMedium))),
    closed=instants,
)
def test_a_decision_is_always_given_and_scheduled_surveys_respect_the_rules(
    opted_out: bool,
    consent: bool | None,
    outcome: CaseOutcome,
    rate: float,
    media: frozenset[ContactMedium],
    closed: datetime,
) -> None:
    policy = replace(POLICY, sampling_rate=rate)
    facts = closure(outcome=outcome, survey_consent=consent, reachable_by=media, closed_at=closed)
    decision = decide(policy, facts, ResidentHistory(opted_out=opted_out))
    if isinstance(decision, Schedule):
        assert not opted_out
        assert consent is not False
        assert outcome not in policy.excluded_outcomes
        assert decision.send_at >= closed + policy.delay
        assert sample_point(CASE, facts.subject_id) < rate
    else:
        assert isinstance(decision.reason, SuppressionReason)
    assert decide(policy, facts, ResidentHistory(opted_out=opted_out)) == decision
