"""The norm clock: scenarios from Dutch practice, and properties that must always hold."""

from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.calendar import DAY_US, US, BusinessCalendar, Measure, from_us, to_us
from services.norms.domain.clock import (
    FINAL_KINDS,
    ClockRule,
    Decision,
    DecisionKind,
    Threshold,
    Transition,
    TransitionKind,
    decisions_due,
    judge_instant,
    new_transition,
    timeline,
)

AMS = ZoneInfo("Europe/Amsterdam")
CALENDAR = BusinessCalendar()
WEEK = 7 * DAY_US


def at(text: str) -> int:
    return to_us(datetime.fromisoformat(text).replace(tzinfo=AMS))


def local(instant: int) -> str:
    return from_us(instant, AMS).strftime("%Y-%m-%d %H:%M")


def t(kind: TransitionKind, when: str, key: str = "", **extra: object) -> Transition:
    return Transition(at=at(when), kind=kind, event_key=key or f"{kind}-{when}", **extra)  # type: ignore[arg-type]


START, PAUSE, RESUME, EXTEND, STOP, CANCEL, RESTART = (
    TransitionKind.START,
    TransitionKind.PAUSE,
    TransitionKind.RESUME,
    TransitionKind.EXTEND,
    TransitionKind.STOP,
    TransitionKind.CANCEL,
    TransitionKind.RESTART,
)

EMAIL = ClockRule(
    calendar=CALENDAR,
    measure=Measure.WORKING_DAYS,
    target=2 * DAY_US,
    day_granular=True,
    warnings=(Threshold("50%", fraction=0.5), Threshold("75%", fraction=0.75)),
)
DECISION = ClockRule(
    calendar=CALENDAR,
    measure=Measure.CALENDAR_DAYS,
    target=8 * WEEK,
    day_granular=True,
    legal_term=True,
    warnings=(Threshold("7 days before", before=7 * DAY_US),),
    max_extension=8 * WEEK,
)
COMPLAINT = ClockRule(
    calendar=CALENDAR,
    measure=Measure.CALENDAR_DAYS,
    target=6 * WEEK,
    day_granular=True,
    legal_term=True,
    max_extension=4 * WEEK,
)
SOCIAL = ClockRule(
    calendar=CALENDAR,
    measure=Measure.OFFICE_HOURS,
    target=4 * 3600 * US,
    warnings=(Threshold("1h before", before=3600 * US),),
)


def kinds(decisions: list[Decision]) -> list[str]:
    return [
        f"{d.kind.value}{':' + d.threshold if d.threshold else ''}@{local(d.at)}" for d in decisions
    ]


def keys(decisions: list[Decision]) -> list[str]:
    return [d.key for d in decisions]


def test_email_answered_in_time_is_met_with_warnings_before() -> None:
    decisions = timeline(EMAIL, [t(START, "2026-03-02T10:00"), t(STOP, "2026-03-04T15:00")])
    assert kinds(decisions) == [
        "started@2026-03-02 10:00",
        "warning:50%@2026-03-04 00:00",
        "warning:75%@2026-03-04 12:00",
        "met@2026-03-04 15:00",
    ]
    met = decisions[-1]
    assert local(met.due_at) == "2026-03-05 00:00"
    assert met.elapsed == int(1.625 * DAY_US)


def test_email_answered_late_is_breached_at_the_due_instant_then_missed() -> None:
    decisions = timeline(EMAIL, [t(START, "2026-03-02T10:00"), t(STOP, "2026-03-05T09:00")])
    assert kinds(decisions)[-2:] == ["breached@2026-03-05 00:00", "missed@2026-03-05 09:00"]


def test_an_open_clock_has_its_breach_in_the_timeline() -> None:
    decisions = timeline(EMAIL, [t(START, "2026-03-06T16:00")])
    assert kinds(decisions)[-1] == "breached@2026-03-11 00:00"  # Friday: Monday and Tuesday


def test_arrival_order_does_not_matter() -> None:
    events = [
        t(START, "2026-03-02T10:00"),
        t(PAUSE, "2026-03-10T10:00"),
        t(RESUME, "2026-03-20T10:00"),
        t(EXTEND, "2026-04-20T10:00", extension=6 * WEEK),
        t(STOP, "2026-06-10T10:00"),
    ]
    expected = timeline(DECISION, events)
    for _ in range(20):
        random.shuffle(events)
        assert timeline(DECISION, events) == expected


