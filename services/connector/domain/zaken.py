"""Zaken: what changed in a zaak since the connector last saw it, as Servicepuls case events.

A notification only says that a zaak changed. The connector fetches the zaak as it is now and
compares it with what it knew (`ZaakState`, kept in its own table): new statuses, a suspension
begun or ended (no source emits "resumed": the end of an opschorting shows only as `indicatie`
turning false), a verlenging, the eindstatus. Comparing states rather than replaying messages
makes repeated and out-of-order notifications harmless: a status notification heard before the
zaak's create notification still opens the case first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from services.connector.domain.drafts import Draft, event_id, resident
from services.connector.domain.klantcontacten import agreed_addresses, partij_addresses
from services.connector.domain.mapping import Mapping, NotADuration, iso_duration
from services.connector.domain.resources import (
    AuditTrail,
    Partij,
    Resultaat,
    ResultaatType,
    Rol,
    Status,
    StatusType,
    Zaak,
    ZaakType,
)


class UnmappedCaseType(LookupError):
    """A zaaktype the municipality's mapping does not name (and no default): for review."""


class ZaakState(BaseModel):
    """What the connector knew of a zaak after its last reconciliation."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    case_type: str
    channel: str
    seen_statuses: list[str] = Field(default_factory=list)
    last_status: str | None = None
    suspended: bool = False
    suspensions: int = 0
    # Opschorting changes (begun or ended) already reported, counted from the zaak's start.
    suspension_changes: int = 0
    extension: str | None = None
    extensions: int = 0
    responded: bool = False
    closed: bool = False
    cycles: int = 0  # how often the zaak was reopened after an eindstatus


@dataclass(frozen=True)
class ZaakFacts:
    """A zaak as fetched now, with what it refers to."""

    zaak: Zaak
    zaaktype: ZaakType
    statuses: list[tuple[Status, StatusType]] = field(default_factory=list)
    resultaat: tuple[Resultaat, ResultaatType] | None = None
    initiator: Rol | None = None
    # The zaak's changes from its audit trail, oldest first; None when the Zaken API does
    # not give it (then a change is dated by the notification and seen only if it lasts).
    history: list[AuditTrail] | None = None
    # The initiator as Open Klant knows them (found by BSN), with their digitale adressen.
    partij: Partij | None = None


@dataclass(frozen=True)
class SuspensionChange:
    at: datetime
    suspended: bool
    reden: str


def suspension_changes(facts: ZaakFacts) -> list[SuspensionChange] | None:
    """Every opschorting begun or ended, with when, from the audit trail (None without one).
    A suspension begun and ended between two notifications the connector worked off late is
    still reported, each at the instant it happened."""
    if facts.history is None:
        return None
    changes: list[SuspensionChange] = []
    suspended = False
    for entry in sorted(facts.history, key=lambda e: e.aanmaakdatum):
        revision = entry.wijzigingen.nieuw
        if entry.resource != "zaak" or revision is None or revision.opschorting is None:
            continue
        if not 200 <= entry.resultaat < 300:
            continue  # a refused change changed nothing
        if revision.opschorting.indicatie != suspended:
            suspended = revision.opschorting.indicatie
            changes.append(
                SuspensionChange(entry.aanmaakdatum, suspended, revision.opschorting.reden)
            )
    return changes


def extended_at(facts: ZaakFacts, duur: str) -> datetime | None:
    """When the verlenging got its present duur, from the audit trail."""
    found = None
    for entry in sorted(facts.history or [], key=lambda e: e.aanmaakdatum):
        revision = entry.wijzigingen.nieuw
        if entry.resource != "zaak" or revision is None or not 200 <= entry.resultaat < 300:
            continue
        now = revision.verlenging.duur if revision.verlenging else None
        if now == duur and found is None:
            found = entry.aanmaakdatum
        elif now != duur:
            found = None
    return found


@dataclass(frozen=True)
class Reconciled:
    drafts: list[Draft]
    state: ZaakState


def status_code(statustype: StatusType) -> str:
    """A statustype's omschrijving as a code ("In behandeling" -> in-behandeling)."""
    slug = re.sub(r"[^a-z0-9]+", "-", statustype.omschrijving.lower()).strip("-")[:64].strip("-")
    return slug or f"status-{statustype.volgnummer}"


