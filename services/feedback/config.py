"""Survey policy as municipalities write it (deploy/config/surveys/<name>.yaml), turned into the
domain's `SurveyPolicy` per municipality and case type. Errors name the file and the field."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import replace
from datetime import time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.common import Channel, Code, MunicipalityCode
from schemas.events import CaseOutcome, DeliveryChannel
from services.common.calendar import BusinessCalendar
from services.common.calendar_files import load_calendars
from services.common.config import ConfigError, Municipality, load_municipalities, load_yaml_model
from services.feedback.domain.policy import SendingHours, SurveyPolicy

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: dict[str, int] = {
    d: i for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SendingHoursConfig(_Strict):
    weekdays: list[Weekday] = Field(
        default=["mon", "tue", "wed", "thu", "fri", "sat"], min_length=1
    )
    start: time = Field(default=time(9, 0), alias="from")
    end: time = Field(default=time(20, 0), alias="until")
    skip_public_holidays: bool = True

    @model_validator(mode="after")
    def _starts_before_it_ends(self) -> SendingHoursConfig:
        if self.start >= self.end:
            raise ValueError("'from' must be before 'until'")
        return self

    def to_domain(self) -> SendingHours:
        return SendingHours(
            frozenset(WEEKDAYS[d] for d in self.weekdays),
            self.start,
            self.end,
            self.skip_public_holidays,
        )


class ContactsConfig(_Strict):
    surveyed: bool = True
    channels: list[Channel] = [Channel.COUNTER, Channel.PHONE]


class CaseTypeOverride(_Strict):
    surveyed: bool | None = None
    delay_hours: float | None = Field(default=None, ge=0, le=24 * 60)
    sampling_rate: float | None = Field(default=None, ge=0, le=1)


class RetentionConfig(_Strict):
    """How long feedback keeps what it holds of this municipality's residents (docs/security.md).
    Contact details are erased long before: when the survey is answered, expires or fails."""

    # Survey rows (subject, score, dates, pseudonym) are deleted this long after the closure.
    survey_months: int = Field(default=24, ge=1, le=120)
    # Free-text remarks are blanked earlier: they are the part most likely to name someone.
    remark_months: int = Field(default=12, ge=1, le=120)
    # A resident's "never ask me again" is remembered this long after they said it.
    opt_out_months: int = Field(default=60, ge=1, le=240)

    @model_validator(mode="after")
    def _remarks_go_first(self) -> RetentionConfig:
        if self.remark_months > self.survey_months:
            raise ValueError("remark_months cannot be longer than survey_months")
        return self


class SurveyPolicyFile(_Strict):
    delay_hours: float = Field(default=4, ge=0, le=24 * 60)
    sending_hours: SendingHoursConfig = SendingHoursConfig()
    resident_interval_days: int = Field(default=90, ge=0, le=3650)
    require_consent: bool = False
    sampling_rate: float = Field(default=1.0, ge=0, le=1)
    link_valid_days: int = Field(default=14, ge=1, le=365)
    low_score: int = Field(default=5, ge=1, le=10)
    delivery_channels: list[DeliveryChannel] = Field(
        default=[
            DeliveryChannel.EMAIL,
            DeliveryChannel.SMS,
            DeliveryChannel.LETTER_LIST,
            DeliveryChannel.PHONE_LIST,
        ],
        min_length=1,
    )
    excluded_case_types: list[Code] = []
    excluded_outcomes: list[CaseOutcome] = [
        CaseOutcome.CANCELLED,
        CaseOutcome.WITHDRAWN,
        CaseOutcome.AUTO_CLOSED,
    ]
    contacts: ContactsConfig = ContactsConfig()
    case_types: dict[Code, CaseTypeOverride] = {}
    retention: RetentionConfig = RetentionConfig()

    @field_validator("delivery_channels")
    @classmethod
    def _deliverable(cls, value: list[DeliveryChannel]) -> list[DeliveryChannel]:
        if DeliveryChannel.IN_PERSON in value:
            raise ValueError("in_person is how staff record answers, not a way to send a survey")
        return value


class PolicyBook:
    """Every municipality's survey policy, resolved per case type (and for contacts), with the
    municipality's business calendar (its closing days are no sending days)."""

    def __init__(
        self,
        municipalities: dict[str, Municipality],
        files: dict[str, SurveyPolicyFile],
        calendars: dict[str, BusinessCalendar],
        *,
        delay_override: timedelta | None = None,
        always_send: bool = False,
        link_valid_override: timedelta | None = None,
    ) -> None:
        self.municipalities = municipalities
        self._files = files
        self._calendars = calendars
        self._delay_override = delay_override
        self._always_send = always_send
        self._link_valid_override = link_valid_override

    def municipality_name(self, code: str) -> str:
        found = self.municipalities.get(code)
        return found.name if found else code

    def retention(self, municipality: str) -> RetentionConfig | None:
        found = self.municipalities.get(municipality)
        return self._files[found.survey_policy].retention if found else None

    def resident_record_horizon(self) -> tuple[timedelta, timedelta]:
        """How long a resident record must outlive its last survey (the longest throttle window
        of any municipality: the record is shared by all of them) and its opt-out."""
        files = [self._files[m.survey_policy] for m in self.municipalities.values()]
        return (
            timedelta(days=max(f.resident_interval_days for f in files)),
            timedelta(days=31 * max(f.retention.opt_out_months for f in files)),
        )

    def for_case(self, municipality: str, case_type: str | None) -> SurveyPolicy | None:
        base = self._base(municipality)
        if base is None:
            return None
        policy, file = base
        override = file.case_types.get(case_type or "")
        if override is not None:
            if override.surveyed is not None:
                policy = replace(policy, surveyed=override.surveyed)
            if override.delay_hours is not None and self._delay_override is None:
                policy = replace(policy, delay=timedelta(hours=override.delay_hours))
            if override.sampling_rate is not None:
                policy = replace(policy, sampling_rate=override.sampling_rate)
        return policy

    def for_contact(self, municipality: str) -> SurveyPolicy | None:
        base = self._base(municipality)
        if base is None:
            return None
        policy, file = base
        return replace(policy, surveyed=file.contacts.surveyed)

    def _base(self, municipality: str) -> tuple[SurveyPolicy, SurveyPolicyFile] | None:
        found = self.municipalities.get(municipality)
        if found is None:
            return None
        file = self._files[found.survey_policy]
        policy = SurveyPolicy(
            timezone=found.timezone,
            surveyed=True,
            delay=self._delay_override
            if self._delay_override is not None
            else timedelta(hours=file.delay_hours),
            sending_hours=SendingHours.always()
            if self._always_send
            else file.sending_hours.to_domain(),
            resident_interval=timedelta(days=file.resident_interval_days),
            require_consent=file.require_consent,
            excluded_case_types=frozenset(file.excluded_case_types),
            excluded_outcomes=frozenset(file.excluded_outcomes),
            sampling_rate=file.sampling_rate,
            delivery_channels=tuple(file.delivery_channels),
            surveyed_contact_channels=frozenset(file.contacts.channels),
            link_valid_for=self._link_valid_override or timedelta(days=file.link_valid_days),
            low_score=file.low_score,
            calendar=self._calendars[municipality],
        )
        return policy, file


