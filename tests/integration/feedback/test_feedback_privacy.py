"""Issue 18 against the real parts (Kafka, PostgreSQL, an SMTP server, feedback as a process):
staff tokens scoped per municipality and capability, rate limits on the survey page and the staff
API, and erasure on request leaving nothing identifying in any of feedback's tables."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from schemas.events import TOPICS, Family
from services.common.settings import InfraSettings
from tests.integration.feedback.harness import (
    Intake,
    MailCatcher,
    case_closed,
    case_opened,
    drop_schema,
    feedback_env,
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
INFRA = InfraSettings()
ANY_HOUR = """
delay_hours: 0
sending_hours: {weekdays: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", until: "23:59:59", skip_public_holidays: false}
resident_interval_days: 90
"""
# token -> (name, municipalities, capabilities)
TOKENS = {
    "kcc-castricum-secret": ("kcc-castricum", ["GM0383"], ["record_answers", "read_contact_list"]),
    "fg-castricum-secret": ("fg-castricum", ["GM0383"], ["erase"]),
    "kcc-bergen-secret": (
        "kcc-bergen",
        ["GM0373"],
        ["record_answers", "read_contact_list", "erase"],
    ),
    "hasty-secret": ("hasty", ["GM0383"], ["record_answers", "read_contact_list"]),
}
KCC = {"Authorization": "Bearer kcc-castricum-secret"}
FG = {"Authorization": "Bearer fg-castricum-secret"}
BERGEN = {"Authorization": "Bearer kcc-bergen-secret"}
HASTY = {"Authorization": "Bearer hasty-secret"}
UNKNOWN = {"Authorization": "Bearer guessed"}
STAFF_PER_MINUTE = 40
PAGE_PER_MINUTE = 20
FAILED_PER_HOUR = 5


def token_file() -> str:
    lines = ["tokens:"]
    for secret, (name, municipalities, capabilities) in TOKENS.items():
        lines += [
            f"  - name: {name}",
            f"    sha256: {hashlib.sha256(secret.encode()).hexdigest()}",
            f"    municipalities: [{', '.join(municipalities)}]",
            f"    capabilities: [{', '.join(capabilities)}]",
        ]
    return "\n".join(lines) + "\n"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def feedback(tmp_path_factory: Any, mail: MailCatcher) -> AsyncIterator[ServiceProcess]:
    schema = f"feedback_p{uuid.uuid4().hex[:8]}"
    config = write_config(
        tmp_path_factory.mktemp("config"),
        {"anyhour": ANY_HOUR},
        {code: "anyhour" for code in ("GM0383", "GM0373", "GM0399", "GM0450")},
    )
    (config / "surveys" / "staff_tokens.yaml").write_text(token_file())
    port = free_port()
    env = feedback_env(
        config,
        schema,
        port,
        mail.port,
        SERVICEPULS_FEEDBACK_DELAY_SECONDS="1",
        SERVICEPULS_FEEDBACK_PAGE_REQUESTS_PER_MINUTE=str(PAGE_PER_MINUTE),
        SERVICEPULS_FEEDBACK_FAILED_LOOKUPS_PER_HOUR=str(FAILED_PER_HOUR),
        SERVICEPULS_FEEDBACK_STAFF_REQUESTS_PER_MINUTE=str(STAFF_PER_MINUTE),
        # 127.0.0.1 only: the tests below come from 127.0.0.2 and .3 to be limited.
        SERVICEPULS_FEEDBACK_RATE_LIMIT_EXEMPT='["127.0.0.1/32"]',
    )
    try:
        async with running_service("feedback", port=port, env=env) as service:
            service.schema = schema  # type: ignore[attr-defined]
            yield service
    finally:
        await drop_schema(schema)


def client_from(service: ServiceProcess, address: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=service.base_url,
        transport=httpx.AsyncHTTPTransport(local_address=address),
        timeout=15,
    )


def addr() -> str:
    return f"inwoner-{uuid.uuid4().hex[:10]}@example.org"


async def metric(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    text = (await client.get("/metrics")).text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def letter_survey(intake: Intake, schema: str, municipality: str) -> tuple[str, str]:
    """A survey on today's letter list of `municipality`: (case id, survey id). Read from this
    instance's own table: other feedback instances on the shared topic decide the same cases."""
    case_id = f"Z-{uuid.uuid4()}"
    await intake.send(case_closed(case_id, resident(address=True), municipality=municipality))
    row = await wait_row(schema, case_id, lambda r: r["status"] == "sent")
    assert row["delivery_channel"] == "letter_list"
    return case_id, str(row["survey_id"])


# --- scopes -------------------------------------------------------------------------------------


async def test_every_staff_route_keeps_to_its_tokens_scope(feedback: ServiceProcess) -> None:
    schema = feedback.schema  # type: ignore[attr-defined]
    async with Intake() as intake, client_from(feedback) as c:
        castricum_case, castricum_survey = await letter_survey(intake, schema, "GM0383")
        bergen_case, bergen_survey = await letter_survey(intake, schema, "GM0373")
        row = await wait_row(schema, castricum_case, lambda r: r["status"] == "sent")
        day = row["list_date"].isoformat()
        refused_before = await metric(
            c, "servicepuls_feedback_staff_refused_total", reason="municipality"
        )

        # The letter list: in scope, other municipality, missing capability, no/unknown token.
        own = await c.get(f"/api/v1/lists/GM0383/{day}/letter_list.csv", headers=KCC)
        assert own.status_code == 200 and castricum_case in own.text
        assert "Dorpsstraat 1" in own.text
        other = await c.get(f"/api/v1/lists/GM0373/{day}/letter_list.csv", headers=KCC)
        assert other.status_code == 403 and "Dorpsstraat" not in other.text
        assert bergen_case not in other.text
        no_capability = await c.get(f"/api/v1/lists/GM0383/{day}/letter_list.csv", headers=FG)
        assert no_capability.status_code == 403 and "Dorpsstraat" not in no_capability.text
        for headers in ({}, UNKNOWN):
            response = await c.get(f"/api/v1/lists/GM0383/{day}/letter_list.csv", headers=headers)
            assert response.status_code == 401
        bergen_own = await c.get(f"/api/v1/lists/GM0373/{day}/letter_list.csv", headers=BERGEN)
        assert bergen_own.status_code == 200 and bergen_case in bergen_own.text
        assert castricum_case not in bergen_own.text

        # An answer for a listed survey.
        def answer_for(survey_id: str, headers: dict[str, str]) -> Any:
            return c.post(
                f"/api/v1/surveys/{survey_id}/responses", json={"score": 2}, headers=headers
            )

        assert (await answer_for(bergen_survey, KCC)).status_code == 403
        assert (await answer_for(castricum_survey, FG)).status_code == 403
        assert (await answer_for(castricum_survey, {})).status_code == 401
        assert (await answer_for(castricum_survey, UNKNOWN)).status_code == 401
        for case_id in (castricum_case, bergen_case):  # nothing was counted
            unchanged = await survey_row(schema, subject_id=case_id)
            assert unchanged is not None and unchanged["status"] == "sent"
            assert unchanged["score"] is None
        assert (await answer_for(castricum_survey, KCC)).status_code == 201
        assert (await answer_for(bergen_survey, BERGEN)).status_code == 201

        # An answer given in person, without a survey.
        def in_person(municipality: str, subject: str, headers: dict[str, str]) -> Any:
            return c.post(
                "/api/v1/responses",
                headers=headers,
                json={
                    "municipality": municipality,
                    "subject_kind": "contact",
                    "subject_id": subject,
                    "channel": "counter",
                    "score": 1,
                },
            )

        refused = {
            "other municipality": ("GM0373", KCC, 403),
            "not served here": ("GM9999", KCC, 403),
            "no capability": ("GM0383", FG, 403),
            "no token": ("GM0383", {}, 401),
            "unknown token": ("GM0383", UNKNOWN, 401),
        }
        for why, (municipality, headers, status) in refused.items():
            subject = f"C-{uuid.uuid4()}"
            response = await in_person(municipality, subject, headers)
            assert response.status_code == status, (why, response.text)
            assert await survey_row(schema, subject_id=subject) is None, why
        counted = f"C-{uuid.uuid4()}"
        assert (await in_person("GM0383", counted, KCC)).status_code == 201
        row = await survey_row(schema, subject_id=counted)
        assert row is not None and row["status"] == "answered" and row["score"] == 1

        # Erasure.
        def erase(municipality: str, headers: dict[str, str]) -> Any:
            return c.post(
                "/api/v1/erasures",
                headers=headers,
                json={"municipality": municipality, "email": addr()},
            )

        assert (await erase("GM0383", KCC)).status_code == 403
        assert (await erase("GM0373", FG)).status_code == 403
        assert (await erase("GM0383", {})).status_code == 401
        assert (await erase("GM0383", UNKNOWN)).status_code == 401
        nobody = await erase("GM0383", FG)
        assert nobody.status_code == 200 and nobody.json()["surveys_erased"] == 0
        assert (await erase("GM0373", BERGEN)).status_code == 200

        refused_after = await metric(
            c, "servicepuls_feedback_staff_refused_total", reason="municipality"
        )
        assert refused_after - refused_before == 5

    # Each refusal is logged with the token, the route and the municipality; no personal data.
    lines = [
        json.loads(line)
        for line in feedback.log_path.read_text().splitlines()
        if line.startswith("{") and "outside the token" in line
    ]
    assert len(lines) == 9  # 5 for another municipality, 4 for a missing capability
    assert {line["token"] for line in lines} == {"kcc-castricum", "fg-castricum"}
    assert {line["municipality"] for line in lines} >= {"GM0373", "GM9999", "GM0383"}
    assert all(line["route"].startswith("/api/v1/") for line in lines)
    text = feedback.log_path.read_text()
    assert "Dorpsstraat" not in text and "@example.org" not in text


# --- rate limits --------------------------------------------------------------------------------


async def test_the_survey_page_limits_each_address_and_loses_nothing(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    schema = feedback.schema  # type: ignore[attr-defined]
    case_id, email = f"Z-{uuid.uuid4()}", addr()
    async with Intake() as intake:
        await intake.send(case_closed(case_id, resident(email=email)))
    link = survey_link(await mail.wait_for(email))
    path = link.split(feedback.base_url, 1)[1]
    token = path.rsplit("/", 1)[1]
    forged = path.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))

    async with (
        client_from(feedback, "127.0.0.2") as scraper,
        client_from(feedback, "127.0.0.3") as resident_client,
        client_from(feedback) as local,
    ):
        # A scraper trying links: a few failures, then nothing more from that address.
        for _ in range(FAILED_PER_HOUR):
            assert (await scraper.get(forged)).status_code == 404
        stopped = await scraper.get(forged)
        assert stopped.status_code == 429 and int(stopped.headers["Retry-After"]) >= 1
        assert (await scraper.get(path)).status_code == 429  # not even a genuine link
        # Guessing staff tokens from there is stopped as well, before the token is looked at.
        assert (
            await scraper.get("/api/v1/lists/GM0383/2026-01-01/letter_list.csv", headers=KCC)
        ).status_code == 429
        # An exempt address is never limited.
        for _ in range(FAILED_PER_HOUR * 2):
            assert (await local.get(forged)).status_code == 404

        # A resident over the page limit: 429 with Retry-After, nothing recorded; after waiting
        # as told, the same answer goes through.
        page = await resident_client.get(path)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        for _ in range(PAGE_PER_MINUTE - 1):
            assert (await resident_client.get(path)).status_code == 200
        form = {"csrf": csrf, "score": "7", "lang": "nl"}
        refused = await resident_client.post(path, data=form)
        assert refused.status_code == 429
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 60 // PAGE_PER_MINUTE + 1
        row = await survey_row(schema, subject_id=case_id)
        assert row is not None and row["status"] == "sent" and row["score"] is None
        await asyncio.sleep(retry_after)
        accepted = await resident_client.post(path, data=form)
        assert accepted.status_code == 200, accepted.text
        row = await survey_row(schema, subject_id=case_id)
        assert row is not None and row["status"] == "answered" and row["score"] == 7

        assert (
            await metric(local, "servicepuls_feedback_rate_limited_total", limit="failed_lookups")
            >= 3
        )
        assert (
            await metric(local, "servicepuls_feedback_rate_limited_total", limit="survey_page") >= 1
        )


