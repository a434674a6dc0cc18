"""A notification as the Notificaties API (1.0) delivers it, and what the connector does with it.

A notification says only *that* something changed (kanaal, resource, actie) and where
(hoofdObject, resourceUrl); the connector fetches the resource itself. Delivery is at least once
(Open Notificaties retries for about a day), so a repeated message must have no second effect:
its dedupe key is the message itself, less the kenmerken (which we neither need nor keep: the
`internetaken` kenmerken carry free text that may name a person).
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import AwareDatetime

_URL = r"^https?://\S+$"


class Notification(BaseModel):
    """The message body (Notificaties API `Message`), in the project's own names."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    kanaal: str = Field(min_length=1, max_length=50)
    hoofd_object: str = Field(alias="hoofdObject", max_length=1000, pattern=_URL)
    resource: str = Field(min_length=1, max_length=100)
    resource_url: str = Field(alias="resourceUrl", max_length=1000, pattern=_URL)
    actie: str = Field(min_length=1, max_length=100)
    aanmaakdatum: AwareDatetime

    def dedupe_key(self) -> str:
        """The same message delivered again gives the same key."""
        parts = (
            self.kanaal,
            self.hoofd_object,
            self.resource,
            self.resource_url,
            self.actie,
            self.aanmaakdatum.isoformat(),
        )
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class Feed(StrEnum):
    """What the worker does with a queued notification."""

    ZAAK = "zaak"  # reconcile the zaak (hoofdObject) with what the connector knew of it
    KLANTCONTACT = "klantcontact"
    INTERNETAAK = "internetaak"


# (kanaal, resource) -> the acties that change something Servicepuls reports, and the feed.
# Everything else (documents, zaakobjecten, destroy, the Notificaties API's own test message)
# is acknowledged and counted, never queued and never an error: a 4xx or 5xx would only make
# Open Notificaties retry it for a day.
ROUTES: dict[tuple[str, str], tuple[frozenset[str], Feed]] = {
    ("zaken", "zaak"): (frozenset({"create", "update", "partial_update"}), Feed.ZAAK),
    ("zaken", "status"): (frozenset({"create"}), Feed.ZAAK),
    ("zaken", "resultaat"): (frozenset({"create", "update"}), Feed.ZAAK),
    ("klantcontacten", "klantcontact"): (frozenset({"create", "update"}), Feed.KLANTCONTACT),
    ("internetaken", "internetaak"): (
        frozenset({"create", "update", "partial_update"}),
        Feed.INTERNETAAK,
    ),
}
KNOWN_KANALEN = frozenset(kanaal for kanaal, _ in ROUTES)


def feed_for(notification: Notification) -> Feed | None:
    """The feed a notification goes to, or None when it is acknowledged and ignored."""
    return feed_of(notification.kanaal, notification.resource, notification.actie)


def feed_of(kanaal: str, resource: str, actie: str) -> Feed | None:
    route = ROUTES.get((kanaal, resource))
    if route is None or actie not in route[0]:
        return None
    return route[1]


def kanaal_label(kanaal: str) -> str:
    """A bounded metric label for a kanaal named by the sender."""
    return kanaal if kanaal in KNOWN_KANALEN else "other"
