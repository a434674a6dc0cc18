"""What the norms service decides, without doing any I/O itself.

`plan_events` turns intake events into clock transitions and instant judgements;
`advance_clock` takes the decisions of one clock that are due and frames them as norm events
(`domain/outcomes.py`). The consumer, the scheduler and the recompute and rebuild commands all
go through these two functions, so a live run, a replay and a recompute decide alike. The
service layer (services/norms/service.py) conducts them; the repository loads and stores.

This runs for every event and every decision, so it is written for speed: a clock's timeline
is remembered per catalog for the transitions it was computed from (a pure function of them),
so the scheduler taking a warning does not recompute what the consumer computed a moment before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from schemas.envelope import Envelope
from services.common.calendar import to_us
from services.norms.domain.catalog import Norm, NormCatalog, clock_id
from services.norms.domain.clock import (
    FINAL_KINDS,
    Decision,
    DecisionKind,
    Transition,
    TransitionKind,
    decisions_due,
    judge_instant,
    new_transition,
    timeline,
)
from services.norms.domain.outcomes import ClockFrame, Outcome, explanation_json, outcome_record

# How many clock timelines each catalog remembers (emptied when full).
TIMELINE_MEMO_SIZE = 50_000


# The hot dataclasses below have their `__init__` written out (`init=False`): the generated
# one is Python code, run as such even in a compiled module, once per clock or outcome.


@dataclass(slots=True, init=False)
class StoredClock:
    """A clock as the repository keeps it (its row's storage form: adapters/clock_rows.py)."""

    clock_id: str
    municipality: str
    norm_id: str
    subject_id: str
    # Each transition with the context of its event: (transition, channel, case_type, role).
    transitions: list[tuple[Transition, dict[str, str]]]
    taken: set[str]

    def __init__(
        self,
        clock_id: str,
        municipality: str,
        norm_id: str,
        subject_id: str,
        transitions: list[tuple[Transition, dict[str, str]]] | None = None,
        taken: set[str] | None = None,
    ) -> None:
        self.clock_id, self.municipality = clock_id, municipality
        self.norm_id, self.subject_id = norm_id, subject_id
        self.transitions = [] if transitions is None else transitions
        self.taken = set() if taken is None else taken

    def add(self, transition: Transition, context: dict[str, str]) -> bool:
        if any(
            t.event_key == transition.event_key and t.kind == transition.kind
            for t, _ in self.transitions
        ):
            return False
        self.transitions.append((transition, context))
        return True


@dataclass(slots=True, init=False)
class ClockUpdate:
    """The result of advancing one clock: events to emit and the state to store."""

    events: list[Outcome]
    taken: set[str]
    next_decision_at: int | None
    norm_version: str | None
    outcome: str | None
    started_at: int | None
    due_at: int | None
    stopped_at: int | None

    def __init__(
        self,
        events: list[Outcome],
        taken: set[str],
        next_decision_at: int | None,
        norm_version: str | None = None,
        outcome: str | None = None,
        started_at: int | None = None,
        due_at: int | None = None,
        stopped_at: int | None = None,
    ) -> None:
        self.events, self.taken, self.next_decision_at = events, taken, next_decision_at
        self.norm_version, self.outcome = norm_version, outcome
        self.started_at, self.due_at, self.stopped_at = started_at, due_at, stopped_at


@dataclass(slots=True)
class Plan:
    """What a batch of intake events asks of the norms service."""

    transitions: dict[str, tuple[StoredClock, list[tuple[Transition, dict[str, str]]]]]
    instant_events: list[Outcome]
    instant_outcomes: list[tuple[str, str, int, DecisionKind]]  # municipality, norm, at, kind
    unknown_municipalities: set[str]

    def extend(self, later: Plan) -> None:
        """Add the plan of the events that follow this plan's: the same as planning all of
        them at once."""
        for cid, (blank, new) in later.transitions.items():
            entry = self.transitions.get(cid)
            if entry is None:
                self.transitions[cid] = (blank, new)
            else:
                entry[1].extend(new)
        self.instant_events += later.instant_events
        self.instant_outcomes += later.instant_outcomes
        self.unknown_municipalities |= later.unknown_municipalities


def _context(data: Any) -> dict[str, str]:
    """Channel, case type and party role of an event (kept with a clock's start). The same few
    combinations recur, so each is made once and shared: never change one."""
    fields = data.__dict__  # a model's values; getattr on a field it lacks is slow in pydantic
    key = (fields.get("channel"), fields.get("case_type"), fields.get("party_role"))
    context = _CONTEXTS.get(key)
    if context is None:
        context = {
            name: str(getattr(value, "value", value))
            for name, value in zip(("channel", "case_type", "party_role"), key, strict=True)
            if value is not None
        }
        if len(_CONTEXTS) < 10_000:
            _CONTEXTS[key] = context
    return context


_CONTEXTS: dict[tuple[Any, Any, Any], dict[str, str]] = {}
_NO_CONTEXT: dict[str, str] = {}  # shared: never change it


def plan_events(
    events: Sequence[Envelope[Any]],
    catalogs: dict[str, NormCatalog],
    *,
    times: Sequence[int] | None = None,
    keys: Sequence[str] | None = None,
) -> Plan:
    """`times` and `keys`: each event's time in microseconds and its dedupe key, when the
    caller has them already (the consumer computes both for every event)."""
    transitions: dict[str, tuple[StoredClock, list[tuple[Transition, dict[str, str]]]]] = {}
    instant_events: list[Outcome] = []
    instant_outcomes: list[tuple[str, str, int, DecisionKind]] = []
    unknown: set[str] = set()
    for index, event in enumerate(events):
        municipality = event.municipality
        catalog = catalogs.get(municipality)
        if catalog is None:
            unknown.add(municipality)
            continue
        data, event_type = event.data, event.type
        matches = catalog.match(event_type, data)
        judgements = catalog.judge(event_type, data)
        if not matches and not judgements:
            continue  # most events concern no clock of most norms
        at = to_us(event.time) if times is None else times[index]
        if matches:
            cause = event.dedupe_key if keys is None else keys[index]
            for match in matches:
                norm_id = match.norm.definition.id
                cid = f"{municipality}/{norm_id}/{match.subject_id}"  # clock_id()
                entry = transitions.get(cid)
                if entry is None:
                    entry = transitions[cid] = (
                        StoredClock(cid, municipality, norm_id, match.subject_id),
                        [],
                    )
                entry[1].append(
                    (
                        new_transition(at, match.kind, cause, match.extension, match.reason),
                        _context(data) if match.kind is TransitionKind.START else _NO_CONTEXT,
                    )
                )
        for judged in judgements:
            norm = judged.norm
            decision = judge_instant(
                started_at=judged.started_at,
                waited=judged.waited,
                answered=judged.answered,
                target=norm.rule.target,
            )
            norm_id = norm.definition.id
            cid = clock_id(municipality, norm_id, judged.subject_id)
            instant_events.append(
                outcome_record(catalog, norm, cid, judged.subject_id, _context(data), decision, at)
            )
            instant_outcomes.append((municipality, norm_id, decision.at, decision.kind))
    return Plan(transitions, instant_events, instant_outcomes, unknown)


def clock_timeline(
    catalog: NormCatalog, norm: Norm, transitions: list[Transition]
) -> list[Decision]:
    """`timeline()` of a clock, remembered per catalog for these very transitions."""
    key = (norm.id, tuple(transitions))
    memo: dict[Any, list[Decision]] = catalog.timelines
    decisions = memo.get(key)
    if decisions is None:
        if len(memo) >= TIMELINE_MEMO_SIZE:
            memo.clear()  # emptied when full: see calendar._ADVANCE_MEMO_SIZE
        decisions = memo[key] = timeline(norm.rule, transitions)
    return decisions


def advance_clock(
    clock: StoredClock, catalog: NormCatalog, now: int | None, hold_before: int | None = None
) -> ClockUpdate:
    """Take the decisions of `clock` whose instant passed before `now` (None: the watermark is
    not known yet, take nothing) and say when the next one falls due.

    `hold_before` (an import of history is in progress): warnings and breaches dated before it
    are held — not taken, and the clock wakes at the first of them, so they are taken once the
    import has settled, unless the cycle ended meanwhile (a finished cycle takes nothing more:
    a clock whose stop arrived within the import raises no alert)."""
    norm = catalog.norms.get(clock.norm_id)
    if norm is None or norm.definition.instant:
        return ClockUpdate(events=[], taken=clock.taken, next_decision_at=None)
    decisions = clock_timeline(catalog, norm, [t for t, _ in clock.transitions])
    if not decisions:
        return ClockUpdate(events=[], taken=clock.taken, next_decision_at=None)
    context = _start_context(clock)
    ready, upcoming = decisions_due(decisions, clock.taken, now if now is not None else -(1 << 62))
    taken = set(clock.taken)
    if hold_before is not None:
        ready, upcoming, settled = _hold(ready, upcoming, hold_before)
        taken |= settled
    events: list[Outcome] = []
    update = ClockUpdate(
        events=events, taken=taken, next_decision_at=upcoming, norm_version=norm.version
    )
    frame = ClockFrame(catalog, norm, clock.clock_id, clock.subject_id, context) if ready else None
    for decision in ready:
        key = decision.key
        taken.add(key)
        why = b""
        if decision.kind in _EXPLAINED:
            why = explanation_json(catalog, norm, clock.transitions, decision)
        events.append(cast(ClockFrame, frame).outcome(decision, key, None, why))
        update.started_at = decision.started_at
        update.due_at = decision.due_at
        if decision.kind in (DecisionKind.MET, DecisionKind.MISSED, DecisionKind.CANCELLED):
            # The latest final outcome; a restarted clock (next cycle) has its next decision
            # in `upcoming`.
            update.outcome = decision.kind.value
            update.stopped_at = decision.stopped_at
    return update


_ALERTS = frozenset({DecisionKind.WARNING, DecisionKind.BREACHED})


def _hold(
    ready: list[Decision], upcoming: int | None, hold_before: int
) -> tuple[list[Decision], int | None, set[str]]:
    """`ready` without the alerts dated before `hold_before`, the next wake-up, and the keys of
    held alerts that are settled without an event: those of a cycle that ends in `ready`, and
    those an alert of their cycle taken now supersedes (a warning older than the horizon is no
    alert once a later warning or the breach went out). The rest wait for the import."""
    ending = {d.cycle for d in ready if d.kind in FINAL_KINDS}
    alerted = {d.cycle for d in ready if d.kind in _ALERTS and d.at >= hold_before}
    kept, settled = [], set()
    for decision in ready:
        if decision.kind in _ALERTS and decision.at < hold_before:
            if decision.cycle in ending or decision.cycle in alerted:
                settled.add(decision.key)
            else:
                upcoming = decision.at if upcoming is None else min(upcoming, decision.at)
            continue
        kept.append(decision)
    return kept, upcoming, settled


_EXPLAINED = frozenset(
    {DecisionKind.WARNING, DecisionKind.BREACHED, DecisionKind.MET, DecisionKind.MISSED}
)


def _start_context(clock: StoredClock) -> dict[str, str]:
    """The context of the clock's first start (in event-time order, as the timeline takes it)."""
    first: tuple[Transition, dict[str, str]] | None = None
    for item in clock.transitions:
        if item[0].kind is TransitionKind.START and (
            first is None or item[0].sort_key() < first[0].sort_key()
        ):
            first = item
    return first[1] if first is not None else {}


def compliance_increments(
    outcomes: list[tuple[str, str, int, DecisionKind]], catalogs: dict[str, NormCatalog]
) -> list[tuple[str, str, Any, int, int, int, int]]:
    """Per municipality, norm and local day: (met, missed, cancelled, data_quality) counts to
    add. DATA_QUALITY stands for a cycle cancelled because it was stopped before its start."""
    totals: dict[tuple[str, str, Any], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for municipality, norm_id, at, kind in outcomes:
        day = catalogs[municipality].calendar.local_date(at)
        index = _COMPLIANCE_COLUMN[kind]
        totals[(municipality, norm_id, day)][index] += 1
    return [(m, n, d, *counts) for (m, n, d), counts in sorted(totals.items())]


_COMPLIANCE_COLUMN = {
    DecisionKind.MET: 0,
    DecisionKind.MISSED: 1,
    DecisionKind.CANCELLED: 2,
    DecisionKind.DATA_QUALITY: 3,
}