async def test_the_staff_api_limits_each_token(feedback: ServiceProcess) -> None:
    schema = feedback.schema  # type: ignore[attr-defined]
    async with client_from(feedback) as c:

        def in_person(subject: str) -> Any:
            return c.post(
                "/api/v1/responses",
                headers=HASTY,
                json={
                    "municipality": "GM0383",
                    "subject_kind": "contact",
                    "subject_id": subject,
                    "channel": "counter",
                    "score": 9,
                },
            )

        recorded: list[str] = []
        while len(recorded) <= STAFF_PER_MINUTE + 10:
            subject = f"C-{uuid.uuid4()}"
            response = await in_person(subject)
            if response.status_code == 429:
                break
            assert response.status_code == 201, response.text
            recorded.append(subject)
        # The burst, and no more than the refill while it was spent.
        assert STAFF_PER_MINUTE <= len(recorded) <= STAFF_PER_MINUTE + 10
        assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
        # The refused answer wrote nothing; every accepted one was recorded.
        assert await survey_row(schema, subject_id=subject) is None
        rows = await fetch(
            schema,
            "SELECT count(*) AS n FROM {schema}.surveys WHERE subject_id = ANY($1::text[])"
            " AND status = 'answered'",
            recorded,
        )
        assert rows[0]["n"] == len(recorded)
        # Another token is not held up by this one.
        listing = await c.get("/api/v1/lists/GM0383/2026-01-01/letter_list.csv", headers=KCC)
        assert listing.status_code == 200
        assert await metric(c, "servicepuls_feedback_rate_limited_total", limit="staff") >= 1


