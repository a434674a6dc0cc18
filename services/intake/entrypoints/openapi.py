"""OpenAPI request bodies and problem responses for intake, generated from the event models."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import TypeAdapter

from services.intake.domain.admission import POSTED_MODELS, PostedEvent

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"pointer": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
        "items": {"type": "array", "items": {"type": "object"}},
        "outcome": {
            "type": "string",
            "enum": ["not-written", "unknown"],
            "description": "503 only: whether the events may still be written",
        },
        "retry_safe": {"type": "boolean", "description": "503 only: retrying is safe"},
    },
    "required": ["type", "title", "status"],
}


@cache
def _event_schema() -> dict[str, Any]:
    """One CloudEvent: any of the posted event types, each with its own `data` schema."""
    variants = []
    definitions: dict[str, Any] = {}
    for event_type, model in sorted(POSTED_MODELS.items()):
        schema = TypeAdapter(PostedEvent[model]).json_schema(  # type: ignore[valid-type]
            ref_template="#/components/schemas/{model}"
        )
        definitions.update(schema.pop("$defs", {}))
        schema["properties"]["type"] = {"type": "string", "const": event_type}
        schema["title"] = event_type
        variants.append(schema)
    return {"oneOf": variants, "x-definitions": definitions}


def component_schemas() -> dict[str, Any]:
    return dict(_event_schema()["x-definitions"])


def event_request_body() -> dict[str, Any]:
    schema = {"oneOf": _event_schema()["oneOf"]}
    return {
        "required": True,
        "content": {
            "application/cloudevents+json": {"schema": schema},
            "application/json": {"schema": schema},
        },
    }


def batch_request_body() -> dict[str, Any]:
    schema = {"type": "array", "minItems": 1, "items": {"oneOf": _event_schema()["oneOf"]}}
    return {
        "required": True,
        "content": {
            "application/cloudevents-batch+json": {"schema": schema},
            "application/json": {"schema": schema},
        },
    }


def problem_responses(*, single: bool) -> dict[int | str, dict[str, Any]]:
    accepted = {
        "type": "object",
        "properties": {
            "accepted": {"type": "integer"},
            "ids": {"type": "array", "items": {"type": "string"}},
        },
    }
    problem = {"application/problem+json": {"schema": PROBLEM_SCHEMA}}
    return {
        202: {
            "description": "Durably written to Kafka",
            "content": {"application/json": {"schema": accepted}},
        },
        400: {"description": "The body is not JSON", "content": problem},
        401: {"description": "No valid bearer token", "content": problem},
        403: {
            "description": "The channel system may not post this source, type or municipality",
            "content": problem,
        },
        413: {
            "description": "Body too large"
            + ("" if single else " or too many events (at most 1000, and the system's burst)"),
            "content": problem,
        },
        422: {"description": "Invalid event(s): each problem names the field", "content": problem},
        429: {
            "description": (
                "The channel system is over its rate limit (events per second, burst); nothing "
                "of the request was accepted. Retry the same request after Retry-After seconds."
            ),
            "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
            "content": problem,
        },
        503: {
            "description": (
                "Kafka did not acknowledge the write. The problem's `outcome` says what is "
                "known: `not-written` when no event of the request reached Kafka's producer "
                "(nothing was accepted), `unknown` when the events may or may not be stored "
                "(the producer may still write them). Either way, retrying the same request "
                "after Retry-After seconds is safe (`retry_safe`): an event with the same "
                "source and id has no second effect."
            ),
            "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
            "content": problem,
        },
    }
