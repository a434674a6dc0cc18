"""Explaining a deadline: on the dates of the calendar and clock tests, and always agreeing with
the due instant the clock computes."""

from __future__ import annotations

import random
from datetime import date

import pytest
from hypothesis import given, settings

from schemas.events import CaseSuspended, SuspensionReason
from services.common.calendar import DAY_US, US, BusinessCalendar, Measure, to_us
from services.norms.domain.catalog import NormCatalog
from services.norms.domain.clock import (
    ClockRule,
    DecisionKind,
    Transition,
    TransitionKind,
    timeline,
)
from services.norms.domain.explain import Explanation, describe, explain, report, summary
from services.norms.domain.outcomes import outcome_id
from services.norms.domain.planning import StoredClock, advance_clock, plan_events
from tests.unit.norms.test_clock import (
    CALENDAR,
    COMPLAINT,
    DECISION,
    EMAIL,
    EXTEND,
    PAUSE,
    RESTART,
    RESUME,
    SOCIAL,
    START,
    STOP,
    WEEK,
    at,
    histories,
    local,
    t,
)
from tests.unit.norms.test_handlers import history


def working_days(days: int, calendar: BusinessCalendar = CALENDAR) -> ClockRule:
    return ClockRule(
        calendar=calendar, measure=Measure.WORKING_DAYS, target=days * DAY_US, day_granular=True
    )


def explained(rule: ClockRule, *transitions: Transition) -> Explanation:
    explanation = explain(rule, list(transitions))
    assert explanation is not None
    return explanation


def statuses(explanation: Explanation) -> list[str]:
    return [
        f"{d.day:%a %d}:{d.status}" + (f" {d.name_nl}" if d.status == "holiday" else "")
        for d in explanation.days
    ]


def text(explanation: Explanation, lang: str, unit: str = "working_days") -> str:
    unit_us = {"working_days": DAY_US, "weeks": WEEK, "office_hours": 3600 * US}[unit]
    return " ".join(
        describe(explanation, lang, calendar=CALENDAR, unit=unit, unit_us=unit_us, now=None)
    )


# ---- the working-day terms of test_calendar.py -----------------------------------------------


@pytest.mark.parametrize(
    ("start", "days", "due", "expected"),
    [
        ("2026-03-02T10:00", 2, "2026-03-05T00:00", ["Tue 03:counted", "Wed 04:counted"]),
        (
            "2026-03-06T16:00",
            2,
            "2026-03-11T00:00",
            ["Sat 07:weekend", "Sun 08:weekend", "Mon 09:counted", "Tue 10:counted"],
        ),
        (
            "2026-03-07T11:00",
            2,
            "2026-03-11T00:00",
            ["Sun 08:weekend", "Mon 09:counted", "Tue 10:counted"],
        ),
        (
            "2026-04-02T09:00",
            2,
            "2026-04-08T00:00",
            [
                "Fri 03:counted",  # Good Friday: open unless configured
                "Sat 04:weekend",
                "Sun 05:weekend",
                "Mon 06:holiday Tweede paasdag",
                "Tue 07:counted",
            ],
        ),
        (
            "2026-05-13T12:00",
            3,
            "2026-05-20T00:00",
            [
                "Thu 14:holiday Hemelvaartsdag",
                "Fri 15:counted",
                "Sat 16:weekend",
                "Sun 17:weekend",
                "Mon 18:counted",
                "Tue 19:counted",
            ],
        ),
        (
            "2026-05-22T12:00",
            3,
            "2026-05-29T00:00",
            [
                "Sat 23:weekend",
                "Sun 24:weekend",
                "Mon 25:holiday Tweede pinksterdag",
                "Tue 26:counted",
                "Wed 27:counted",
                "Thu 28:counted",
            ],
        ),
        (
            "2026-12-24T10:00",
            2,
            "2026-12-30T00:00",
            [
                "Fri 25:holiday Eerste kerstdag",
                "Sat 26:weekend",  # also Tweede kerstdag: a weekend day is skipped as such
                "Sun 27:weekend",
                "Mon 28:counted",
                "Tue 29:counted",
            ],
        ),
        (
            "2026-12-30T10:00",
            2,
            "2027-01-05T00:00",
            [
                "Thu 31:counted",
                "Fri 01:holiday Nieuwjaarsdag",
                "Sat 02:weekend",
                "Sun 03:weekend",
                "Mon 04:counted",
            ],
        ),
        (
            "2026-03-27T10:00",
            3,
            "2026-04-02T00:00",
            [
                "Sat 28:weekend",
                "Sun 29:weekend",
                "Mon 30:counted",
                "Tue 31:counted",
                "Wed 01:counted",
            ],
        ),
    ],
)
def test_working_day_terms_name_every_day(
    start: str, days: int, due: str, expected: list[str]
) -> None:
    explanation = explained(working_days(days), t(START, start))
    assert explanation.due_at == at(due)
    assert explanation.counting_from == CALENDAR.start_of_next_day(at(start))
    assert statuses(explanation) == expected
    assert explanation.counted_days == days
    # The clock computes the same due instant.
    assert timeline(working_days(days), [t(START, start)])[-1].due_at == at(due)


