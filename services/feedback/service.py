"""What feedback does, in the field's words: decide on a survey when a case closes or a contact
ends, record an answer, expire a survey. Each handler runs inside the caller's transaction and
writes the events it causes to the outbox."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

import asyncpg
import structlog

from schemas.common import Channel, ContactMedium, Direction, PartyRole
from schemas.envelope import Envelope, deterministic_id, new_event
from schemas.events import (
    AnsweredVia,
    CaseClosed,
    CaseOpened,
    ContactCompleted,
    DeliveryChannel,
    ResidentErased,
    SuppressionReason,
    SurveyDeliveryFailed,
    SurveyEvent,
    SurveyExpired,
    SurveyFollowUpRequested,
    SurveyResponded,
    SurveyScheduled,
    SurveySent,
    SurveySuppressed,
)
from schemas.resident import ContactDetails
from services.common.sealing import SealError, open_sealed
from services.feedback import metrics
from services.feedback.adapters import postgres as db
from services.feedback.config import PolicyBook
from services.feedback.domain.answers import Answer
from services.feedback.domain.erasure import ResidentRefs
from services.feedback.domain.policy import (
    CASE,
    CONTACT,
    Closure,
    ResidentHistory,
    Schedule,
    SurveyPolicy,
    decide,
)
from services.feedback.domain.resident_interval import SurveyedClosure, last_surveyed_after

SOURCE = "/servicepuls/feedback"
# Statuses in which staff may record an answer: a survey not sent yet (scheduled) included.
STAFF_ANSWERABLE = ("sent", "sending", "scheduled")
log = structlog.get_logger("feedback")


def _no_policy(municipality: str) -> None:
    """A municipality this deployment does not serve: counted, logged at debug (it can be every
    event of another deployment's municipality on a shared topic)."""
    metrics.CONSUMED.labels("no_policy").inc()
    log.debug("no survey policy for municipality", municipality=municipality)


def survey_id_for(municipality: str, subject_kind: str, subject_id: str) -> uuid.UUID:
    """One survey per subject: its id follows from the subject, on every replica and replay."""
    return uuid.UUID(deterministic_id("survey", municipality, subject_kind, subject_id))


def survey_event(
    survey: Any,
    model: type[SurveyEvent],
    *,
    time: datetime,
    id_parts: tuple[str, ...],
    **fields: Any,
) -> Envelope[Any]:
    data = model(
        survey_id=str(survey["survey_id"]),
        subject_id=survey["subject_id"],
        subject_kind=survey["subject_kind"],
        case_type=survey["case_type"],
        channel=survey["channel"],
        party_role=survey["party_role"],
        resident_ref=survey["resident_ref"],
        **fields,
    )
    return new_event(
        data,
        source=SOURCE,
        municipality=survey["municipality"],
        time=time,
        id=deterministic_id(SOURCE, str(survey["survey_id"]), *id_parts),
    )


# --- closures ---------------------------------------------------------------------------------


def concerns_feedback(data: Any) -> bool:
    """Whether an intake event's data can have an effect here (`apply_intake_event`): a case
    opened with a resident, a case closed, an inbound contact without a case. Everything else
    (most of the intake topic) is passed by without a connection or a transaction; having no
    effect, it needs no dedupe mark either."""
    if isinstance(data, CaseOpened):
        return data.resident is not None
    if isinstance(data, CaseClosed):
        return True
    if isinstance(data, ContactCompleted):
        # A contact about a case is surveyed with the case; callbacks are not contacts asked for.
        return data.case_id is None and data.direction is Direction.INBOUND
    return False


async def apply_intake_event(
    conn: asyncpg.Connection,
    envelope: Envelope[Any],
    book: PolicyBook,
) -> None:
    """Apply one intake event exactly once (the dedupe mark commits with the effect)."""
    data = envelope.data
    if not concerns_feedback(data) or not await db.first_time_seen(conn, envelope.dedupe_key):
        return
    if isinstance(data, CaseOpened):
        assert data.resident is not None  # concerns_feedback
        await db.keep_case_resident(
            conn,
            municipality=envelope.municipality,
            case_id=data.case_id,
            resident_ref=data.resident.ref,
            sealed_contact=data.resident.sealed_contact,
            reachable_by=[m.value for m in data.resident.reachable_by],
            survey_consent=data.resident.survey_consent,
            language=data.resident.language.value,
            channel=data.channel.value,
            party_role=data.party_role.value,
            opened_at=envelope.time,
        )
    elif isinstance(data, CaseClosed):
        await _case_closed(conn, envelope, data, book)
    elif isinstance(data, ContactCompleted):
        await _contact_completed(conn, envelope, data, book)


async def _case_closed(
    conn: asyncpg.Connection,
    envelope: Envelope[Any],
    data: CaseClosed,
    book: PolicyBook,
) -> None:
    policy = book.for_case(envelope.municipality, data.case_type)
    if policy is None:
        _no_policy(envelope.municipality)
        return
    kept = await db.take_case_resident(conn, envelope.municipality, data.case_id)
    resident = data.resident
    facts: dict[str, Any] = {
        "channel": data.channel or (kept["channel"] if kept else None),
        "party_role": kept["party_role"] if kept else None,
    }
    if resident is not None:
        facts |= {
            "resident_ref": resident.ref,
            "sealed_contact": resident.sealed_contact,
            "reachable_by": [m.value for m in resident.reachable_by],
            "survey_consent": resident.survey_consent,
            "language": resident.language.value,
        }
    elif kept is not None:
        facts |= {
            "resident_ref": kept["resident_ref"],
            "sealed_contact": kept["sealed_contact"],
            "reachable_by": list(kept["reachable_by"]),
            "survey_consent": kept["survey_consent"],
            "language": kept["language"],
        }
    await _decide_and_record(
        conn,
        envelope,
        policy,
        subject_kind=CASE,
        subject_id=data.case_id,
        case_type=data.case_type,
        outcome=data.outcome,
        answered=True,
        **facts,
    )


async def _contact_completed(
    conn: asyncpg.Connection,
    envelope: Envelope[Any],
    data: ContactCompleted,
    book: PolicyBook,
) -> None:
    policy = book.for_contact(envelope.municipality)
    if policy is None:
        _no_policy(envelope.municipality)
        return
    resident = data.resident
    await _decide_and_record(
        conn,
        envelope,
        policy,
        subject_kind=CONTACT,
        subject_id=data.contact_id,
        case_type=None,
        outcome=None,
        answered=data.answered,
        channel=data.channel.value,
        party_role=data.party_role.value,
        resident_ref=resident.ref if resident else None,
        sealed_contact=resident.sealed_contact if resident else None,
        reachable_by=[m.value for m in resident.reachable_by] if resident else [],
        survey_consent=resident.survey_consent if resident else None,
        language=resident.language.value if resident else "nl",
    )


async def _decide_and_record(
    conn: asyncpg.Connection,
    envelope: Envelope[Any],
    policy: SurveyPolicy,
    *,
    subject_kind: str,
    subject_id: str,
    case_type: str | None,
    outcome: Any,
    answered: bool,
    channel: str | None = None,
    party_role: str | None = None,
    resident_ref: str | None = None,
    sealed_contact: str | None = None,
    reachable_by: list[str] | None = None,
    survey_consent: bool | None = None,
    language: str = "nl",
) -> None:
    municipality = envelope.municipality
    existing = await db.survey_for_subject(conn, municipality, subject_kind, subject_id)
    resident = await db.lock_resident(conn, resident_ref) if resident_ref else None
    surveyed: tuple[SurveyedClosure, ...] = ()
    if resident_ref and existing is None:
        near = await db.surveyed_near(
            conn,
            resident_ref,
            envelope.time - policy.resident_interval,
            envelope.time + policy.resident_interval,
        )
        surveyed = tuple(
            SurveyedClosure(
                survey_id=str(r["survey_id"]),
                subject_kind=r["subject_kind"],
                subject_id=r["subject_id"],
                closed_at=r["closed_at"],
                unsent=r["unsent"],
            )
            for r in near
        )
    closure = Closure(
        subject_id=subject_id,
        subject_kind=subject_kind,
        closed_at=envelope.time,
        channel=Channel(channel) if channel else None,
        case_type=case_type,
        outcome=outcome,
        answered=answered,
        resident_ref=resident_ref,
        has_contact_details=bool(sealed_contact),
        reachable_by=frozenset(ContactMedium(m) for m in reachable_by or []),
        survey_consent=survey_consent,
    )
    history = ResidentHistory(
        opted_out=bool(resident and resident["opted_out_at"]),
        last_surveyed_at=resident["last_surveyed_at"] if resident else None,
        subject_already_decided=existing is not None,
        surveyed=surveyed,
    )
    decision = decide(policy, closure, history)
    row: dict[str, Any] = {
        "survey_id": existing["survey_id"]
        if existing
        else survey_id_for(municipality, subject_kind, subject_id),
        "municipality": municipality,
        "subject_kind": subject_kind,
        "subject_id": subject_id,
        "case_type": case_type,
        "channel": channel,
        "party_role": party_role or PartyRole.INWONER.value,
        "resident_ref": resident_ref,
        "language": language,
        "decided_at": envelope.time,
        "closed_at": envelope.time,
        "low_score": policy.low_score,
        "decided_by": envelope.dedupe_key,
    }
    if isinstance(decision, Schedule):
        row |= {
            "status": "scheduled",
            "delivery_channel": decision.delivery_channel.value,
            "sealed_contact": sealed_contact,
            "send_at": decision.send_at,
            "next_attempt_at": decision.send_at,
        }
        await db.insert_survey(conn, **row)
        assert resident_ref is not None and resident is not None
        # survey.scheduled waits until the choice is final (scheduled_event): until then an
        # earlier closure of the resident, read later, may still take this survey's place.
        events = []
        if decision.replaces:
            replaced = await db.give_way(conn, [uuid.UUID(s.survey_id) for s in decision.replaces])
            events = [replaced_event(r) for r in replaced]
            metrics.REPLACED.labels(municipality).inc(len(replaced))
            for r in replaced:
                metrics.DECISIONS.labels(r["municipality"], "suppressed", "throttled").inc()
        await db.record_surveyed(
            conn,
            resident_ref,
            last_surveyed_after(envelope.time, decision.replaces, resident["last_surveyed_at"]),
        )
        metrics.DECISIONS.labels(municipality, "scheduled", "").inc()
    else:
        if existing is None:
            await db.insert_survey(
                conn, **row, status="suppressed", suppression=decision.reason.value
            )
        events = [
            survey_event(
                row,
                SurveySuppressed,
                time=envelope.time,
                id_parts=_decision_id_parts(row),
                reason=decision.reason,
            )
        ]
        metrics.DECISIONS.labels(municipality, "suppressed", decision.reason.value).inc()
    await db.enqueue(conn, events)


def _decision_id_parts(survey: Any) -> tuple[str, ...]:
    """Decision events take their ids from the survey and the closing event: a replay repeats
    them exactly, and a decision published late has the id it would have had at once. (A row
    decided before `decided_by` was kept has published its scheduled event already.)"""
    return ("decision", survey["decided_by"] or "")


def scheduled_event(survey: Any) -> Envelope[Any] | None:
    """survey.scheduled, published once the choice is final: when the dispatcher takes the
    survey to send it, or when staff record an answer before that. Until then an earlier closure
    of the resident may replace it (domain/resident_interval.py), and then the topic shows only
    what it would have shown had the earlier closure been read first. None for a row decided
    before this was so (its scheduled event went out at the decision)."""
    if not survey["decided_by"] or survey["delivery_channel"] == DeliveryChannel.IN_PERSON.value:
        return None
    return survey_event(
        survey,
        SurveyScheduled,
        time=survey["decided_at"],
        id_parts=_decision_id_parts(survey),
        delivery_channel=DeliveryChannel(survey["delivery_channel"]),
        send_at=survey["send_at"],
    )


def replaced_event(survey: Any) -> Envelope[Any]:
    """A later closure's unsent survey gave way to an earlier closure of the resident: the
    survey.suppressed (throttled) its own decision would have given had the earlier closure
    been read first — same id, same time, same content."""
    return survey_event(
        survey,
        SurveySuppressed,
        time=survey["decided_at"],
        id_parts=_decision_id_parts(survey),
        reason=SuppressionReason.THROTTLED,
    )


# --- delivery outcomes ------------------------------------------------------------------------


def sent_event(survey: Any, sent_at: datetime, expires_at: datetime) -> Envelope[Any]:
    return survey_event(
        survey,
        SurveySent,
        time=sent_at,
        id_parts=("sent",),
        delivery_channel=DeliveryChannel(survey["delivery_channel"]),
        expires_at=expires_at,
    )


def delivery_failed_event(survey: Any, at: datetime, error: str) -> Envelope[Any]:
    return survey_event(
        survey,
        SurveyDeliveryFailed,
        time=at,
        id_parts=("delivery_failed",),
        delivery_channel=DeliveryChannel(survey["delivery_channel"]),
        attempts=max(1, survey["attempts"]),
        error=error,
    )


def expired_event(survey: Any) -> Envelope[Any]:
    return survey_event(survey, SurveyExpired, time=survey["expires_at"], id_parts=("expired",))


def cancelled_event(survey: Any, at: datetime) -> Envelope[Any]:
    return survey_event(
        survey,
        SurveySuppressed,
        time=at,
        id_parts=("cancelled", "opted_out"),
        reason=SuppressionReason.OPTED_OUT,
    )


# --- answers ----------------------------------------------------------------------------------


async def record_answer(
    conn: asyncpg.Connection,
    survey_id: uuid.UUID,
    answer: Answer,
    via: AnsweredVia,
    now: datetime,
    *,
    statuses: tuple[str, ...] = ("sent",),
) -> Any | None:
    """The answer to an open survey, once: the responded event, and a follow-up request when the
    score is low and the resident allows contact. None when the survey was not open."""
    survey = await db.record_answer(
        conn,
        survey_id,
        now,
        score=answer.score,
        comment=answer.comment,
        may_contact=answer.may_contact,
        via=via.value,
        statuses=statuses,
    )
    if survey is None:
        return None
    # Answered (in person) before it was sent: the choice is final now.
    final = scheduled_event(survey) if not survey["attempts"] else None
    events = [] if final is None else [final]
    events += [
        survey_event(
            survey,
            SurveyResponded,
            time=now,
            id_parts=("responded",),
            score=answer.score,
            has_comment=answer.has_comment,
            may_contact=answer.may_contact,
            answered_via=via,
        )
    ]
    if answer.may_contact and answer.score <= survey["low_score"]:
        events.append(follow_up_event(survey, now, answer.score))
    await db.enqueue(conn, events)
    metrics.RESPONSES.labels(survey["municipality"], via.value).inc()
    return survey


def follow_up_event(survey: Any, at: datetime, score: int) -> Envelope[Any]:
    return survey_event(
        survey, SurveyFollowUpRequested, time=at, id_parts=("follow_up",), score=score
    )


async def record_supplement(
    conn: asyncpg.Connection, survey_id: uuid.UUID, answer: Answer, now: datetime
) -> Any | None:
    """A remark added after a one-click score. No second responded event; a follow-up request
    when the one-click score was low and the resident now allows contact."""
    survey = await db.record_supplement(conn, survey_id, now, answer.comment, answer.may_contact)
    if survey is None:
        return None
    if answer.may_contact and survey["score"] <= survey["low_score"]:
        await db.enqueue(conn, [follow_up_event(survey, now, survey["score"])])
    return survey


async def opt_out(conn: asyncpg.Connection, resident_ref: str, now: datetime) -> int:
    """The resident never wants a survey again (the link's opt-out): their open surveys lose
    their contact details, those not sent yet are cancelled with a reason. Returns how many."""
    cancelled = await db.opt_out(conn, resident_ref, now)
    await db.enqueue(conn, [cancelled_event(r, now) for r in cancelled])
    return len(cancelled)


async def record_in_person(
    conn: asyncpg.Connection,
    *,
    municipality: str,
    subject_kind: str,
    subject_id: str,
    channel: str,
    case_type: str | None,
    party_role: str,
    answer: Answer,
    low_score: int,
    now: datetime,
) -> uuid.UUID | None:
    """An answer given at the counter or on the phone about a subject that had no survey yet:
    the subject's one survey row (in person), answered at once. None when the subject already
    has a survey that takes no answer (answered, expired, cancelled)."""
    survey_id = survey_id_for(municipality, subject_kind, subject_id)
    inserted = await db.insert_survey(
        conn,
        survey_id=survey_id,
        municipality=municipality,
        subject_kind=CASE if subject_kind == "case" else CONTACT,
        subject_id=subject_id,
        case_type=case_type,
        channel=channel,
        party_role=party_role,
        language="nl",
        status="scheduled",
        delivery_channel=DeliveryChannel.IN_PERSON.value,
        decided_at=now,
        closed_at=now,
        low_score=low_score,
    )
    if not inserted:
        existing = await db.get_survey(conn, survey_id)
        if existing is None or existing["status"] not in STAFF_ANSWERABLE:
            return None
    answered = await record_answer(
        conn, survey_id, answer, AnsweredVia.IN_PERSON, now, statuses=STAFF_ANSWERABLE
    )
    return None if answered is None else survey_id


# --- the letter and phone lists ---------------------------------------------------------------


def unseal_contact(private_key: bytes, sealed: bytes) -> ContactDetails:
    """The resident's contact details from their seal (raises SealError or ValueError)."""
    return ContactDetails.model_validate(json.loads(open_sealed(private_key, sealed)))


async def contact_list(
    conn: asyncpg.Connection, private_key: bytes, municipality: str, day: date, kind: str
) -> list[tuple[Any, ContactDetails]]:
    """The day's letter or phone list: each sent survey of that kind with the resident's contact
    details unsealed. A row whose seal cannot be opened (a rotated key) is left out and counted."""
    listed = []
    for row in await db.day_list(conn, municipality, day, kind):
        try:
            details = unseal_contact(private_key, row["sealed_contact"])
        except (SealError, ValueError):
            metrics.UNREADABLE_SEALS.labels(municipality).inc()
            log.warning("sealed contact details unreadable", survey_id=str(row["survey_id"]))
            continue
        listed.append((row, details))
    return listed


# --- erasure on request -----------------------------------------------------------------------


async def erase_resident(
    conn: asyncpg.Connection,
    municipality: str,
    refs: ResidentRefs,
    *,
    opt_out: bool,
    requested_by: str,
    now: datetime,
) -> dict[str, Any]:
    """Erase a resident (AVG art. 17) and record that it happened: an event with the counts and
    the token's name, never the identifier or the pseudonym."""
    counts = await db.erase_resident(
        conn, municipality, refs.searched, opt_out_refs=refs.as_given, opt_out=opt_out, at=now
    )
    erasure_id = str(uuid.uuid4())
    event = new_event(
        ResidentErased(erasure_id=erasure_id, requested_by=requested_by, **counts),
        source=SOURCE,
        municipality=municipality,
        time=now,
        id=erasure_id,
    )
    await db.enqueue(conn, [event])
    metrics.ERASURES.labels(municipality).inc()
    return {"erasure_id": erasure_id, **counts}
