"""The survey page residents open from their message, the staff API, and /health /ready /metrics.

Forged or altered links get a plain 404; expired ones a friendly 410. Forms carry a token bound to
the link (CSRF) and are checked for a foreign Origin. Answers are stored as plain text and always
rendered escaped (jinja2 autoescape).

Nothing is recorded on a GET: mail link scanners (Outlook Safe Links, virus scanners) fetch every
link in a message, so a score link (`?score=N`) only opens the form with that score chosen; the
resident's "Send" (a POST with the form token) records it.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import urlsplit

import asyncpg
import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
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
from schemas.resident import ContactDetails
from services.common.health import ALIVE, readiness
from services.common.sealing import SealError, open_sealed
from services.feedback import metrics
from services.feedback import service as svc
from services.feedback.adapters import postgres as db
from services.feedback.config import Capability, StaffToken
from services.feedback.domain.answers import MAX_COMMENT_CHARS, InvalidAnswer, parse_answer
from services.feedback.domain.erasure import resident_refs
from services.feedback.domain.policy import CASE, CONTACT
from services.feedback.domain.tokens import (
    ForgedLink,
    LinkClaim,
    form_token,
    form_token_valid,
    verify_link,
)
from services.feedback.messages import templates
from services.feedback.ratelimit import Limits, RateLimited
from services.feedback.texts import TEXTS

log = structlog.get_logger("feedback")
STATIC = Path(__file__).resolve().parents[1] / "static"
MAX_FORM_BYTES = 16 * 1024
OPEN = ("sent", "sending")  # statuses in which a survey link takes an answer
# Hidden field of the form opened from a score link in the e-mail: the answer is recorded as
# `email_one_click` (started from the mail), and a remark may still be added afterwards.
FROM_SCORE_LINK = "score_link"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # The link is a secret: never pass it on in a Referer header.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def not_found() -> PlainTextResponse:
    return PlainTextResponse("Not Found\n", status_code=404, headers=SECURITY_HEADERS)


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


def create_web_app(ctx: Any) -> FastAPI:
    """`ctx` is the composition root (`services.feedback.bootstrap.Feedback`)."""
    app = FastAPI(title="Servicepuls feedback", version="1", lifespan=ctx.lifespan)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def timing(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.PAGE_SECONDS.labels(getattr(route, "path", "other")).observe(
            time.perf_counter() - started
        )
        return response

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, Any]:
        return ALIVE

    @app.get("/ready", include_in_schema=False)
    async def ready() -> Response:
        status, body = readiness(await ctx.readiness_problems())
        return JSONResponse(body, status)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # Which field and why, never the value sent: it may be a BSN, an address or a remark.
        problems = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": problems}, 422)

    @app.exception_handler(RateLimited)
    async def too_many_requests(request: Request, exc: RateLimited) -> Response:
        # Refused before anything was read or written: the request can be sent again as it was.
        metrics.RATE_LIMITED.labels(exc.face).inc()
        headers = {"Retry-After": str(exc.retry_after)}
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"detail": f"too many requests; retry after {exc.retry_after} s"},
                429,
                headers=headers,
            )
        return PlainTextResponse(
            "Too Many Requests / Te veel verzoeken\n", 429, headers=SECURITY_HEADERS | headers
        )

    app.include_router(survey_pages(ctx))
    app.include_router(staff_api(ctx))
    return app


# --- the survey page ---------------------------------------------------------------------------


def survey_pages(ctx: Any) -> APIRouter:
    limits: Limits = ctx.limits

    def within_limits(request: Request) -> None:
        limits.check_page(request)

    router = APIRouter(include_in_schema=False, dependencies=[Depends(within_limits)])
    key: bytes = ctx.link_key

    def language(request: Request, survey: Any, posted: str | None = None) -> str:
        wanted = posted or request.query_params.get("lang")
        return (
            wanted
            if wanted in TEXTS
            else (survey["language"] if survey["language"] in TEXTS else "nl")
        )

    def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        lang = context["lang"]
        return HTMLResponse(
            templates.get_template(template).render(t=TEXTS[lang], **context),
            status_code=status,
            headers=SECURITY_HEADERS,
        )

    def base_context(request: Request, token: str, survey: Any, lang: str) -> dict[str, Any]:
        other = TEXTS[lang]["switch_lang"]
        return {
            "lang": lang,
            "municipality": ctx.book.municipality_name(survey["municipality"]),
            "action": f"/s/{token}",
            "csrf": form_token(key, token),
            "switch_url": f"/s/{token}?lang={other}",
            "errors": [],
            "error_fields": {},
        }

    async def resolve(request: Request, token: str) -> tuple[LinkClaim, Any] | None:
        try:
            claim = verify_link(key, token)
        except ForgedLink:
            limits.failed_lookup(request)
            return None
        async with ctx.pool.acquire() as conn:
            survey = await db.get_survey(conn, claim.survey_id)
        if survey is None:  # a genuine link whose survey was erased or purged
            limits.failed_lookup(request)
            return None
        return claim, survey

    def message(
        request: Request, token: str, survey: Any, lang: str, which: str, status: int
    ) -> HTMLResponse:
        t = TEXTS[lang]
        context = base_context(request, token, survey, lang)
        context["switch_url"] = None
        name = context["municipality"]
        return page(
            "message.html",
            status,
            heading=t[f"{which}_title"],
            body=t[f"{which}_body"].format(municipality=name),
            **context,
        )

    async def closed_page(
        request: Request, token: str, claim: LinkClaim, survey: Any, lang: str
    ) -> HTMLResponse | None:
        """The page for a survey that takes no answer, or None when it is open."""
        now = await ctx.clock.now()
        if survey["status"] == "answered":
            if more_allowed(survey, claim, now):
                return thanks(request, token, survey, lang, more=True)
            return message(request, token, survey, lang, "answered", 200)
        # "sending": the message can arrive before the dispatcher recorded it as sent.
        if survey["status"] not in OPEN or claim.expired(now):
            return message(request, token, survey, lang, "expired", 410)
        return None

    def more_allowed(survey: Any, claim: LinkClaim, now: Any) -> bool:
        return remark_may_follow(survey) and not claim.expired(now)

    def remark_may_follow(survey: Any) -> bool:
        """A score sent from a score link without a remark may get one afterwards, once."""
        return (
            survey["answered_via"] == AnsweredVia.EMAIL_ONE_CLICK.value
            and survey["supplemented_at"] is None
            and survey["comment"] is None
        )

    def thanks(
        request: Request,
        token: str,
        survey: Any,
        lang: str,
        *,
        more: bool,
        supplemented: bool = False,
        status: int = 200,
        error_fields: dict[str, bool] | None = None,
    ) -> HTMLResponse:
        context = base_context(request, token, survey, lang)
        context["switch_url"] = None
        context["error_fields"] = error_fields or {}
        return page(
            "thanks.html",
            status,
            score=survey["score"],
            more_allowed=more,
            supplemented=supplemented,
            **context,
        )

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        # Browsers send "null" under our no-referrer policy; the form token still guards.
        if not origin or origin == "null":
            return True
        allowed = {
            _origin(ctx.settings.public_base_url),
            f"{request.url.scheme}://{request.headers.get('host', '')}",
        }
        return origin.rstrip("/") in allowed

    async def read_form(request: Request) -> dict[str, str] | None:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
            return None
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return None
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}

    @router.api_route("/s/{token}", methods=["GET", "HEAD"])
    async def open_survey(request: Request, token: str) -> Response:
        found = await resolve(request, token)
        if found is None:
            return not_found()
        claim, survey = found
        lang = language(request, survey)
        closed = await closed_page(request, token, claim, survey, lang)
        if closed is not None:
            return closed
        context = base_context(request, token, survey, lang)
        chosen = score_from_link(request.query_params.get("score"))
        if chosen is not None:
            context["switch_url"] += f"&score={chosen}"
        return page(
            "survey.html",
            score=chosen,
            comment=None,
            may_contact=False,
            from_score_link=chosen is not None,
            **context,
        )

    @router.post("/s/{token}")
    async def answer_survey(request: Request, token: str) -> Response:
        found = await resolve(request, token)
        if found is None:
            return not_found()
        claim, survey = found
        form = await read_form(request)
        if form is None:
            return PlainTextResponse("Payload Too Large\n", 413, headers=SECURITY_HEADERS)
        lang = language(request, survey, form.get("lang"))
        if not same_origin(request) or not form_token_valid(key, token, form.get("csrf", "")):
            return PlainTextResponse("Forbidden\n", 403, headers=SECURITY_HEADERS)
        closed = await closed_page(request, token, claim, survey, lang)
        if closed is not None and survey["status"] == "answered":
            return message(request, token, survey, lang, "answered", 200)
        if closed is not None:
            return closed
        may_contact = form.get("may_contact") == "yes"
        from_score_link = form.get("from") == FROM_SCORE_LINK
        try:
            answer = parse_answer(form.get("score"), form.get("comment"), may_contact)
        except InvalidAnswer as problem:
            context = base_context(request, token, survey, lang)
            t = TEXTS[lang]
            context["errors"] = [(problem.field, t[f"error_{problem.field}"])]
            context["error_fields"] = {problem.field: True}
            score = form.get("score", "")
            return page(
                "survey.html",
                400,
                score=int(score) if score.isdigit() else None,
                comment=(form.get("comment") or "")[: MAX_COMMENT_CHARS * 2],
                may_contact=may_contact,
                from_score_link=from_score_link,
                **context,
            )
        via = AnsweredVia.EMAIL_ONE_CLICK if from_score_link else AnsweredVia.WEB
        async with ctx.pool.acquire() as conn, conn.transaction():
            now = await ctx.clock.now(conn)
            answered = await svc.record_answer(
                conn, claim.survey_id, answer, via, now, statuses=OPEN
            )
        ctx.outbox_wake.set()
        if answered is None:
            async with ctx.pool.acquire() as conn:
                survey = await db.get_survey(conn, claim.survey_id)
            if survey["status"] == "answered":
                return message(request, token, survey, lang, "answered", 200)
            return message(request, token, survey, lang, "expired", 410)
        return thanks(request, token, answered, lang, more=remark_may_follow(answered))

    @router.post("/s/{token}/more")
    async def add_remark(request: Request, token: str) -> Response:
        found = await resolve(request, token)
        if found is None:
            return not_found()
        claim, survey = found
        form = await read_form(request)
        if form is None:
            return PlainTextResponse("Payload Too Large\n", 413, headers=SECURITY_HEADERS)
        lang = language(request, survey, form.get("lang"))
        if not same_origin(request) or not form_token_valid(key, token, form.get("csrf", "")):
            return PlainTextResponse("Forbidden\n", 403, headers=SECURITY_HEADERS)
        try:
            answer = parse_answer(
                survey["score"] or 1, form.get("comment"), form.get("may_contact") == "yes"
            )
        except InvalidAnswer:
            return thanks(
                request, token, survey, lang, more=True, status=400, error_fields={"comment": True}
            )
        async with ctx.pool.acquire() as conn, conn.transaction():
            now = await ctx.clock.now(conn)
            updated = await svc.record_supplement(conn, claim.survey_id, answer, now)
        ctx.outbox_wake.set()
        if updated is None:
            return await closed_page(request, token, claim, survey, lang) or message(
                request, token, survey, lang, "answered", 200
            )
        return thanks(request, token, updated, lang, more=False, supplemented=True)

    @router.post("/s/{token}/opt-out")
    async def opt_out(request: Request, token: str) -> Response:
        found = await resolve(request, token)
        if found is None:
            return not_found()
        _, survey = found
        form = await read_form(request)
        if form is None:
            return PlainTextResponse("Payload Too Large\n", 413, headers=SECURITY_HEADERS)
        lang = language(request, survey, form.get("lang"))
        if not same_origin(request) or not form_token_valid(key, token, form.get("csrf", "")):
            return PlainTextResponse("Forbidden\n", 403, headers=SECURITY_HEADERS)
        if survey["resident_ref"] is None:
            return not_found()
        async with ctx.pool.acquire() as conn, conn.transaction():
            now = await ctx.clock.now(conn)
            cancelled = await db.opt_out(conn, survey["resident_ref"], now)
            await db.enqueue(conn, [svc.cancelled_event(r, now) for r in cancelled])
        ctx.outbox_wake.set()
        return message(request, token, survey, lang, "optout", 200)

    return router


def score_from_link(value: str | None) -> int | None:
    """The score a score link chose, if it is one (anything else opens the plain form)."""
    if value is None:
        return None
    try:
        return parse_answer(value, None, False).score
    except InvalidAnswer:
        return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# --- staff API ---------------------------------------------------------------------------------


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
                statuses=("sent", "sending", "scheduled"),
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
        survey_id = svc.survey_id_for(body.municipality, body.subject_kind, body.subject_id)
        async with ctx.pool.acquire() as conn, conn.transaction():
            now = await ctx.clock.now(conn)
            inserted = await db.insert_survey(
                conn,
                survey_id=survey_id,
                municipality=body.municipality,
                subject_kind=CASE if body.subject_kind == "case" else CONTACT,
                subject_id=body.subject_id,
                case_type=body.case_type,
                channel=body.channel.value,
                party_role=body.party_role.value,
                language="nl",
                status="scheduled",
                delivery_channel=DeliveryChannel.IN_PERSON.value,
                decided_at=now,
                closed_at=now,
                low_score=_low_score(ctx, body),
            )
            if not inserted:
                existing = await db.get_survey(conn, survey_id)
                if existing is None or existing["status"] not in ("sent", "sending", "scheduled"):
                    raise HTTPException(409, "this subject already has a survey")
            answered = await svc.record_answer(
                conn,
                survey_id,
                answer,
                AnsweredVia.IN_PERSON,
                now,
                statuses=("sent", "sending", "scheduled"),
            )
            if answered is None:
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
            rows = await db.day_list(conn, municipality, day, kind)
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
        from services.feedback.domain.tokens import sign_link
        from services.feedback.messages import survey_links

        for row in rows:
            try:
                details = ContactDetails.model_validate(
                    json.loads(open_sealed(ctx.keys.sealing_private, row["sealed_contact"]))
                )
            except (SealError, ValueError):
                continue
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


__all__ = ["asyncpg", "create_web_app"]