def test_a_closing_day_is_named_as_the_municipalitys() -> None:
    buch = BusinessCalendar(closing_days=frozenset({date(2026, 5, 15)}))
    explanation = explained(working_days(3, buch), t(START, "2026-05-13T12:00"))
    assert statuses(explanation)[:2] == ["Thu 14:holiday Hemelvaartsdag", "Fri 15:closing_day"]
    assert local(explanation.due_at or 0) == "2026-05-21 00:00"
    assert summary(explanation)["skipped_days"] == {"weekend": 2, "holiday": 1, "closing_day": 1}
    nl = " ".join(describe(explanation, "nl", calendar=buch, unit="working_days", unit_us=DAY_US))
    assert "vrijdag 15 mei (sluitingsdag van de gemeente)" in nl
    assert "donderdag 14 mei (Hemelvaartsdag)" in nl
    en = " ".join(describe(explanation, "en", calendar=buch, unit="working_days", unit_us=DAY_US))
    assert "Friday 15 May (municipal closing day)" in en
    assert "Thursday 14 May (Ascension Day)" in en


def test_an_email_over_the_weekend_in_dutch_and_english() -> None:
    explanation = explained(EMAIL, t(START, "2026-03-06T16:00"), t(STOP, "2026-03-10T09:00"))
    nl = text(explanation, "nl")
    assert "Ontvangen op vrijdag 6 maart 2026 om 16:00." in nl
    assert "De dag van ontvangst telt niet mee. We tellen vanaf zaterdag 7 maart 2026." in nl
    assert "zaterdag 7 maart (weekend) en zondag 8 maart (weekend)" in nl
    assert "De uiterste datum is dinsdag 10 maart 2026 (tot het einde van die dag)." in nl
    assert "op tijd" in nl
    en = text(explanation, "en")
    assert "Counting starts on Saturday 7 March 2026." in en
    assert "The due date is Tuesday 10 March 2026" in en
    assert summary(explanation) == {
        "counted_days": 2,
        "skipped_days": {"weekend": 2, "holiday": 0, "closing_day": 0},
        "suspended_days": 0,
        "extension_days": 0.0,
        "atw_shift_days": 0,
    }


