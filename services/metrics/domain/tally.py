"""What a batch of events adds to the aggregates: pure, no I/O.

`tally(events, known, policy)` folds events (already deduplicated) in order and returns a `Tally`:
counter increments, histogram observations, per-day facts for the period report, the new state
of every case and norm clock the batch touched, and norm goals. The store writes a tally in one
transaction; the exposition applies it to memory only after that transaction committed.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from schemas.common import Channel, Direction
from schemas.envelope import Envelope
from schemas.events import (
    CaseClosed,
    CaseOpened,
    CaseReopened,
    ContactCompleted,
    ContactReceived,
    Family,
    NormBreached,
    NormCancelled,
    NormClockStarted,
    NormDataQuality,
    NormMet,
    NormMissed,
    NormOutcome,
    NormRevised,
    NormWarning,
    SurveyDeliveryFailed,
    SurveyExpired,
    SurveyFollowUpRequested,
    SurveyResponded,
    SurveySent,
    SurveySuppressed,
)
from services.common.calendar import BusinessCalendar, Measure, to_us
from services.metrics.domain.definitions import BY_NAME, NONE, OTHER_CASE_TYPE, Kind

Labels = tuple[str, ...]
SeriesKey = tuple[str, Labels]  # (metric name, label values in definition order)
CaseKey = tuple[str, str]  # (municipality, case id)
ClockKey = tuple[str, str]  # (municipality, clock id)
FactKey = tuple[str, date, str, Labels]  # (municipality, local day, fact, dimensions)


# Label counts per counter and histogram: a wrong call fails fast (and cheaply: this is per event).
_COUNTER_ARITY = {d.name: len(d.labels) for d in BY_NAME.values() if d.kind is Kind.COUNTER}
_HISTOGRAM_ARITY = {d.name: len(d.labels) for d in BY_NAME.values() if d.kind is Kind.HISTOGRAM}


@dataclass(frozen=True, slots=True)
class Policy:
    """What the aggregation needs to know from settings and configuration."""

    municipalities: Mapping[str, ZoneInfo]  # served municipalities and their time zones
    phone_answer_norm_seconds: float = 30.0
    complaint_case_types: frozenset[str] = frozenset({"klacht"})
    # Business calendars per municipality (the norms service's calendar: holidays, Atw).
    calendars: Mapping[str, BusinessCalendar] = field(default_factory=dict)
    # For a municipality without one (not served here): weekdays and Dutch public holidays, so
    # replicas with different configurations still count the same observations.
    default_calendar: BusinessCalendar | None = None
    # The case types each served municipality declared (docs/metrics.md, "Bounded labels"): any
    # other code is counted as `other`, also for a municipality not served here. None: codes
    # are taken as sent (only for tests of the aggregation itself; the service always declares).
    case_types: Mapping[str, frozenset[str]] | None = None

    def case_type_label(self, municipality: str, case_type: str | None) -> str:
        if case_type is None:
            return NONE
        if self.case_types is None or case_type in self.case_types.get(municipality, ()):
            return case_type
        return OTHER_CASE_TYPE


@dataclass(frozen=True, slots=True)
class OpenCase:
    case_type: str
    opened_at: datetime
    reopened: bool = False  # open again after a closure (`opened_at` is the reopening's time)


# A case closed at an event time before its opening (docs/metrics.md, "Data quality"): the rule
# of the norms service (docs/norms.md), for cases.
CLOSED_BEFORE_OPENED = "closed_before_opened"
# The cancel reason the norms service gives a clock stopped before its start.
STOPPED_BEFORE_START = "stopped_before_start"


@dataclass(frozen=True, slots=True)
class RunningClock:
    norm: str
    case_type: str
    started_at: datetime
    due_at: datetime
    warned: bool = False
    breached: bool = False

    @property
    def at_risk(self) -> bool:
        return self.warned and not self.breached


@dataclass(slots=True)
class HistogramDelta:
    """Observations of one histogram series: per-bucket (not cumulative) counts, +Inf last."""

    buckets: list[int]
    sum: float = 0.0
    count: int = 0

    def observe(self, edges: tuple[float, ...], value: float) -> None:
        self.buckets[bisect.bisect_left(edges, value)] += 1
        self.sum += value
        self.count += 1


@dataclass(slots=True)
class Known:
    """State of the cases and clocks a batch touches, as stored before the batch."""

    cases: dict[CaseKey, OpenCase] = field(default_factory=dict)
    clocks: dict[ClockKey, RunningClock] = field(default_factory=dict)


@dataclass(slots=True)
class Tally:
    counters: dict[SeriesKey, float] = field(default_factory=dict)
    histograms: dict[SeriesKey, HistogramDelta] = field(default_factory=dict)
    facts: dict[FactKey, float] = field(default_factory=dict)
    # Final state of every touched case/clock: None means closed/stopped (delete the row).
    cases: dict[CaseKey, OpenCase | None] = field(default_factory=dict)
    clocks: dict[ClockKey, RunningClock | None] = field(default_factory=dict)
    # Latest compliance goal per (municipality, norm), with the event time it was seen at.
    goals: dict[tuple[str, str], tuple[float, datetime]] = field(default_factory=dict)
    # Period-report facts a catalog revision takes back: (municipality, local day, norm,
    # outcome, the active version's goal) → how many. The goal the fact was counted with is the
    # old version's, which the revision does not know: the store takes them from the fact with
    # another goal first (docs/metrics.md, "A catalog revision").
    retracted: dict[tuple[str, date, str, str, str], int] = field(default_factory=dict)
    events: int = 0

    def count(self, metric: str, *labels: str, by: float = 1.0) -> None:
        assert _COUNTER_ARITY[metric] == len(labels), metric
        key = (metric, labels)
        self.counters[key] = self.counters.get(key, 0.0) + by

    def observe(self, metric: str, value: float, *labels: str) -> None:
        definition = BY_NAME[metric]
        assert _HISTOGRAM_ARITY[metric] == len(labels), metric
        key = (metric, labels)
        delta = self.histograms.get(key)
        if delta is None:
            delta = self.histograms[key] = HistogramDelta([0] * (len(definition.buckets) + 1))
        delta.observe(definition.buckets, value)

    def fact(self, municipality: str, day: date, name: str, *dims: str, by: float = 1.0) -> None:
        key = (municipality, day, name, dims)
        self.facts[key] = self.facts.get(key, 0.0) + by


def _label(value: Any) -> str:
    if value is None:
        return NONE
    return str(value.value if hasattr(value, "value") else value)


def touched(events: Iterable[Envelope[Any]], policy: Policy) -> tuple[set[CaseKey], set[ClockKey]]:
    """The cases and clocks whose stored state a batch needs."""
    cases: set[CaseKey] = set()
    clocks: set[ClockKey] = set()
    for event in events:
        municipality = _municipality(event, policy)
        if isinstance(event.data, CaseOpened | CaseClosed | CaseReopened):
            cases.add((municipality, event.data.case_id))
        elif isinstance(event.data, NormOutcome | NormRevised):
            clocks.add((municipality, event.data.clock_id))
    return cases, clocks


def _municipality(event: Envelope[Any], policy: Policy) -> str:
    # Stored as sent (a CBS code, validated by the envelope), whatever this replica's
    # configuration says: replicas with different configurations must store the same thing.
    # The exposition folds municipalities this deployment does not serve into one label.
    return event.municipality


def tally(events: Iterable[Envelope[Any]], known: Known, policy: Policy) -> Tally:
    result = Tally()
    cases: dict[CaseKey, OpenCase | None] = dict(known.cases)
    clocks: dict[ClockKey, RunningClock | None] = dict(known.clocks)
    for event in events:
        municipality = _municipality(event, policy)
        zone = policy.municipalities.get(event.municipality, ZoneInfo("Europe/Amsterdam"))
        day = event.time.astimezone(zone).date()
        data = event.data
        result.events += 1
        result.count(
            "servicepuls_metrics_events_applied",
            data.family.value,
            event.type.removeprefix("nl.servicepuls."),
        )
        # A channel system's case event with a code its municipality did not declare: counted
        # (by its source, shown as the channel system) so the mistake is seen, not as a label.
        raw_case_type = getattr(data, "case_type", None)
        if (
            data.family is Family.INTAKE
            and raw_case_type is not None
            and policy.case_type_label(municipality, raw_case_type) == OTHER_CASE_TYPE
        ):
            result.count("servicepuls_case_types_undeclared", municipality, event.source)
        if isinstance(data, ContactReceived):
            _contact_received(result, municipality, day, data)
        elif isinstance(data, ContactCompleted):
            _contact_completed(result, municipality, day, data, policy)
        elif isinstance(data, CaseOpened | CaseReopened | CaseClosed):
            _case(result, cases, municipality, day, event, policy)
        elif isinstance(data, NormOutcome):
            _norm(result, clocks, municipality, day, event, policy)
        elif isinstance(data, NormRevised):
            _revised(result, clocks, municipality, zone, event, policy)
        else:
            _survey(result, municipality, day, data, policy)
    result.cases = {k: v for k, v in cases.items() if k not in known.cases or known.cases[k] != v}
    result.clocks = {
        k: v for k, v in clocks.items() if k not in known.clocks or known.clocks[k] != v
    }
    return result


# --- contacts ----------------------------------------------------------------------------------


def _contact_received(t: Tally, municipality: str, day: date, data: ContactReceived) -> None:
    channel, role = _label(data.channel), _label(data.party_role)
    t.count("servicepuls_contacts", municipality, channel, role, Direction.INBOUND.value)
    t.fact(municipality, day, "contact", channel, role, Direction.INBOUND.value)


def _contact_completed(
    t: Tally, municipality: str, day: date, data: ContactCompleted, policy: Policy
) -> None:
    channel, role, direction = _label(data.channel), _label(data.party_role), data.direction.value
    if data.in_reply_to is not None:
        # The answer to a written contact or a callback: the contact was counted when received.
        t.count("servicepuls_contact_replies", municipality, channel)
    else:
        t.count("servicepuls_contacts", municipality, channel, role, direction)
        t.fact(municipality, day, "contact", channel, role, direction)
    if data.forwarded:
        t.count("servicepuls_contacts_forwarded", municipality, channel)
    if data.resolved_in_first_contact is not None:
        outcome = "resolved" if data.resolved_in_first_contact else "not_resolved"
        t.count("servicepuls_first_contact_resolution", municipality, channel, outcome)
        t.fact(municipality, day, "first_contact_resolution", channel, outcome)
    inbound_queue = data.direction is Direction.INBOUND and data.in_reply_to is None
    if data.channel is Channel.PHONE and inbound_queue:
        _phone_call(t, municipality, day, data, policy)
    elif data.channel is Channel.COUNTER and inbound_queue:
        outcome = "helped" if data.answered else "left"
        t.count("servicepuls_desk_visits", municipality, outcome)
        if data.wait_seconds is not None:
            t.observe("servicepuls_desk_wait_seconds", data.wait_seconds, municipality, outcome)


def _phone_call(
    t: Tally, municipality: str, day: date, data: ContactCompleted, policy: Policy
) -> None:
    t.count("servicepuls_phone_calls_offered", municipality)
    if data.callback_requested:
        t.count("servicepuls_phone_callbacks_requested", municipality)
    if data.answered:
        t.count("servicepuls_phone_calls_answered", municipality)
        within = (data.wait_seconds or 0.0) <= policy.phone_answer_norm_seconds
        if within:
            t.count("servicepuls_phone_calls_answered_within_norm", municipality)
        outcome = "answered_within_norm" if within else "answered_late"
    else:
        t.count("servicepuls_phone_calls_abandoned", municipality)
        outcome = "abandoned"
    t.fact(municipality, day, "phone_call", outcome)
    if data.wait_seconds is not None:
        t.observe(
            "servicepuls_phone_wait_seconds",
            data.wait_seconds,
            municipality,
            "answered" if data.answered else "abandoned",
        )


# --- cases ---------------------------------------------------------------------------------------


def _case(
    t: Tally,
    cases: dict[CaseKey, OpenCase | None],
    municipality: str,
    day: date,
    event: Envelope[Any],
    policy: Policy,
) -> None:
    data = event.data
    key = (municipality, data.case_id)
    case_type = policy.case_type_label(municipality, data.case_type)
    if isinstance(data, CaseOpened):
        t.count("servicepuls_cases_opened", municipality, case_type, data.channel.value)
        t.fact(municipality, day, "case_opened", case_type, data.channel.value)
        if data.case_type in policy.complaint_case_types:
            t.count("servicepuls_complaints_received", municipality, data.channel.value)
            t.fact(municipality, day, "complaint_received", data.channel.value)
        cases[key] = OpenCase(case_type, event.time)
    elif isinstance(data, CaseReopened):
        t.count("servicepuls_cases_reopened", municipality, case_type)
        if cases.get(key) is None:
            cases[key] = OpenCase(case_type, event.time, reopened=True)
    else:
        assert isinstance(data, CaseClosed)
        opened = cases.get(key)
        if opened is not None and not opened.reopened and event.time < opened.opened_at:
            # Closed before it was opened: neither closed (nor in time, nor late) nor open. The
            # label holds the event's source, shown as its channel system (the exposition).
            t.count(
                "servicepuls_case_data_quality_problems",
                municipality,
                event.source,
                CLOSED_BEFORE_OPENED,
            )
            cases[key] = None
            return
        t.count("servicepuls_cases_closed", municipality, case_type, data.outcome.value)
        t.fact(municipality, day, "case_closed", case_type, data.outcome.value)
        if opened is not None:
            lead = max(0.0, (event.time - opened.opened_at).total_seconds())
            t.observe("servicepuls_case_lead_time_seconds", lead, municipality, case_type)
            calendar = policy.calendars.get(municipality, policy.default_calendar)
            if calendar is not None:
                working = calendar.business_between(
                    Measure.WORKING_DAYS, to_us(opened.opened_at), to_us(event.time)
                )
                t.observe(
                    "servicepuls_case_lead_time_business_seconds",
                    working / 1_000_000,
                    municipality,
                    case_type,
                )
        if data.complaint_verdict is not None or data.case_type in policy.complaint_case_types:
            verdict = _label(data.complaint_verdict)
            t.count("servicepuls_complaints_closed", municipality, verdict)
            t.fact(municipality, day, "complaint_closed", verdict)
        cases[key] = None


# --- norm clocks -------------------------------------------------------------------------------


def _norm(
    t: Tally,
    clocks: dict[ClockKey, RunningClock | None],
    municipality: str,
    day: date,
    event: Envelope[Any],
    policy: Policy,
) -> None:
    data: NormOutcome = event.data
    norm, key = data.norm_id, (municipality, data.clock_id)
    case_type = policy.case_type_label(municipality, data.case_type)
    previous = t.goals.get((municipality, norm))
    if previous is None or previous[1] <= event.time:
        t.goals[(municipality, norm)] = (data.compliance_goal, event.time)
    clock = clocks.get(key)
    if isinstance(data, NormClockStarted):
        t.count("servicepuls_norm_clocks_started", municipality, norm)
        if clock is None:
            clocks[key] = RunningClock(norm, case_type, data.started_at, data.due_at)
    elif isinstance(data, NormWarning):
        t.count("servicepuls_norm_warnings", municipality, norm)
        clock = clock or RunningClock(norm, case_type, data.started_at, data.due_at)
        clocks[key] = RunningClock(
            norm, case_type, clock.started_at, data.due_at, True, clock.breached
        )
    elif isinstance(data, NormBreached):
        t.count("servicepuls_norm_breaches", municipality, norm)
        t.fact(municipality, day, "norm_breach", norm)
        clock = clock or RunningClock(norm, case_type, data.started_at, data.due_at)
        clocks[key] = RunningClock(
            norm, case_type, clock.started_at, data.due_at, clock.warned, True
        )
    elif isinstance(data, NormDataQuality):
        # A report about an input event, not a step of the clock (its outcome follows apart).
        t.count(
            "servicepuls_norm_data_quality_problems",
            municipality,
            norm,
            data.cause_source,
            data.problem.value,
        )
    else:
        outcome = {NormMet: "met", NormMissed: "missed", NormCancelled: "cancelled"}[type(data)]
        if isinstance(data, NormCancelled) and data.reason == STOPPED_BEFORE_START:
            outcome = "data_quality"  # stopped before it started: neither met nor missed
        t.count("servicepuls_norm_clocks_stopped", municipality, norm, outcome)
        if outcome in ("met", "missed"):
            t.observe(
                "servicepuls_norm_elapsed_business_seconds",
                data.elapsed_business_seconds,
                municipality,
                norm,
                case_type,
            )
            # The goal travels with the fact, so a report shows the goal that applied then.
            t.fact(municipality, day, "norm_outcome", norm, outcome, f"{data.compliance_goal:.4f}")
        clocks[key] = None


def _revised(
    t: Tally,
    clocks: dict[ClockKey, RunningClock | None],
    municipality: str,
    zone: ZoneInfo,
    event: Envelope[Any],
    policy: Policy,
) -> None:
    """A catalog revision replaced a clock's outcomes with the active version's: each changed
    cycle leaves its old outcome (counter and report fact) and joins its new one, and the
    running-clock gauges take the clock as the active version sees it. Alerts already counted
    stay counted: they were sent."""
    data: NormRevised = event.data
    norm = data.norm_id
    goal = f"{data.compliance_goal:.4f}"
    previous = t.goals.get((municipality, norm))
    if previous is None or previous[1] <= event.time:
        t.goals[(municipality, norm)] = (data.compliance_goal, event.time)
    for cycle in data.cycles:
        day = cycle.stopped_at.astimezone(zone).date()
        before = _label(cycle.previous_outcome)
        after = _label(cycle.outcome)
        t.count("servicepuls_norm_outcomes_revised", municipality, norm, before, after)
        if cycle.previous_outcome is not None:
            t.count("servicepuls_norm_clocks_stopped", municipality, norm, before, by=-1.0)
            if before in ("met", "missed"):
                key = (municipality, day, norm, before, goal)
                t.retracted[key] = t.retracted.get(key, 0) + 1
        if cycle.outcome is not None:
            t.count("servicepuls_norm_clocks_stopped", municipality, norm, after)
            if after in ("met", "missed"):
                t.fact(municipality, day, "norm_outcome", norm, after, goal)
    key = (municipality, data.clock_id)
    running = data.running
    if running is None:
        clocks[key] = None
    else:
        clock = clocks.get(key)
        clocks[key] = RunningClock(
            norm,
            policy.case_type_label(municipality, data.case_type)
            if clock is None
            else clock.case_type,
            running.started_at,
            running.due_at,
            running.warned,
            running.breached,
        )


# --- surveys -----------------------------------------------------------------------------------


def _survey(t: Tally, municipality: str, day: date, data: Any, policy: Policy) -> None:
    if isinstance(data, SurveySent):
        channel = data.delivery_channel.value
        t.count("servicepuls_surveys_sent", municipality, channel)
        t.fact(municipality, day, "survey_sent", channel)
    elif isinstance(data, SurveyDeliveryFailed):
        t.count("servicepuls_survey_deliveries_failed", municipality, data.delivery_channel.value)
    elif isinstance(data, SurveySuppressed):
        t.count("servicepuls_surveys_suppressed", municipality, data.reason.value)
        t.fact(municipality, day, "survey_suppressed", data.reason.value)
    elif isinstance(data, SurveyResponded):
        channel = _label(data.channel)
        case_type = policy.case_type_label(municipality, data.case_type)
        t.count("servicepuls_surveys_responded", municipality, channel, case_type)
        t.observe("servicepuls_survey_score", float(data.score), municipality, channel, case_type)
        t.fact(municipality, day, "survey_response", channel, case_type, str(data.score))
    elif isinstance(data, SurveyExpired):
        t.count("servicepuls_surveys_expired", municipality)
    elif isinstance(data, SurveyFollowUpRequested):
        t.count("servicepuls_survey_follow_ups_requested", municipality)
    # Other types (status changes, suspensions, survey scheduled) only count as applied events.
