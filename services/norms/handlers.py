"""What the norms service does with events and clocks, without doing any I/O itself.

`plan_events` turns intake events into clock transitions and instant judgements;
`advance_clock` takes the decisions of one clock that are due and frames them as norm events.
The consumer, the scheduler and the recompute command all go through these two functions, so a
live run, a replay and a recompute decide alike.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.common import Channel, PartyRole
from schemas.envelope import CONTENT_TYPE, SPECVERSION, Envelope, deterministic_id
from schemas.events import (
    NormBreached,
    NormCancelled,
    NormClockStarted,
    NormMet,
    NormMissed,
    NormOutcome,
    NormWarning,
)
from services.norms.domain.calendar import US, from_us, to_us
from services.norms.domain.catalog import Norm, NormCatalog, clock_id, duration_of
from services.norms.domain.clock import (
    Decision,
    DecisionKind,
    Transition,
    TransitionKind,
    decisions_due,
    judge_instant,
    timeline,
)

SOURCE = "/servicepuls/norms"

_EVENT_MODEL: dict[DecisionKind, type[NormOutcome]] = {
    DecisionKind.STARTED: NormClockStarted,
    DecisionKind.WARNING: NormWarning,
    DecisionKind.BREACHED: NormBreached,
    DecisionKind.MET: NormMet,
    DecisionKind.MISSED: NormMissed,
    DecisionKind.CANCELLED: NormCancelled,
}


@dataclass(slots=True)
class StoredClock:
    """A clock as the repository keeps it."""

    clock_id: str
    municipality: str
    norm_id: str
    subject_id: str
    # Each transition with the context of its event: (transition, channel, case_type, role).
    transitions: list[tuple[Transition, dict[str, str]]] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)

    def add(self, transition: Transition, context: dict[str, str]) -> bool:
        if any(
            t.event_key == transition.event_key and t.kind == transition.kind
            for t, _ in self.transitions
        ):
            return False
        self.transitions.append((transition, context))
        return True

    # -- storage form: compact JSON lists, stable field order ----------------------------------

    def transitions_json(self) -> str:
        return orjson.dumps(
            [
                [t.at, t.kind.value, t.event_key, t.extension, t.reason, context]
                for t, context in self.transitions
            ]
        ).decode()

    @staticmethod
    def transitions_from_json(text: str | bytes | None) -> list[tuple[Transition, dict[str, str]]]:
        if not text:
            return []
        return [
            (Transition(at, TransitionKind(kind), key, extension, reason), context)
            for at, kind, key, extension, reason, context in orjson.loads(text)
        ]


@dataclass(slots=True)
class ClockUpdate:
    """The result of advancing one clock: events to emit and the state to store."""

    events: list[Envelope[Any]]
    taken: set[str]
    next_decision_at: int | None
    norm_version: str | None = None
    outcome: str | None = None
    started_at: int | None = None
    due_at: int | None = None
    stopped_at: int | None = None


@dataclass(slots=True)
class Plan:
    """What a batch of intake events asks of the norms service."""

    transitions: dict[str, tuple[StoredClock, list[tuple[Transition, dict[str, str]]]]]
    instant_events: list[Envelope[Any]]
    instant_outcomes: list[tuple[str, str, int, DecisionKind]]  # municipality, norm, at, kind
    unknown_municipalities: set[str]


def _context(data: Any) -> dict[str, str]:
    context = {}
    for name in ("channel", "case_type", "party_role"):
        value = getattr(data, name, None)
        if value is not None:
            context[name] = str(getattr(value, "value", value))
    return context


def plan_events(events: list[Envelope[Any]], catalogs: dict[str, NormCatalog]) -> Plan:
    transitions: dict[str, tuple[StoredClock, list[tuple[Transition, dict[str, str]]]]] = {}
    instant_events: list[Envelope[Any]] = []
    instant_outcomes: list[tuple[str, str, int, DecisionKind]] = []
    unknown: set[str] = set()
    for event in events:
        catalog = catalogs.get(event.municipality)
        if catalog is None:
            unknown.add(event.municipality)
            continue
        at = to_us(event.time)
        for match in catalog.match(event.type, event.data):
            cid = clock_id(event.municipality, match.norm.id, match.subject_id)
            entry = transitions.get(cid)
            if entry is None:
                entry = transitions[cid] = (
                    StoredClock(cid, event.municipality, match.norm.id, match.subject_id),
                    [],
                )
            entry[1].append(
                (
                    Transition(at, match.kind, event.dedupe_key, match.extension, match.reason),
                    _context(event.data) if match.kind is TransitionKind.START else {},
                )
            )
        for judged in catalog.judge(event.type, event.data):
            decision = judge_instant(
                started_at=judged.started_at,
                waited=judged.waited,
                answered=judged.answered,
                target=judged.norm.rule.target,
            )
            cid = clock_id(event.municipality, judged.norm.id, judged.subject_id)
            instant_events.append(
                outcome_event(
                    catalog, judged.norm, cid, judged.subject_id, _context(event.data), decision, at
                )
            )
            instant_outcomes.append(
                (event.municipality, judged.norm.id, decision.at, decision.kind)
            )
    return Plan(transitions, instant_events, instant_outcomes, unknown)


def outcome_event(
    catalog: NormCatalog,
    norm: Norm,
    cid: str,
    subject_id: str,
    context: dict[str, str],
    decision: Decision,
    event_time: int | None = None,
) -> Envelope[Any]:
    """Frame a decision as a norm event: deterministic id, time = the decision's event time."""
    zone = catalog.calendar.zone
    definition = norm.definition
    fields: dict[str, Any] = {
        "clock_id": cid,
        "norm_id": norm.id,
        "norm_version": norm.version,
        "subject_id": subject_id,
        "channel": Channel(context["channel"]) if "channel" in context else None,
        "case_type": context.get("case_type"),
        "party_role": PartyRole(context["party_role"]) if "party_role" in context else None,
        "target": duration_of(decision.target, definition.target.unit),
        "compliance_goal": definition.compliance_goal,
        "started_at": from_us(decision.started_at, zone),
        "due_at": from_us(decision.due_at, zone),
        "elapsed_business_seconds": decision.elapsed / US,
        "paused_seconds": decision.paused / US,
    }
    if decision.kind is DecisionKind.WARNING:
        fields["threshold"] = decision.threshold
    if decision.kind in (DecisionKind.MET, DecisionKind.MISSED):
        fields["stopped_at"] = from_us(decision.stopped_at or decision.at, zone)
    if decision.kind is DecisionKind.CANCELLED:
        fields["reason"] = decision.reason or "cancelled"
    model = _EVENT_MODEL[decision.kind]
    # Built from values that are valid by construction (the catalog and the clock), so the
    # models are constructed without validating again: this runs for every decision.
    data = model.model_construct(**{k: v for k, v in fields.items() if v is not None})
    time = decision.at if event_time is None else event_time
    return Envelope[model].model_construct(  # type: ignore[valid-type]
        specversion=SPECVERSION,
        id=deterministic_id(SOURCE, cid, norm.version, decision.key),
        source=SOURCE,
        type=model.event_type,
        time=from_us(time, zone),
        subject=subject_id,
        municipality=catalog.municipality,
        datacontenttype=CONTENT_TYPE,
        data=data,
    )


