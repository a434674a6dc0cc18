"""Admission of one posted event: the checks between a channel system's JSON and the topic.

A posted event is a CloudEvent in structured JSON. It is admitted when its type is one intake
accepts, every field is valid, no personal identifier hides in a field not meant for it, the
channel system may post it, and its event time is not in the future. The resident's contact
details are then sealed for the feedback service and replaced by a pseudonym, so what goes on
the topic carries no personal data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import UnionType
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
)

from schemas.common import AwareDatetime, MunicipalityCode, ResidentRef
from schemas.envelope import (
    SPECVERSION,
    Envelope,
    KafkaRecord,
    binary_headers,
    decode,
)
from schemas.events import CATALOG, EventData, Family, topic_for
from schemas.resident import ResidentIn
from services.common.pii import PersonalIdentifier, find_personal_identifier, redact
from services.common.sealing import Keys, Sealer, pseudonym
from services.intake.domain.channel_systems import ChannelSystem
from services.intake.domain.sources import source_form_problem

# Event time may run ahead of our clock by this much (channel systems' clocks drift a little).
FUTURE_TOLERANCE = timedelta(minutes=5)

# How deeply a posted event may nest objects and arrays, the event itself counting as one level.
# Events are shallow (the event, its data, the resident: 3); the bound keeps every check that
# walks a document (the personal-data screening among them) within the stack on hostile input.
MAX_NESTING_DEPTH = 32


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One thing wrong with a posted event, located by a JSON Pointer (RFC 6901)."""

    pointer: str
    detail: str


class NotAdmitted(Exception):
    def __init__(self, status: int, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.pointer}: {p.detail}" for p in problems))
        self.status = status
        self.problems = problems


def _posted_model(model: type[EventData]) -> type[EventData]:
    """The data model as channel systems post it: the resident in plaintext (`ResidentIn`)."""
    if "resident" not in model.model_fields:
        return model
    posted = create_model(  # type: ignore[call-overload]
        f"{model.__name__}Posted",
        __base__=model,
        __doc__=model.__doc__,
        resident=(ResidentIn | None, None),
    )
    return posted  # type: ignore[no-any-return]


# The event types channel systems may post (the others are emitted by Servicepuls itself).
POSTED_MODELS: dict[str, type[EventData]] = {
    event_type: _posted_model(model)
    for event_type, model in CATALOG.items()
    if model.family is Family.INTAKE
}

D = TypeVar("D", bound=EventData)


def _plain_source(source: str) -> str:
    """A source in plain form, so that a grant's pattern cannot be escaped (`/kcc/../zaken`)."""
    problem = source_form_problem(source)
    if problem:
        raise ValueError(problem)
    return source


class PostedEvent(BaseModel, Generic[D]):
    """A CloudEvent in structured JSON mode, as posted to intake."""

    model_config = ConfigDict(extra="forbid")

    specversion: str = Field(pattern=r"^1\.0$", examples=[SPECVERSION])
    id: str = Field(min_length=1, max_length=128, description="Unique per source")
    source: Annotated[
        str,
        Field(
            min_length=1,
            max_length=256,
            examples=["/gm0383/kcc"],
            # in the schema only: `_plain_source` checks it with a message that says why
            json_schema_extra={"pattern": "^[!-~]+$"},
            description=(
                "A URI reference in plain form: printable ASCII, segments separated by '/', "
                "none empty, '.' or '..', no backslash, no percent-encoded '.', '/', '\\' "
                "or '%'"
            ),
        ),
        AfterValidator(_plain_source),
    ]
    type: str = Field(
        description="One of the intake event types, e.g. nl.servicepuls.case.opened.v1"
    )
    time: AwareDatetime = Field(description="When it happened at the channel (event time)")
    subject: str | None = Field(
        default=None, max_length=128, description="Case id, else contact id; derived when absent"
    )
    municipality: MunicipalityCode
    datacontenttype: str | None = Field(default=None, pattern=r"^application/json$")
    data: D


