"""The staff API (bearer token, scoped per municipality and capability): answers given in
person, erasure on request, the day's letter and phone lists. Every request outside a token's
scope is refused with 403 and logged without what it was about (docs/security.md)."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import date
from typing import Annotated, Any, NoReturn

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.common import (
    Channel,
    Code,
    MunicipalityCode,
    PartyRole,
    Reference,
    is_valid_bsn,
)
from schemas.events import AnsweredVia, DeliveryChannel
from services.feedback import metrics
from services.feedback import service as svc
from services.feedback.adapters import postgres as db
from services.feedback.config import Capability, StaffToken
from services.feedback.domain.answers import MAX_COMMENT_CHARS, InvalidAnswer, parse_answer
from services.feedback.domain.erasure import resident_refs
from services.feedback.domain.tokens import sign_link
from services.feedback.messages import survey_links
from services.feedback.ratelimit import Limits

log = structlog.get_logger("feedback")


class StaffAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=1, le=10)
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)
    may_contact: bool = False


class InPersonAnswer(StaffAnswer):
    """An answer given at the counter or on the phone, without a survey sent beforehand."""

    municipality: MunicipalityCode
    subject_kind: Code = Field(pattern=r"^(case|contact)$")
    subject_id: Reference
    channel: Channel
    case_type: Code | None = None
    party_role: PartyRole = PartyRole.INWONER


DUTCH_PHONE = re.compile(r"(\+31|0031|0)[1-9][0-9]{8}")


class ErasureRequest(BaseModel):
    """Erase a resident on request (AVG art. 17) by any identifier staff hold. The identifiers
    are turned into pseudonyms at once; they are never stored, logged or echoed back."""

    model_config = ConfigDict(extra="forbid")

    municipality: MunicipalityCode
    bsn: str | None = None
    identifier: str | None = Field(default=None, min_length=1, max_length=64)
    email: str | None = Field(default=None, min_length=3, max_length=254)
    # As staff wrote it down: spaces and hyphens anywhere (services/feedback/domain/erasure.py).
    phone: str | None = Field(default=None, max_length=32)
    # The resident also objects to being surveyed again (AVG art. 21): keep only that.
    opt_out: bool = False

    @field_validator("bsn")
    @classmethod
    def _elfproef(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_bsn(value):
            raise ValueError("not a valid BSN (9 digits passing the elfproef)")
        return value

    @field_validator("phone")
    @classmethod
    def _dutch_number(cls, value: str | None) -> str | None:
        if value is not None and not DUTCH_PHONE.fullmatch(re.sub(r"[\s\-]", "", value)):
            raise ValueError("not a Dutch phone number (0, +31 or 0031 and 9 digits)")
        return value

    @model_validator(mode="after")
    def _someone(self) -> ErasureRequest:
        if not (self.bsn or self.identifier or self.email or self.phone):
            raise ValueError("give at least one of bsn, identifier, email or phone")
        return self


def staff_api(ctx: Any) -> APIRouter:
    limits: Limits = ctx.limits

    def staff(request: Request) -> StaffToken:
        # A caller who keeps presenting unknown tokens is stopped before guessing further.
        limits.check_failed_lookups(request)
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        who = ctx.staff_tokens.who(token.strip()) if scheme.lower() == "bearer" else None
        if who is None:
            limits.failed_lookup(request)
            metrics.STAFF_REFUSED.labels("unauthenticated").inc()
            raise HTTPException(
                401,
                "send Authorization: Bearer <staff token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        limits.check_staff(who.name)
        return who

    # Authentication first: an unauthenticated caller learns nothing about the body's shape.
    router = APIRouter(prefix="/api/v1", tags=["staff"], dependencies=[Depends(staff)])

    def refuse(
        token: StaffToken,
        request: Request,
        capability: Capability,
        municipality: str | None,
        reason: str,
    ) -> NoReturn:
        """403, logged with the token's name, the route and the municipality code: never what
        the request was about (a subject, an identifier, an address)."""
        metrics.STAFF_REFUSED.labels(reason).inc()
        route = request.scope.get("route")
        log.warning(
            "staff request outside the token's scope",
            token=token.name,
            route=getattr(route, "path", "other"),
            method=request.method,
            municipality=municipality,
            capability=capability.value,
            reason=reason,
        )
        if reason == "capability":
            raise HTTPException(403, f"token {token.name} may not {capability.value}")
        raise HTTPException(403, f"token {token.name} does not serve municipality {municipality}")

    def allow(
        token: StaffToken,
        request: Request,
        capability: Capability,
        municipality: str | None = None,
    ) -> None:
        """403 unless the token has the capability and (when given) serves the municipality."""
        if not token.may(capability):
            refuse(token, request, capability, municipality, "capability")
        if municipality is not None and not token.serves(municipality):
            refuse(token, request, capability, municipality, "municipality")

    @router.post("/surveys/{survey_id}/responses", status_code=201)
    async def record_for_survey(
        survey_id: uuid.UUID,
        body: StaffAnswer,
        request: Request,
        token: StaffToken = Depends(staff),  # noqa: B008
    ) -> dict[str, Any]:
        """Record an answer given to staff (phone list call, counter) for a survey."""
        allow(token, request, Capability.RECORD_ANSWERS)
        answer = _answer(body)
        async with ctx.pool.acquire() as conn, conn.transaction():
            survey = await db.get_survey(conn, survey_id)
            if survey is None:
                raise HTTPException(404, "no such survey")
            # Before anything is written: another municipality's survey is not this token's.
            allow(token, request, Capability.RECORD_ANSWERS, survey["municipality"])
            now = await ctx.clock.now(conn)
            answered = await svc.record_answer(
                conn,
                survey_id,
                answer,
                AnsweredVia.IN_PERSON,
                now,
                statuses=svc.STAFF_ANSWERABLE,
            )
            if answered is None:
                survey = await db.get_survey(conn, survey_id)
        ctx.outbox_wake.set()
        if answered is None:
            if survey is None:
                raise HTTPException(404, "no such survey")
            if survey["status"] == "answered":
                raise HTTPException(409, "this survey was already answered")
            raise HTTPException(410, f"this survey takes no answer (status {survey['status']})")
        return {"survey_id": str(survey_id), "status": "answered"}

    @router.post("/responses", status_code=201)
    async def record_in_person(
        body: InPersonAnswer,
        request: Request,
        token: StaffToken = Depends(staff),  # noqa: B008
    ) -> dict[str, Any]:
        """An answer given in person about a contact or case that had no survey yet."""
        allow(token, request, Capability.RECORD_ANSWERS, body.municipality)
        if ctx.book.for_contact(body.municipality) is None:  # not served by this deployment
            refuse(token, request, Capability.RECORD_ANSWERS, body.municipality, "municipality")
        answer = _answer(body)
        async with ctx.pool.acquire() as conn, conn.transaction():
            survey_id = await svc.record_in_person(
                conn,
                municipality=body.municipality,
                subject_kind=body.subject_kind,
                subject_id=body.subject_id,
                channel=body.channel.value,
                case_type=body.case_type,
                party_role=body.party_role.value,
                answer=answer,
                low_score=_low_score(ctx, body),
                now=await ctx.clock.now(conn),
            )
        if survey_id is None:
            raise HTTPException(409, "this subject already has a survey")
        ctx.outbox_wake.set()
        return {"survey_id": str(survey_id), "status": "answered"}

    @router.post("/erasures")
    async def erase(
        body: ErasureRequest,
        request: Request,
        token: StaffToken = Depends(staff),  # noqa: B008
    ) -> dict[str, Any]:
        """Erase a resident on request (AVG art. 17): their surveys in this municipality become
        anonymous aggregates, contact details, remarks and resident record go."""
        allow(token, request, Capability.ERASE, body.municipality)
        refs = resident_refs(
            ctx.keys.pseudonym,
            bsn=body.bsn,
            identifier=body.identifier,
            email=body.email,
            phone=body.phone,
        )
        async with ctx.pool.acquire() as conn, conn.transaction():
            now = await ctx.clock.now(conn)
            result = await svc.erase_resident(
                conn,
                body.municipality,
                refs,
                opt_out=body.opt_out,
                requested_by=token.name,
                now=now,
            )
        ctx.outbox_wake.set()
        log.info("resident erased", token=token.name, municipality=body.municipality, **result)
        return result

    @router.get("/lists/{municipality}/{day}/{kind}.csv")
    async def day_list(
        municipality: Annotated[str, PathParam(pattern=r"^GM[0-9]{4}$")],
        day: date,
        kind: str,
        request: Request,
        token: StaffToken = Depends(staff),  # noqa: B008
    ) -> Response:
        """Today's letter or phone list: residents without a digital address, to survey them
        personally. Contains personal data: staff only, never stored by Servicepuls as a file."""
        allow(token, request, Capability.READ_CONTACT_LIST, municipality)
        if kind not in (DeliveryChannel.LETTER_LIST.value, DeliveryChannel.PHONE_LIST.value):
            raise HTTPException(404, "kind is letter_list or phone_list")
        async with ctx.pool.acquire() as conn:
            listed = await svc.contact_list(conn, ctx.keys.sealing_private, municipality, day, kind)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                "survey_id",
                "subject_id",
                "case_type",
                "language",
                "name",
                "street",
                "postal_code",
                "city",
                "phone",
                "survey_link",
                "expires_at",
            ]
        )
        for row, details in listed:
            address = details.postal_address
            token = sign_link(ctx.link_key, row["survey_id"], row["expires_at"])
            writer.writerow(
                [
                    str(row["survey_id"]),
                    row["subject_id"],
                    row["case_type"] or "",
                    row["language"],
                    _cell(address.name if address and address.name else ""),
                    _cell(address.street if address else ""),
                    _cell(address.postal_code if address else ""),
                    _cell(address.city if address else ""),
                    _cell(details.phone or ""),
                    survey_links(ctx.settings.public_base_url, token)["page"],
                    row["expires_at"].isoformat(),
                ]
            )
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Cache-Control": "no-store",
                "Content-Disposition": f'attachment; filename="{kind}-{municipality}-{day}.csv"',
            },
        )

    return router


def _cell(value: str) -> str:
    """No spreadsheet formulas from data (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def _answer(body: StaffAnswer) -> Any:
    try:
        return parse_answer(body.score, body.comment, body.may_contact)
    except InvalidAnswer as problem:
        raise HTTPException(422, str(problem)) from problem


def _low_score(ctx: Any, body: InPersonAnswer) -> int:
    policy = (
        ctx.book.for_case(body.municipality, body.case_type)
        if body.subject_kind == "case"
        else ctx.book.for_contact(body.municipality)
    )
    return policy.low_score if policy else 5
