"""An event the connector is about to admit through intake, and how its id is derived.

Ids are derived from the resource and the change (a UUID 5 of both), so a notification heard
twice, or a zaak reconciled again after a crash, yields the same event: intake's contract
(`source` + `id` unique) makes the repeat harmless everywhere downstream.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from schemas.envelope import SPECVERSION
from schemas.events import PREFIX
from schemas.resident import ResidentIn


def event_id(resource_url: str, change: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{resource_url}#{change}"))


@dataclass(frozen=True, slots=True)
class Draft:
    """One event: its short type (e.g. `case.opened`), id, event time and data as posted."""

    type: str
    id: str
    time: datetime
    data: dict[str, Any]

    def document(self, *, source: str, municipality: str) -> dict[str, Any]:
        """The CloudEvent in structured JSON, as a channel system would post it to intake."""
        return {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": source,
            "type": f"{PREFIX}.{self.type}.v1",
            "time": self.time.isoformat(),
            "municipality": municipality,
            "datacontenttype": "application/json",
            "data": self.data,
        }


def resident(
    *,
    identifier: str | None = None,
    bsn: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    survey_consent: bool | None = None,
) -> dict[str, Any] | None:
    """The resident as intake takes them (plaintext, sealed by admission), keeping only the
    values intake accepts: an address in a form intake refuses is left out, not the event."""
    fields: dict[str, Any] = {}
    for name, value in (("bsn", bsn), ("email", email), ("phone", phone)):
        if not value:
            continue
        try:
            ResidentIn.model_validate({name: value})
        except ValidationError:
            continue
        fields[name] = value
    if identifier:
        fields["identifier"] = identifier[:64]
    if not fields:
        return None
    if survey_consent is not None:
        fields["survey_consent"] = survey_consent
    return fields