# Parametrised generic classes, built once (looking them up per event is measurably slow).
POSTED_ENVELOPES = {t: PostedEvent[m] for t, m in POSTED_MODELS.items()}  # type: ignore[valid-type]


def _typed(event_type: str, envelope: type[PostedEvent[Any]]) -> type[PostedEvent[Any]]:
    """The envelope with `type` fixed to `event_type`, so a union of them is discriminated."""
    return create_model(  # type: ignore[call-overload, no-any-return]
        envelope.__name__, __base__=envelope, type=(Literal[event_type], ...)
    )


# The fast path: a body validated straight from its JSON bytes (in pydantic's core, no Python
# dicts in between), each document by the model its `type` names. Any failure sends the body
# down the slow path, `admit` per document, which says which field is wrong and why.
_ANY_POSTED = Annotated[
    Union[tuple(_typed(t, m) for t, m in POSTED_ENVELOPES.items())],  # type: ignore[valid-type]  # noqa: UP007
    Field(discriminator="type"),
]
_ONE_JSON: TypeAdapter[PostedEvent[Any]] = TypeAdapter(_ANY_POSTED)
_ARRAY_JSON: TypeAdapter[list[PostedEvent[Any]]] = TypeAdapter(list[_ANY_POSTED])  # type: ignore[valid-type]


def _pointer(location: tuple[int | str, ...]) -> str:
    return "".join(f"/{str(part).replace('~', '~0').replace('/', '~1')}" for part in location)


def _problems_from(
    error: ValidationError, prefix: tuple[int | str, ...] = ()
) -> list[FieldProblem]:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        location = tuple(
            part
            for part in item["loc"]
            # pydantic adds the model or union member name to the location; JSON has no such step
            if not (isinstance(part, str) and (part[:1].isupper() or part.startswith("function-")))
        )
        problems.append(FieldProblem(_pointer(prefix + location), redact(item["msg"])))
    return problems


def _too_deep(document: Any) -> tuple[int | str, ...] | None:
    """The path of the first object or array nested deeper than `MAX_NESTING_DEPTH` levels (the
    document itself being the first), or None. Iterative: the depth is not yet known to be safe."""
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            children: Iterable[tuple[int | str, Any]] = value.items()
        elif isinstance(value, list):
            children = enumerate(value)
        else:
            continue
        if len(path) >= MAX_NESTING_DEPTH:
            return path
        stack.extend((child, (*path, key)) for key, child in children)
    return None


def nesting_problem(path: tuple[int | str, ...]) -> FieldProblem:
    """The problem with a document nested too deeply at `path`, named by its outer field."""
    return FieldProblem(
        _pointer(path[:2]),
        f"nests objects and arrays deeper than {MAX_NESTING_DEPTH} levels; an event is at "
        "most 3 deep (the event, its data, the resident)",
    )