@pytest.mark.parametrize(
    ("start", "hours", "due", "counted"),
    [
        ("2026-03-02T10:00", 4, "2026-03-02T14:00", {2: 4}),
        ("2026-03-06T15:00", 4, "2026-03-09T10:30", {6: 2, 9: 2}),
        ("2026-03-27T15:00", 4, "2026-03-30T10:30", {27: 2, 30: 2}),
        ("2026-10-23T15:00", 4, "2026-10-26T10:30", {23: 2, 26: 2}),
        ("2026-04-02T16:00", 4, "2026-04-03T11:30", {2: 1, 3: 3}),
        ("2026-12-24T16:30", 1, "2026-12-28T09:00", {24: 0.5, 28: 0.5}),
        ("2026-03-07T12:00", 4, "2026-03-09T12:30", {9: 4}),
        ("2026-03-02T06:00", 1, "2026-03-02T09:30", {2: 1}),
    ],
)
def test_office_hour_terms_of_test_calendar(
    start: str, hours: int, due: str, counted: dict[int, float]
) -> None:
    rule = ClockRule(calendar=CALENDAR, measure=Measure.OFFICE_HOURS, target=hours * 3600 * US)
    explanation = explained(rule, t(START, start))
    assert explanation.due_at == at(due)
    assert explanation.counting_from == at(start)  # office hours count from receipt
    assert {
        d.day.day: d.counted / (3600 * US) for d in explanation.days if d.status == "counted"
    } == counted
    skipped = {d.status for d in explanation.days if d.status != "counted"}
    assert skipped <= {"weekend", "holiday"}
    if start.startswith("2026-12-24"):  # Christmas Day and Boxing Day (a Saturday)
        assert [(d.day.day, d.status, d.name_nl) for d in explanation.days[1:3]] == [
            (25, "holiday", "Eerste kerstdag"),
            (26, "weekend", "zaterdag"),
        ]


# ---- the legal terms of test_clock.py ------------------------------------------------------


def test_a_term_ending_on_a_saturday_ends_on_monday() -> None:
    # Received Saturday 7 March 2026: day 56 is Saturday 2 May; Monday 4 May is a working day.
    explanation = explained(DECISION, t(START, "2026-03-07T11:00"))
    assert local(explanation.due_at or 0) == "2026-05-05 00:00"
    assert explanation.atw is not None and explanation.atw.kind == "weekend"
    assert explanation.atw.days == 2
    assert [d.status for d in explanation.days[-2:]] == ["atw_shift", "atw_shift"]
    assert [d.name_nl for d in explanation.days[-2:]] == ["zondag", "volgende werkdag"]
    assert timeline(DECISION, [t(START, "2026-03-07T11:00")])[-1].due_at == explanation.due_at
    assert "De laatste dag van de termijn was zaterdag 2 mei 2026 (weekend)." in text(
        explanation, "nl", "weeks"
    )


def test_5_may_moves_a_legal_term_even_when_the_office_is_open() -> None:
    # Received Tuesday 10 March 2026: day 56 is Tuesday 5 May, Bevrijdingsdag. The office is
    # open (2026 is no lustrum year), but for the Atw 5 May is a general holiday every year.
    explanation = explained(DECISION, t(START, "2026-03-10T09:00"))
    assert explanation.atw is not None
    assert (explanation.atw.from_day, explanation.atw.name_nl) == (
        date(2026, 5, 5),
        "Bevrijdingsdag",
    )
    assert local(explanation.due_at or 0) == "2026-05-07 00:00"
    assert "(Liberation Day)" in text(explanation, "en", "weeks")


def test_awb_decision_term_moved_by_the_atw_past_kings_day() -> None:
    explanation = explained(DECISION, t(START, "2026-03-02T10:00"))
    assert local(explanation.due_at or 0) == "2026-04-29 00:00"
    assert explanation.counted_days == 56  # 8 weeks of calendar days, weekends included
    assert explanation.atw is not None
    assert (explanation.atw.from_day, explanation.atw.to_day) == (
        date(2026, 4, 27),
        date(2026, 4, 28),
    )
    assert explanation.atw.name_nl == "Koningsdag"
    assert statuses(explanation)[-1] == "Tue 28:atw_shift"
    assert summary(explanation)["atw_shift_days"] == 1
    nl = text(explanation, "nl", "weeks")
    assert "De laatste dag van de termijn was maandag 27 april 2026 (Koningsdag)." in nl
    assert "Algemene termijnenwet" in nl and "dinsdag 28 april 2026" in nl
    assert "King's Day" in text(explanation, "en", "weeks")


