"""The event catalog: one pydantic model per CloudEvents `type`, grouped by family.

Every model is the `data` of a CloudEvent; the envelope attributes (id, source, time, subject,
municipality) live in `schemas.envelope`. Types are versioned: a breaking change gets a new `.vN`
type and model, never an edit of an old one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field, model_validator

from schemas.common import (
    AwareDatetime,
    Channel,
    Code,
    Contract,
    Direction,
    Duration,
    PartyRole,
    Reference,
    ResidentRef,
)

PREFIX = "nl.servicepuls"


class Family(StrEnum):
    """Which topic an event family travels on."""

    INTAKE = "intake"
    NORMS = "norms"
    FEEDBACK = "feedback"


class EventData(Contract):
    """Base of every event payload. Subclasses set `event_type` and `family`."""

    event_type: ClassVar[str]
    family: ClassVar[Family]

    def subject(self) -> str:
        """The CloudEvents subject and Kafka key: the case, or else the contact."""
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# Contacts (klantcontacten)
# --------------------------------------------------------------------------------------------


class ContactReceived(EventData):
    """A written contact arrived and awaits an answer (e-mail, web form, letter, social media).

    Starts the clocks of answer norms such as "e-mail answered within 2 working days".
    """

    event_type: ClassVar[str] = f"{PREFIX}.contact.received.v1"
    family: ClassVar[Family] = Family.INTAKE

    contact_id: Reference
    channel: Channel
    party_role: PartyRole = PartyRole.INWONER
    topic: Code
    case_id: Reference | None = None
    resident: ResidentRef | None = None

    def subject(self) -> str:
        return self.case_id or self.contact_id


class ContactCompleted(EventData):
    """One finished contact on any channel, inbound or outbound.

    For phone and counter, `wait_seconds` is the queue wait and `answered` false means the caller
    hung up or the visitor left before being helped. For a written contact this is the answer
    being sent, with `in_reply_to` naming the received contact. A callback is an outbound contact
    with `in_reply_to` naming the call in which it was requested.
    """

    event_type: ClassVar[str] = f"{PREFIX}.contact.completed.v1"
    family: ClassVar[Family] = Family.INTAKE

    contact_id: Reference
    channel: Channel
    direction: Direction = Direction.INBOUND
    party_role: PartyRole = PartyRole.INWONER
    topic: Code
    started_at: AwareDatetime
    queue: Code | None = None
    wait_seconds: float | None = Field(default=None, ge=0, le=86_400)
    answered: bool = True
    handling_seconds: float | None = Field(default=None, ge=0, le=86_400)
    resolved_in_first_contact: bool | None = None
    forwarded: bool = False
    callback_requested: bool = False
    in_reply_to: Reference | None = None
    case_id: Reference | None = None
    resident: ResidentRef | None = None

    @model_validator(mode="after")
    def _abandoned_contacts_were_not_handled(self) -> ContactCompleted:
        if not self.answered and self.handling_seconds:
            raise ValueError("an abandoned contact (answered=false) has no handling_seconds")
        return self

    def subject(self) -> str:
        return self.case_id or self.contact_id


# --------------------------------------------------------------------------------------------
# Cases (zaken)
# --------------------------------------------------------------------------------------------


class CaseOutcome(StrEnum):
    RESOLVED = "resolved"
    GRANTED = "granted"
    PARTIALLY_GRANTED = "partially_granted"
    REJECTED = "rejected"
    REFERRED = "referred"
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"
    AUTO_CLOSED = "auto_closed"


class ComplaintVerdict(StrEnum):
    """Outcome of a complaint (klacht) under Awb chapter 9."""

    GEGROND = "gegrond"
    DEELS_GEGROND = "deels_gegrond"
    ONGEGROND = "ongegrond"
    NIET_ONTVANKELIJK = "niet_ontvankelijk"
    INFORMEEL_AFGEHANDELD = "informeel_afgehandeld"


class SuspensionReason(StrEnum):
    AWAITING_INFORMATION = "awaiting_information"  # Awb 4:15 lid 1 sub a
    AWAITING_ADVICE = "awaiting_advice"
    AWAITING_PAYMENT = "awaiting_payment"  # Awb 4:15 lid 1 sub b (leges)
    BY_AGREEMENT = "by_agreement"  # Awb 4:15 lid 2 sub a (instemming aanvrager)
    OTHER = "other"


class CaseEvent(EventData):
    """Fields every case event carries, so each is meaningful on its own."""

    family: ClassVar[Family] = Family.INTAKE

    case_id: Reference
    case_type: Code

    def subject(self) -> str:
        return self.case_id


class CaseOpened(CaseEvent):
    event_type: ClassVar[str] = f"{PREFIX}.case.opened.v1"

    channel: Channel
    party_role: PartyRole = PartyRole.INWONER
    topic: Code | None = None
    contact_id: Reference | None = None
    resident: ResidentRef | None = None


class CaseStatusChanged(CaseEvent):
    event_type: ClassVar[str] = f"{PREFIX}.case.status_changed.v1"

    status: Code
    previous_status: Code | None = None


class CaseResponded(CaseEvent):
    """The first reaction to the resident (ontvangstbevestiging or inhoudelijke reactie)."""

    event_type: ClassVar[str] = f"{PREFIX}.case.responded.v1"

    channel: Channel


class CaseSuspended(CaseEvent):
    """The legal term is suspended (opgeschort), e.g. Awb 4:15 while information is awaited."""

    event_type: ClassVar[str] = f"{PREFIX}.case.suspended.v1"

    reason: SuspensionReason
    legal_basis: str | None = Field(default=None, max_length=40, pattern=r"^[A-Za-z0-9 :.\-]*$")


class CaseResumed(CaseEvent):
    event_type: ClassVar[str] = f"{PREFIX}.case.resumed.v1"


class CaseExtended(CaseEvent):
    """The term is extended (verdaagd), e.g. Awb 4:14 (decision) or Awb 9:11 lid 2 (complaint)."""

    event_type: ClassVar[str] = f"{PREFIX}.case.extended.v1"

    extension: Duration
    legal_basis: str | None = Field(default=None, max_length=40, pattern=r"^[A-Za-z0-9 :.\-]*$")


class CaseClosed(CaseEvent):
    event_type: ClassVar[str] = f"{PREFIX}.case.closed.v1"

    outcome: CaseOutcome
    complaint_verdict: ComplaintVerdict | None = None
    channel: Channel | None = None
    resident: ResidentRef | None = None


class CaseReopened(CaseEvent):
    event_type: ClassVar[str] = f"{PREFIX}.case.reopened.v1"

    reason: Code | None = None


# --------------------------------------------------------------------------------------------
# Norm outcomes (servicenormen)
# --------------------------------------------------------------------------------------------


class SkippedDays(Contract):
    """Days within a term that did not count, by reason."""

    weekend: int = Field(ge=0)
    holiday: int = Field(ge=0)  # a public holiday (its name: GET /v1/clocks/{clock_id})
    closing_day: int = Field(ge=0)  # a municipal closing day


class DeadlineSummary(Contract):
    """Why the due instant is what it is, in short: the norms service's
    `GET /v1/clocks/{clock_id}` explains it day by day, in Dutch and English."""

    counted_days: int = Field(ge=0)  # days on which the term counted (from the day after receipt)
    skipped_days: SkippedDays
    suspended_days: int = Field(ge=0)  # Awb 4:15
    extension_days: float = Field(ge=0)  # extensions that count (Awb 4:14, 9:11 lid 2)
    atw_shift_days: int = Field(ge=0)  # days the Algemene termijnenwet added to the term


class NormOutcome(EventData):
    """What every norm event says about one clock of one norm for one case or contact."""

    family: ClassVar[Family] = Family.NORMS

    clock_id: str = Field(min_length=1, max_length=300)
    norm_id: Code
    norm_version: str = Field(min_length=1, max_length=40)
    subject_id: Reference
    channel: Channel | None = None
    case_type: Code | None = None
    party_role: PartyRole | None = None
    target: Duration
    compliance_goal: float = Field(ge=0, le=1)
    started_at: AwareDatetime
    due_at: AwareDatetime
    elapsed_business_seconds: float = Field(ge=0)
    paused_seconds: float = Field(ge=0)

    def subject(self) -> str:
        return self.subject_id


class NormClockStarted(NormOutcome):
    event_type: ClassVar[str] = f"{PREFIX}.norm.clock_started.v1"


class NormWarning(NormOutcome):
    """The clock passed a warning threshold (e.g. 75% of the target) and is still running."""

    event_type: ClassVar[str] = f"{PREFIX}.norm.warning.v1"

    threshold: str = Field(min_length=1, max_length=40)
    explanation: DeadlineSummary | None = None


class NormBreached(NormOutcome):
    """The due instant passed while the clock was still running: emitted at that instant."""

    event_type: ClassVar[str] = f"{PREFIX}.norm.breached.v1"

    explanation: DeadlineSummary | None = None


class NormMet(NormOutcome):
    event_type: ClassVar[str] = f"{PREFIX}.norm.met.v1"

    stopped_at: AwareDatetime
    explanation: DeadlineSummary | None = None


class NormMissed(NormOutcome):
    """The clock stopped after its due instant: final outcome, counts against compliance."""

    event_type: ClassVar[str] = f"{PREFIX}.norm.missed.v1"

    stopped_at: AwareDatetime
    explanation: DeadlineSummary | None = None


class NormCancelled(NormOutcome):
    """The clock ended neither met nor missed: the case was withdrawn, or (reason
    `stopped_before_start`) its closure is dated before its opening (docs/norms.md)."""

    event_type: ClassVar[str] = f"{PREFIX}.norm.cancelled.v1"

    reason: Code


class DataQualityProblem(StrEnum):
    """An input event dated before the start of the clock it concerns (docs/norms.md)."""

    STOPPED_BEFORE_START = "stopped_before_start"  # a closure: the clock is cancelled
    SUSPENDED_BEFORE_START = "suspended_before_start"  # ignored, as are the others
    RESUMED_BEFORE_START = "resumed_before_start"
    EXTENDED_BEFORE_START = "extended_before_start"
    REOPENED_BEFORE_START = "reopened_before_start"


class NormDataQuality(NormOutcome):
    """An input event contradicts the clock: it is dated before the clock's start. Reported
    once per such event, at the start; the clock follows the rule for `problem`."""

    event_type: ClassVar[str] = f"{PREFIX}.norm.data_quality.v1"

    problem: DataQualityProblem
    # The input event at fault: its CloudEvents source (the channel system's), id and time.
    cause_source: str = Field(min_length=1, max_length=256, pattern=r"^\S+$")
    cause_id: str = Field(min_length=1, max_length=128)
    cause_time: AwareDatetime


class RevisedOutcome(StrEnum):
    """A cycle's final outcome as compliance counts it (`data_quality`: cancelled because its
    closure is dated before its opening)."""

    MET = "met"
    MISSED = "missed"
    CANCELLED = "cancelled"
    DATA_QUALITY = "data_quality"


class RevisedCycle(Contract):
    """One cycle of a clock whose final outcome a catalog revision changed."""

    cycle: int = Field(ge=1)  # 1 from the start; one more for each restart (a reopened case)
    started_at: AwareDatetime
    # The instant of the final outcome (old or new), which decides the local day it counts on.
    stopped_at: AwareDatetime
    previous_outcome: RevisedOutcome | None = None  # None: no final outcome before
    outcome: RevisedOutcome | None = None  # None: the active version has none (yet)


class RunningCycle(Contract):
    """The clock's latest cycle while it runs, as the active catalog version sees it."""

    started_at: AwareDatetime
    due_at: AwareDatetime  # while suspended (Awb 4:15): as it stood when the term stopped
    warned: bool  # a warning threshold passed
    breached: bool  # the due instant passed


