"""Feedback against the real parts: Kafka, PostgreSQL, an SMTP server, a browser.

One feedback process (isolated schema and consumer group) serves all tests in this module.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

from schemas.common import Channel
from schemas.events import TOPICS, CaseOutcome, Family
from simulator.surveys import parse_forms
from tests.integration.feedback.harness import (
    Intake,
    MailCatcher,
    axe_checked_browser,
    case_closed,
    case_opened,
    contact_completed,
    drop_schema,
    feedback_env,
    for_subject,
    free_port,
    resident,
    survey_link,
    survey_row,
    wait_row,
    write_config,
)
from tests.support.kafka import topic_tail
from tests.support.services import ServiceProcess, running_service

pytestmark = pytest.mark.integration

FEEDBACK_TOPIC = TOPICS[Family.FEEDBACK]
STAFF = {"Authorization": "Bearer dev-feedback-staff"}
AMS = ZoneInfo("Europe/Amsterdam")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LATER_DAY = (datetime.now(AMS).weekday() + 2) % 7

ANY_HOUR = """
delay_hours: 0
sending_hours: {weekdays: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", until: "23:59:59", skip_public_holidays: false}
resident_interval_days: 90
excluded_case_types: [schuldhulpverlening]
"""
LATER = f"""
delay_hours: 0
sending_hours: {{weekdays: [{DAYS[LATER_DAY]}], from: "09:00", until: "17:00", skip_public_holidays: false}}
"""


class FakeSmsGateway:
    """The SMS gateway contract (services/feedback/adapters/sms.py): JSON POST, 2xx accepted."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Authorization") != "Bearer sms-test":
                    self.send_response(401)
                else:
                    received.append(json.loads(body))
                    self.send_response(202)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/messages"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def sms() -> Any:
    gateway = FakeSmsGateway()
    yield gateway
    gateway.server.shutdown()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def feedback(
    tmp_path_factory: Any, mail: MailCatcher, sms: FakeSmsGateway
) -> AsyncIterator[ServiceProcess]:
    schema = f"feedback_t{uuid.uuid4().hex[:8]}"
    config = write_config(
        tmp_path_factory.mktemp("config"),
        {"anyhour": ANY_HOUR, "later": LATER},
        {"GM0383": "anyhour", "GM0373": "anyhour", "GM0399": "anyhour", "GM0450": "later"},
    )
    port = free_port()
    env = feedback_env(
        config,
        schema,
        port,
        mail.port,
        SERVICEPULS_FEEDBACK_DELAY_SECONDS="1",
        SERVICEPULS_FEEDBACK_SMS_GATEWAY_URL=sms.url,
        SERVICEPULS_FEEDBACK_SMS_GATEWAY_TOKEN="sms-test",
    )
    try:
        async with running_service("feedback", port=port, env=env) as service:
            service.schema = schema  # type: ignore[attr-defined]
            yield service
    finally:
        await drop_schema(schema)


async def csrf_of(client: httpx.AsyncClient, link: str) -> str:
    page = await client.get(link)
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def addr() -> str:
    return f"inwoner-{uuid.uuid4().hex[:10]}@example.org"


# --- end to end: intake → Kafka → feedback → SMTP → browser → Kafka ---------------------------


