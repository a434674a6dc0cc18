"""What the norms service does with events and clocks, without doing any I/O itself.

`plan_events` turns intake events into clock transitions and instant judgements;
`advance_clock` takes the decisions of one clock that are due and frames them as norm events.
The consumer, the scheduler and the recompute command all go through these two functions, so a
live run, a replay and a recompute decide alike.

This runs for every event and every decision, so it is written for speed: outcomes are framed
straight into Kafka records (`outcome_record`, JSON by orjson; a unit test holds it byte-equal to
the pydantic models' own serialization), and a clock's timeline is remembered per catalog for
the transitions it was computed from (a pure function of them), so the scheduler taking a
warning does not recompute what the consumer computed a moment before.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from schemas.envelope import (
    Envelope,
    KafkaRecord,
    binary_headers,
    decode,
)
from schemas.events import (
    TOPICS,
    Family,
    NormBreached,
    NormCancelled,
    NormClockStarted,
    NormDataQuality,
    NormMet,
    NormMissed,
    NormOutcome,
    NormWarning,
)
from services.common.calendar import US, to_us
from services.norms.domain.catalog import UNIT_SECONDS, Norm, NormCatalog, clock_id
from services.norms.domain.clock import (
    FINAL_KINDS,
    Decision,
    DecisionKind,
    Transition,
    TransitionKind,
    decisions_due,
    judge_instant,
    timeline,
)
from services.norms.domain.explain import explain, summary

SOURCE = "/servicepuls/norms"
NORMS_TOPIC = TOPICS[Family.NORMS]

_EVENT_MODEL: dict[DecisionKind, type[NormOutcome]] = {
    DecisionKind.STARTED: NormClockStarted,
    DecisionKind.WARNING: NormWarning,
    DecisionKind.BREACHED: NormBreached,
    DecisionKind.MET: NormMet,
    DecisionKind.MISSED: NormMissed,
    DecisionKind.CANCELLED: NormCancelled,
    DecisionKind.DATA_QUALITY: NormDataQuality,
}
_EVENT_TYPE = {kind: model.event_type for kind, model in _EVENT_MODEL.items()}
_OUTCOME_ID_PREFIX = hashlib.sha1(uuid.NAMESPACE_URL.bytes + f"servicepuls:{SOURCE}\x1f".encode())
_SOURCE_BYTES = SOURCE.encode()
_TYPE_BYTES = {kind: event_type.encode() for kind, event_type in _EVENT_TYPE.items()}
# How many clock timelines each catalog remembers (emptied when full).
TIMELINE_MEMO_SIZE = 50_000


@dataclass(slots=True)
class Outcome:
    """A decision framed as a norm event (key, value and headers of its Kafka record), with
    what the service counts."""

    municipality: str
    norm_id: str
    kind: DecisionKind
    at: int  # the event's time
    started_at: int
    key: bytes
    value: bytes
    # The CloudEvents headers (`schemas.envelope.binary_headers`: the pairs every event of a
    # kind, source or municipality has are shared objects, which the outbox stores once).
    headers: tuple[tuple[str, bytes], ...]
    # CANCELLED: the reason; DATA_QUALITY: the problem, and the source of the event at fault.
    reason: str = ""
    cause_source: str = ""

    def record(self, topic: str = NORMS_TOPIC) -> KafkaRecord:
        return KafkaRecord(topic=topic, key=self.key, value=self.value, headers=list(self.headers))

    def envelope(self) -> Envelope[Any]:
        """The event as consumers read it (validated by the models)."""
        return decode(list(self.headers), self.value)


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
        return orjson.dumps(self.stored_form(self.transitions)).decode()

    @staticmethod
    def stored_form(transitions: list[tuple[Transition, dict[str, str]]]) -> list[list[Any]]:
        """Transitions as the `transitions` column lists them (`transitions_from_json` reads
        them back)."""
        return [
            [t.at, t.kind.value, t.event_key, t.extension, t.reason, context]
            for t, context in transitions
        ]

    @staticmethod
    def transitions_from_json(text: str | bytes | None) -> list[tuple[Transition, dict[str, str]]]:
        if not text:
            return []
        kinds = _TRANSITION_KINDS  # a dict lookup: calling the enum is slow
        transitions = [
            (Transition(at, kinds[kind], key, extension, reason), context)
            for at, kind, key, extension, reason, context in orjson.loads(text)
        ]
        # Transitions are appended without reading the clock (`ClockRepository`): one event
        # applied twice (its dedupe key purged, then delivered again) counts once, as `add`.
        if len({(t.event_key, t.kind) for t, _ in transitions}) < len(transitions):
            seen: set[tuple[str, TransitionKind]] = set()
            unique = []
            for item in transitions:
                mark = (item[0].event_key, item[0].kind)
                if mark not in seen:
                    seen.add(mark)
                    unique.append(item)
            transitions = unique
        return transitions


_TRANSITION_KINDS = {kind.value: kind for kind in TransitionKind}


@dataclass(slots=True)
class ClockUpdate:
    """The result of advancing one clock: events to emit and the state to store."""

    events: list[Outcome]
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
                        Transition(at, match.kind, cause, match.extension, match.reason),
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


def outcome_record(
    catalog: NormCatalog,
    norm: Norm,
    cid: str,
    subject_id: str,
    context: dict[str, str],
    decision: Decision,
    event_time: int | None = None,
    explanation: bytes = b"",
) -> Outcome:
    """Frame a decision as a norm event: deterministic id, time = the decision's event time.
    `explanation`: the `,"explanation":{…}` member (`explanation_json`), or nothing.

    The JSON is what the `NormOutcome` models serialize to (fields in model order, `None`
    left out), written directly from per-norm templates: this runs for every decision. A
    clock taking several decisions frames them with one `ClockFrame`."""
    return ClockFrame(catalog, norm, cid, subject_id, context).outcome(
        decision, decision.key, event_time, explanation
    )


class ClockFrame:
    """What the outcome events of one clock share, made once per clock: the JSON from
    `{"clock_id"` to the context, the id's hash state after the clock and the norm's version,
    and the headers every event of the clock carries."""

    __slots__ = ("calendar", "head", "id_hash", "key", "municipality", "norm_id", "template")

    def __init__(
        self,
        catalog: NormCatalog,
        norm: Norm,
        cid: str,
        subject_id: str,
        context: dict[str, str],
    ) -> None:
        dumps = orjson.dumps
        parts = [b'{"clock_id":', dumps(cid), _template(catalog, norm).norm, dumps(subject_id)]
        if context:
            for name, prefix in _CONTEXT_FIELDS:
                value = context.get(name)
                if value is not None:
                    parts.append(prefix)
                    parts.append(dumps(value))
        self.calendar = catalog.calendar
        self.template = _template(catalog, norm)
        self.head = b"".join(parts)
        self.id_hash = _OUTCOME_ID_PREFIX.copy()  # see outcome_id
        self.id_hash.update(f"{cid}\x1f{norm.version}\x1f".encode())
        self.norm_id = norm.id
        self.municipality = catalog.municipality
        self.key = subject_id.encode()

    def outcome(
        self,
        decision: Decision,
        decision_key: str,
        event_time: int | None = None,
        explanation: bytes = b"",
    ) -> Outcome:
        """`decision_key`: `decision.key` (the caller has it already)."""
        iso = self.calendar.isoformat
        dumps = orjson.dumps
        kind = decision.kind
        template = self.template
        target = template.targets.get(decision.target)
        if target is None:
            target = template.targets[decision.target] = template.target_json(decision.target)
        # ISO 8601 instants and floats need no escaping.
        parts = [
            self.head,
            target,
            iso(decision.started_at).encode(),
            b'","due_at":"',
            iso(decision.due_at).encode(),
            b'","elapsed_business_seconds":',
            dumps(decision.elapsed / US),
            b',"paused_seconds":',
            dumps(decision.paused / US),
        ]
        if kind is DecisionKind.WARNING:
            parts.append(b',"threshold":')
            parts.append(dumps(decision.threshold))
        elif kind is DecisionKind.MET or kind is DecisionKind.MISSED:
            parts.append(b',"stopped_at":"')
            parts.append(iso(decision.stopped_at or decision.at).encode())
            parts.append(b'"')
        elif kind is DecisionKind.CANCELLED:
            parts.append(b',"reason":')
            parts.append(dumps(decision.reason or "cancelled"))
        cause_source = ""
        if kind is DecisionKind.DATA_QUALITY:
            cause_source, _, cause_id = decision.cause.partition("\x1f")  # Envelope.dedupe_key
            parts += (
                b',"problem":',
                dumps(decision.reason),
                b',"cause_source":',
                dumps(cause_source),
                b',"cause_id":',
                dumps(cause_id),
                b',"cause_time":"',
                iso(decision.cause_at if decision.cause_at is not None else decision.at).encode(),
                b'"',
            )
        if explanation:
            parts.append(explanation)
        parts.append(b"}")
        at = decision.at if event_time is None else event_time
        sha = self.id_hash.copy()
        sha.update(decision_key.encode())
        municipality, key = self.municipality, self.key
        return Outcome(
            municipality,
            self.norm_id,
            kind,
            at,
            decision.started_at,
            key,
            b"".join(parts),
            tuple(
                binary_headers(
                    id=_uuid5_text(sha.digest()).encode(),
                    source=_SOURCE_BYTES,
                    type=_TYPE_BYTES[kind],
                    time=iso(at).encode(),
                    subject=key,
                    municipality=municipality.encode(),
                )
            ),
            decision.reason,
            cause_source,
        )


_CONTEXT_FIELDS = tuple(
    (name, b"," + orjson.dumps(name) + b":") for name in ("channel", "case_type", "party_role")
)


@dataclass(slots=True)
class _NormTemplate:
    """The fixed parts of a norm's outcome JSON (`outcome_record`)."""

    norm: bytes  # `,"norm_id":…,"norm_version":…,"subject_id":`
    unit_us: int
    unit: str
    tail: bytes  # `,"compliance_goal":…,"started_at":"`
    targets: dict[int, bytes]  # target in microseconds → `,"target":{…}` + tail

    def target_json(self, target: int) -> bytes:
        return (
            b',"target":'
            + orjson.dumps({"amount": target / self.unit_us, "unit": self.unit})
            + self.tail
        )


