"""Klantinteracties: a klantcontact as `contact.completed`, an internetaak as a callback.

Open Klant keeps `kanaal` and `onderwerp` as free text: both are mapped through the
municipality's mapping, never copied (an onderwerp can name a person). The resident's digital
addresses go into the resident part, which intake seals for the feedback service, and only
where the resident agreed. The Klantinteracties API 0.9 has no consent field: a digitaal adres
carries a machine-readable tag (`referentie`), and the one the mapping names
(`toestemming_referentie`) marks an address given to be asked on. Such addresses are given in a
contact (by its betrokkene) or kept on the resident's partij "for future contact with the
municipality"; a partij that is not `indicatieActief` may not be contacted through its data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from services.connector.domain.drafts import Draft, event_id, resident
from services.connector.domain.mapping import Mapping
from services.connector.domain.resources import (
    Betrokkene,
    DigitaalAdres,
    InterneTaak,
    Klantcontact,
    Partij,
)

_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-/]{0,127}$")


class UnmappedChannel(LookupError):
    """A klantcontact kanaal the mapping does not name (and no default): for review."""


def _zaak_of(klantcontact: Klantcontact) -> str | None:
    """The zaak a contact was about, through its onderwerpobject (codeObjecttype `zaak`)."""
    for subject in klantcontact.expand.gingOverOnderwerpobjecten:
        ident = subject.onderwerpobjectidentificator
        if ident and ident.codeObjecttype.lower() == "zaak" and _REFERENCE.match(ident.objectId):
            return ident.objectId
    return None


def klant_of(klantcontact: Klantcontact) -> Betrokkene | None:
    """The betrokkene with rol `klant`: the resident the contact was with."""
    for betrokkene in klantcontact.expand.hadBetrokkenen:
        if betrokkene.rol == "klant":
            return betrokkene
    return None


def agreed_addresses(
    addresses: Iterable[DigitaalAdres], mapping: Mapping
) -> tuple[str | None, str | None, bool]:
    """The first e-mail address and phone number the resident agreed to be asked on (the
    digitaal adres tagged with the mapping's `toestemming_referentie`), and whether any was."""
    email = phone = None
    consent = False
    for address in addresses:
        agreed = address.referentie.strip().lower() == mapping.toestemming_referentie.lower()
        if not (agreed or mapping.adressen_zonder_toestemming):
            continue
        consent = consent or agreed
        if address.soortDigitaalAdres == "email" and email is None:
            email = address.adres
        elif address.soortDigitaalAdres == "telefoonnummer" and phone is None:
            phone = address.adres
    return email, phone, consent


def partij_addresses(partij: Partij | None) -> list[DigitaalAdres]:
    """The addresses a partij gave for future contact; none of a partij that is not active
    (Klantinteracties API: "Gegevens van niet-actieve partijen mogen hiervoor niet worden
    gebruikt")."""
    if partij is None or not partij.indicatieActief:
        return []
    return list(partij.expand.digitaleAdressen or [])


def betrokkene_resident(
    betrokkene: Betrokkene | None, mapping: Mapping, partij: Partij | None = None
) -> dict[str, Any] | None:
    """The betrokkene's e-mail address and phone number where they agreed to be asked: those
    given in this contact (the betrokkene's own) first, then those of the partij they were."""
    if betrokkene is None:
        return None
    email, phone, consent = agreed_addresses(
        [*betrokkene.expand.digitaleAdressen, *partij_addresses(partij)], mapping
    )
    if email is None and phone is None:
        return None
    return resident(email=email, phone=phone, survey_consent=True if consent else None)


def contact_completed(
    klantcontact: Klantcontact, mapping: Mapping, partij: Partij | None = None
) -> Draft:
    channel = mapping.contact_channel(klantcontact.kanaal)
    if channel is None:
        raise UnmappedChannel(
            f"klantcontact kanaal {klantcontact.kanaal[:40]!r} is not in the mapping and there "
            "is no default_contact_channel"
        )
    klant = klant_of(klantcontact)
    data: dict[str, Any] = {
        "contact_id": klantcontact.uuid,
        "channel": channel.value,
        # The klant started the contact, or the municipality reached out to them.
        "direction": "inbound" if klant is None or klant.initiator else "outbound",
        "topic": mapping.topic(klantcontact.onderwerp),
        "started_at": klantcontact.plaatsgevondenOp.isoformat(),
        "answered": klantcontact.indicatieContactGelukt is not False,
    }
    case_id = _zaak_of(klantcontact)
    if case_id:
        data["case_id"] = case_id
    person = betrokkene_resident(klant, mapping, partij)
    if person:
        data["resident"] = person
    return Draft(
        "contact.completed",
        event_id(klantcontact.url, "completed"),
        klantcontact.plaatsgevondenOp,
        data,
    )


def callback(taak: InterneTaak, mapping: Mapping, *, changed_at: datetime) -> list[Draft]:
    """A callback request (a new internetaak asking to call back) and, once `verwerkt`, the
    call that answered it: the two ends of the callback norm's clock. Other internetaken are
    not callbacks and give nothing."""
    if not mapping.is_callback(taak.gevraagdeHandeling):
        return []
    request_id = taak.uuid
    drafts = [
        Draft(
            "contact.completed",
            event_id(taak.url, "requested"),
            taak.toegewezenOp,
            {
                "contact_id": request_id,
                "channel": "phone",
                "direction": "inbound",
                "topic": mapping.terugbel_topic,
                "started_at": taak.toegewezenOp.isoformat(),
                "callback_requested": True,
            },
        )
    ]
    if taak.status == "verwerkt":
        done_at = taak.afgehandeldOp or changed_at
        drafts.append(
            Draft(
                "contact.completed",
                event_id(taak.url, "verwerkt"),
                done_at,
                {
                    "contact_id": event_id(taak.url, "verwerkt"),
                    "channel": "phone",
                    "direction": "outbound",
                    "topic": mapping.terugbel_topic,
                    "started_at": done_at.isoformat(),
                    "in_reply_to": request_id,
                },
            )
        )
    return drafts