def test_awb_decision_term_with_suspension_and_atw() -> None:
    # Received Monday 2 March 2026: 8 weeks end on Monday 27 April, King's Day, so the term
    # runs to the end of Tuesday 28 April (Atw art. 1).
    started = timeline(DECISION, [t(START, "2026-03-02T10:00")])[0]
    assert local(started.due_at) == "2026-04-29 00:00"
    # Awb 4:15: information asked on Tuesday 10 March, supplied Friday 20 March: suspended from
    # Wednesday 11 up to Friday 20: 9 days. 27 April + 9 days = Wednesday 6 May.
    decisions = timeline(
        DECISION,
        [
            t(START, "2026-03-02T10:00"),
            t(PAUSE, "2026-03-10T10:00"),
            t(RESUME, "2026-03-20T10:00"),
            t(STOP, "2026-05-06T16:00"),
        ],
    )
    final = decisions[-1]
    assert final.kind is DecisionKind.MET
    assert local(final.due_at) == "2026-05-07 00:00"
    assert final.paused == 9 * DAY_US


def test_suspension_answered_the_next_day_suspends_nothing() -> None:
    decisions = timeline(
        DECISION,
        [t(START, "2026-03-02T10:00"), t(PAUSE, "2026-03-10T10:00"), t(RESUME, "2026-03-11T08:00")],
    )
    assert decisions[-1].paused == 0
    assert local(decisions[-1].due_at) == "2026-04-29 00:00"


def test_complaint_extended_by_four_weeks_before_expiry() -> None:
    # Awb 9:11: 6 weeks, extendable by 4. Received Thursday 1 October 2026; 6 weeks end on
    # Thursday 12 November; with 4 weeks more on Thursday 10 December.
    base = [t(START, "2026-10-01T09:00")]
    assert local(timeline(COMPLAINT, base)[0].due_at) == "2026-11-13 00:00"
    extended = timeline(
        COMPLAINT,
        [*base, t(EXTEND, "2026-11-02T09:00", extension=4 * WEEK), t(STOP, "2026-12-09T12:00")],
    )
    assert extended[-1].kind is DecisionKind.MET
    assert local(extended[-1].due_at) == "2026-12-11 00:00"
    assert extended[-1].target == 10 * WEEK


def test_extension_after_expiry_and_beyond_the_maximum_do_not_count() -> None:
    late = timeline(
        COMPLAINT,
        [
            t(START, "2026-10-01T09:00"),
            t(EXTEND, "2026-11-20T09:00", extension=4 * WEEK),
            t(STOP, "2026-11-25T09:00"),
        ],
    )
    assert [d.kind for d in late][-2:] == [DecisionKind.BREACHED, DecisionKind.MISSED]
    twice = timeline(
        COMPLAINT,
        [
            t(START, "2026-10-01T09:00"),
            t(EXTEND, "2026-10-20T09:00", "a", extension=4 * WEEK),
            t(EXTEND, "2026-10-21T09:00", "b", extension=4 * WEEK),
        ],
    )
    assert twice[-1].target == 10 * WEEK


def test_office_hours_warning_before_and_cancel() -> None:
    decisions = timeline(
        SOCIAL, [t(START, "2026-03-06T15:00"), t(CANCEL, "2026-03-09T09:00", reason="spam")]
    )
    assert kinds(decisions) == [
        "started@2026-03-06 15:00",
        "cancelled@2026-03-09 09:00",
    ]
    assert decisions[-1].reason == "spam"


def test_events_after_the_end_and_without_a_start_are_ignored() -> None:
    assert timeline(EMAIL, [t(STOP, "2026-03-02T10:00")]) == []
    decisions = timeline(
        EMAIL,
        [t(START, "2026-03-02T10:00"), t(STOP, "2026-03-03T10:00"), t(STOP, "2026-03-09T10:00")],
    )
    assert [d.kind for d in decisions][-1] is DecisionKind.MET
    assert decisions[-1].stopped_at == at("2026-03-03T10:00")