def _template(catalog: NormCatalog, norm: Norm) -> _NormTemplate:
    template = catalog.outcome_templates.get(norm.id)
    if template is None:
        definition = norm.definition
        unit = definition.target.unit
        template = catalog.outcome_templates[norm.id] = _NormTemplate(
            norm=b',"norm_id":'
            + orjson.dumps(norm.id)
            + b',"norm_version":'
            + orjson.dumps(norm.version)
            + b',"subject_id":',
            unit_us=UNIT_SECONDS[unit] * US,
            unit=unit.value,
            tail=b',"compliance_goal":'
            + orjson.dumps(definition.compliance_goal)
            + b',"started_at":"',
            targets={},
        )
    return template


def outcome_id(cid: str, version: str, decision_key: str) -> str:
    """`deterministic_id(SOURCE, cid, version, decision_key)`: the same UUID (version 5, URL
    namespace), computed without building `uuid.UUID` objects — this runs for every decision.
    A unit test holds the two equal."""
    sha = _OUTCOME_ID_PREFIX.copy()  # namespace and source hashed once
    sha.update(f"{cid}\x1f{version}\x1f{decision_key}".encode())
    return _uuid5_text(sha.digest())


def _uuid5_text(sha1_digest: bytes) -> str:
    """The text of the version-5 UUID made from a SHA-1 digest (RFC 4122)."""
    digest = bytearray(sha1_digest[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
    events = []
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
# Transitions that make a cycle's explanation depend on more than its start.
_SHAPING = frozenset(
    {TransitionKind.PAUSE, TransitionKind.RESUME, TransitionKind.EXTEND, TransitionKind.RESTART}
)


def explanation_json(
    catalog: NormCatalog,
    norm: Norm,
    transitions: list[tuple[Transition, dict[str, str]]],
    decision: Decision,
) -> bytes:
    """The `explanation` member of a warning, breach, met or missed event: the deadline in
    short (`explain.summary`), from what the clock knew when it took the decision (its events
    up to the decision's instant, so a replay frames it alike). Computed at decision time, a
    few per clock, never per intake event; a cycle with nothing but its start (and stop) is
    explained by its norm and its start alone, so those are remembered per catalog."""
    at = decision.at
    key: tuple[Any, ...] | None = None
    if decision.cycle == 1:
        first: int | None = None  # the start's instant (of several, the first wins)
        for transition, _ in transitions:
            if transition.at > at:
                continue
            kind = transition.kind
            if kind in _SHAPING:
                first = None
                break
            if kind is TransitionKind.START and (first is None or transition.at < first):
                first = transition.at
        if first is not None:
            rule = norm.rule
            key = (norm.id, rule.calendar.local_date(first) if rule.day_granular else first)
            cached = catalog.explanations.get(key)
            if cached is not None:
                return cached
    known = [t for t, _ in transitions if t.at <= at]
    explained = explain(norm.rule, known, cycle=decision.cycle)
    if explained is None:
        return b""
    member = b',"explanation":' + orjson.dumps(summary(explained))
    if key is not None:
        if len(catalog.explanations) >= TIMELINE_MEMO_SIZE:
            catalog.explanations.clear()  # emptied when full: see calendar._ADVANCE_MEMO_SIZE
        catalog.explanations[key] = member
    return member


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
) -> list[tuple[str, str, Any, int, int, int]]:
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
