"""The pure aggregation: what each event adds, and that splitting a stream into batches (as
restarts and rebalances do) never changes the totals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from schemas.common import Channel, Direction, Duration, DurationUnit
from schemas.envelope import decode, encode, new_event
from schemas.events import (
    AnsweredVia,
    CaseClosed,
    CaseOpened,
    CaseOutcome,
    CaseReopened,
    ComplaintVerdict,
    ContactCompleted,
    ContactReceived,
    DataQualityProblem,
    NormBreached,
    NormCancelled,
    NormClockStarted,
    NormDataQuality,
    NormMet,
    NormRevised,
    NormWarning,
    RevisedCycle,
    RevisedOutcome,
    RunningCycle,
    SurveyResponded,
)
from services.common.calendar import BusinessCalendar
from services.intake.domain.channel_systems import ChannelSystem, ChannelSystems, SourceLabels
from services.metrics.adapters.exposition import AggregateView
from services.metrics.adapters.store import Snapshot
from services.metrics.domain.definitions import BY_NAME, Kind
from services.metrics.domain.tally import Known, Policy, RunningClock, tally

AMS = ZoneInfo("Europe/Amsterdam")
POLICY = Policy(municipalities={"GM0383": AMS}, phone_answer_norm_seconds=30)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def ev(data, at=T0, municipality="GM0383"):
    return new_event(data, source="urn:test", municipality=municipality, time=at)


def call(wait, answered=True, **extra):
    return ContactCompleted(
        contact_id="c1",
        channel=Channel.PHONE,
        topic="afval",
        started_at=T0,
        wait_seconds=wait,
        answered=answered,
        **extra,
    )


def test_a_call_answered_at_exactly_the_norm_counts_as_within_the_norm():
    t = tally([ev(call(30.0)), ev(call(30.5)), ev(call(10.0, answered=False))], Known(), POLICY)
    assert t.counters[("servicepuls_phone_calls_offered", ("GM0383",))] == 3
    assert t.counters[("servicepuls_phone_calls_answered", ("GM0383",))] == 2
    assert t.counters[("servicepuls_phone_calls_answered_within_norm", ("GM0383",))] == 1
    assert t.counters[("servicepuls_phone_calls_abandoned", ("GM0383",))] == 1
    waits = t.histograms[("servicepuls_phone_wait_seconds", ("GM0383", "answered"))]
    edges = BY_NAME["servicepuls_phone_wait_seconds"].buckets
    assert waits.buckets[edges.index(30.0)] == 1  # le="30" includes 30.0 itself
    assert waits.count == 2 and waits.sum == 60.5


def test_a_reply_to_a_written_contact_is_not_a_second_contact():
    received = ContactReceived(contact_id="m1", channel=Channel.EMAIL, topic="belasting")
    reply = ContactCompleted(
        contact_id="r1",
        channel=Channel.EMAIL,
        direction=Direction.OUTBOUND,
        topic="belasting",
        started_at=T0,
        in_reply_to="m1",
    )
    t = tally([ev(received), ev(reply)], Known(), POLICY)
    contacts = {k: v for k, v in t.counters.items() if k[0] == "servicepuls_contacts"}
    assert contacts == {("servicepuls_contacts", ("GM0383", "email", "inwoner", "inbound")): 1}
    assert t.counters[("servicepuls_contact_replies", ("GM0383", "email"))] == 1


def test_case_lead_time_and_complaint_verdict_and_open_state():
    opened = CaseOpened(case_id="z1", case_type="klacht", channel=Channel.EMAIL)
    closed = CaseClosed(
        case_id="z1",
        case_type="klacht",
        outcome=CaseOutcome.RESOLVED,
        complaint_verdict=ComplaintVerdict.GEGROND,
    )
    other = CaseOpened(case_id="z2", case_type="aanvraag", channel=Channel.WEBFORM)
    t = tally(
        [ev(opened), ev(other), ev(closed, at=T0 + timedelta(days=2))],
        Known(),
        POLICY,
    )
    assert t.counters[("servicepuls_complaints_received", ("GM0383", "email"))] == 1
    assert t.counters[("servicepuls_complaints_closed", ("GM0383", "gegrond"))] == 1
    lead = t.histograms[("servicepuls_case_lead_time_seconds", ("GM0383", "klacht"))]
    assert lead.sum == 2 * 86400
    assert t.cases[("GM0383", "z1")] is None  # closed: the row goes
    assert t.cases[("GM0383", "z2")] is not None  # still open


def test_closing_a_case_opened_in_an_earlier_batch_uses_the_stored_opening():
    first = tally(
        [ev(CaseOpened(case_id="z1", case_type="aanvraag", channel=Channel.WEBFORM))],
        Known(),
        POLICY,
    )
    known = Known(cases={k: v for k, v in first.cases.items() if v is not None})
    closed = CaseClosed(case_id="z1", case_type="aanvraag", outcome=CaseOutcome.GRANTED)
    second = tally([ev(closed, at=T0 + timedelta(hours=5))], known, POLICY)
    assert second.histograms[
        ("servicepuls_case_lead_time_seconds", ("GM0383", "aanvraag"))
    ].sum == (5 * 3600)


def test_a_case_closed_before_it_was_opened_is_a_data_quality_problem_not_a_closure():
    opened = CaseOpened(case_id="z1", case_type="klacht", channel=Channel.EMAIL)
    closed = CaseClosed(
        case_id="z1",
        case_type="klacht",
        outcome=CaseOutcome.RESOLVED,
        complaint_verdict=ComplaintVerdict.GEGROND,
    )
    t = tally([ev(opened), ev(closed, at=T0 - timedelta(hours=1))], Known(), POLICY)
    assert (
        t.counters[
            (
                "servicepuls_case_data_quality_problems",
                ("GM0383", "urn:test", "closed_before_opened"),
            )
        ]
        == 1
    )
    assert not any(
        metric in ("servicepuls_cases_closed", "servicepuls_complaints_closed")
        for metric, _ in t.counters
    )
    assert not t.histograms and not [f for f in t.facts if f[2] == "case_closed"]
    assert t.cases[("GM0383", "z1")] is None  # not open for ever either
    # At the same instant, or after: closed as always.
    same = tally([ev(opened), ev(closed)], Known(), POLICY)
    assert ("servicepuls_cases_closed", ("GM0383", "klacht", "resolved")) in same.counters


def test_a_closure_dated_before_a_reopening_is_no_data_quality_problem():
    """As in the norms service: only the first opening's start counts (a closure between two
    cycles is a stray closure of the earlier one)."""
    reopened = CaseReopened(case_id="z1", case_type="klacht")
    closed = CaseClosed(case_id="z1", case_type="klacht", outcome=CaseOutcome.RESOLVED)
    t = tally([ev(reopened), ev(closed, at=T0 - timedelta(hours=1))], Known(), POLICY)
    assert not [k for k in t.counters if k[0] == "servicepuls_case_data_quality_problems"]


def test_a_clock_stopped_before_its_start_counts_as_data_quality_per_channel_system():
    report = NormDataQuality(
        **norm_fields("k1"),
        problem=DataQualityProblem.STOPPED_BEFORE_START,
        cause_source="/buch/zaaksysteem",
        cause_id="e-1",
        cause_time=T0 - timedelta(hours=1),
    )
    cancelled = NormCancelled(**norm_fields("k1"), reason="stopped_before_start")
    withdrawn = NormCancelled(**norm_fields("k2"), reason="withdrawn")
    t = tally(
        [
            ev(NormClockStarted(**norm_fields("k1"))),
            ev(report),
            ev(cancelled),
            ev(NormClockStarted(**norm_fields("k2"))),
            ev(withdrawn),
        ],
        Known(),
        POLICY,
    )
    stopped = {
        k[1][2]: v for k, v in t.counters.items() if k[0] == "servicepuls_norm_clocks_stopped"
    }
    assert stopped == {"data_quality": 1, "cancelled": 1}  # neither met nor missed
    assert t.clocks[("GM0383", "k1")] is None  # not running, not overdue
    key = ("GM0383", "reactie", "/buch/zaaksysteem", "stopped_before_start")
    assert t.counters[("servicepuls_norm_data_quality_problems", key)] == 1
    assert not [f for f in t.facts if f[2] == "norm_outcome"]
    # Exposed per channel system: the configured system that may post the source, else unknown.
    systems = ChannelSystems(
        channel_systems=[
            ChannelSystem(
                name=name,
                token_sha256=f"{index:064x}",
                sources=sources,
                event_types=["*"],
                municipalities=["GM0383"],
            )
            for index, (name, sources) in enumerate(
                [("zaaksysteem", ["/buch/zaaksysteem"]), ("kcc", ["/buch/kcc/*"])]
            )
        ]
    )
    view = AggregateView(30, served={"GM0383"}, channel_system=SourceLabels(systems))
    view.exporting = True
    view.replace(Snapshot())
    view.add(t)
    view.add(tally([ev(report.model_copy(update={"cause_source": "/elders"}))], Known(), POLICY))
    text = generate_latest(_registry(view)).decode()
    assert (
        'servicepuls_norm_data_quality_problems_total{channel_system="zaaksysteem",'
        'municipality="GM0383",norm="reactie",problem="stopped_before_start"} 1.0' in text
    )
    assert 'channel_system="unknown"' in text and "/elders" not in text


def norm_fields(clock="k1"):
    return {
        "clock_id": clock,
        "norm_id": "reactie",
        "norm_version": "1",
        "subject_id": "z1",
        "target": Duration(amount=3, unit=DurationUnit.WORKING_DAYS),
        "compliance_goal": 0.9,
        "started_at": T0,
        "due_at": T0 + timedelta(days=3),
        "paused_seconds": 0,
        "elapsed_business_seconds": 10,
    }


def test_clock_state_follows_warning_breach_and_stop():
    t = tally(
        [
            ev(NormClockStarted(**norm_fields("k1"))),
            ev(NormWarning(**norm_fields("k1"), threshold="75%")),
            ev(NormClockStarted(**norm_fields("k2"))),
            ev(NormWarning(**norm_fields("k2"), threshold="75%")),
            ev(NormBreached(**norm_fields("k2"))),
            ev(NormClockStarted(**norm_fields("k3"))),
            ev(NormMet(**norm_fields("k3"), stopped_at=T0)),
        ],
        Known(),
        POLICY,
    )
    assert t.clocks[("GM0383", "k1")].at_risk
    assert t.clocks[("GM0383", "k2")].breached and not t.clocks[("GM0383", "k2")].at_risk
    assert t.clocks[("GM0383", "k3")] is None
    assert t.counters[("servicepuls_norm_clocks_stopped", ("GM0383", "reactie", "met"))] == 1
    assert t.goals[("GM0383", "reactie")][0] == 0.9


def test_an_unserved_municipality_is_stored_as_sent_and_exposed_as_one_bounded_label():
    t = tally(
        [ev(call(5.0), municipality="GM0998"), ev(call(5.0), municipality="GM0999")],
        Known(),
        POLICY,
    )
    assert t.counters[("servicepuls_phone_calls_offered", ("GM0999",))] == 1
    view = AggregateView(30, served={"GM0383"})
    view.exporting = True
    view.replace(Snapshot())
    view.add(t)
    text = generate_latest(_registry(view)).decode()
    assert 'servicepuls_phone_calls_offered_total{municipality="unknown"} 2.0' in text
    assert "GM0999" not in text


def _registry(view):
    registry = CollectorRegistry()
    registry.register(view)
    return registry


def test_survey_score_lands_in_its_own_bucket_and_day_fact_uses_local_date():
    late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # already 2 March in Amsterdam
    response = SurveyResponded(
        survey_id="s1",
        subject_id="z1",
        subject_kind="case",
        case_type="aanvraag",
        channel=Channel.WEBFORM,
        score=7,
        answered_via=AnsweredVia.WEB,
    )
    t = tally([ev(response, at=late)], Known(), POLICY)
    scores = t.histograms[("servicepuls_survey_score", ("GM0383", "webform", "aanvraag"))]
    assert scores.buckets[6] == 1 and sum(scores.buckets) == 1
    [(_municipality, day, fact, dims)] = t.facts
    assert (day.isoformat(), fact, dims) == (
        "2026-03-02",
        "survey_response",
        ("webform", "aanvraag", "7"),
    )


def test_every_metric_has_a_help_text_and_bounded_labels():
    forbidden = {"case_id", "contact_id", "resident", "survey_id", "clock_id", "subject_id"}
    for definition in BY_NAME.values():
        assert definition.help and not forbidden & set(definition.labels)
        assert (definition.kind is Kind.HISTOGRAM) == bool(definition.buckets)
        assert not definition.name.endswith("_total")


waits = st.lists(
    st.tuples(st.floats(min_value=0, max_value=900, allow_nan=False), st.booleans()),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(waits=waits, cut=st.integers(min_value=0, max_value=40))
def test_splitting_a_stream_into_batches_never_changes_the_totals(waits, cut):
    events = [ev(call(w, answered=a)) for w, a in waits]
    whole = tally(events, Known(), POLICY)
    first, second = tally(events[:cut], Known(), POLICY), tally(events[cut:], Known(), POLICY)
    for key, value in whole.counters.items():
        assert first.counters.get(key, 0) + second.counters.get(key, 0) == value
    for key, histogram in whole.histograms.items():
        parts = [p.histograms[key] for p in (first, second) if key in p.histograms]
        assert [sum(b) for b in zip(*(p.buckets for p in parts), strict=True)] == histogram.buckets


def test_business_lead_time_skips_the_weekend_with_the_norms_calendar():
    calendar = BusinessCalendar(zone=AMS)
    policy = Policy(municipalities={"GM0383": AMS}, calendars={"GM0383": calendar})
    friday = datetime(2026, 3, 6, 10, 0, tzinfo=AMS)
    monday = datetime(2026, 3, 9, 10, 0, tzinfo=AMS)
    t = tally(
        [
            ev(CaseOpened(case_id="z9", case_type="aanvraag", channel=Channel.WEBFORM), at=friday),
            ev(
                CaseClosed(case_id="z9", case_type="aanvraag", outcome=CaseOutcome.GRANTED),
                at=monday,
            ),
        ],
        Known(),
        policy,
    )
    calendar_time = t.histograms[("servicepuls_case_lead_time_seconds", ("GM0383", "aanvraag"))]
    working = t.histograms[("servicepuls_case_lead_time_business_seconds", ("GM0383", "aanvraag"))]
    assert calendar_time.sum == 3 * 86400
    assert working.sum == 86400  # Friday 10:00 -> Monday 10:00 is one working day


# --- bounded case types (docs/metrics.md, "Bounded labels") ------------------------------------

DECLARED = Policy(
    municipalities={"GM0383": AMS},
    case_types={"GM0383": frozenset({"klacht", "melding-openbare-ruimte"})},
)


def _case_events(case_type, source="/buch/zaaksysteem", municipality="GM0383", case="z1"):
    opened = CaseOpened(case_id=case, case_type=case_type, channel=Channel.WEBFORM)
    closed = CaseClosed(case_id=case, case_type=case_type, outcome=CaseOutcome.RESOLVED)
    return [
        new_event(opened, source=source, municipality=municipality, time=T0),
        new_event(closed, source=source, municipality=municipality, time=T0 + timedelta(days=1)),
    ]


def test_an_undeclared_case_type_is_counted_as_other_and_per_channel_system():
    t = tally(
        [*_case_events("melding-openbare-ruimte"), *_case_events("zz-invented", case="z2")],
        Known(),
        DECLARED,
    )
    opened = {k[1][1]: v for k, v in t.counters.items() if k[0] == "servicepuls_cases_opened"}
    assert opened == {"melding-openbare-ruimte": 1, "other": 1}
    assert ("servicepuls_case_lead_time_seconds", ("GM0383", "other")) in t.histograms
    assert not [k for k in [*t.counters, *t.histograms] if "zz-invented" in k[1]]
    assert not [f for f in t.facts if "zz-invented" in f[3]]  # nor in the period report
    assert [f[3] for f in t.facts if f[2] == "case_opened"] == [
        ("melding-openbare-ruimte", "webform"),
        ("other", "webform"),
    ]
    # Opened and closed: two events of the channel system with an undeclared code.
    undeclared = ("servicepuls_case_types_undeclared", ("GM0383", "/buch/zaaksysteem"))
    assert t.counters[undeclared] == 2
    assert t.cases == {("GM0383", "z1"): None, ("GM0383", "z2"): None}


def test_a_complaint_is_recognised_by_its_code_and_norm_and_survey_labels_are_bounded():
    complaint = Policy(
        municipalities={"GM0383": AMS},
        complaint_case_types=frozenset({"klacht-intern"}),  # a complaint type not declared
        case_types={"GM0383": frozenset({"klacht"})},
    )
    met = NormMet(**norm_fields("k9"), case_type="zz-invented", stopped_at=T0)
    response = SurveyResponded(
        survey_id="s1",
        subject_id="z1",
        subject_kind="case",
        case_type="zz-invented",
        channel=Channel.WEBFORM,
        score=7,
        answered_via=AnsweredVia.WEB,
    )
    t = tally(
        [*_case_events("klacht-intern"), ev(met), ev(response)],
        Known(),
        complaint,
    )
    assert t.counters[("servicepuls_complaints_received", ("GM0383", "webform"))] == 1
    assert t.counters[("servicepuls_cases_opened", ("GM0383", "other", "webform"))] == 1
    key = ("servicepuls_norm_elapsed_business_seconds", ("GM0383", "reactie", "other"))
    assert key in t.histograms
    assert ("servicepuls_survey_score", ("GM0383", "webform", "other")) in t.histograms
    # Only channel systems' case events count as undeclared: norm and survey events derive theirs.
    undeclared = {k: v for k, v in t.counters.items() if k[0].endswith("_undeclared")}
    assert undeclared == {("servicepuls_case_types_undeclared", ("GM0383", "/buch/zaaksysteem")): 2}


def test_case_types_of_an_unserved_municipality_are_other_too():
    t = tally(_case_events("klacht", municipality="GM0999"), Known(), DECLARED)
    assert t.counters[("servicepuls_cases_opened", ("GM0999", "other", "webform"))] == 1
    assert t.counters[("servicepuls_case_types_undeclared", ("GM0999", "/buch/zaaksysteem"))] == 2


def test_the_exposition_folds_undeclared_case_types_stored_before_and_in_state_tables():
    view = AggregateView(30, served={"GM0383"}, case_types={"GM0383": frozenset({"klacht"})})
    view.exporting = True
    stored = Snapshot()
    for code in ("klacht", "oud-1", "oud-2"):
        stored.counters[("servicepuls_cases_opened", ("GM0383", code, "webform"))] = 2.0
    stored.counters[("servicepuls_surveys_responded", ("GM0383", "phone", "none"))] = 1.0
    stored.gauges["servicepuls_cases_open"] = {("GM0383", "oud-1"): 1.0, ("GM0383", "oud-2"): 3.0}
    view.replace(stored)
    text = generate_latest(_registry(view)).decode()
    assert 'servicepuls_cases_opened_total{case_type="other",channel="webform",' in text
    assert 'case_type="other",channel="webform",municipality="GM0383"} 4.0' in text
    assert 'servicepuls_cases_open{case_type="other",municipality="GM0383"} 4.0' in text
    assert 'case_type="none"' in text  # "none" (no case type at all) stays what it is
    assert "oud-" not in text


def test_a_revision_moves_outcomes_and_the_running_state_to_the_active_version():
    """norm.revised (docs/metrics.md, "A catalog revision"): the old outcome is taken back,
    the new one counted; the running clock takes the revision's state. Through the codec, as
    the consumer reads it (None members are left out on the wire)."""
    revised = ev(
        NormRevised(
            revision_id="r1",
            clock_id="k1",
            norm_id="reactie",
            previous_version="1",
            norm_version="2",
            subject_id="z1",
            compliance_goal=0.9,
            cycles=[
                RevisedCycle(
                    cycle=1,
                    started_at=T0,
                    stopped_at=T0 + timedelta(days=2),
                    previous_outcome=RevisedOutcome.MET,
                    outcome=RevisedOutcome.MISSED,
                )
            ],
        )
    )
    running = ev(
        NormRevised(
            revision_id="r1",
            clock_id="k2",
            norm_id="reactie",
            norm_version="2",
            subject_id="z2",
            compliance_goal=0.9,
            cycles=[],
            running=RunningCycle(
                started_at=T0, due_at=T0 + timedelta(days=1), warned=True, breached=True
            ),
        )
    )
    wire = [decode(r.headers, r.value) for r in map(encode, (revised, running))]
    before = RunningClock("reactie", "none", T0, T0 + timedelta(days=3), True, False)
    t = tally(wire, Known(clocks={("GM0383", "k2"): before}), POLICY)
    stopped = "servicepuls_norm_clocks_stopped"
    assert t.counters[(stopped, ("GM0383", "reactie", "met"))] == -1
    assert t.counters[(stopped, ("GM0383", "reactie", "missed"))] == 1
    assert (
        t.counters[("servicepuls_norm_outcomes_revised", ("GM0383", "reactie", "met", "missed"))]
        == 1
    )
    day = (T0 + timedelta(days=2)).astimezone(AMS).date()
    assert t.facts[("GM0383", day, "norm_outcome", ("reactie", "missed", "0.9000"))] == 1
    assert t.retracted == {("GM0383", day, "reactie", "met", "0.9000"): 1}
    assert t.clocks[("GM0383", "k1")] is None
    assert t.clocks[("GM0383", "k2")] == RunningClock(
        "reactie", "none", T0, T0 + timedelta(days=1), True, True
    )
