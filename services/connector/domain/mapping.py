"""A municipality's mapping from its case and contact systems' words to Servicepuls' codes.

One file per municipality in deploy/config/connector/mappings/ (seeded from the Catalogi API by
`python -m services.connector seed-mapping`, then reviewed). Keys are compared in lower case.
"""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.common import Channel, Code, Duration, DurationUnit, PartyRole
from schemas.events import CaseOutcome, ComplaintVerdict, SuspensionReason


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseTypeEntry(_Strict):
    case_type: Code
    party_role: PartyRole = PartyRole.INWONER
    omschrijving: str | None = None  # the zaaktype's own name, for the reviewer


class ResultEntry(_Strict):
    outcome: CaseOutcome
    complaint_verdict: ComplaintVerdict | None = None


class SuspensionRule(_Strict):
    contains: str = Field(min_length=1)
    reason: SuspensionReason


def _lower_keys(value: dict[str, object]) -> dict[str, object]:
    return {key.strip().lower(): item for key, item in value.items()}


class Mapping(_Strict):
    """deploy/config/connector/mappings/<GMxxxx>.yaml"""

    # zaaktype identificatie (Catalogi API) -> case type; versions of a zaaktype share it.
    zaaktypen: dict[str, CaseTypeEntry] = Field(default_factory=dict)
    # Used when a zaaktype is not listed; without it such a zaak is dead-lettered for review.
    default_case_type: Code | None = None
    # The zaak's communicatiekanaalNaam (or the last path segment of communicatiekanaal).
    communicatiekanalen: dict[str, Channel] = Field(default_factory=dict)
    default_channel: Channel = Channel.WEBFORM
    # resultaattype omschrijving, else its omschrijvingGeneriek -> outcome (and verdict).
    resultaten: dict[str, ResultEntry] = Field(default_factory=dict)
    default_outcome: CaseOutcome = CaseOutcome.RESOLVED
    # The opschorting's free-text reden, matched by the first rule whose word it contains.
    opschorting_redenen: list[SuspensionRule] = Field(default_factory=list)
    default_suspension_reason: SuspensionReason = SuspensionReason.AWAITING_INFORMATION
    # Statustypen (omschrijving) that count as the first reaction besides those with informeren.
    reactie_statustypen: list[str] = Field(default_factory=list)
    # What a verlenging's days are: the Zaken API says "werkbare dagen".
    verlenging_dagen: DurationUnit = DurationUnit.WORKING_DAYS
    # klantcontact.kanaal (free text in Open Klant) -> channel.
    klantcontact_kanalen: dict[str, Channel] = Field(default_factory=dict)
    default_contact_channel: Channel | None = None
    # klantcontact.onderwerp -> topic; free text, so never copied, only mapped.
    onderwerpen: dict[str, Code] = Field(default_factory=dict)
    default_topic: Code = "overig"
    # An internetaak is a callback request when its gevraagdeHandeling contains one of these.
    terugbel_handelingen: list[str] = Field(default_factory=lambda: ["terugbel", "bel terug"])
    terugbel_topic: Code = "terugbelverzoek"
    # A digitaal adres with this referentie is one the resident gave for surveys (consent);
    # addresses without it are not used unless `adressen_zonder_toestemming` is true.
    toestemming_referentie: str = "kto"
    adressen_zonder_toestemming: bool = False

    @field_validator(
        "communicatiekanalen", "resultaten", "klantcontact_kanalen", "onderwerpen", mode="before"
    )
    @classmethod
    def _keys_in_lower_case(cls, value: object) -> object:
        return _lower_keys(value) if isinstance(value, dict) else value

    def channel_of_zaak(self, naam: str | None, url: str | None) -> Channel:
        for key in (naam, url.rstrip("/").rsplit("/", 1)[-1] if url else None):
            if key and key.strip().lower() in self.communicatiekanalen:
                return self.communicatiekanalen[key.strip().lower()]
        return self.default_channel

    def result(self, omschrijving: str | None, generiek: str | None) -> ResultEntry:
        for key in (omschrijving, generiek):
            if key and key.strip().lower() in self.resultaten:
                return self.resultaten[key.strip().lower()]
        return ResultEntry(outcome=self.default_outcome)

    def suspension_reason(self, reden: str) -> SuspensionReason:
        lowered = reden.lower()
        for rule in self.opschorting_redenen:
            if rule.contains.lower() in lowered:
                return rule.reason
        return self.default_suspension_reason

    def contact_channel(self, kanaal: str) -> Channel | None:
        return self.klantcontact_kanalen.get(kanaal.strip().lower(), self.default_contact_channel)

    def topic(self, onderwerp: str) -> str:
        return self.onderwerpen.get(onderwerp.strip().lower(), self.default_topic)

    def is_callback(self, gevraagde_handeling: str) -> bool:
        lowered = gevraagde_handeling.lower()
        return any(word.lower() in lowered for word in self.terugbel_handelingen)


_ISO_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


class NotADuration(ValueError):
    pass


def iso_duration(text: str, days_unit: DurationUnit = DurationUnit.WORKING_DAYS) -> Duration:
    """An ISO 8601 duration as the Zaken and Catalogi APIs give it (P8W, P42D, P6M) in the
    units norms count in. Weeks stay weeks; days are `days_unit`; a month or year has no fixed
    length, so it counts as calendar days (a month 30, a year 365: conservative for a term)."""
    match = _ISO_DURATION.fullmatch(text.strip())
    if not match or text.strip() in ("P", "PT"):
        raise NotADuration(f"{text!r} is not an ISO 8601 duration such as P8W or P42D")
    parts = {name: int(value) for name, value in match.groupdict().items() if value}
    if not any(parts.values()):
        raise NotADuration(f"{text!r} is an empty duration")
    if set(parts) == {"weeks"}:
        return Duration(amount=parts["weeks"], unit=DurationUnit.WEEKS)
    if set(parts) == {"days"}:
        return Duration(amount=parts["days"], unit=days_unit)
    if set(parts) <= {"hours", "minutes", "seconds"}:
        seconds = timedelta(
            hours=parts.get("hours", 0),
            minutes=parts.get("minutes", 0),
            seconds=parts.get("seconds", 0),
        ).total_seconds()
        if seconds % 60 == 0:
            return Duration(amount=seconds // 60, unit=DurationUnit.MINUTES)
        return Duration(amount=seconds, unit=DurationUnit.SECONDS)
    if set(parts) & {"hours", "minutes", "seconds"}:
        raise NotADuration(f"{text!r} mixes days and hours; give whole days or weeks")
    days = (
        parts.get("years", 0) * 365
        + parts.get("months", 0) * 30
        + parts.get("weeks", 0) * 7
        + parts.get("days", 0)
    )
    return Duration(amount=days, unit=DurationUnit.CALENDAR_DAYS)