def load_policy_book(
    config_dir: Path,
    *,
    delay_override: timedelta | None = None,
    always_send: bool = False,
    link_valid_override: timedelta | None = None,
) -> PolicyBook:
    served = load_municipalities(config_dir)
    municipalities = served.by_code()
    files: dict[str, SurveyPolicyFile] = {}
    for municipality in municipalities.values():
        name = municipality.survey_policy
        if name not in files:
            files[name] = load_yaml_model(config_dir / "surveys" / f"{name}.yaml", SurveyPolicyFile)
    return PolicyBook(
        municipalities,
        files,
        # The calendar files norms and metrics read, through the same loader.
        load_calendars(config_dir, served),
        delay_override=delay_override,
        always_send=always_send,
        link_valid_override=link_valid_override,
    )


class Capability(StrEnum):
    """What a staff token may do. Each route needs one; a token lists the ones its holder needs."""

    RECORD_ANSWERS = "record_answers"  # answers given at the counter or on the phone
    READ_CONTACT_LIST = "read_contact_list"  # the day's letter/phone list (names, addresses)
    ERASE = "erase"  # erase a resident on request (AVG art. 17)


class StaffToken(_Strict):
    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._\-]+$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # The municipalities whose residents and surveys this token's holder serves.
    municipalities: list[MunicipalityCode] = Field(min_length=1)
    capabilities: list[Capability] = Field(min_length=1)

    def serves(self, municipality: str) -> bool:
        return municipality in self.municipalities

    def may(self, capability: Capability) -> bool:
        return capability in self.capabilities


class StaffTokensFile(_Strict):
    tokens: list[StaffToken] = Field(min_length=1)

    @field_validator("tokens")
    @classmethod
    def _unique(cls, value: list[StaffToken]) -> list[StaffToken]:
        for field in ("name", "sha256"):
            seen = [getattr(t, field) for t in value]
            twice = sorted({v for v in seen if seen.count(v) > 1})
            if twice:
                raise ValueError(f"two tokens with the same {field}: {', '.join(twice)}")
        return value


class StaffTokens:
    def __init__(self, tokens: list[StaffToken]) -> None:
        self._by_hash = {t.sha256: t for t in tokens}

    def who(self, presented: str) -> StaffToken | None:
        """The token presented, with its scope, or None. Compares hashes in constant time."""
        digest = hashlib.sha256(presented.encode()).hexdigest()
        found = None
        for known, token in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                found = token
        return found


def load_staff_tokens(path: Path, served: Iterable[str] | None = None) -> StaffTokens:
    """The staff tokens; with `served` (the municipalities of this deployment), a token naming
    any other municipality is refused: a token file must not reach beyond the deployment."""
    tokens = load_yaml_model(path, StaffTokensFile).tokens
    if served is not None:
        allowed = set(served)
        problems = [
            f"tokens.{i}.municipalities.{j}: {code} is not served by this deployment"
            f" (municipalities.yaml lists {', '.join(sorted(allowed))})"
            for i, token in enumerate(tokens)
            for j, code in enumerate(token.municipalities)
            if code not in allowed
        ]
        if problems:
            raise ConfigError(f"{path}: {'; '.join(problems)}")
    return StaffTokens(tokens)


__all__ = [
    "Capability",
    "ConfigError",
    "PolicyBook",
    "StaffToken",
    "StaffTokens",
    "load_policy_book",
    "load_staff_tokens",
]