class NormRevised(EventData):
    """A catalog revision changed this clock: its final outcomes, or its due instant while it
    runs (docs/norms.md, "Recompute after a catalog change"). The outcomes of the active catalog
    version replace the earlier version's; `GET /v1/revisions/{revision_id}` lists them all."""

    family: ClassVar[Family] = Family.NORMS
    event_type: ClassVar[str] = f"{PREFIX}.norm.revised.v1"

    revision_id: Reference
    clock_id: str = Field(min_length=1, max_length=300)
    norm_id: Code
    previous_version: str | None = Field(default=None, min_length=1, max_length=40)
    norm_version: str = Field(min_length=1, max_length=40)
    subject_id: Reference
    case_type: Code | None = None
    compliance_goal: float = Field(ge=0, le=1)
    cycles: list[RevisedCycle] = Field(max_length=1000)  # those whose final outcome changed
    running: RunningCycle | None = None  # None: no cycle of the clock runs now

    def subject(self) -> str:
        return self.subject_id


# --------------------------------------------------------------------------------------------
# Satisfaction surveys (KTO)
# --------------------------------------------------------------------------------------------


class DeliveryChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    LETTER_LIST = "letter_list"
    PHONE_LIST = "phone_list"
    IN_PERSON = "in_person"


class SuppressionReason(StrEnum):
    NO_CONSENT = "no_consent"
    OPTED_OUT = "opted_out"
    THROTTLED = "throttled"
    EXCLUDED_CASE_TYPE = "excluded_case_type"
    EXCLUDED_OUTCOME = "excluded_outcome"
    NO_ADDRESS = "no_address"
    SAMPLED_OUT = "sampled_out"
    ALREADY_SURVEYED = "already_surveyed"
    NOT_SURVEYED_CHANNEL = "not_surveyed_channel"


