"""CloudEvents 1.0 envelope and its Kafka binary-mode codec: the one place events are framed.

On Kafka an event is a record whose value is the JSON `data` and whose headers carry the context
attributes as `ce_*` (CloudEvents Kafka protocol binding, binary content mode), plus
`content-type: application/json`. The record key is the event subject (case id, else contact id),
so one case's events stay in one partition, in order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.common import AwareDatetime, MunicipalityCode
from schemas.events import CATALOG, EventData, topic_for

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
# CloudEvents extension attribute for the municipality (CBS code). Extension names are lower-case
# alphanumerics of at most 20 characters.
MUNICIPALITY_ATTRIBUTE = "municipality"

D = TypeVar("D", bound=EventData)


class UnknownEventType(ValueError):
    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


class Envelope(BaseModel, Generic[D]):
    """A CloudEvent: context attributes plus typed `data`.

    `source` + `id` identify the event: a repeated event is the same event. `time` is when it
    happened at the channel (event time), not when Servicepuls received it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: str = Field(default=SPECVERSION, pattern=r"^1\.0$")
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=256, pattern=r"^\S+$")
    type: str = Field(min_length=1, max_length=128)
    time: AwareDatetime
    subject: str = Field(min_length=1, max_length=128)
    municipality: MunicipalityCode
    datacontenttype: str = CONTENT_TYPE
    data: D

    @property
    def dedupe_key(self) -> str:
        """`source` + `id`: the identity of the event across redelivery and replay."""
        return f"{self.source}\x1f{self.id}"

    @property
    def topic(self) -> str:
        return topic_for(self.type)


def new_event(
    data: D,
    *,
    source: str,
    municipality: str,
    time: datetime,
    id: str | None = None,
) -> Envelope[D]:
    """Frame `data` as a CloudEvent; `id` defaults to a random UUID (give a deterministic one
    when the same decision may be taken again, e.g. on replay, so it dedupes downstream)."""
    return Envelope[type(data)](  # type: ignore[misc]
        id=id or str(uuid.uuid4()),
        source=source,
        type=data.event_type,
        time=time,
        subject=data.subject(),
        municipality=municipality,
        data=data,
    )


