"""Test harness for feedback: a real SMTP server in the test process, an isolated schema and
consumer group per run, sealed residents, and case events on the real intake topic."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import shutil
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, async_playwright

from schemas.common import Channel, ContactMedium, Language, ResidentRef
from schemas.envelope import Envelope, encode, new_event
from schemas.events import CaseClosed, CaseOpened, CaseOutcome, ContactCompleted
from schemas.resident import ContactDetails, PostalAddress
from services.common.kafka import durable_producer, send_records
from services.common.sealing import load_keys, pseudonym, seal
from services.common.settings import REPO_ROOT, InfraSettings
from tests.support.kafka import private_topics

INFRA = InfraSettings()
KEYS = load_keys(INFRA.state_dir)
SOURCE = "/test/zaaksysteem"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MailCatcher:
    """A real SMTP server (aiosmtpd) on loopback; `failing[address] = n` refuses the next n
    deliveries to that address with 451 (other tests' mail is not affected)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refused = 0
        self.failing: dict[str, int] = {}
        self._lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            for rcpt in envelope.rcpt_tos:
                if self.failing.get(rcpt, 0) > 0:
                    self.failing[rcpt] -= 1
                    self.refused += 1
                    return "451 4.3.0 Try again later"
            message = email.message_from_bytes(
                envelope.original_content, policy=email.policy.default
            )
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]

    async def wait_for(self, address: str, timeout: float = 30) -> EmailMessage:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            found = self.to(address)
            if found:
                return found[0]
            await asyncio.sleep(0.1)
        raise TimeoutError(f"no mail to {address} within {timeout}s")


def survey_link(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    return re.search(r"(http://\S+/s/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)\s", text + " ").group(1)  # type: ignore[union-attr]


def write_config(folder: Path, policies: dict[str, str], assignment: dict[str, str]) -> Path:
    """A config dir: the real municipalities (and their calendar) with their survey policy
    replaced per test."""
    (folder / "surveys").mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO_ROOT / "deploy/config/calendars", folder / "calendars", dirs_exist_ok=True)
    lines = ["municipalities:"]
    names = {
        "GM0373": "Bergen (NH)",
        "GM0450": "Uitgeest",
        "GM0383": "Castricum",
        "GM0399": "Heiloo",
    }
    for code, name in names.items():
        lines += [
            f"  - code: {code}",
            f"    name: {name}",
            "    calendar: buch",
            f"    survey_policy: {assignment.get(code, 'default')}",
        ]
    (folder / "municipalities.yaml").write_text("\n".join(lines) + "\n")
    for name, text in policies.items():
        (folder / "surveys" / f"{name}.yaml").write_text(text)
    shutil.copy(REPO_ROOT / "deploy/config/surveys/staff_tokens.yaml", folder / "surveys")
    return folder


def feedback_env(
    config_dir: Path, schema: str, port: int, smtp_port: int, **extra: str
) -> dict[str, str]:
    return {
        "SERVICEPULS_CONFIG_DIR": str(config_dir),
        "SERVICEPULS_FEEDBACK_DB_SCHEMA": schema,
        "SERVICEPULS_FEEDBACK_CONSUMER_GROUP": f"feedback-test-{schema}",
        "SERVICEPULS_FEEDBACK_START_FROM": "latest",
        "SERVICEPULS_FEEDBACK_PORT": str(port),
        "SERVICEPULS_FEEDBACK_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "SERVICEPULS_FEEDBACK_POLL_SECONDS": "0.2",
        "SERVICEPULS_FEEDBACK_RETRY_BASE_SECONDS": "0.5",
        "SERVICEPULS_SMTP_HOST": "127.0.0.1",
        "SERVICEPULS_SMTP_PORT": str(smtp_port),
        "SERVICEPULS_SMTP_TIMEOUT_SECONDS": "5",
        **extra,
    }


def resident(
    *,
    email: str | None = None,
    phone: str | None = None,
    address: bool = False,
    consent: bool | None = None,
    identifier: str | None = None,
    language: Language = Language.NL,
) -> ResidentRef:
    details = ContactDetails(
        email=email,
        phone=phone,
        postal_address=PostalAddress(
            name="T. Est", street="Dorpsstraat 1", postal_code="1901 AB", city="Castricum"
        )
        if address
        else None,
    )
    media = []
    if email:
        media.append(ContactMedium.EMAIL)
    if phone:
        media += [ContactMedium.SMS, ContactMedium.PHONE]
    if address:
        media.append(ContactMedium.LETTER)
    return ResidentRef(
        ref=pseudonym(KEYS.pseudonym, identifier or email or phone or str(uuid.uuid4())),
        sealed_contact=seal(KEYS.sealing_public, details.model_dump_json().encode()),
        reachable_by=media,
        survey_consent=consent,
        language=language,
    )


