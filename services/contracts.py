"""Generate the checked-in contract documents from the models: `python -m services.contracts`.

Writes one JSON Schema per event type (schemas/json/), the AsyncAPI 3.0 document for the Kafka
topics (schemas/asyncapi.yaml) and the OpenAPI document of intake (docs/openapi.json). A test
fails when a checked-in file differs from what this would write, so they never go stale.

It lives outside `schemas/` because it reads the intake service (for OpenAPI): the contracts
themselves depend on nothing of the services.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from schemas.envelope import HEADER_NAMES
from schemas.events import CATALOG, TOPICS, EventData, Family

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "schemas"  # the contracts package: models, and the documents made from them
JSON_DIR = ROOT / "json"
SCHEMA_BASE = "https://servicepuls.nl/schemas/"

HEADERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 context attributes, Kafka binary content mode",
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {
            "type": "string",
            "description": "Unique per source; source + id identifies the event",
        },
        "ce_source": {
            "type": "string",
            "description": "URI-reference of the system that produced it",
        },
        "ce_type": {"type": "string"},
        "ce_time": {
            "type": "string",
            "format": "date-time",
            "description": "Event time (RFC 3339)",
        },
        "ce_subject": {
            "type": "string",
            "description": "Case id, else contact id; also the record key",
        },
        "ce_municipality": {
            "type": "string",
            "pattern": "^GM[0-9]{4}$",
            "description": "CBS municipality code (extension attribute)",
        },
        "content-type": {"type": "string", "const": "application/json"},
    },
    "required": [
        *HEADER_NAMES,
    ],
}


def _file_name(event_type: str) -> str:
    return event_type.removeprefix("nl.servicepuls.") + ".json"


def data_schema(event_type: str, model: type[EventData]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_BASE + _file_name(event_type),
        "x-cloudevents-type": event_type,
        "x-kafka-topic": TOPICS[model.family],
        **schema,
    }


def asyncapi() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {"CloudEventHeaders": HEADERS_SCHEMA}
    channels: dict[str, Any] = {}
    for family, topic in TOPICS.items():
        channel_messages = {}
        for event_type, model in sorted(CATALOG.items()):
            if model.family is not family:
                continue
            name = model.__name__
            schema = model.model_json_schema(
                mode="serialization", ref_template="#/components/schemas/{model}"
            )
            for def_name, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(def_name, definition)
            schemas[name] = schema
            messages[name] = {
                "name": event_type,
                "title": name,
                "summary": (model.__doc__ or name).strip().splitlines()[0],
                "contentType": "application/json",
                "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
                "payload": {"$ref": f"#/components/schemas/{name}"},
                "bindings": {"kafka": {"key": {"type": "string", "description": "ce_subject"}}},
            }
            channel_messages[name] = {"$ref": f"#/components/messages/{name}"}
        channels[family.value] = {
            "address": topic,
            "messages": channel_messages,
            "bindings": {"kafka": {"topic": topic, "partitions": 6}},
        }

    def operation(action: str, family: Family, who: str) -> dict[str, Any]:
        return {
            "action": action,
            "channel": {"$ref": f"#/channels/{family.value}"},
            "summary": who,
        }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Servicepuls events",
            "version": "1.0.0",
            "description": "CloudEvents 1.0 in Kafka binary mode: JSON data as the value, attributes as ce_* headers, key = case id, else contact id.",
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:9092", "protocol": "kafka"}},
        "channels": channels,
        "operations": {
            "intakePublishes": operation(
                "send", Family.INTAKE, "intake publishes what channel systems post"
            ),
            "normsConsumesIntake": operation(
                "receive", Family.INTAKE, "norms starts, pauses and stops clocks"
            ),
            "normsPublishes": operation("send", Family.NORMS, "norms publishes clock outcomes"),
            "feedbackConsumesIntake": operation(
                "receive", Family.INTAKE, "feedback surveys closed cases and contacts"
            ),
            "feedbackPublishes": operation(
                "send", Family.FEEDBACK, "feedback publishes the survey lifecycle"
            ),
            "metricsConsumesIntake": operation(
                "receive", Family.INTAKE, "metrics counts contacts and cases"
            ),
            "metricsConsumesNorms": operation(
                "receive", Family.NORMS, "metrics counts norm outcomes"
            ),
            "metricsConsumesFeedback": operation(
                "receive", Family.FEEDBACK, "metrics counts surveys"
            ),
        },
        "components": {"messages": messages, "schemas": schemas},
    }


def openapi() -> dict[str, Any]:
    from services.intake.bootstrap import create_app
    from services.intake.settings import IntakeSettings

    return create_app(IntakeSettings()).openapi()


def artifacts() -> dict[Path, str]:
    """Every generated file and its exact content."""
    files = {
        JSON_DIR / _file_name(t): json.dumps(data_schema(t, m), indent=2, sort_keys=True) + "\n"
        for t, m in CATALOG.items()
    }
    files[ROOT / "asyncapi.yaml"] = (
        "# Generated by `python -m services.contracts` from schemas/events.py; do not edit.\n"
        + yaml.safe_dump(asyncapi(), sort_keys=False, allow_unicode=True, width=100)
    )
    files[REPO / "docs" / "openapi.json"] = json.dumps(openapi(), indent=2, sort_keys=True) + "\n"
    return files


def main() -> int:
    check = "--check" in sys.argv
    stale = []
    expected = artifacts()
    for path, content in expected.items():
        if path.exists() and path.read_text() == content:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    orphans = [p for p in JSON_DIR.glob("*.json") if p not in expected]
    for orphan in orphans:
        stale.append(orphan)
        if not check:
            orphan.unlink()
    for path in stale:
        print(("stale: " if check else "wrote: ") + str(path.relative_to(REPO)))
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