def test_a_closure_dated_before_the_opening_cancels_the_clock_as_a_data_quality_problem() -> None:
    # Real exports have these: the case closed at 09:00, "opened" at 10:00 the same day.
    closed_first = t(STOP, "2026-03-02T09:00", key="/buch/zaaksysteem\x1fclose-1")
    decisions = timeline(EMAIL, [t(START, "2026-03-02T10:00"), closed_first])
    assert kinds(decisions) == [
        "started@2026-03-02 10:00",
        "data_quality@2026-03-02 10:00",
        "cancelled@2026-03-02 10:00",
    ]
    report, final = decisions[1], decisions[2]
    assert report.reason == "stopped_before_start"
    assert report.cause == closed_first.event_key and report.cause_at == closed_first.at
    assert final.reason == "stopped_before_start" and final.stopped_at == closed_first.at
    assert final.key == "final" and report.key.startswith("data_quality:")
    # Never met, missed or overdue: nothing is left to decide, however long one waits.
    assert not any(d.kind in (DecisionKind.BREACHED, DecisionKind.WARNING) for d in decisions)
    ready, upcoming = decisions_due(decisions, set(), at("2030-01-01T00:00"))
    assert ready == decisions and upcoming is None


def test_the_first_closing_event_decides_even_if_a_valid_one_follows() -> None:
    decisions = timeline(
        DECISION,
        [
            t(START, "2026-03-02T10:00"),
            t(CANCEL, "2026-03-01T10:00", reason="withdrawn"),  # a cancel is a closing event too
            t(STOP, "2026-02-27T10:00"),
            t(STOP, "2026-03-04T10:00"),  # after the end of the cycle: ignored, as always
        ],
    )
    assert [(d.kind.value, d.reason) for d in decisions] == [
        ("started", ""),
        ("data_quality", "stopped_before_start"),
        ("data_quality", "stopped_before_start"),
        ("cancelled", "stopped_before_start"),
    ]
    assert decisions[-1].stopped_at == at("2026-02-27T10:00")  # the earliest
    assert len({d.key for d in decisions}) == len(decisions)


def test_a_suspension_resumption_or_extension_before_the_start_is_ignored_and_reported() -> None:
    plain = [t(START, "2026-03-02T10:00"), t(STOP, "2026-05-20T10:00")]
    early = [
        t(PAUSE, "2026-02-20T10:00"),
        t(RESUME, "2026-02-25T10:00"),
        t(EXTEND, "2026-03-01T10:00", extension=6 * WEEK),
        t(RESTART, "2026-03-01T11:00"),
    ]
    decisions = timeline(DECISION, [*plain, *early])
    reports = [d for d in decisions if d.kind is DecisionKind.DATA_QUALITY]
    assert [d.reason for d in reports] == [
        "suspended_before_start",
        "resumed_before_start",
        "extended_before_start",
        "reopened_before_start",
    ]
    assert {d.at for d in reports} == {at("2026-03-02T10:00")}
    # The clock itself is exactly the clock without them.
    assert [d for d in decisions if d.kind is not DecisionKind.DATA_QUALITY] == timeline(
        DECISION, plain
    )


def test_a_report_arriving_after_the_final_is_still_taken_once() -> None:
    history = [t(START, "2026-03-02T10:00"), t(STOP, "2026-03-03T10:00")]
    late = timeline(EMAIL, [*history, t(PAUSE, "2026-03-01T10:00")])
    ready, _ = decisions_due(late, {"started", "final"}, at("2026-03-10T00:00"))
    assert [d.reason for d in ready] == ["suspended_before_start"]
    assert decisions_due(late, {"started", "final", ready[0].key}, at("2026-03-10T00:00")) == (
        [],
        None,
    )


def test_instant_norm_phone_answered_within_30_seconds() -> None:
    begin = at("2026-03-02T10:00")
    assert (
        judge_instant(started_at=begin, waited=29 * US, answered=True, target=30 * US).kind
        is DecisionKind.MET
    )
    assert (
        judge_instant(started_at=begin, waited=30 * US, answered=True, target=30 * US).kind
        is DecisionKind.MET
    )
    assert (
        judge_instant(started_at=begin, waited=31 * US, answered=True, target=30 * US).kind
        is DecisionKind.MISSED
    )
    abandoned = judge_instant(started_at=begin, waited=10 * US, answered=False, target=30 * US)
    assert abandoned.kind is DecisionKind.MISSED
    assert abandoned.due_at == begin + 30 * US


def test_decisions_due_takes_each_decision_once_and_nothing_after_the_final() -> None:
    decisions = timeline(EMAIL, [t(START, "2026-03-02T10:00")])
    ready, upcoming = decisions_due(decisions, set(), at("2026-03-04T06:00"))
    assert [d.key for d in ready] == ["started", "warning:50%"]
    assert upcoming == at("2026-03-04T12:00")
    ready, _ = decisions_due(decisions, {"started", "warning:50%"}, at("2026-03-04T12:00"))
    assert ready == []  # strictly before now: an event at 12:00 may still arrive
    ready, _ = decisions_due(decisions, {"started", "warning:50%"}, at("2026-03-04T12:00") + 1)
    assert [d.key for d in ready] == ["warning:75%"]
    assert decisions_due(decisions, {"final"}, at("2030-01-01T00:00")) == ([], None)