class AnsweredVia(StrEnum):
    WEB = "web"
    EMAIL_ONE_CLICK = "email_one_click"
    IN_PERSON = "in_person"


class SurveyEvent(EventData):
    """What every survey event says: which survey, about what, reaching whom (pseudonymously)."""

    family: ClassVar[Family] = Family.FEEDBACK

    survey_id: Reference
    subject_id: Reference
    subject_kind: Code  # "case" or "contact"
    case_type: Code | None = None
    channel: Channel | None = None
    party_role: PartyRole | None = None
    resident_ref: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    def subject(self) -> str:
        return self.subject_id


class SurveyScheduled(SurveyEvent):
    event_type: ClassVar[str] = f"{PREFIX}.survey.scheduled.v1"

    delivery_channel: DeliveryChannel
    send_at: AwareDatetime


class SurveySent(SurveyEvent):
    event_type: ClassVar[str] = f"{PREFIX}.survey.sent.v1"

    delivery_channel: DeliveryChannel
    expires_at: AwareDatetime


class SurveyDeliveryFailed(SurveyEvent):
    event_type: ClassVar[str] = f"{PREFIX}.survey.delivery_failed.v1"

    delivery_channel: DeliveryChannel
    attempts: int = Field(ge=1)
    error: Code


class SurveyResponded(SurveyEvent):
    event_type: ClassVar[str] = f"{PREFIX}.survey.responded.v1"

    score: int = Field(ge=1, le=10)
    has_comment: bool = False
    may_contact: bool = False
    answered_via: AnsweredVia


