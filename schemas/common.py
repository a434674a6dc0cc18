"""Vocabulary shared by every event family: channels, party roles, durations, references.

Values are the field's own words. Where Dutch is the word used in practice (party roles,
complaint verdicts) the Dutch term is the value; elsewhere the code is English.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import TzInfo

# A short lower-case code such as a topic ("afval"), a queue or a case type. Bounded in length
# and alphabet so it is safe as a metric label and can never carry free text.
Code = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]
# Identifiers of cases and contacts in the channel systems; opaque, never personal data.
Reference = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-/]*$")
]
# CBS municipality code, e.g. GM0363 (Amsterdam), GM0383 (Castricum).
MunicipalityCode = Annotated[str, Field(pattern=r"^GM[0-9]{4}$")]


# Instants Servicepuls can hold. Norms keeps instants as microseconds since 1970 and its
# business calendar loads a holiday table per year (1.7 s for the year 1): an instant outside
# this range is a mistake at the source, refused rather than computed with.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _require_timezone(value: datetime) -> datetime:
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("must carry a timezone offset, e.g. 2026-03-02T09:15:00+01:00")
    if not EARLIEST <= value < LATEST:
        raise ValueError("must lie between 1970-01-01 and 2100-01-01")
    if type(value.tzinfo) is TzInfo:
        # pydantic gives every datetime it parses a tzinfo object of its own, which the cycle
        # collector tracks: a consumer holding a batch of events walked two per event on every
        # collection. The same offset as a shared `datetime.timezone` (untracked; the same
        # instant, offset, name and serialization).
        zone = _ZONES.get(offset)
        if zone is None:
            zone = UTC if not offset else timezone(offset, value.tzname())
            if len(_ZONES) < 1000:  # (offsets come from outside: bounded)
                _ZONES[offset] = zone
        value = value.replace(tzinfo=zone)
    return value


_ZONES: dict[timedelta, timezone] = {}


AwareDatetime = Annotated[datetime, AfterValidator(_require_timezone)]


def is_valid_bsn(digits: str) -> bool:
    """The elfproef for a burgerservicenummer: 9 digits, weights 9..2 and -1, sum divisible by 11."""
    if len(digits) != 9 or not digits.isdigit() or digits == "000000000":
        return False
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    return sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11 == 0


class Contract(BaseModel):
    """Base of every event payload: strict about unknown fields, immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Channel(StrEnum):
    PHONE = "phone"
    COUNTER = "counter"
    EMAIL = "email"
    WEBFORM = "webform"
    LETTER = "letter"
    SOCIAL_MEDIA = "social_media"
    CHAT = "chat"
    PUBLIC_SPACE_REPORT = "public_space_report"


# "Digitaal waar het kan": the channels a resident uses without a person in real time.
DIGITAL_CHANNELS: frozenset[Channel] = frozenset(
    {
        Channel.EMAIL,
        Channel.WEBFORM,
        Channel.SOCIAL_MEDIA,
        Channel.CHAT,
        Channel.PUBLIC_SPACE_REPORT,
    }
)


class PartyRole(StrEnum):
    INWONER = "inwoner"
    ONDERNEMER = "ondernemer"
    MAATSCHAPPELIJKE_PARTNER = "maatschappelijke_partner"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class DurationUnit(StrEnum):
    SECONDS = "seconds"
    MINUTES = "minutes"
    OFFICE_HOURS = "office_hours"
    WORKING_DAYS = "working_days"
    CALENDAR_DAYS = "calendar_days"
    WEEKS = "weeks"


class Duration(Contract):
    """An amount of (business) time, e.g. 2 working days or 8 weeks."""

    amount: float = Field(gt=0, le=10_000)
    unit: DurationUnit


class ContactMedium(StrEnum):
    """How a resident can be reached for a survey; the details themselves stay sealed."""

    EMAIL = "email"
    SMS = "sms"
    LETTER = "letter"
    PHONE = "phone"


class Language(StrEnum):
    NL = "nl"
    EN = "en"


class ResidentRef(Contract):
    """The resident as the topics know them: a pseudonym and a sealed envelope.

    `ref` is a keyed hash of the resident's identifier (computed by intake), stable across cases,
    so throttling and opt-out work without knowing who the resident is. `sealed_contact` holds the
    contact details encrypted to the feedback service's public key: only feedback can open it.
    """

    ref: str = Field(pattern=r"^[0-9a-f]{64}$")
    sealed_contact: str | None = Field(default=None, max_length=4096)
    reachable_by: list[ContactMedium] = Field(default_factory=list, max_length=4)
    survey_consent: bool | None = None
    language: Language = Language.NL