def test_a_reopened_case_gets_a_fresh_cycle_and_the_first_keeps_its_outcome() -> None:
    first = [t(START, "2026-03-02T10:00"), t(STOP, "2026-03-03T10:00")]
    reopened = [*first, t(RESTART, "2026-03-05T09:00"), t(STOP, "2026-03-10T15:00")]
    decisions = timeline(EMAIL, reopened)
    # Cycle 1 is exactly what it was without the reopening.
    assert decisions[:2] == timeline(EMAIL, first)
    assert kinds(decisions) == [
        "started@2026-03-02 10:00",
        "met@2026-03-03 10:00",
        # Cycle 2 counts afresh from the reopening: Friday and Monday, due at Tuesday 00:00.
        "started@2026-03-05 09:00",
        "warning:50%@2026-03-07 00:00",
        "warning:75%@2026-03-09 12:00",
        "breached@2026-03-10 00:00",
        "missed@2026-03-10 15:00",
    ]
    assert keys(decisions) == [
        "started",
        "final",
        "2:started",
        "2:warning:50%",
        "2:warning:75%",
        "2:breached",
        "2:final",
    ]
    second = decisions[2:]
    assert {d.cycle for d in second} == {2}
    assert second[0].started_at == at("2026-03-05T09:00") and second[0].elapsed == 0
    assert local(second[-1].due_at) == "2026-03-10 00:00"


def test_only_a_restart_after_the_end_begins_a_cycle() -> None:
    running = [t(START, "2026-03-02T10:00"), t(RESTART, "2026-03-02T15:00")]
    assert timeline(EMAIL, running) == timeline(EMAIL, running[:1])  # still open: same clock
    assert timeline(EMAIL, [t(RESTART, "2026-03-02T15:00")]) == []  # nothing began
    # A start after the end (a repeated "opened") is no restart.
    ended = [t(START, "2026-03-02T10:00"), t(STOP, "2026-03-03T10:00")]
    assert timeline(EMAIL, [*ended, t(START, "2026-03-04T10:00")]) == timeline(EMAIL, ended)
    # Closed and reopened at one instant: the cycle ends, the next begins.
    same = timeline(EMAIL, [*ended, t(RESTART, "2026-03-03T10:00")])
    assert keys(same)[:3] == ["started", "final", "2:started"]
    # A cancelled cycle, a stray stop between cycles, then two reopenings.
    cycles = timeline(
        EMAIL,
        [
            t(START, "2026-03-02T10:00"),
            t(CANCEL, "2026-03-02T11:00", reason="withdrawn"),
            t(STOP, "2026-03-02T12:00"),
            t(RESTART, "2026-03-02T13:00"),
            t(STOP, "2026-03-02T14:00"),
            t(RESTART, "2026-03-02T15:00"),
            t(RESTART, "2026-03-02T16:00"),
            t(CANCEL, "2026-03-02T17:00"),
        ],
    )
    assert keys(cycles) == ["started", "final", "2:started", "2:final", "3:started", "3:final"]
    assert [d.kind for d in cycles if d.kind in FINAL_KINDS] == [
        DecisionKind.CANCELLED,
        DecisionKind.MET,
        DecisionKind.CANCELLED,
    ]


def test_decisions_due_takes_a_new_cycle_after_a_final_but_nothing_more_of_an_ended_one() -> None:
    history = [
        t(START, "2026-03-02T10:00"),
        t(STOP, "2026-03-03T10:00"),
        t(RESTART, "2026-03-05T09:00"),
    ]
    decisions = timeline(EMAIL, history)
    ready, upcoming = decisions_due(decisions, {"started", "final"}, at("2026-03-06T00:00"))
    assert keys(ready) == ["2:started"]
    assert upcoming == at("2026-03-07T00:00")
    # Cycle 1 has warnings its final was taken without (a late event changed it, beyond the
    # allowed lateness): nothing more of cycle 1 is taken, cycle 2 goes on.
    changed = timeline(EMAIL, [history[0], t(STOP, "2026-03-04T15:00"), history[2]])
    assert "warning:50%" in keys(changed)
    ready, _ = decisions_due(changed, {"started", "final"}, at("2026-03-06T00:00"))
    assert keys(ready) == ["2:started"]
    ready, _ = decisions_due(decisions, {"started"}, at("2026-03-06T00:00"))
    assert keys(ready) == ["final", "2:started"]
    assert decisions_due(
        decisions, {"started", "final", "2:started", "2:final"}, at("2030-01-01T00:00")
    ) == ([], None)


