"""The survey page residents open from their message: the form, the thanks page, a remark after
a one-click score, the opt-out, and the 404/410 pages.

Forged or altered links get a plain 404; expired ones a friendly 410. Forms carry a token bound to
the link (CSRF) and are checked for a foreign Origin. Answers are stored as plain text and always
rendered escaped (jinja2 autoescape).

Nothing is recorded on a GET: mail link scanners (Outlook Safe Links, virus scanners) fetch every
link in a message, so a score link (`?score=N`) only opens the form with that score chosen; the
resident's "Send" (a POST with the form token) records it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from schemas.events import AnsweredVia
from services.feedback import service as svc
from services.feedback.adapters import postgres as db
from services.feedback.domain.answers import MAX_COMMENT_CHARS, InvalidAnswer, parse_answer
from services.feedback.domain.tokens import (
    ForgedLink,
    LinkClaim,
    form_token,
    form_token_valid,
    verify_link,
)
from services.feedback.messages import templates
from services.feedback.ratelimit import Limits
from services.feedback.texts import TEXTS

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

    async def posted_form(
        request: Request, token: str
    ) -> tuple[LinkClaim, Any, dict[str, str], str] | Response:
        """A form posted on a survey page: the link's claim, its survey, the form and the page's
        language; or the answer to a forged link (404), a form too large (413) or one from
        elsewhere or without this link's form token (403)."""
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
        return claim, survey, form, lang

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
        posted = await posted_form(request, token)
        if isinstance(posted, Response):
            return posted
        claim, survey, form, lang = posted
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
        posted = await posted_form(request, token)
        if isinstance(posted, Response):
            return posted
        claim, survey, form, lang = posted
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
        posted = await posted_form(request, token)
        if isinstance(posted, Response):
            return posted
        _, survey, _, lang = posted
        if survey["resident_ref"] is None:
            return not_found()
        async with ctx.pool.acquire() as conn, conn.transaction():
            await svc.opt_out(conn, survey["resident_ref"], await ctx.clock.now(conn))
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