def case_closed(
    case_id: str,
    resident_ref: ResidentRef | None,
    *,
    municipality: str = "GM0383",
    case_type: str = "melding-openbare-ruimte",
    outcome: CaseOutcome = CaseOutcome.RESOLVED,
    at: datetime | None = None,
) -> Envelope[Any]:
    return new_event(
        CaseClosed(case_id=case_id, case_type=case_type, outcome=outcome, resident=resident_ref),
        source=SOURCE,
        municipality=municipality,
        time=at or datetime.now(UTC),
    )


def case_opened(
    case_id: str, resident_ref: ResidentRef, municipality: str = "GM0383"
) -> Envelope[Any]:
    return new_event(
        CaseOpened(
            case_id=case_id,
            case_type="melding-openbare-ruimte",
            channel=Channel.WEBFORM,
            resident=resident_ref,
        ),
        source=SOURCE,
        municipality=municipality,
        time=datetime.now(UTC),
    )


def contact_completed(
    contact_id: str, resident_ref: ResidentRef, channel: Channel
) -> Envelope[Any]:
    return new_event(
        ContactCompleted(
            contact_id=contact_id,
            channel=channel,
            topic="afval",
            started_at=datetime.now(UTC),
            resident=resident_ref,
        ),
        source="/test/balie",
        municipality="GM0383",
        time=datetime.now(UTC),
    )


class Intake:
    """Publishes intake events straight to the topic (as intake would after sealing), or to a
    private copy of it."""

    def __init__(self, topic: str | None = None) -> None:
        self.producer: AIOKafkaProducer = durable_producer(INFRA.kafka_bootstrap, "feedback-tests")
        self.topic = topic

    async def __aenter__(self) -> Intake:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(self, *events: Envelope[Any]) -> None:
        records = (encode(e) for e in events)
        if self.topic is not None:
            records = (replace(r, topic=self.topic) for r in records)
        await send_records(self.producer, records)


@asynccontextmanager
async def private_intake_topic() -> AsyncIterator[str]:
    """An intake topic of the test's own, deleted afterwards: what is written to it (event times
    far from now, for instance) moves no other consumer's event clock."""
    name = f"servicepuls.intake.v1.test-{uuid.uuid4().hex[:10]}"
    async with private_topics(name, partitions=1):
        yield name


async def survey_row(schema: str, **where: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(INFRA.database_url)
    try:
        key, value = next(iter(where.items()))
        return await conn.fetchrow(f'SELECT * FROM "{schema}".surveys WHERE {key} = $1', value)
    finally:
        await conn.close()


async def drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(INFRA.database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def for_subject(subject_id: str, kind: str | None = None) -> Callable[[Envelope[Any]], bool]:
    def match(event: Envelope[Any]) -> bool:
        return event.subject == subject_id and (kind is None or event.type.endswith(f".{kind}.v1"))

    return match


async def wait_row(
    schema: str, subject_id: str, predicate: Callable[[asyncpg.Record], bool], timeout: float = 30
) -> asyncpg.Record:
    """This instance's survey row for a subject, once it satisfies `predicate`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        row = await survey_row(schema, subject_id=subject_id)
        if row is not None and predicate(row):
            return row
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"survey row of {subject_id} not as expected: {row and dict(row)}")
        await asyncio.sleep(0.2)


@asynccontextmanager
async def axe_checked_browser(
    base_url: str,
) -> AsyncIterator[tuple[Browser, Callable[..., Awaitable[str]]]]:
    """Chromium, and `accessible(url=None, html=None)`: opens the page (or shows the HTML at the
    service's origin, so its style sheet loads), asserts axe finds no WCAG violation, and
    returns the page's HTML."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            axe = Axe()
            # axe runs as a script: it gets its own context (the page itself has no script,
            # and its CSP forbids any); a resident's browser has JavaScript off.
            checker = await (await browser.new_context(bypass_csp=True)).new_page()

            async def accessible(url: str | None = None, html: str | None = None) -> str:
                if url:
                    await checker.goto(url)
                else:
                    await checker.goto(base_url + "/health")
                    await checker.set_content(html or "")
                results = await axe.run(checker)
                assert results.violations_count == 0, results.generate_report()
                return await checker.content()

            yield browser, accessible
        finally:
            await browser.close()