def deterministic_id(*parts: str) -> str:
    """A stable event id derived from what the event is about (same decision, same id)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "servicepuls:" + "\x1f".join(parts)))


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


# The binary-mode headers of every record, in this order (the one list: producers frame with
# `binary_headers`, the contract documents describe these).
HEADER_NAMES = (
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_subject",
    f"ce_{MUNICIPALITY_ATTRIBUTE}",
    "content-type",
)
_SPECVERSION_PAIR = ("ce_specversion", SPECVERSION.encode())
_CONTENT_TYPE_PAIR = ("content-type", CONTENT_TYPE.encode())
# Source, type and municipality repeat across events: their pairs are made once and shared (a
# norms outbox row, marshalled, stores a shared object once). Bounded: the values come from
# outside.
_SHARED_PAIRS: dict[tuple[str, bytes], tuple[str, bytes]] = {}
_SHARED_PAIRS_LIMIT = 10_000


def _shared(name: str, value: bytes) -> tuple[str, bytes]:
    pair = _SHARED_PAIRS.get((name, value))
    if pair is None:
        pair = (name, value)
        if len(_SHARED_PAIRS) < _SHARED_PAIRS_LIMIT:
            _SHARED_PAIRS[pair] = pair
    return pair


def binary_headers(
    *, id: bytes, source: bytes, type: bytes, time: bytes, subject: bytes, municipality: bytes
) -> list[tuple[str, bytes]]:
    """The `ce_*` and content-type headers of one event (attributes already as UTF-8 bytes;
    `time` in ISO 8601 with its offset). Every producer frames its records with this."""
    return [
        _SPECVERSION_PAIR,
        ("ce_id", id),
        _shared("ce_source", source),
        _shared("ce_type", type),
        ("ce_time", time),
        ("ce_subject", subject),
        _shared(HEADER_NAMES[6], municipality),
        _CONTENT_TYPE_PAIR,
    ]


def encode(event: Envelope[Any]) -> KafkaRecord:
    """Binary content mode: data as the value, attributes as `ce_*` headers."""
    subject = event.subject.encode()
    return KafkaRecord(
        topic=event.topic,
        key=subject,
        value=event.data.model_dump_json(exclude_none=True).encode(),
        headers=binary_headers(
            id=event.id.encode(),
            source=event.source.encode(),
            type=event.type.encode(),
            time=event.time.isoformat().encode(),
            subject=subject,
            municipality=event.municipality.encode(),
        ),
    )


def attributes_from_headers(headers: Any) -> dict[str, str]:
    """The `ce_*` attributes of a Kafka record, without the prefix (headers may be a list of
    pairs, as aiokafka gives them, or a mapping, as FastStream gives them). Runs for every
    record every consumer reads, hence the plain loop."""
    items = headers.items() if isinstance(headers, dict) else headers
    attributes: dict[str, str] = {}
    for name, raw in items:
        if name[:3] == "ce_":
            attributes[name[3:]] = raw.decode() if type(raw) is bytes else _text(raw, name[3:])
    return attributes


class NullHeader(ValueError):
    """A `ce_*` header present without a value: never read as the text "None"."""

    def __init__(self, name: str) -> None:
        super().__init__(f"header ce_{name} has no value")
        self.header = f"ce_{name}"


def _text(raw: Any, name: str = "") -> str:
    if raw is None:
        raise NullHeader(name)
    return raw.decode() if isinstance(raw, bytes | bytearray) else str(raw)


# The envelope class parametrised by each data model, made once: looking a parametrised generic
# up on every record is a measurable share of a consumer's decoding.
_ENVELOPE_OF: dict[type[Any], type[Envelope[Any]]] = {}


def _envelope_of(model: type[Any]) -> type[Envelope[Any]]:
    envelope = _ENVELOPE_OF.get(model)
    if envelope is None:
        envelope = _ENVELOPE_OF[model] = Envelope[model]  # type: ignore[valid-type]
    return envelope


def decode(headers: Any, value: bytes) -> Envelope[Any]:
    """Rebuild the typed envelope from a Kafka record; raises on anything not in the catalog."""
    attributes = attributes_from_headers(headers)
    event_type = attributes.get("type", "")
    model = CATALOG.get(event_type)
    if model is None:
        raise UnknownEventType(event_type)
    data = model.model_validate_json(value)
    return _envelope_of(model)(
        specversion=attributes.get("specversion", SPECVERSION),
        id=attributes.get("id", ""),
        source=attributes.get("source", ""),
        type=event_type,
        time=attributes.get("time", ""),
        subject=attributes.get("subject", ""),
        municipality=attributes.get(MUNICIPALITY_ATTRIBUTE, ""),
        data=data,
    )


def parse_structured(document: dict[str, Any]) -> Envelope[Any]:
    """A CloudEvent in structured JSON (as channel systems POST it) to the typed envelope.

    Raises `UnknownEventType` for a type outside the catalog and pydantic's `ValidationError`
    (with field locations) for anything else wrong.
    """
    event_type = document.get("type")
    if not isinstance(event_type, str) or event_type not in CATALOG:
        raise UnknownEventType(str(event_type))
    return Envelope[CATALOG[event_type]].model_validate(document)  # type: ignore[index]


__all__ = [
    "CONTENT_TYPE",
    "HEADER_NAMES",
    "SPECVERSION",
    "Envelope",
    "KafkaRecord",
    "NullHeader",
    "UnknownEventType",
    "ValidationError",
    "attributes_from_headers",
    "binary_headers",
    "decode",
    "deterministic_id",
    "encode",
    "new_event",
    "parse_structured",
]
