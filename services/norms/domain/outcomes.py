"""Decisions framed as norm events: the Kafka records the norms service emits.

This runs for every decision, so it is written for speed: outcomes are framed straight into
Kafka records (`outcome_record`, JSON by orjson; a unit test holds it byte-equal to the pydantic
models' own serialization), from per-norm templates of the fixed parts, with deterministic ids
computed without building `uuid.UUID` objects. No I/O: the service layer puts the records on
the outbox (adapters/repository.py) and the relay publishes them (adapters/relay.py).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

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
from services.common.calendar import US
from services.norms.domain.catalog import Norm, NormCatalog
from services.norms.domain.clock import Decision, DecisionKind, Transition, TransitionKind
from services.norms.domain.explain import explain, summary
from services.norms.domain.matching import UNIT_SECONDS

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


def _header_pairs(subject: bytes, municipality: bytes) -> list[tuple[str, bytes]]:
    """`binary_headers` of a norm event with an empty id, type and time: the pairs that are the
    same in every event of one clock (specversion, source, subject, municipality, content
    type), which `ClockFrame` takes once."""
    return binary_headers(
        id=b"", source=_SOURCE_BYTES, type=b"", time=b"", subject=subject, municipality=municipality
    )


# The `ce_type` pair of each kind of norm event, as `binary_headers` makes it (shared).
_TYPE_PAIRS = {
    kind: binary_headers(
        id=b"", source=_SOURCE_BYTES, type=type_bytes, time=b"", subject=b"", municipality=b""
    )[3]
    for kind, type_bytes in _TYPE_BYTES.items()
}
# How many deadline summaries each catalog remembers (emptied when full).
EXPLANATION_MEMO_SIZE = 50_000


@dataclass(slots=True, init=False)
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

    def __init__(  # (written out: the generated one would run as Python code, compiled or not)
        self,
        municipality: str,
        norm_id: str,
        kind: DecisionKind,
        at: int,
        started_at: int,
        key: bytes,
        value: bytes,
        headers: tuple[tuple[str, bytes], ...],
        reason: str = "",
        cause_source: str = "",
    ) -> None:
        self.municipality, self.norm_id, self.kind, self.at = municipality, norm_id, kind, at
        self.started_at, self.key, self.value, self.headers = started_at, key, value, headers
        self.reason, self.cause_source = reason, cause_source

    def record(self, topic: str = NORMS_TOPIC) -> KafkaRecord:
        return KafkaRecord(topic=topic, key=self.key, value=self.value, headers=list(self.headers))

    def envelope(self) -> Envelope[Any]:
        """The event as consumers read it (validated by the models)."""
        return decode(list(self.headers), self.value)


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
    and the header values every event of the clock carries (subject, municipality)."""

    __slots__ = (
        "calendar",
        "due_at",
        "due_text",
        "head",
        "headers",
        "id_hash",
        "key",
        "municipality",
        "municipality_bytes",
        "norm_id",
        "started_at",
        "started_text",
        "template",
    )

    def __init__(
        self,
        catalog: NormCatalog,
        norm: Norm,
        cid: str,
        subject_id: str,
        context: dict[str, str],
    ) -> None:
        dumps = orjson.dumps
        template = _template(catalog, norm)
        parts = [b'{"clock_id":', dumps(cid), template.norm, dumps(subject_id)]
        if context:
            for name, prefix in _CONTEXT_FIELDS:
                value = context.get(name)
                if value is not None:
                    parts.append(prefix)
                    parts.append(dumps(value))
        self.calendar = catalog.calendar
        self.template = template
        self.head = b"".join(parts)
        self.id_hash = _OUTCOME_ID_PREFIX.copy()  # see outcome_id
        self.id_hash.update(f"{cid}\x1f{norm.version}\x1f".encode())
        self.norm_id = norm.id
        self.municipality = catalog.municipality
        self.municipality_bytes = catalog.municipality.encode()
        self.key = subject_id.encode()
        self.headers = _header_pairs(self.key, self.municipality_bytes)
        # The last start and due instant written, as text: a clock's decisions share them
        # (-1: none yet; no event is older than 1970, schemas.common.EARLIEST).
        self.started_at, self.started_text = -1, b""
        self.due_at, self.due_text = -1, b""

    def outcome(
        self,
        decision: Decision,
        decision_key: str,
        event_time: int | None = None,
        explanation: bytes = b"",
    ) -> Outcome:
        """`decision_key`: `decision.key` (the caller has it already)."""
        calendar = self.calendar
        dumps = orjson.dumps
        kind = decision.kind
        template = self.template
        target = template.targets.get(decision.target)
        if target is None:
            target = template.targets[decision.target] = template.target_json(decision.target)
        if decision.started_at != self.started_at:
            self.started_at = decision.started_at
            self.started_text = calendar.isoformat(decision.started_at).encode()
        if decision.due_at != self.due_at:
            self.due_at = decision.due_at
            self.due_text = calendar.isoformat(decision.due_at).encode()
        # ISO 8601 instants and floats need no escaping.
        parts = [
            self.head,
            target,
            self.started_text,
            b'","due_at":"',
            self.due_text,
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
            parts.append(calendar.isoformat(decision.stopped_at or decision.at).encode())
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
                calendar.isoformat(
                    decision.cause_at if decision.cause_at is not None else decision.at
                ).encode(),
                b'"',
            )
        if explanation:
            parts.append(explanation)
        parts.append(b"}")
        at = decision.at if event_time is None else event_time
        sha = self.id_hash.copy()
        sha.update(decision_key.encode())
        municipality, key, shared = self.municipality, self.key, self.headers
        return Outcome(
            municipality,
            self.norm_id,
            kind,
            at,
            decision.started_at,
            key,
            b"".join(parts),
            (  # binary_headers, in its order, from the clock's pairs (made once) and the event's
                shared[0],
                ("ce_id", _uuid5_text(sha.digest()).encode()),
                shared[2],
                _TYPE_PAIRS[kind],
                ("ce_time", calendar.isoformat(at).encode()),
                shared[5],
                shared[6],
                shared[7],
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
        if len(catalog.explanations) >= EXPLANATION_MEMO_SIZE:
            catalog.explanations.clear()  # emptied when full: see calendar._ADVANCE_MEMO_SIZE
        catalog.explanations[key] = member
    return member