# --- erasure ------------------------------------------------------------------------------------


async def table_texts(schema: str) -> dict[str, str]:
    """Every row of every table in feedback's schema, as text."""
    conn = await asyncpg.connect(INFRA.database_url)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
            schema,
        )
        texts = {}
        for table in tables:
            name = table["table_name"]
            rows = await conn.fetch(f'SELECT t::text AS row FROM "{schema}"."{name}" t')
            texts[name] = "\n".join(r["row"] for r in rows)
        return texts
    finally:
        await conn.close()


async def fetch(schema: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(INFRA.database_url)
    try:
        return await conn.fetch(query.replace("{schema}", f'"{schema}"'), *args)
    finally:
        await conn.close()


async def outbox_drained(schema: str) -> None:
    for _ in range(150):
        rows = await fetch(
            schema, "SELECT count(*) AS n FROM {schema}.outbox WHERE sent_at IS NULL"
        )
        if rows[0]["n"] == 0:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("outbox not drained")


def found(texts: dict[str, str], needles: dict[str, str]) -> list[tuple[str, str]]:
    return [
        (what, table)
        for what, needle in needles.items()
        for table, text in texts.items()
        if needle.lower() in text.lower()
    ]


async def test_an_erased_resident_leaves_nothing_identifying(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    schema = feedback.schema  # type: ignore[attr-defined]
    email = addr()
    who = resident(email=email)
    still_open = f"Z-{uuid.uuid4()}"  # opened, not closed: the resident is kept for it
    answered, throttled, in_bergen = (f"Z-{uuid.uuid4()}" for _ in range(3))
    remark = f"De medewerker was erg behulpzaam {uuid.uuid4().hex[:6]}"
    async with (
        topic_tail(FEEDBACK_TOPIC) as events,
        Intake() as intake,
        client_from(feedback) as c,
    ):
        await intake.send(case_opened(still_open, who), case_closed(answered, who))
        link = survey_link(await mail.wait_for(email))
        sent = await wait_row(schema, answered, lambda r: r["status"] == "sent")
        response = await c.post(
            f"/api/v1/surveys/{sent['survey_id']}/responses",
            json={"score": 3, "comment": remark, "may_contact": True},
            headers=KCC,
        )
        assert response.status_code == 201
        # A second closure here and one in Bergen: the same resident, throttled in both.
        await intake.send(
            case_closed(throttled, who), case_closed(in_bergen, who, municipality="GM0373")
        )
        for case_id in (throttled, in_bergen):
            row = await wait_row(schema, case_id, lambda r: r["status"] == "suppressed")
            assert row["suppression"] == "throttled"
        await outbox_drained(schema)

        surveys = await fetch(
            schema,
            "SELECT survey_id, municipality FROM {schema}.surveys WHERE resident_ref = $1",
            who.ref,
        )
        assert len(surveys) == 3
        old_ids = [str(r["survey_id"]) for r in surveys if r["municipality"] == "GM0383"]
        bergen_id = next(str(r["survey_id"]) for r in surveys if r["municipality"] == "GM0373")
        castricum = {
            "e-mail address": email,
            "sealed contact details": who.sealed_contact or "",
            "remark": remark,
            "open case": still_open,
            "answered case": answered,
            "throttled case": throttled,
            **{f"survey id {i}": old for i, old in enumerate(old_ids)},
        }
        before = await table_texts(schema)
        assert ("remark", "surveys") in found(before, castricum)
        assert ("open case", "case_residents") in found(before, castricum)
        aggregate = (
            "SELECT count(*) AS n FROM {schema}.surveys WHERE municipality = $1 AND score = 3"
        )
        answered_before = (await fetch(schema, aggregate, "GM0383"))[0]["n"]

        # Castricum's privacy officer erases the resident by the e-mail address they hold.
        erased = await c.post(
            "/api/v1/erasures",
            headers=FG,
            json={"municipality": "GM0383", "email": email.upper()},
        )
        assert erased.status_code == 200, erased.text
        result = erased.json()
        assert result["surveys_erased"] == 2 and result["case_residents_erased"] == 1
        # Bergen still needs the resident record (its throttle): it stays, for now.
        assert result["resident_record_erased"] is False

        after = await table_texts(schema)
        assert found(after, castricum) == []
        assert who.ref in after["residents"] and in_bergen in after["surveys"]
        # The aggregate stays: the score is still counted, with nobody behind it.
        assert (await fetch(schema, aggregate, "GM0383"))[0]["n"] == answered_before
        # The survey link no longer leads anywhere.
        assert (await c.get(link.split(feedback.base_url, 1)[1])).status_code == 404

        # Bergen erases too: now nothing of the resident is left in any table.
        second = await c.post(
            "/api/v1/erasures", headers=BERGEN, json={"municipality": "GM0373", "email": email}
        )
        assert second.status_code == 200
        assert second.json()["surveys_erased"] == 1
        assert second.json()["resident_record_erased"] is True
        everything = {
            **castricum,
            "pseudonym": who.ref,
            "bergen case": in_bergen,
            "bergen survey id": bergen_id,
        }
        assert found(await table_texts(schema), everything) == []

        # Each erasure is recorded on the feedback topic, with no identifier in it.
        records = await events.wait_for(lambda e: e.type.endswith("resident.erased.v1"), count=2)
        ours = [
            e
            for e in records
            if e.data.erasure_id in {result["erasure_id"], second.json()["erasure_id"]}
        ]
        assert {e.municipality for e in ours} == {"GM0383", "GM0373"}
        assert {e.data.requested_by for e in ours} == {"fg-castricum", "kcc-bergen"}
        raw = b"".join(
            (r.value or b"") + b"".join(v for _, v in r.headers)
            for r in events.records
            if b"resident.erased" in b"".join(v for _, v in r.headers)
        )
        for needle in everything.values():
            assert needle.encode().lower() not in raw.lower()


async def test_an_erasure_can_keep_only_the_opt_out(
    feedback: ServiceProcess, mail: MailCatcher
) -> None:
    """A resident who asks to be forgotten and never asked again (AVG art. 17 and 21): their
    open survey is cancelled, and only the opt-out is remembered, under the pseudonym."""
    schema = feedback.schema  # type: ignore[attr-defined]
    phone = f"06-{uuid.uuid4().int % 10**8:08d}"
    who = resident(phone=phone)
    first, later = f"Z-{uuid.uuid4()}", f"Z-{uuid.uuid4()}"
    async with Intake() as intake, client_from(feedback) as c:
        await intake.send(case_closed(first, who))
        # No SMS gateway here: the survey waits for a retry, open.
        await wait_row(schema, first, lambda r: r["status"] in ("scheduled", "sending", "sent"))
        erased = await c.post(
            "/api/v1/erasures",
            headers=FG,
            # The number as staff wrote it down, not as the channel system sent it.
            json={
                "municipality": "GM0383",
                "phone": "+31 " + phone[1:].replace("-", " "),
                "opt_out": True,
            },
        )
        assert erased.status_code == 200, erased.text
        result = erased.json()
        assert result["surveys_erased"] == 1 and result["open_surveys_cancelled"] == 1
        assert result["opt_out_kept"] is True and result["resident_record_erased"] is False
        assert await survey_row(schema, subject_id=first) is None
        kept = await fetch(
            schema, "SELECT * FROM {schema}.residents WHERE resident_ref = $1", who.ref
        )
        assert len(kept) == 1 and kept[0]["opted_out_at"] is not None
        assert kept[0]["last_surveyed_at"] is None

        await intake.send(case_closed(later, who))
        row = await wait_row(schema, later, lambda r: r["status"] == "suppressed")
        assert row["suppression"] == "opted_out"