async def test_case_posted_to_intake_is_surveyed_by_email(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    """Through the real intake: it seals the contact details; feedback opens them to send."""
    case_id = f"Z-{uuid.uuid4()}"
    email = addr()
    intake_port = free_port()
    async with (
        running_service(
            "intake", port=intake_port, env={"SERVICEPULS_INTAKE_PORT": str(intake_port)}
        ),
        topic_tail(FEEDBACK_TOPIC) as events,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{intake_port}") as client,
    ):
        opened = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/buch/zaaksysteem",
            "type": "nl.servicepuls.case.opened.v1",
            "time": datetime.now(UTC).isoformat(),
            "municipality": "GM0383",
            "subject": case_id,
            "data": {
                "case_id": case_id,
                "case_type": "melding-openbare-ruimte",
                "channel": "webform",
                "resident": {
                    "identifier": f"klant-{uuid.uuid4()}",
                    "email": email,
                    "survey_consent": True,
                },
            },
        }
        closed = {
            **opened,
            "id": str(uuid.uuid4()),
            "type": "nl.servicepuls.case.closed.v1",
            "data": {
                "case_id": case_id,
                "case_type": "melding-openbare-ruimte",
                "outcome": "resolved",
            },
        }
        for event in (opened, closed):
            response = await client.post(
                "/v1/events", json=event, headers={"Authorization": "Bearer dev-zaaksysteem"}
            )
            assert response.status_code == 202, response.text
        message = await mail.wait_for(email, timeout=30)
        assert survey_link(message).startswith(feedback.base_url + "/s/")
        sent = await events.wait_for(for_subject(case_id, "sent"))
        assert sent[0].data.delivery_channel == "email"