def opened_at(zaak: Zaak, zone: ZoneInfo) -> datetime:
    """The zaak's registratiedatum (else startdatum) as the start of that day where the
    municipality is: the Zaken API keeps dates, not instants, and the term starts that day."""
    day: date = zaak.registratiedatum or zaak.startdatum
    return datetime.combine(day, time(0), tzinfo=zone)


def initiator_resident(
    rol: Rol | None, mapping: Mapping, partij: Partij | None = None
) -> dict[str, Any] | None:
    """The initiator of a zaak as intake's resident: BSN or KvK number to recognise them by,
    and where to ask them. The Zaken API keeps no consent: an address the resident agreed to
    be asked on comes from their partij in Open Klant (survey consent then true); otherwise
    the contact person's e-mail address and phone number given with the zaak are kept, with
    consent unknown, so the municipality's survey policy decides."""
    if rol is None:
        return None
    ident = rol.betrokkeneIdentificatie or {}
    bsn = ident.get("inpBsn")
    kvk = ident.get("kvkNummer") or ident.get("innNnpId")
    email, phone, consent = agreed_addresses(partij_addresses(partij), mapping)
    if not consent:
        contact = rol.contactpersoonRol
        email = contact.emailadres if contact else None
        phone = contact.telefoonnummer if contact else None
    return resident(
        bsn=bsn if isinstance(bsn, str) else None,
        identifier=f"kvk:{kvk}" if isinstance(kvk, str) and kvk else None,
        email=email,
        phone=phone,
        survey_consent=True if consent else None,
    )