class SurveyExpired(SurveyEvent):
    event_type: ClassVar[str] = f"{PREFIX}.survey.expired.v1"


class SurveySuppressed(SurveyEvent):
    event_type: ClassVar[str] = f"{PREFIX}.survey.suppressed.v1"

    reason: SuppressionReason


class SurveyFollowUpRequested(SurveyEvent):
    """A low score with permission to contact: the case system can call the resident back."""

    event_type: ClassVar[str] = f"{PREFIX}.survey.follow_up_requested.v1"

    score: int = Field(ge=1, le=10)


class ResidentErased(EventData):
    """A resident was erased on request (AVG art. 17): the record that it happened, how much went
    and on whose authority (the staff token's name). Never who: no identifier, no pseudonym."""

    event_type: ClassVar[str] = f"{PREFIX}.resident.erased.v1"
    family: ClassVar[Family] = Family.FEEDBACK

    erasure_id: Reference
    requested_by: str = Field(pattern=r"^[A-Za-z0-9._\-]{1,80}$")
    surveys_erased: int = Field(ge=0)
    open_surveys_cancelled: int = Field(ge=0)
    case_residents_erased: int = Field(ge=0)
    resident_record_erased: bool
    opt_out_kept: bool = False

    def subject(self) -> str:
        return self.erasure_id


CATALOG: dict[str, type[EventData]] = {
    model.event_type: model
    for model in (
        ContactReceived,
        ContactCompleted,
        CaseOpened,
        CaseStatusChanged,
        CaseResponded,
        CaseSuspended,
        CaseResumed,
        CaseExtended,
        CaseClosed,
        CaseReopened,
        NormClockStarted,
        NormWarning,
        NormBreached,
        NormMet,
        NormMissed,
        NormCancelled,
        NormDataQuality,
        NormRevised,
        SurveyScheduled,
        SurveySent,
        SurveyDeliveryFailed,
        SurveyResponded,
        SurveyExpired,
        SurveySuppressed,
        SurveyFollowUpRequested,
        ResidentErased,
    )
}

TOPICS: dict[Family, str] = {
    Family.INTAKE: "servicepuls.intake.v1",
    Family.NORMS: "servicepuls.norms.v1",
    Family.FEEDBACK: "servicepuls.feedback.v1",
}


def topic_for(event_type: str) -> str:
    return TOPICS[CATALOG[event_type].family]