def _raw_strings(
    value: Any, path: tuple[int | str, ...]
) -> Iterator[tuple[tuple[int | str, ...], str]]:
    """Every string in a posted JSON document, with its path, except under data.resident."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not (path == ("data",) and key == "resident"):
                yield from _raw_strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _raw_strings(item, (*path, index))
    elif isinstance(value, str):
        yield path, value


def _free_string_fields(model: type[EventData]) -> tuple[str, ...]:
    """The data fields that hold free text (a str, not an enum, time or number), but for the
    resident: only those can hide personal data. Event data is flat but for the resident and
    durations (numbers), so one level is enough."""

    def types_in(annotation: Any) -> set[Any]:
        origin = get_origin(annotation)
        if origin in (Union, UnionType):
            return set().union(*(types_in(member) for member in get_args(annotation)))
        if origin is Annotated:
            return types_in(get_args(annotation)[0])
        return {annotation}

    return tuple(
        name
        for name, field in model.model_fields.items()
        if name != "resident" and str in types_in(field.annotation)
    )


FREE_STRING_FIELDS = {model: _free_string_fields(model) for model in POSTED_MODELS.values()}


def _validated_strings(posted: PostedEvent[Any]) -> list[tuple[tuple[int | str, ...], str]]:
    """The free strings of a validated event, with their paths: envelope and data."""
    data = posted.data.__dict__
    strings = [(("id",), posted.id), (("source",), posted.source)]
    if posted.subject is not None:
        strings.append((("subject",), posted.subject))
    for name in FREE_STRING_FIELDS[type(posted.data)]:
        if data[name] is not None:
            strings.append((("data", name), data[name]))
    return strings


def _personal_data_in(strings: Iterable[tuple[tuple[int | str, ...], str]]) -> list[FieldProblem]:
    problems = []
    for path, text in strings:
        found = _screened.get(text, _UNSEEN)
        if found is _UNSEEN:
            found = _screen(text)
            if len(_screened) >= SCREEN_MEMO_SIZE:
                _screened.clear()  # emptied when full: most entries are one-off ids anyway
            _screened[text] = found
        if found is not None:
            problems.append(
                FieldProblem(
                    _pointer(path),
                    f"contains what looks like a {found}; personal data belongs only in "
                    "data.resident, where it is sealed",
                )
            )
    return problems


# A UUID, bare or behind a short prefix of letters ("T-…"), cannot hold a personal identifier
# as `_screen_fully` finds them: it has no "@"; a phone number is 10 or 13 digits between
# non-word characters, and a UUID's all-digit stretches between hyphens are runs of whole groups
# of 8-4-4-4-12 characters, which never add up to 10 or 13; a BSN counts only as the whole value.
# Ids are mostly UUIDs and new with every event, so this saves the slower searches on most
# strings intake screens (docs/benchmarks.md, "Intake"). A property test holds it to the full
# check.
_UUID_FORM = re.compile(r"(?:[A-Za-z]{1,16}-)?[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def _screen(text: str) -> PersonalIdentifier | None:
    if _UUID_FORM.fullmatch(text):
        return None
    return _screen_fully(text)


def _screen_fully(text: str) -> PersonalIdentifier | None:
    found = find_personal_identifier(text)
    if found is PersonalIdentifier.BSN and not text.replace(".", "").replace(" ", "").isdigit():
        return None  # a BSN is only recognised as a whole value; ids may contain 9 digits
    return found


# Verdicts on strings seen recently: sources, topics, queues and a case's id recur from event to
# event, and a regular-expression search is a measurable share of intake's time per event.
SCREEN_MEMO_SIZE = 50_000
_screened: dict[str, PersonalIdentifier | None] = {}
_UNSEEN: Any = object()


def _resident_ref(resident: ResidentIn, keys: Keys, sealer: Sealer) -> ResidentRef:
    return ResidentRef(
        ref=pseudonym(keys.pseudonym, resident.recognised_by()),
        sealed_contact=sealer.seal(resident.contact_details().model_dump_json().encode()),
        reachable_by=resident.reachable_by(),
        survey_consent=resident.survey_consent,
        language=resident.language,
    )


@dataclass(frozen=True, slots=True)
class Admitted:
    """An admitted event, framed as the Kafka record intake writes."""

    id: str
    municipality: str
    record: KafkaRecord

    def envelope(self) -> Envelope[Any]:
        """The event as consumers read it from the topic."""
        return decode(self.record.headers, self.record.value)


_TOPIC = {event_type: topic_for(event_type) for event_type in POSTED_MODELS}


def admit(
    document: Any,
    *,
    system: ChannelSystem,
    keys: Keys,
    now: datetime | None = None,
    sealer: Sealer | None = None,
) -> Admitted:
    """The record to publish for one posted document, or `NotAdmitted` saying why not."""
    if not isinstance(document, dict):
        raise NotAdmitted(422, [FieldProblem("", "must be a JSON object (one CloudEvent)")])
    too_deep = _too_deep(document)
    if too_deep is not None:
        raise NotAdmitted(422, [nesting_problem(too_deep)])
    event_type = document.get("type")
    if not isinstance(event_type, str) or event_type not in POSTED_MODELS:
        if isinstance(event_type, str) and event_type in CATALOG:
            detail = f"{event_type!r} is emitted by Servicepuls itself, not posted to intake"
        elif event_type is None:
            detail = "required: the CloudEvents type, e.g. nl.servicepuls.case.opened.v1"
        else:
            detail = (
                f"unknown event type {redact(str(event_type))[:128]!r}; see GET /v1/event-types"
            )
        raise NotAdmitted(422, [FieldProblem("/type", detail)])
    screened = ("id", "source", "subject", "data")
    try:
        posted = POSTED_ENVELOPES[event_type].model_validate(document)
    except ValidationError as error:
        raw = _raw_strings({key: document.get(key) for key in screened}, ())
        raise NotAdmitted(422, _problems_from(error) + _personal_data_in(raw)) from None
    latest = (now or datetime.now(UTC)) + FUTURE_TOLERANCE
    return _admit_valid(
        posted, event_type, system, keys, latest, sealer or Sealer(keys.sealing_public)
    )


def admit_json(
    body: bytes,
    *,
    system: ChannelSystem,
    keys: Keys,
    many: bool,
    now: datetime | None = None,
    sealer: Sealer | None = None,
) -> list[Admitted] | None:
    """Every event of a JSON body (one event, or an array of them when `many`) admitted, or
    None when any is not: then `admit` each document to learn which and why. The fast path of
    a valid request; it decides exactly as `admit` does (a unit test holds the two equal)."""
    try:
        posted = _ARRAY_JSON.validate_json(body) if many else [_ONE_JSON.validate_json(body)]
    except ValidationError:
        return None
    if not posted:
        return None  # an empty batch: `admit` per document cannot say why, the caller does
    latest = (now or datetime.now(UTC)) + FUTURE_TOLERANCE  # one clock reading per request
    sealer = sealer or Sealer(keys.sealing_public)
    try:
        return [_admit_valid(p, p.type, system, keys, latest, sealer) for p in posted]
    except NotAdmitted:
        return None


def _admit_valid(
    posted: PostedEvent[Any],
    event_type: str,
    system: ChannelSystem,
    keys: Keys,
    latest: datetime,
    sealer: Sealer,
) -> Admitted:
    """The checks a validated event still has to pass, then the record to publish. `latest`
    is the latest event time accepted (now plus the tolerance for clocks running ahead)."""
    problems = _personal_data_in(_validated_strings(posted))
    subject = posted.data.subject()
    if posted.subject is not None and posted.subject != subject:
        problems.append(
            FieldProblem("/subject", f"must be the case id, else the contact id: {subject!r}")
        )
    if posted.time > latest:
        problems.append(FieldProblem("/time", "lies in the future; give when it happened"))
    if problems:
        raise NotAdmitted(422, problems)
    refusal = system.may_post(
        source=posted.source, event_type=event_type, municipality=posted.municipality
    )
    if refusal:
        raise NotAdmitted(403, [FieldProblem("", refusal)])

    data = posted.data
    if isinstance(data.__dict__.get("resident"), ResidentIn):
        fields = {
            **data.__dict__,
            "resident": _resident_ref(data.resident, keys, sealer),
        }
        data = CATALOG[event_type].model_construct(**fields)  # every field was validated above
    # Without a resident the posted data (a subclass of the catalog model) serialises to exactly
    # the catalog model's JSON, so it is used as it is. The record is framed here as
    # `schemas.envelope.encode` frames an envelope (a unit test holds the two byte-equal): the
    # hot path validates each event once and builds no second model.
    subject_bytes = subject.encode()
    return Admitted(
        posted.id,
        posted.municipality,
        KafkaRecord(
            topic=_TOPIC[event_type],
            key=subject_bytes,
            value=data.__pydantic_serializer__.to_json(data, exclude_none=True),
            headers=binary_headers(
                id=posted.id.encode(),
                source=posted.source.encode(),
                type=event_type.encode(),
                time=posted.time.isoformat().encode(),
                subject=subject_bytes,
                municipality=posted.municipality.encode(),
            ),
        ),
    )