def test_awb_decision_term_with_a_suspension_names_its_reason_and_days() -> None:
    explanation = explained(
        DECISION,
        t(START, "2026-03-02T10:00"),
        t(PAUSE, "2026-03-10T10:00", reason="awaiting_information"),
        t(RESUME, "2026-03-20T10:00"),
        t(STOP, "2026-05-06T16:00"),
    )
    assert local(explanation.due_at or 0) == "2026-05-07 00:00"
    [suspension] = explanation.suspensions
    assert suspension.days == 9 and suspension.reason == "awaiting_information"
    assert local(suspension.effective_from or 0) == "2026-03-11 00:00"
    assert local(suspension.until or 0) == "2026-03-20 00:00"
    suspended = [d.day.day for d in explanation.days if d.status == "suspended"]
    assert suspended == list(range(11, 20))
    assert explanation.atw is None  # Wednesday 6 May is no day off
    assert explanation.status == "met"
    nl = text(explanation, "nl", "weeks")
    assert (
        "De termijn stond stil van woensdag 11 maart 2026 tot en met donderdag 19 maart 2026 "
        "(9 dagen), omdat we wachtten op informatie van de aanvrager (Awb 4:15)." in nl
    )
    assert summary(explanation)["suspended_days"] == 9


def test_a_suspension_answered_the_next_day_suspends_nothing_and_says_so() -> None:
    explanation = explained(
        DECISION,
        t(START, "2026-03-02T10:00"),
        t(PAUSE, "2026-03-10T10:00", reason="awaiting_payment"),
        t(RESUME, "2026-03-11T08:00"),
    )
    [suspension] = explanation.suspensions
    assert suspension.days == 0  # from the start of the 11th up to the start of the 11th
    assert local(explanation.due_at or 0) == "2026-04-29 00:00"
    assert "liep dus gewoon door" in text(explanation, "nl", "weeks")


def test_an_open_suspended_clock_has_no_due_date_while_it_stands_still() -> None:
    explanation = explained(
        DECISION, t(START, "2026-03-02T10:00"), t(PAUSE, "2026-03-10T10:00", reason="other")
    )
    assert explanation.status == "suspended" and explanation.due_at is None
    assert [d.day.day for d in explanation.days][-1] == 10  # counted up to the suspension
    assert "vanaf woensdag 11 maart 2026" in text(explanation, "nl", "weeks")


def test_complaint_extensions_that_count_and_those_that_do_not() -> None:
    extended = explained(
        COMPLAINT,
        t(START, "2026-10-01T09:00"),
        t(EXTEND, "2026-11-02T09:00", extension=4 * WEEK),
        t(STOP, "2026-12-09T12:00"),
    )
    assert local(extended.due_at or 0) == "2026-12-11 00:00"
    assert extended.extended == 4 * WEEK and extended.counted_days == 70
    assert summary(extended)["extension_days"] == 28.0
    assert "Op maandag 2 november 2026 is de termijn verlengd met 4 weken." in text(
        extended, "nl", "weeks"
    )
    late = explained(
        COMPLAINT,
        t(START, "2026-10-01T09:00"),
        t(EXTEND, "2026-11-20T09:00", extension=4 * WEEK),
        t(STOP, "2026-11-25T09:00"),
    )
    assert [e.refused for e in late.extensions] == ["after_expiry"]
    assert late.status == "missed" and local(late.due_at or 0) == "2026-11-13 00:00"
    assert "de termijn was toen al verlopen" in text(late, "nl", "weeks")
    twice = explained(
        COMPLAINT,
        t(START, "2026-10-01T09:00"),
        t(EXTEND, "2026-10-20T09:00", "a", extension=4 * WEEK),
        t(EXTEND, "2026-10-21T09:00", "b", extension=4 * WEEK),
    )
    assert [e.refused for e in twice.extensions] == ["", "beyond_maximum"]
    assert twice.extended == 4 * WEEK