def reconcile(
    facts: ZaakFacts,
    known: ZaakState | None,
    mapping: Mapping,
    *,
    changed_at: datetime,
    zone: ZoneInfo,
) -> Reconciled:
    """The case events that bring Servicepuls from `known` to `facts`, and the new state.
    `changed_at` is when the notification says the change happened: the time of changes
    the Zaken API keeps no date for (opschorting, verlenging)."""
    zaak = facts.zaak
    entry = mapping.zaaktypen.get(facts.zaaktype.identificatie)
    if entry is None and mapping.default_case_type is None:
        raise UnmappedCaseType(
            f"zaaktype {facts.zaaktype.identificatie or facts.zaaktype.url} is not in the "
            "mapping and there is no default_case_type"
        )
    case_type = entry.case_type if entry else str(mapping.default_case_type)
    channel = mapping.channel_of_zaak(zaak.communicatiekanaalNaam, zaak.communicatiekanaal)
    state = (
        known.model_copy(deep=True)
        if known
        else ZaakState(case_id=zaak.uuid, case_type=case_type, channel=channel.value)
    )
    base = {"case_id": state.case_id, "case_type": state.case_type}
    the_resident = initiator_resident(facts.initiator, mapping, facts.partij)
    drafts: list[Draft] = []

    if known is None:
        opened: dict[str, Any] = {**base, "channel": state.channel}
        if entry is not None:
            opened["party_role"] = entry.party_role.value
        if the_resident:
            opened["resident"] = the_resident
        drafts.append(
            Draft("case.opened", event_id(zaak.url, "opened"), opened_at(zaak, zone), opened)
        )

    later: list[Draft] = []
    # When this pass closed the case: a change dated before that still counts (the worker may
    # take the eindstatus' notification before the zaak update that announced the change).
    closed_now_at: datetime | None = None
    for status, statustype in sorted(facts.statuses, key=lambda s: s[0].datumStatusGezet):
        if status.url in state.seen_statuses:
            continue
        state.seen_statuses.append(status.url)
        code = status_code(statustype)
        when = status.datumStatusGezet
        if state.closed and not statustype.isEindstatus:
            state.closed = False
            state.cycles += 1
            later.append(Draft("case.reopened", event_id(status.url, "reopened"), when, {**base}))
        changed: dict[str, Any] = {**base, "status": code}
        if state.last_status:
            changed["previous_status"] = state.last_status
        later.append(Draft("case.status_changed", event_id(status.url, "status"), when, changed))
        state.last_status = code
        reacts = statustype.informeren or statustype.omschrijving.strip().lower() in {
            name.strip().lower() for name in mapping.reactie_statustypen
        }
        if reacts and not state.responded and not statustype.isEindstatus:
            state.responded = True
            later.append(
                Draft(
                    "case.responded",
                    event_id(zaak.url, "responded"),
                    when,
                    {**base, "channel": state.channel},
                )
            )
        if statustype.isEindstatus and not state.closed:
            state.closed = True
            closed_now_at = when
            result = (
                mapping.result(
                    facts.resultaat[1].omschrijving, facts.resultaat[1].omschrijvingGeneriek
                )
                if facts.resultaat
                else mapping.result(None, None)
            )
            closed: dict[str, Any] = {
                **base,
                "outcome": result.outcome.value,
                "channel": state.channel,
            }
            if result.complaint_verdict:
                closed["complaint_verdict"] = result.complaint_verdict.value
            if the_resident:
                closed["resident"] = the_resident
            later.append(Draft("case.closed", event_id(status.url, "closed"), when, closed))

    suspended_now = bool(zaak.opschorting and zaak.opschorting.indicatie)
    history = suspension_changes(facts)
    if history is not None:
        new = history[state.suspension_changes :]
        state.suspension_changes = len(history)
        if not new and suspended_now != state.suspended:
            # The audit trail lags behind the zaak: the change is dated by the notification.
            new = [SuspensionChange(changed_at, suspended_now, _reden(zaak))]
            state.suspension_changes += 1
    elif suspended_now != state.suspended and not (suspended_now and state.closed):
        new = [SuspensionChange(changed_at, suspended_now, _reden(zaak))]
        state.suspension_changes += 1
    else:
        new = []
    for change in new:
        if change.suspended == state.suspended:
            continue
        state.suspended = change.suspended
        if change.suspended:
            state.suspensions += 1
            reason = mapping.suspension_reason(change.reden)
            later.append(
                Draft(
                    "case.suspended",
                    event_id(zaak.url, f"suspended:{state.suspensions}"),
                    change.at,
                    {**base, "reason": reason.value},
                )
            )
        else:
            later.append(
                Draft(
                    "case.resumed",
                    event_id(zaak.url, f"resumed:{state.suspensions}"),
                    change.at,
                    {**base},
                )
            )

    duur = zaak.verlenging.duur if zaak.verlenging and zaak.verlenging.duur else None
    at = (extended_at(facts, duur) or changed_at) if duur else changed_at
    open_then = not state.closed or (closed_now_at is not None and at <= closed_now_at)
    if duur and duur != state.extension and open_then:
        extension = _added_extension(state.extension, duur, mapping)
        state.extension = duur
        if extension is not None:
            state.extensions += 1
            later.append(
                Draft(
                    "case.extended",
                    event_id(zaak.url, f"extended:{duur}"),
                    at,
                    {**base, "extension": extension},
                )
            )

    drafts.extend(sorted(later, key=lambda d: d.time))
    return Reconciled(drafts, state)


def _reden(zaak: Zaak) -> str:
    return zaak.opschorting.reden if zaak.opschorting else ""


def _added_extension(before: str | None, now: str, mapping: Mapping) -> dict[str, Any] | None:
    """The extension a verlenging adds: the Zaken API keeps the total (`duur`), so a longer
    duur adds the difference; a shorter or unreadable one adds nothing."""
    try:
        total = iso_duration(now, mapping.verlenging_dagen)
    except NotADuration:
        return None
    if before:
        try:
            earlier = iso_duration(before, mapping.verlenging_dagen)
        except NotADuration:
            earlier = None
        if earlier is not None and earlier.unit == total.unit:
            if total.amount <= earlier.amount:
                return None
            return {"amount": total.amount - earlier.amount, "unit": total.unit.value}
    return {"amount": total.amount, "unit": total.unit.value}