# ---- properties -----------------------------------------------------------------------------

RULES = [EMAIL, DECISION, COMPLAINT, SOCIAL]
begin = st.integers(min_value=at("2025-01-01T00:00"), max_value=at("2030-12-01T00:00"))
offset = st.integers(min_value=0, max_value=20 * DAY_US)
# Input events may be dated before the start (bad data: a closure before the opening).
any_offset = st.integers(min_value=-5 * DAY_US, max_value=20 * DAY_US)


@st.composite
def histories(draw: st.DrawFn, early: bool = True) -> tuple[ClockRule, list[Transition]]:
    rule = draw(st.sampled_from(RULES))
    start = draw(begin)
    transitions = [Transition(start, START, "s")]
    for index in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from([PAUSE, RESUME, EXTEND, STOP, CANCEL, START, RESTART]))
        # (A start before the first start would be the start: only other kinds come earlier.)
        shift = draw(any_offset if early and kind is not START else offset)
        transitions.append(
            Transition(
                start + shift,
                kind,
                f"e{index}",
                extension=draw(st.integers(0, 3 * WEEK)) if kind is EXTEND else 0,
            )
        )
    return rule, transitions


@settings(max_examples=400, deadline=None)
@given(histories(), st.randoms())
def test_timeline_is_sorted_never_negative_and_independent_of_order(
    history: tuple[ClockRule, list[Transition]], rng: random.Random
) -> None:
    rule, transitions = history
    decisions = timeline(rule, transitions)
    assert decisions[0].kind is DecisionKind.STARTED
    assert [d.at for d in decisions] == sorted(d.at for d in decisions)
    previous = (1, 0)
    for d in decisions:
        assert d.elapsed >= 0 and d.paused >= 0
        assert d.cycle >= previous[0]
        if d.cycle == previous[0]:
            assert d.elapsed >= previous[1]  # business time only grows within a cycle
        previous = (d.cycle, d.elapsed)
        assert d.due_at >= d.started_at
    assert len({d.key for d in decisions}) == len(decisions)
    shuffled = transitions[:]
    rng.shuffle(shuffled)
    assert timeline(rule, shuffled) == decisions


@settings(max_examples=400, deadline=None)
@given(histories(), offset, st.integers(min_value=1, max_value=20 * DAY_US))
def test_pausing_never_shortens_a_deadline(
    history: tuple[ClockRule, list[Transition]], pause_after: int, pause_for: int
) -> None:
    rule, transitions = history
    plain = [tr for tr in transitions if tr.kind in (START, EXTEND)]
    start = transitions[0].at
    paused = [
        *plain,
        Transition(start + pause_after, PAUSE, "p"),
        Transition(start + pause_after + pause_for, RESUME, "r"),
    ]
    # Without a stop both clocks run out: compare the instants at which they breach.
    [breach_plain] = [d for d in timeline(rule, plain) if d.kind is DecisionKind.BREACHED]
    [breach_paused] = [d for d in timeline(rule, paused) if d.kind is DecisionKind.BREACHED]
    assert breach_paused.due_at >= breach_plain.due_at
    assert breach_paused.at >= breach_plain.at


@settings(max_examples=300, deadline=None)
@given(histories())
def test_deadlines_follow_the_calendar(history: tuple[ClockRule, list[Transition]]) -> None:
    rule, transitions = history
    for d in timeline(rule, transitions):
        if d.kind is not DecisionKind.BREACHED:
            continue
        if rule.measure is Measure.OFFICE_HOURS:
            assert CALENDAR.has_business_time_at(Measure.OFFICE_HOURS, d.due_at - 1)
        if rule.day_granular:
            assert from_us(d.due_at, AMS).strftime("%H:%M") == "00:00"
        if rule.legal_term:
            assert not CALENDAR.is_atw_day_off(CALENDAR.local_date(d.due_at - 1))
        if rule.measure is Measure.WORKING_DAYS:
            assert CALENDAR.is_working_day(CALENDAR.local_date(d.due_at - 1))