def test_office_hours_over_the_weekend() -> None:
    explanation = explained(SOCIAL, t(START, "2026-03-06T15:00"))
    assert local(explanation.due_at or 0) == "2026-03-09 10:30"
    assert [(d.day.day, d.status, d.counted) for d in explanation.days] == [
        (6, "counted", 2 * 3600 * US),
        (7, "weekend", 0),
        (8, "weekend", 0),
        (9, "counted", 2 * 3600 * US),
    ]
    assert "Het uiterste moment is maandag 9 maart 2026 om 10:30." in text(
        explanation, "nl", "office_hours"
    )


def test_a_reopened_case_explains_its_latest_cycle() -> None:
    explanation = explained(
        EMAIL,
        t(START, "2026-03-02T10:00"),
        t(STOP, "2026-03-03T10:00"),
        t(RESTART, "2026-03-06T16:00"),
    )
    assert explanation.cycle == 2
    assert local(explanation.due_at or 0) == "2026-03-11 00:00"
    assert "heropend op vrijdag 6 maart 2026" in text(explanation, "nl")
    first = explain(EMAIL, explanation_input := [t(START, "2026-03-02T10:00")], cycle=1)
    assert first is not None and first.cycle == 1 and explanation_input
    assert explain(EMAIL, [t(STOP, "2026-03-02T10:00")]) is None


def test_the_report_of_a_shipped_norm(catalogs: dict[str, NormCatalog]) -> None:
    catalog = catalogs["GM0383"]
    norm = catalog.norms["decision_made"]
    body = report(norm, catalog.calendar, [t(START, "2026-03-02T10:00")], lang="en")
    assert body is not None
    assert body["due_at"] == "2026-04-29T00:00:00+02:00"
    assert body["atw_shift"] == {
        "term_last_day": "2026-04-27",
        "because": "King's Day",
        "kind": "holiday",
        "ends_on": "2026-04-28",
        "days": 1,
    }
    assert body["target"] == {"amount": 8.0, "unit": "weeks"}
    assert isinstance(body["explanation"], list) and body["explanation"][0].startswith("Received")


