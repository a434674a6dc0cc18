"""The model of a municipality's customer contact: how many residents reach it on which channel,
at what hour of which day, and what happens to their questions, reports, complaints and
applications afterwards.

Figures are plausible for a Dutch municipality of 10–40 thousand inhabitants with a KCC
(klantcontactcentrum): per 10,000 inhabitants on an ordinary working day roughly 45 calls, a
dozen counter visits by appointment, a dozen e-mails and web forms, a handful of public-space
reports, a letter or two. Everything scales with the number of inhabitants. Durations are drawn
so that most promises are kept and some are not, as in real life.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time

from schemas.common import Channel

# Relative weight of each hour of the day (0..23) for a channel; multiplied by opening windows.
HourlyProfile = tuple[float, ...]

OFFICE_DAY: HourlyProfile = (
    0, 0, 0, 0, 0, 0, 0, 0,  # 00-07
    0.9, 1.5, 1.6, 1.3, 0.7, 1.0, 1.1, 1.0, 0.7,  # 08-16
    0, 0, 0, 0, 0, 0, 0,  # 17-23
)  # fmt: skip
COUNTER_DAY: HourlyProfile = (
    0, 0, 0, 0, 0, 0, 0, 0,
    0.8, 1.2, 1.2, 1.1, 0.8, 1.0, 1.1, 1.0, 0.5,
    0.6, 0.8, 0.6, 0, 0, 0, 0,  # Thursday evening opening
)  # fmt: skip
WRITTEN_DAY: HourlyProfile = (
    0.1, 0.05, 0.03, 0.02, 0.02, 0.05, 0.2, 0.5,
    1.0, 1.4, 1.4, 1.2, 1.0, 1.1, 1.1, 1.0, 0.9,
    0.8, 0.7, 0.8, 0.9, 0.8, 0.5, 0.25,
)  # fmt: skip
SOCIAL_DAY: HourlyProfile = (
    0.3, 0.15, 0.05, 0.03, 0.03, 0.05, 0.2, 0.5,
    0.8, 1.0, 1.0, 1.0, 1.2, 1.0, 1.0, 1.0, 1.0,
    1.1, 1.2, 1.4, 1.5, 1.3, 1.0, 0.6,
)  # fmt: skip
OUTDOOR_DAY: HourlyProfile = (
    0.05, 0.02, 0.01, 0.01, 0.01, 0.05, 0.3, 0.8,
    1.2, 1.4, 1.4, 1.3, 1.2, 1.2, 1.2, 1.1, 1.0,
    0.9, 0.8, 0.7, 0.6, 0.4, 0.2, 0.1,
)  # fmt: skip
LETTER_DAY: HourlyProfile = (
    0, 0, 0, 0, 0, 0, 0, 0,
    0, 1.0, 1.0, 0.5, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0,  # the post is registered in the morning
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ChannelProfile:
    """Arrivals on one channel: volume, rhythm and opening hours."""

    channel: Channel
    per_10k_per_working_day: float
    hourly: HourlyProfile
    # Monday..Sunday. Monday is the busiest day in every KCC; Friday the quietest working day.
    weekday_factor: tuple[float, ...] = (1.25, 1.05, 0.95, 1.0, 0.8, 0.0, 0.0)
    open_on_holidays: bool = False
    opens: time | None = None  # None: always open (written and digital channels)
    closes: time | None = None
    late_opening_weekday: int | None = None  # e.g. Thursday evening at the counter
    late_closes: time | None = None


CHANNELS: tuple[ChannelProfile, ...] = (
    ChannelProfile(Channel.PHONE, 45, OFFICE_DAY, opens=time(8, 30), closes=time(17, 0)),
    ChannelProfile(
        Channel.COUNTER,
        12,
        COUNTER_DAY,
        opens=time(8, 30),
        closes=time(16, 30),
        late_opening_weekday=3,
        late_closes=time(20, 0),
    ),
    ChannelProfile(
        Channel.EMAIL,
        13,
        WRITTEN_DAY,
        weekday_factor=(1.3, 1.05, 1.0, 1.0, 0.85, 0.3, 0.3),
        open_on_holidays=True,
    ),
    ChannelProfile(
        Channel.WEBFORM,
        9,
        WRITTEN_DAY,
        weekday_factor=(1.2, 1.05, 1.0, 1.0, 0.9, 0.45, 0.4),
        open_on_holidays=True,
    ),
    ChannelProfile(Channel.LETTER, 2, LETTER_DAY, weekday_factor=(1.4, 1.0, 1.0, 1.0, 0.9, 0, 0)),
    ChannelProfile(
        Channel.SOCIAL_MEDIA,
        3,
        SOCIAL_DAY,
        weekday_factor=(1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.9),
        open_on_holidays=True,
    ),
    ChannelProfile(Channel.CHAT, 4, OFFICE_DAY, opens=time(9, 0), closes=time(16, 0)),
    ChannelProfile(
        Channel.PUBLIC_SPACE_REPORT,
        7,
        OUTDOOR_DAY,
        weekday_factor=(1.35, 1.0, 1.0, 1.0, 0.95, 0.7, 0.65),
        open_on_holidays=True,
    ),
)


@dataclass(frozen=True, slots=True)
class CaseType:
    """A kind of case (zaaktype) with how it typically runs in this municipality."""

    code: str
    kind: str  # "report" (melding), "complaint" (klacht) or "application" (aanvraag)
    topics: tuple[str, ...]
    # How likely a case started on a channel is of this type, relative to the other case types
    # on that channel (a public-space report is always a melding; a web form often a permit).
    channels: dict[Channel, float] = field(default_factory=dict)
    # First reaction (ontvangstbevestiging / reactie) in office hours: median and spread.
    response_median_hours: float = 8.0
    response_sigma: float = 0.9
    # Time to close in office hours (reports) or calendar days (complaints, applications).
    close_median: float = 30.0
    close_sigma: float = 0.6
    close_in_calendar_days: bool = False
    suspend_probability: float = 0.0
    extend_probability: float = 0.0
    extension_weeks: float = 0.0
    extension_basis: str | None = None
    reopen_probability: float = 0.0
    cancel_probability: float = 0.0
    auto_close_probability: float = 0.0


CASE_TYPES: tuple[CaseType, ...] = (
    CaseType(
        "melding-openbare-ruimte",
        "report",
        ("afval", "verlichting", "groen", "bestrating", "riolering", "overlast"),
        {Channel.PUBLIC_SPACE_REPORT: 1.0, Channel.PHONE: 0.7, Channel.WEBFORM: 0.3},
        response_median_hours=8.0,
        response_sigma=1.2,  # a tail beyond 3 working days
        close_median=28.0,
        close_sigma=0.8,  # about one in ten beyond 10 working days (85 office hours)
        reopen_probability=0.03,
        cancel_probability=0.02,
        auto_close_probability=0.03,
    ),
    CaseType(
        "klacht",
        "complaint",
        ("bejegening", "afhandeling", "bereikbaarheid", "informatie"),
        {Channel.EMAIL: 0.4, Channel.WEBFORM: 0.35, Channel.LETTER: 0.15, Channel.PHONE: 0.1},
        response_median_hours=6.0,
        close_median=24.0,
        close_sigma=0.45,  # most within 6 weeks (42 days), some not
        close_in_calendar_days=True,
        extend_probability=0.15,
        extension_weeks=4,
        extension_basis="Awb 9:11 lid 2",
    ),
    CaseType(
        "omgevingsvergunning",
        "application",
        ("bouwen", "kappen", "uitrit"),
        {Channel.WEBFORM: 0.85, Channel.LETTER: 0.15},
        response_median_hours=10.0,
        close_median=40.0,
        close_sigma=0.35,
        close_in_calendar_days=True,
        suspend_probability=0.35,
        extend_probability=0.12,
        extension_weeks=6,
        extension_basis="Awb 4:14 lid 3",
    ),
    CaseType(
        "bijzondere-bijstand",
        "application",
        ("inkomen",),
        {Channel.WEBFORM: 0.6, Channel.COUNTER: 0.25, Channel.LETTER: 0.15},
        response_median_hours=12.0,
        close_median=30.0,
        close_sigma=0.4,
        close_in_calendar_days=True,
        suspend_probability=0.45,
        extend_probability=0.05,
        extension_weeks=4,
        extension_basis="Awb 4:14 lid 3",
    ),
    CaseType(
        # Sensitive: the survey policy excludes it, so closures here never get a survey.
        "schuldhulpverlening",
        "application",
        ("schulden",),
        {Channel.COUNTER: 0.25, Channel.WEBFORM: 0.05, Channel.PHONE: 0.05},
        response_median_hours=8.0,
        close_median=21.0,
        close_sigma=0.5,
        close_in_calendar_days=True,
        suspend_probability=0.3,
    ),
    CaseType(
        "parkeervergunning",
        "application",
        ("parkeren",),
        {Channel.WEBFORM: 0.8, Channel.COUNTER: 0.2},
        response_median_hours=4.0,
        close_median=5.0,
        close_sigma=0.7,
        close_in_calendar_days=True,
        suspend_probability=0.1,
        cancel_probability=0.02,
    ),
)


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How contacts go: the odds that shape outcomes. Tune here, not in the generator."""

    # Phone: the queue.
    phone_mean_wait_seconds: float = 14.0  # service level around the 80%-in-30-s goal
    phone_mean_patience_seconds: float = 150.0
    phone_median_handling_seconds: float = 230.0
    phone_first_contact_resolution: float = 0.72
    # Of the calls not resolved in the first contact: forwarded to a specialist, a callback
    # promised, or a case (report, complaint) registered.
    phone_forwarded: float = 0.3
    phone_callback_requested: float = 0.45
    callback_median_office_hours: float = 10.0
    callback_sigma: float = 1.2  # some later than 2 working days
    # Counter: appointments, so a short wait.
    counter_mean_wait_seconds: float = 240.0
    counter_no_show_leave: float = 0.02
    counter_median_handling_seconds: float = 600.0
    # Chat.
    chat_mean_wait_seconds: float = 45.0
    chat_mean_patience_seconds: float = 240.0
    # Written contacts: answer time in office hours (median, lognormal sigma).
    email_answer_median_hours: float = 9.0
    email_answer_sigma: float = 1.1  # about one in eight later than 2 working days
    webform_answer_median_hours: float = 10.0
    letter_answer_median_hours: float = 20.0
    letter_answer_sigma: float = 0.9
    social_answer_median_hours: float = 1.5
    social_answer_sigma: float = 1.0
    # Which written contacts start a case instead of a simple answer.
    email_starts_case: float = 0.08
    webform_starts_case: float = 0.45
    letter_starts_case: float = 0.35
    counter_starts_case: float = 0.08
    phone_starts_case: float = 0.4
    # Residents.
    returning_resident: float = 0.12
    survey_consent_yes: float = 0.75
    survey_consent_no: float = 0.1
    english_speaking: float = 0.05
    ondernemer: float = 0.08


DEFAULT_BEHAVIOUR = Behaviour()

# Topics per contact channel (the question's subject), for channel mix and labels.
CONTACT_TOPICS: dict[Channel, tuple[str, ...]] = {
    Channel.PHONE: ("afval", "belastingen", "reisdocumenten", "parkeren", "zorg", "vergunningen"),
    Channel.COUNTER: ("reisdocumenten", "rijbewijs", "uittreksel_brp", "verhuizing"),
    Channel.EMAIL: ("belastingen", "afval", "vergunningen", "zorg", "overig"),
    Channel.WEBFORM: ("afval", "belastingen", "overig"),
    Channel.LETTER: ("belastingen", "bezwaar", "overig"),
    Channel.SOCIAL_MEDIA: ("afval", "overlast", "overig"),
    Channel.CHAT: ("afval", "reisdocumenten", "belastingen", "overig"),
    Channel.PUBLIC_SPACE_REPORT: ("openbare_ruimte",),
}