@settings(max_examples=300, deadline=None)
@given(histories(), st.integers(min_value=0, max_value=2 * DAY_US), st.randoms())
def test_live_decisions_equal_replay_when_events_arrive_within_the_lateness(
    history: tuple[ClockRule, list[Transition]], lateness: int, rng: random.Random
) -> None:
    """Simulate the service: events arrive out of order, but none later than `lateness` after
    the highest event time seen; decisions are taken when the watermark passes them."""
    rule, transitions = history
    by_time = sorted(transitions, key=Transition.sort_key)
    # Arrival order: each event is delayed by a random amount of at most `lateness`.
    arrival = sorted(by_time, key=lambda tr: tr.at + rng.randint(0, lateness))
    seen: list[Transition] = []
    taken: set[str] = set()
    emitted: list[Decision] = []
    highest = 0
    for transition in arrival:
        seen.append(transition)
        highest = max(highest, transition.at)
        watermark = highest - lateness
        ready, _ = decisions_due(timeline(rule, seen), taken, watermark)
        for decision in ready:
            taken.add(decision.key)
            emitted.append(decision)
    end = highest + 400 * DAY_US  # let every clock run out
    ready, _ = decisions_due(timeline(rule, seen), taken, end)
    emitted.extend(ready)
    replay = [d for d in timeline(rule, transitions) if d.at < end]
    assert emitted == replay


@settings(max_examples=300, deadline=None)
@given(histories())
def test_events_before_the_start_follow_one_rule(
    history: tuple[ClockRule, list[Transition]],
) -> None:
    """Before the start: a stop or cancel cancels the first cycle at the start (never met,
    missed or overdue); anything else changes nothing; each is reported once, at the start."""
    rule, transitions = history
    start = transitions[0].at
    early = [tr for tr in transitions if tr.at < start]
    decisions = timeline(rule, transitions)
    reports = [d for d in decisions if d.kind is DecisionKind.DATA_QUALITY]
    assert sorted(d.cause for d in reports) == sorted(tr.event_key for tr in early)
    assert all(d.at == start and d.cycle == 1 for d in reports)
    first_cycle = [d for d in decisions if d.cycle == 1 and d.kind is not DecisionKind.DATA_QUALITY]
    if any(tr.kind in (STOP, CANCEL) for tr in early):
        assert [(d.kind, d.at) for d in first_cycle] == [
            (DecisionKind.STARTED, start),
            (DecisionKind.CANCELLED, start),
        ]
        assert first_cycle[-1].reason == "stopped_before_start"
    else:
        late = [tr for tr in transitions if tr.at >= start]
        assert [d for d in decisions if d.kind is not DecisionKind.DATA_QUALITY] == timeline(
            rule, late
        )


def test_tuples_made_without_their_generated_new_are_the_named_tuples() -> None:
    """`new_transition` and the decisions (`_new_tuple`, fields in order) equal what the
    named tuples' own constructors make, field for field."""
    made = new_transition(5, TransitionKind.PAUSE, "src\x1fid", 0, "advice")
    assert type(made) is Transition
    assert made == Transition(5, TransitionKind.PAUSE, "src\x1fid", reason="advice")
    assert (made.at, made.kind, made.event_key, made.extension, made.reason) == (
        5,
        TransitionKind.PAUSE,
        "src\x1fid",
        0,
        "advice",
    )
    judged = judge_instant(started_at=10 * US, waited=40 * US, answered=True, target=30 * US)
    assert type(judged) is Decision
    assert judged == Decision(
        kind=DecisionKind.MISSED,
        at=50 * US,
        started_at=10 * US,
        due_at=40 * US,
        target=30 * US,
        elapsed=40 * US,
        paused=0,
        stopped_at=50 * US,
    )
    rule = ClockRule(
        calendar=CALENDAR,
        measure=Measure.CONTINUOUS,
        target=3600 * US,
        warnings=(Threshold(label="50%", fraction=0.5),),
    )
    start = new_transition(0, TransitionKind.START, "k", 0, "")
    [started, warned, breached] = timeline(rule, [start])
    assert breached == Decision(
        kind=DecisionKind.BREACHED,
        at=3600 * US,
        started_at=0,
        due_at=3600 * US,
        target=3600 * US,
        elapsed=3600 * US,
        paused=0,
    )
    assert started.kind is DecisionKind.STARTED
    assert (warned.kind, warned.at, warned.threshold) == (DecisionKind.WARNING, 1800 * US, "50%")