async def test_closed_case_is_surveyed_and_answered_in_a_browser(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    case_id = f"Z-{uuid.uuid4()}"
    email = addr()
    async with topic_tail(FEEDBACK_TOPIC) as events, Intake() as intake:
        await intake.send(
            case_opened(case_id, resident(email=email, consent=True)), case_closed(case_id, None)
        )
        message = await mail.wait_for(email, timeout=30)
        assert "Hoe hebben wij u geholpen?" in str(message["Subject"])
        html = message.get_body(preferencelist=("html",))
        assert html is not None and "score=10" in html.get_content()
        link = survey_link(message)
        scheduled = await events.wait_for(for_subject(case_id, "scheduled"))
        await events.wait_for(for_subject(case_id, "sent"))
        assert email not in json.dumps([e.model_dump(mode="json") for e in events.seen])

        async with axe_checked_browser(feedback.base_url) as (browser, accessible):
            await accessible(link)
            await accessible(link + "?lang=en")
            await accessible(link + "?score=7")  # opened from a score link: nothing recorded
            await accessible(link + "?score=7&lang=en")
            resident_browser = await browser.new_context(java_script_enabled=False)
            page = await resident_browser.new_page()
            await page.goto(link)
            second_tab = await resident_browser.new_page()
            await second_tab.goto(link)
            assert await page.locator("script").count() == 0
            # Keyboard only: score 3, a remark, permission to contact, send.
            await page.focus("#score-1")
            await page.keyboard.press("Space")
            await page.keyboard.press("ArrowRight")
            await page.keyboard.press("ArrowRight")
            await page.keyboard.press("Tab")
            await page.keyboard.type("Het duurde te lang <script>alert(1)</script>")
            await page.keyboard.press("Tab")
            await page.keyboard.press("Space")
            await page.keyboard.press("Tab")
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            assert "Bedankt voor uw antwoord" in await page.content(), await page.content()
            assert "een 3" in await page.content()
            await accessible(html=await page.content())
            # The same form submitted again (another tab): "already answered", no event.
            await second_tab.check("#score-9")
            async with second_tab.expect_navigation():
                await second_tab.click("button[type=submit] >> nth=0")
            assert "U heeft deze vragenlijst al ingevuld" in await second_tab.content()
            # Going back re-fetches the page (no-store): it says so as well.
            await page.go_back()
            assert "U heeft deze vragenlijst al ingevuld" in await page.content()
            await accessible(link)
            assert "You already answered" in await accessible(link + "?lang=en")

        responded = await events.wait_for(for_subject(case_id, "responded"))
        follow_up = await events.wait_for(for_subject(case_id, "follow_up_requested"))
        assert (
            responded[0].data.score == 3
            and responded[0].data.may_contact
            and responded[0].data.has_comment
        )
        assert follow_up[0].data.score == 3
        assert responded[0].source == "/servicepuls/feedback"
        assert responded[0].data.resident_ref == scheduled[0].data.resident_ref
        await asyncio.sleep(1.5)
        assert len([e for e in events.seen if for_subject(case_id, "responded")(e)]) == 1
        row = await survey_row(feedback.schema, subject_id=case_id)  # type: ignore[attr-defined]
        assert row["sealed_contact"] is None  # erased once answered
        assert row["comment"] == "Het duurde te lang <script>alert(1)</script>"


async def test_error_opt_out_and_expired_pages_pass_the_same_axe_check_in_both_languages(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    """The pages besides the form: a form sent without a score (400) and the opt-out
    confirmation, in Dutch and in English (the 410: test_feedback_lifecycle.py)."""
    case_id = f"Z-{uuid.uuid4()}"
    email = addr()
    async with (
        Intake() as intake,
        httpx.AsyncClient() as client,
        axe_checked_browser(feedback.base_url) as (_, accessible),
    ):
        await intake.send(
            case_opened(case_id, resident(email=email, consent=True)), case_closed(case_id, None)
        )
        link = survey_link(await mail.wait_for(email, timeout=30))
        csrf = await csrf_of(client, link)
        for lang, error in (("nl", "Kies een cijfer van 1 tot 10."), ("en", "Choose a score")):
            missing = await client.post(link, data={"csrf": csrf, "comment": "", "lang": lang})
            assert missing.status_code == 400 and error in missing.text, missing.text[:500]
            await accessible(html=missing.text)
        for lang, title in (
            ("nl", "U krijgt geen vragenlijsten meer"),
            ("en", "You will not receive surveys any more"),
        ):
            opted = await client.post(link + "/opt-out", data={"csrf": csrf, "lang": lang})
            assert opted.status_code == 200 and title in opted.text, opted.text[:500]
            await accessible(html=opted.text)


async def test_forged_and_altered_links_get_a_plain_404(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    email = addr()
    async with Intake() as intake:
        await intake.send(case_closed(f"Z-{uuid.uuid4()}", resident(email=email)))
    link = survey_link(await mail.wait_for(email))
    token = link.rsplit("/", 1)[1]
    altered = token[:3] + ("A" if token[3] != "A" else "B") + token[4:]
    async with httpx.AsyncClient() as client:
        for bad in (
            f"{feedback.base_url}/s/{altered}",
            f"{feedback.base_url}/s/nonsense",
            f"{feedback.base_url}/s/{token[:-1]}",
        ):
            response = await client.get(bad)
            assert response.status_code == 404
            assert response.text == "Not Found\n"
        ok = await client.get(link)
        assert ok.status_code == 200 and "Welk cijfer geeft u ons?" in ok.text
        assert ok.headers["referrer-policy"] == "no-referrer"
        # A form posted without the page's CSRF token is refused, and records nothing.
        refused = await client.post(link, data={"score": "8"})
        assert refused.status_code == 403
        foreign = await client.post(
            link,
            data={"score": "8", "csrf": await csrf_of(client, link)},
            headers={"Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403
        assert (await client.get(link)).status_code == 200  # still open


async def test_a_score_link_records_only_when_the_resident_sends_it_then_a_remark(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    """Mail link scanners (Outlook Safe Links, virus scanners) open every link in a message, with
    GET as well as HEAD: opening a score link shows the form with that score chosen and records
    nothing, and the link stays usable; the resident's "Send" records it."""
    case_id = f"Z-{uuid.uuid4()}"
    email = addr()
    async with topic_tail(FEEDBACK_TOPIC) as events, httpx.AsyncClient() as client:
        async with Intake() as intake:
            await intake.send(case_closed(case_id, resident(email=email, language="en")))
        message = await mail.wait_for(email)
        assert str(message["Subject"]).startswith("How did we do?")
        link = survey_link(message)
        await events.wait_for(for_subject(case_id, "sent"))
        scanner = {"User-Agent": "Mozilla/5.0 (compatible; SafeLinks link checker)"}
        assert (await client.head(link + "?score=2", headers=scanner)).status_code == 200
        for score in (2, 10, 1):  # a scanner opens every score link of the mail
            scanned = await client.get(link + f"?score={score}", headers=scanner)
            assert scanned.status_code == 200 and "What score do you give us?" in scanned.text
        page = await client.get(link + "?score=2")
        assert page.status_code == 200 and "You chose 2. Is that right?" in page.text
        assert re.search(r'id="score-2" name="score" value="2" checked', page.text)
        assert len(re.findall(r"\bchecked\b", page.text)) == 1
        # The simulated residents of the demo read this form the same way and send it.
        [form] = [f for f in parse_forms(page.text) if f.action.endswith(link.rsplit("/", 1)[1])]
        assert form.fields["score"] == "2" and form.fields["from"] == "score_link"
        await asyncio.sleep(1)
        row = await survey_row(feedback.schema, subject_id=case_id)  # type: ignore[attr-defined]
        assert row is not None and row["status"] == "sent" and row["score"] is None
        assert not [e for e in events.seen if for_subject(case_id, "responded")(e)]

        # Only a POST with the page's form token records, and only as the resident sent it.
        assert (
            await client.post(link, data={"score": "2", "from": "score_link"})
        ).status_code == 403
        sent = await client.post(link, data=form.fields, headers={"Origin": feedback.base_url})
        assert sent.status_code == 200 and "Thank you for your answer" in sent.text
        assert "We received your score: 2" in sent.text
        csrf = form.fields["csrf"]
        more = await client.post(
            link + "/more",
            data={"csrf": csrf, "comment": "Slow", "may_contact": "yes", "lang": "en"},
        )
        assert more.status_code == 200 and "we received what you added" in more.text
        again = await client.post(link + "/more", data={"csrf": csrf, "comment": "x", "lang": "en"})
        assert "You already answered" in again.text
        assert "You already answered" in (await client.get(link + "?score=9")).text
        responded = await events.wait_for(for_subject(case_id, "responded"))
        assert responded[0].data.answered_via == "email_one_click" and responded[0].data.score == 2
        follow_up = await events.wait_for(for_subject(case_id, "follow_up_requested"))
        assert follow_up[0].data.score == 2
        await asyncio.sleep(1)
        assert len([e for e in events.seen if for_subject(case_id, "responded")(e)]) == 1
        row = await survey_row(feedback.schema, subject_id=case_id)  # type: ignore[attr-defined]
        assert row["comment"] == "Slow" and row["may_contact"]


async def test_a_score_link_answer_with_a_remark_is_final(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    """Sent from a score link with a remark already: no second remark is asked or taken."""
    case_id = f"Z-{uuid.uuid4()}"
    email = addr()
    async with httpx.AsyncClient() as client:
        async with Intake() as intake:
            await intake.send(case_closed(case_id, resident(email=email)))
        link = survey_link(await mail.wait_for(email))
        page = await client.get(link + "?score=8")
        [form] = [f for f in parse_forms(page.text) if "score" in f.fields]
        sent = await client.post(link, data={**form.fields, "comment": "Prima geholpen"})
        assert sent.status_code == 200 and "een 8" in sent.text
        assert "/more" not in sent.text
        late = await client.post(
            link + "/more", data={"csrf": form.fields["csrf"], "comment": "Nog iets"}
        )
        assert "U heeft deze vragenlijst al ingevuld" in late.text
        row = await survey_row(feedback.schema, subject_id=case_id)  # type: ignore[attr-defined]
        assert row["answered_via"] == "email_one_click" and row["comment"] == "Prima geholpen"


async def test_throttle_opt_out_and_exclusions_are_suppressed_with_their_reason(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    email, other = addr(), addr()
    throttled_resident = resident(email=email)
    opting_out = resident(email=other)
    ids = {
        name: f"Z-{uuid.uuid4()}"
        for name in (
            "first",
            "throttled",
            "optout_first",
            "optout_second",
            "excluded_type",
            "cancelled",
            "no_consent",
            "no_address",
            "no_resident",
        )
    }
    async with (
        topic_tail(FEEDBACK_TOPIC) as events,
        Intake() as intake,
        httpx.AsyncClient() as client,
    ):
        await intake.send(
            case_closed(ids["first"], throttled_resident),
            case_closed(ids["optout_first"], opting_out),
        )
        await events.wait_for(for_subject(ids["first"], "scheduled"))
        await intake.send(
            case_closed(ids["throttled"], throttled_resident),
            case_closed(
                ids["excluded_type"], resident(email=addr()), case_type="schuldhulpverlening"
            ),
            case_closed(ids["cancelled"], resident(email=addr()), outcome=CaseOutcome.CANCELLED),
            case_closed(ids["no_consent"], resident(email=addr(), consent=False)),
            case_closed(ids["no_address"], resident()),
            case_closed(ids["no_resident"], None),
        )
        link = survey_link(await mail.wait_for(other))
        opted = await client.post(link + "/opt-out", data={"csrf": await csrf_of(client, link)})
        assert opted.status_code == 200 and "U krijgt geen vragenlijsten meer" in opted.text
        # Opted out is decided before the throttle: no need to close it past the interval (an
        # event time far ahead would also move the event clocks of others on this topic).
        await intake.send(case_closed(ids["optout_second"], opting_out))
        expected = {
            "throttled": "throttled",
            "excluded_type": "excluded_case_type",
            "cancelled": "excluded_outcome",
            "no_consent": "no_consent",
            "no_address": "no_address",
            "no_resident": "no_address",
            "optout_second": "opted_out",
        }
        for name, reason in expected.items():
            await events.wait_for(
                lambda e, n=name, r=reason: (
                    for_subject(ids[n], "suppressed")(e) and e.data.reason == r
                )
            )
            row = await wait_row(
                feedback.schema,  # type: ignore[attr-defined]
                ids[name],
                lambda r: r["status"] in ("suppressed", "cancelled"),
            )
            assert row["suppression"] == reason, name
        assert len(mail.to(email)) == 1
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(feedback.base_url + "/metrics")).text
    assert 'reason="throttled"' in metrics
    assert "@" not in "".join(line for line in metrics.splitlines() if not line.startswith("#"))


async def test_contacts_at_the_counter_are_surveyed_and_chat_is_not(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    counter, chat = f"C-{uuid.uuid4()}", f"C-{uuid.uuid4()}"
    email = addr()
    async with topic_tail(FEEDBACK_TOPIC) as events, Intake() as intake:
        await intake.send(
            contact_completed(counter, resident(email=email), Channel.COUNTER),
            contact_completed(chat, resident(email=addr()), Channel.CHAT),
        )
        await mail.wait_for(email)
        assert (await events.wait_for(for_subject(chat, "suppressed")))[
            0
        ].data.reason == "not_surveyed_channel"
        sent = await events.wait_for(for_subject(counter, "sent"))
        assert sent[0].data.subject_kind == "contact"


async def test_surveys_wait_for_the_sending_hours(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    case_id = f"Z-{uuid.uuid4()}"
    email = addr()
    async with Intake() as intake:
        await intake.send(case_closed(case_id, resident(email=email), municipality="GM0450"))
        # This instance's own decision (another feedback on the same topic may decide too); its
        # survey.scheduled follows when the survey is taken to be sent (the choice is final).
        row = await wait_row(feedback.schema, case_id, lambda r: r["status"] == "scheduled")  # type: ignore[attr-defined]
        local = row["send_at"].astimezone(AMS)
        assert local.weekday() == LATER_DAY and (local.hour, local.minute) == (9, 0)
        await asyncio.sleep(3)
        assert mail.to(email) == []
        row = await survey_row(feedback.schema, subject_id=case_id)  # type: ignore[attr-defined]
        assert row["status"] == "scheduled"


async def test_a_failed_delivery_is_retried_and_sent_once(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    case_id = f"Z-{uuid.uuid4()}"
    email = addr()
    refused_before = mail.refused
    mail.failing[email] = 2
    async with topic_tail(FEEDBACK_TOPIC) as events, Intake() as intake:
        await intake.send(case_closed(case_id, resident(email=email)))
        await mail.wait_for(email, timeout=30)
        await events.wait_for(for_subject(case_id, "sent"))
        await asyncio.sleep(1.5)
        assert len(mail.to(email)) == 1
        assert mail.refused - refused_before == 2
        row = await wait_row(feedback.schema, case_id, lambda r: r["status"] == "sent")  # type: ignore[attr-defined]
        assert row["attempts"] == 3
        assert not [e for e in events.seen if for_subject(case_id, "delivery_failed")(e)]


async def test_sms_letter_list_and_answers_given_in_person(
    feedback: ServiceProcess, mail: MailCatcher, sms: FakeSmsGateway
) -> None:
    by_sms, by_letter = f"Z-{uuid.uuid4()}", f"Z-{uuid.uuid4()}"
    counter_contact = f"C-{uuid.uuid4()}"
    async with (
        topic_tail(FEEDBACK_TOPIC) as events,
        Intake() as intake,
        httpx.AsyncClient(base_url=feedback.base_url) as client,
    ):
        await intake.send(
            case_opened(by_letter, resident(address=True)),
            case_closed(by_sms, resident(phone="06-12345678")),
            case_closed(by_letter, None),  # the resident is known from case.opened
        )
        sent_sms = (await events.wait_for(for_subject(by_sms, "sent")))[0]
        assert sent_sms.data.delivery_channel == "sms"
        message = next(m for m in sms.received if m["reference"] == sent_sms.data.survey_id)
        assert message["to"] == "+31612345678" and "/s/" in message["text"]
        letter = (await events.wait_for(for_subject(by_letter, "sent")))[0]
        assert letter.data.delivery_channel == "letter_list"
        row = await wait_row(feedback.schema, by_letter, lambda r: r["status"] == "sent")  # type: ignore[attr-defined]
        day = row["list_date"].isoformat()
        assert (await client.get(f"/api/v1/lists/GM0383/{day}/letter_list.csv")).status_code == 401
        listing = await client.get(f"/api/v1/lists/GM0383/{day}/letter_list.csv", headers=STAFF)
        assert listing.status_code == 200
        assert by_letter in listing.text and "Dorpsstraat 1" in listing.text
        # Staff record the answer given on the phone for the listed survey: once.
        first = await client.post(
            f"/api/v1/surveys/{letter.data.survey_id}/responses", json={"score": 8}, headers=STAFF
        )
        assert first.status_code == 201
        second = await client.post(
            f"/api/v1/surveys/{letter.data.survey_id}/responses", json={"score": 8}, headers=STAFF
        )
        assert second.status_code == 409
        assert (await events.wait_for(for_subject(by_letter, "responded")))[
            0
        ].data.answered_via == "in_person"
        # An answer at the counter without a survey sent.
        unauthorised = await client.post(
            "/api/v1/responses", json={}, headers={"Authorization": "Bearer wrong"}
        )
        assert unauthorised.status_code == 401
        counter = await client.post(
            "/api/v1/responses",
            headers=STAFF,
            json={
                "municipality": "GM0383",
                "subject_kind": "contact",
                "subject_id": counter_contact,
                "channel": "counter",
                "score": 4,
                "may_contact": True,
            },
        )
        assert counter.status_code == 201, counter.text
        await events.wait_for(for_subject(counter_contact, "follow_up_requested"))


async def test_a_delivery_that_keeps_failing_is_reported_and_its_address_erased(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    case_id = f"Z-{uuid.uuid4()}"
    email = addr()
    mail.failing[email] = 5  # MAX_ATTEMPTS defaults to 5
    try:
        async with topic_tail(FEEDBACK_TOPIC) as events, Intake() as intake:
            await intake.send(case_closed(case_id, resident(email=email)))
            failed = await events.wait_for(for_subject(case_id, "delivery_failed"), timeout=40)
            assert failed[0].data.attempts == 5 and failed[0].data.error == "smtp_451"
            row = await wait_row(feedback.schema, case_id, lambda r: r["status"] == "failed")  # type: ignore[attr-defined]
            assert row["sealed_contact"] is None
            assert mail.to(email) == []
    finally:
        mail.failing.pop(email, None)
