"""The survey decision: whether, when and how a resident is asked how it went.

A pure function of the municipality's survey policy, the facts of one closure (a case closed or a
contact at the counter or on the phone finished) and what is known about the resident's survey
history. It returns `Schedule` (send at this instant through this channel) or `Suppress` (with the
reason, so the response rate can be explained). No I/O: the same inputs give the same decision,
also when a topic is replayed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.common import Channel, ContactMedium
from schemas.events import CaseOutcome, DeliveryChannel, SuppressionReason
from services.common.calendar import BusinessCalendar
from services.feedback.domain.resident_interval import (
    Clear,
    SurveyedClosure,
    resident_interval_check,
)

CASE = "case"
CONTACT = "contact"

# How a resident's declared media map to the ways a survey can reach them.
MEDIUM_TO_DELIVERY: dict[ContactMedium, DeliveryChannel] = {
    ContactMedium.EMAIL: DeliveryChannel.EMAIL,
    ContactMedium.SMS: DeliveryChannel.SMS,
    ContactMedium.LETTER: DeliveryChannel.LETTER_LIST,
    ContactMedium.PHONE: DeliveryChannel.PHONE_LIST,
}


@dataclass(frozen=True)
class SendingHours:
    """When a survey may arrive: on these weekdays (0 = Monday), between `start` and `end` local
    time, and (when `skip_public_holidays`) not on a day the municipality's business calendar
    closes (a public holiday or a local closing day). No surveys at night or on Sundays by
    default."""

    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4, 5})
    start: time = time(9, 0)
    end: time = time(20, 0)
    skip_public_holidays: bool = True

    def __post_init__(self) -> None:
        if not self.weekdays:
            raise ValueError("sending hours need at least one weekday")
        if not self.weekdays <= set(range(7)):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        if self.start >= self.end:
            raise ValueError("sending hours must start before they end")

    @classmethod
    def always(cls) -> SendingHours:
        return cls(frozenset(range(7)), time(0, 0), time(23, 59, 59, 999999), False)


@dataclass(frozen=True)
class SurveyPolicy:
    """One municipality's rules for one case type (or for contacts)."""

    timezone: str = "Europe/Amsterdam"
    surveyed: bool = True
    delay: timedelta = timedelta(hours=4)
    sending_hours: SendingHours = field(default_factory=SendingHours)
    resident_interval: timedelta = timedelta(days=90)
    # True: only residents who said yes are surveyed. False: everyone except those who said no
    # (the resident can always opt out through the survey itself).
    require_consent: bool = False
    excluded_case_types: frozenset[str] = frozenset()
    excluded_outcomes: frozenset[CaseOutcome] = frozenset(
        {CaseOutcome.CANCELLED, CaseOutcome.WITHDRAWN, CaseOutcome.AUTO_CLOSED}
    )
    sampling_rate: float = 1.0
    # Most preferred first: "digitaal waar het kan, persoonlijk waar het moet".
    delivery_channels: tuple[DeliveryChannel, ...] = (
        DeliveryChannel.EMAIL,
        DeliveryChannel.SMS,
        DeliveryChannel.LETTER_LIST,
        DeliveryChannel.PHONE_LIST,
    )
    surveyed_contact_channels: frozenset[Channel] = frozenset({Channel.COUNTER, Channel.PHONE})
    link_valid_for: timedelta = timedelta(days=14)
    low_score: int = 5
    # The municipality's business calendar (deploy/config/calendars/): the days it closes are no
    # sending days. The default is the Dutch public holidays that close a municipal office.
    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)

    def __post_init__(self) -> None:
        if not 0.0 <= self.sampling_rate <= 1.0:
            raise ValueError("sampling_rate is a fraction between 0 and 1")
        if self.delay < timedelta(0):
            raise ValueError("delay cannot be negative")
        ZoneInfo(self.timezone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Closure:
    """What happened: a case closed or a contact finished, and what intake knew of the resident."""

    subject_id: str
    subject_kind: str  # CASE or CONTACT
    closed_at: datetime
    channel: Channel | None = None
    case_type: str | None = None
    outcome: CaseOutcome | None = None
    answered: bool = True  # contacts: false when the caller hung up in the queue
    resident_ref: str | None = None
    has_contact_details: bool = False
    reachable_by: frozenset[ContactMedium] = frozenset()
    survey_consent: bool | None = None


@dataclass(frozen=True)
class ResidentHistory:
    """What feedback remembers of a resident (by pseudonym) and of this subject."""

    opted_out: bool = False
    last_surveyed_at: datetime | None = None
    subject_already_decided: bool = False
    # The resident's other closures with a chosen survey, near this one (resident_interval.py).
    surveyed: tuple[SurveyedClosure, ...] = ()


@dataclass(frozen=True)
class Schedule:
    send_at: datetime
    delivery_channel: DeliveryChannel
    # Later closures of the resident whose unsent surveys this earlier closure takes over.
    replaces: tuple[SurveyedClosure, ...] = ()


@dataclass(frozen=True)
class Suppress:
    reason: SuppressionReason


Decision = Schedule | Suppress


def sample_point(subject_kind: str, subject_id: str) -> float:
    """A stable number in [0, 1) per subject: sampling is the same on every replay and replica."""
    digest = hashlib.sha256(f"{subject_kind}\x1f{subject_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose_delivery_channel(
    preferences: Iterable[DeliveryChannel], reachable_by: Iterable[ContactMedium]
) -> DeliveryChannel | None:
    available = {MEDIUM_TO_DELIVERY[m] for m in reachable_by}
    return next((c for c in preferences if c in available), None)


def _sending_day(day: date, hours: SendingHours, holiday: Callable[[date], bool]) -> bool:
    return day.weekday() in hours.weekdays and not (hours.skip_public_holidays and holiday(day))


def next_sending_instant(
    earliest: datetime,
    hours: SendingHours,
    zone: ZoneInfo,
    is_holiday: Callable[[date], bool] = lambda _: False,
) -> datetime:
    """The first instant at or after `earliest` inside the sending hours (local time of `zone`)."""
    local = earliest.astimezone(zone)
    for offset in range(0, 400):
        day = local.date() + timedelta(days=offset)
        if not _sending_day(day, hours, is_holiday):
            continue
        opens = datetime.combine(day, hours.start, tzinfo=zone)
        closes = datetime.combine(day, hours.end, tzinfo=zone)
        if offset == 0:
            if local < opens:
                return opens
            if local < closes:
                return earliest
            continue
        return opens
    raise ValueError("no sending day within 400 days: check the sending hours")


def decide(policy: SurveyPolicy, closure: Closure, history: ResidentHistory) -> Decision:
    """Schedule a survey for this closure, or say why not.

    Checks run from the most to the least fundamental, so a suppressed closure names the reason
    that mattered first: one survey per subject; what was closed (outcome, case type, contact
    channel); who can be reached and may be asked (opt-out, consent, address); how often this
    resident was asked lately (the earliest closure in the interval wins, by event time:
    resident_interval.py); and last the sample, so the sampled-out count is of eligible closures
    only.
    """
    if history.subject_already_decided:
        return Suppress(SuppressionReason.ALREADY_SURVEYED)
    if closure.subject_kind == CASE:
        if closure.outcome is not None and closure.outcome in policy.excluded_outcomes:
            return Suppress(SuppressionReason.EXCLUDED_OUTCOME)
        if not policy.surveyed or (
            closure.case_type is not None and closure.case_type in policy.excluded_case_types
        ):
            return Suppress(SuppressionReason.EXCLUDED_CASE_TYPE)
    else:
        if (
            not policy.surveyed
            or closure.channel not in policy.surveyed_contact_channels
            or not closure.answered
        ):
            return Suppress(SuppressionReason.NOT_SURVEYED_CHANNEL)
    if closure.resident_ref is None:
        return Suppress(SuppressionReason.NO_ADDRESS)
    if history.opted_out:
        return Suppress(SuppressionReason.OPTED_OUT)
    if closure.survey_consent is False or (
        policy.require_consent and closure.survey_consent is not True
    ):
        return Suppress(SuppressionReason.NO_CONSENT)
    channel = (
        choose_delivery_channel(policy.delivery_channels, closure.reachable_by)
        if closure.has_contact_details
        else None
    )
    if channel is None:
        return Suppress(SuppressionReason.NO_ADDRESS)
    interval = resident_interval_check(
        subject_kind=closure.subject_kind,
        subject_id=closure.subject_id,
        closed_at=closure.closed_at,
        interval=policy.resident_interval,
        surveyed=history.surveyed,
        last_surveyed_at=history.last_surveyed_at,
    )
    if not isinstance(interval, Clear):
        return Suppress(SuppressionReason.THROTTLED)
    if sample_point(closure.subject_kind, closure.subject_id) >= policy.sampling_rate:
        return Suppress(SuppressionReason.SAMPLED_OUT)
    send_at = next_sending_instant(
        closure.closed_at + policy.delay,
        policy.sending_hours,
        policy.zone,
        policy.calendar.is_holiday,
    )
    return Schedule(send_at=send_at, delivery_channel=channel, replaces=interval.replaces)


def is_low_score(policy: SurveyPolicy, score: int) -> bool:
    """A score at or below the threshold (default 5, an "onvoldoende") may ask for follow-up."""
    return score <= policy.low_score