def advance_clock(clock: StoredClock, catalog: NormCatalog, now: int | None) -> ClockUpdate:
    """Take the decisions of `clock` whose instant passed before `now` (None: the watermark is
    not known yet, take nothing) and say when the next one falls due."""
    norm = catalog.norms.get(clock.norm_id)
    if norm is None or norm.definition.instant:
        return ClockUpdate(events=[], taken=clock.taken, next_decision_at=None)
    transitions = [t for t, _ in clock.transitions]
    decisions = timeline(norm.rule, transitions)
    if not decisions:
        return ClockUpdate(events=[], taken=clock.taken, next_decision_at=None)
    context = _start_context(clock)
    ready, upcoming = decisions_due(decisions, clock.taken, now if now is not None else -(1 << 62))
    taken = set(clock.taken)
    events = []
    update = ClockUpdate(
        events=events, taken=taken, next_decision_at=upcoming, norm_version=norm.version
    )
    for decision in ready:
        taken.add(decision.key)
        events.append(
            outcome_event(catalog, norm, clock.clock_id, clock.subject_id, context, decision)
        )
        update.started_at = decision.started_at
        update.due_at = decision.due_at
        if decision.kind in (DecisionKind.MET, DecisionKind.MISSED, DecisionKind.CANCELLED):
            update.outcome = decision.kind.value
            update.stopped_at = decision.stopped_at
            update.next_decision_at = None
    return update


def _start_context(clock: StoredClock) -> dict[str, str]:
    starts = sorted(
        ((t, c) for t, c in clock.transitions if t.kind is TransitionKind.START),
        key=lambda item: item[0].sort_key(),
    )
    return starts[0][1] if starts else {}


def compliance_increments(
    outcomes: list[tuple[str, str, int, DecisionKind]], catalogs: dict[str, NormCatalog]
) -> list[tuple[str, str, Any, int, int, int]]:
    """Per municipality, norm and local day: (met, missed, cancelled) counts to add."""
    totals: dict[tuple[str, str, Any], list[int]] = defaultdict(lambda: [0, 0, 0])
    for municipality, norm_id, at, kind in outcomes:
        day = catalogs[municipality].calendar.local_date(at)
        index = {DecisionKind.MET: 0, DecisionKind.MISSED: 1, DecisionKind.CANCELLED: 2}[kind]
        totals[(municipality, norm_id, day)][index] += 1
    return [(m, n, d, *counts) for (m, n, d), counts in sorted(totals.items())]