# ---- always in agreement with the clock ------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(histories())
def test_the_explained_due_instant_is_the_clocks(
    history: tuple[ClockRule, list[Transition]],
) -> None:
    """For the latest cycle, and for every decision as it was taken (knowing only the events up
    to its instant): the due instant explained is the one the decision carries, and so are the
    breach and the final outcome."""
    rule, transitions = history
    decisions = timeline(rule, transitions)
    latest = explain(rule, transitions)
    assert latest is not None and latest.cycle == decisions[-1].cycle
    cycle = [d for d in decisions if d.cycle == latest.cycle]
    if latest.due_at is not None:
        assert latest.due_at == cycle[-1].due_at
    assert (latest.breached_at is not None) == any(d.kind is DecisionKind.BREACHED for d in cycle)
    if cycle[-1].kind in (DecisionKind.MET, DecisionKind.MISSED, DecisionKind.CANCELLED):
        assert latest.status == cycle[-1].kind.value
    for decision in decisions:
        # (A data-quality decision is taken at the start, before the start's own instant is
        # through, and explains nothing: its event carries no explanation.)
        if decision.kind in (DecisionKind.STARTED, DecisionKind.DATA_QUALITY):
            continue
        as_taken = explain(rule, transitions, cycle=decision.cycle, until=decision.at)
        assert as_taken is not None and as_taken.due_at == decision.due_at
        if rule.day_granular:
            # The days walked end with the term's last day; a counted day is a counting day.
            assert as_taken.days[-1].day == rule.calendar.local_date(decision.due_at - 1)
            for day in as_taken.days:
                if day.status == "counted" and rule.measure is Measure.WORKING_DAYS:
                    assert rule.calendar.is_working_day(day.day)
            if not as_taken.suspensions and as_taken.not_before is None:
                total = rule.target + as_taken.extended
                assert as_taken.counted_days == -(-total // DAY_US)


def test_transitions_as_stored_keep_the_suspension_reason(
    catalogs: dict[str, NormCatalog],
) -> None:
    suspended = CaseSuspended(
        case_id="Z-1", case_type="omgevingsvergunning", reason=SuspensionReason.AWAITING_ADVICE
    )
    [match] = catalogs["GM0383"].match(CaseSuspended.event_type, suspended)
    assert match.kind is TransitionKind.PAUSE and match.reason == "awaiting_advice"


# ---- on the outcome events -------------------------------------------------------------------


def test_outcome_events_carry_the_summary_of_what_the_clock_knew(
    catalogs: dict[str, NormCatalog],
) -> None:
    """Each warning, breach, met and missed event explains its due instant from the events up
    to its own instant (so a live run and a replay frame it alike); the summaries remembered
    for plain cycles are the ones computed afresh."""
    catalog = catalogs["GM0383"]
    events = history(random.Random(7))
    now = max(to_us(e.time) for e in events) + 200 * DAY_US
    plan = plan_events(events, {catalog.municipality: catalog})
    explained_kinds = {DecisionKind.WARNING, DecisionKind.BREACHED, DecisionKind.MET}
    seen: dict[DecisionKind, int] = {}
    for remembered in (False, True):
        for blank, transitions in plan.transitions.values():
            clock = StoredClock(blank.clock_id, blank.municipality, blank.norm_id, blank.subject_id)
            for transition, context in transitions:
                clock.add(transition, context)
            norm = catalog.norms[clock.norm_id]
            if not remembered:
                catalog.explanations.clear()
            by_id = {
                o.envelope().id: o.envelope() for o in advance_clock(clock, catalog, now).events
            }
            moves = [t for t, _ in clock.transitions]
            for decision in timeline(norm.rule, moves):
                event = by_id.get(outcome_id(clock.clock_id, norm.version, decision.key))
                if event is None:
                    continue
                if decision.kind in (DecisionKind.STARTED, DecisionKind.CANCELLED):
                    assert "explanation" not in event.data.model_fields_set
                    continue
                if decision.kind is DecisionKind.DATA_QUALITY:  # (no deadline to explain)
                    assert not hasattr(event.data, "explanation")
                    continue
                known = [m for m in moves if m.at <= decision.at]
                expected = explain(norm.rule, known, cycle=decision.cycle)
                assert expected is not None and expected.due_at == decision.due_at
                assert event.data.explanation.model_dump() == summary(expected)
                seen[decision.kind] = seen.get(decision.kind, 0) + 1
    assert explained_kinds <= set(seen)
    assert seen.get(DecisionKind.MISSED, 0) > 0


def test_a_closure_dated_before_the_receipt_explains_the_data_error() -> None:
    """The clock's rule for a stop dated before the start (stopped_before_start): cancelled at
    the start, a later suspension changes nothing, and the words say why it does not count."""
    explanation = explained(
        DECISION,
        t(START, "2026-03-02T10:00"),
        t(STOP, "2026-03-01T09:00"),
        t(PAUSE, "2026-03-10T10:00", reason="other"),
    )
    assert explanation.status == "cancelled" and explanation.stopped_before_start
    assert local(explanation.stopped_at or 0) == "2026-03-01 09:00"
    assert explanation.suspensions == ()
    assert "van vóór de ontvangst" in text(explanation, "nl", "weeks")
    assert "before it was received" in text(explanation, "en", "weeks")
