"""End to end from the systems a municipality runs to what Servicepuls promises: Open Zaak,
Open Klant and Open Notificaties (the spec-checked fakes of tests/support/zgw.py) announce a
zaak opened, suspended, resumed, extended and closed, and a phone call about it; the connector
(its callback and its own worker loop, on real PostgreSQL) admits the events through intake's
admission onto a private intake topic on real Kafka; a real norms process and a real feedback
process read that topic. Expected: the decision term is met with the suspension paused and the
verlenging added, and the satisfaction survey is a mail in the stack's SMTP sink, sent to the
address the resident agreed to in Open Klant, while a resident who did not agree gets none.
Every notification is delivered twice, some out of order. Takes about a minute."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from simulator.surveys import read_mail
from tests.integration.connector.support import Rig, connector_rig, short, zaak_message
from tests.integration.feedback.harness import drop_schema as drop_feedback_schema
from tests.integration.feedback.harness import feedback_env, wait_row
from tests.integration.norms.support import (
    drop_schema,
    free_ports,
    new_schema,
    private_config,
    service_env,
)
from tests.support.kafka import private_topics, topic_tail
from tests.support.services import REPO_ROOT, running_service
from tests.support.zgw import notification

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

MAILDIR = Path(os.environ.get("SERVICEPULS_MAILDIR", REPO_ROOT / ".stack" / "mail"))
SMTP_PORT = int(os.environ.get("SERVICEPULS_SMTP_PORT", "2525"))
AGREED_BSN, OTHER_BSN = "111222333", "123456782"  # both pass the elfproef
LATER = timedelta(seconds=3)  # Open Zaak notifies a moment after the change


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    """The connector with its own worker loop running (2 workers), as in production."""
    async with connector_rig(tmp_path, monkeypatch, workers=2) as made:
        yield made


def mail_to(address: str) -> list[Any]:
    """The survey mails in the sink's Maildir addressed to `address`."""
    paths = [*MAILDIR.glob("new/*"), *MAILDIR.glob("cur/*")]
    return [mail for path in paths if address in (mail := read_mail(path)).to]


async def wait_for_mail(address: str, timeout: float = 60) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if found := mail_to(address):
            return found[0]
        await asyncio.sleep(0.3)
    raise TimeoutError(f"no mail to {address} in {MAILDIR} within {timeout}s")


async def deliver(rig: Rig, *messages: dict[str, Any]) -> None:
    """Open Notificaties delivers at least once: here, every message twice."""
    for message in messages:
        assert await rig.post(message) == 204
        assert await rig.post(message) == 204


async def test_open_zaak_and_open_klant_to_norm_outcome_and_survey_mail(
    rig: Rig, tmp_path: Path
) -> None:
    fake = rig.fake
    run = uuid.uuid4().hex[:8]
    agreed, not_agreed = f"kto-{run}@example.nl", f"geen-kto-{run}@example.nl"
    zaaktype = fake.zaaktype(
        "ZT-OMGEVINGSVERGUNNING",
        "Omgevingsvergunning",
        statustypen=[("Ontvangen", False, True), ("Afgehandeld", True, False)],
        resultaattypen=[("Verleend", "toegekend")],
    )
    # The Zaken API knows the initiators by BSN only; Open Klant knows how to reach them, and
    # whether they agreed to be asked (a digitaal adres tagged `kto`).
    partij = fake.partij(bsn=AGREED_BSN, email=agreed)
    fake.partij(bsn=OTHER_BSN, email=not_agreed, consent=False)
    zaak = fake.zaak(zaaktype, registratiedatum=date(2026, 11, 2), bsn=AGREED_BSN)
    other = fake.zaak(zaaktype, registratiedatum=date(2026, 11, 3), bsn=OTHER_BSN)

    version = f"connector-e2e-{run}"
    config = private_config(tmp_path, version)
    norms_topic = f"test.connector-e2e.norms.{run}"
    norms_schema, feedback_schema = new_schema("norms_ce2e"), new_schema("feedback_ce2e")
    norms_port, feedback_port = free_ports(2)
    norms = service_env(
        config,
        norms_schema,
        port=norms_port,
        intake_topic=rig.topic,
        norms_topic=norms_topic,
        auto_offset_reset="earliest",
    )
    feedback = feedback_env(
        config,
        feedback_schema,
        feedback_port,
        SMTP_PORT,
        SERVICEPULS_FEEDBACK_INTAKE_TOPIC=rig.topic,
        SERVICEPULS_FEEDBACK_START_FROM="earliest",
        SERVICEPULS_FEEDBACK_DELAY_SECONDS="0",
        SERVICEPULS_FEEDBACK_SENDING_HOURS="always",
    )
    try:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(private_topics(norms_topic))
            outcomes = await stack.enter_async_context(topic_tail(norms_topic, from_beginning=True))
            intake = await stack.enter_async_context(topic_tail(rig.topic, from_beginning=True))
            await stack.enter_async_context(running_service("norms", port=norms_port, env=norms))
            await stack.enter_async_context(
                running_service("feedback", port=feedback_port, env=feedback)
            )
            await _the_systems_announce_a_zaak(rig, zaaktype, zaak, other, partij)

            expected = Counter(
                {
                    "case.opened": 2,
                    "case.status_changed": 3,
                    "case.responded": 1,
                    "case.suspended": 1,
                    "case.resumed": 1,
                    "case.extended": 1,
                    "case.closed": 2,
                    "contact.completed": 1,
                }
            )
            try:
                events = await intake.wait_for(lambda e: True, count=expected.total(), timeout=60)
            except TimeoutError:
                seen = Counter(short(e) for e in intake.seen)
                raise AssertionError(
                    f"events on the topic {dict(seen)}, expected {dict(expected)}"
                ) from None
            with pytest.raises(TimeoutError):  # and nothing more: repeats had no effect
                await intake.wait_for(lambda e: True, count=expected.total() + 1, timeout=3)
            [met] = await outcomes.wait_for(
                lambda e: (
                    e.type.endswith("norm.met.v1")
                    and e.data.norm_id == "decision_made"
                    and e.data.subject_id == zaak["uuid"]
                ),
                timeout=60,
            )
            mail = await wait_for_mail(agreed)
            row = await wait_row(feedback_schema, zaak["uuid"], lambda r: r["status"] == "sent")
            other_row = await wait_row(feedback_schema, other["uuid"], lambda r: True)
    finally:
        await drop_schema(norms_schema)
        await drop_feedback_schema(feedback_schema)

    assert Counter(short(e) for e in events) == expected
    ours = {short(e): e for e in events if e.subject == zaak["uuid"]}
    assert ours["case.suspended"].time == datetime(2026, 11, 5, 10, tzinfo=UTC)
    assert ours["case.resumed"].time == datetime(2026, 11, 12, 14, tzinfo=UTC)
    assert ours["case.extended"].data.extension.amount == 6
    assert ours["case.opened"].data.resident.survey_consent is True
    [contact] = [e for e in events if short(e) == "contact.completed"]
    assert contact.data.case_id == zaak["uuid"]
    assert contact.data.resident.survey_consent is True
    assert contact.data.resident.sealed_contact
    theirs = {short(e): e for e in events if e.subject == other["uuid"]}
    assert theirs["case.opened"].data.resident.survey_consent is None
    # Nothing of the residents in the clear on the topic.
    for record in intake.records:
        for secret in (agreed, not_agreed, AGREED_BSN, OTHER_BSN):
            assert secret.encode() not in record.value

    # Awb 4:13 term: 8 weeks, paused a week by the opschorting (Awb 4:15), 6 weeks added by
    # the verlenging (Awb 4:14), met at closing.
    assert met.data.norm_version == version
    assert met.data.stopped_at == datetime(2026, 11, 20, 15, tzinfo=UTC)
    assert timedelta(days=6) <= timedelta(seconds=met.data.paused_seconds) <= timedelta(days=8)
    assert met.data.due_at > met.data.started_at + timedelta(weeks=14)

    # The survey went to the address the resident agreed to in Open Klant, once.
    assert row["delivery_channel"] == "email"
    assert mail.links and all(
        link.startswith(f"http://127.0.0.1:{feedback_port}/") for link in mail.links
    )
    assert len(mail_to(agreed)) == 1
    # The other resident did not agree: their Open Klant address was never used.
    assert other_row["delivery_channel"] != "email"
    assert mail_to(not_agreed) == []


async def _the_systems_announce_a_zaak(
    rig: Rig,
    zaaktype: dict[str, Any],
    zaak: dict[str, Any],
    other: dict[str, Any],
    partij: dict[str, Any],
) -> None:
    """What Open Zaak and Open Klant do, and the notifications Open Notificaties delivers."""
    fake = rig.fake
    opened_at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    received = fake.set_status(zaak, fake.statustype(zaaktype, "Ontvangen"), opened_at + LATER)
    # Out of order: the status is heard before the zaak it belongs to.
    await deliver(
        rig,
        zaak_message(zaak, "status", received["url"], "create", opened_at + LATER),
        zaak_message(zaak, "zaak", zaak["url"], "create", opened_at),
        zaak_message(other, "zaak", other["url"], "create", opened_at + timedelta(days=1)),
    )
    # A phone call about the zaak, registered in Open Klant (KISS) with the resident's partij.
    called_at = datetime(2026, 11, 4, 11, tzinfo=UTC)
    contact = fake.klantcontact(
        kanaal="Telefoon",
        onderwerp="Omgevingsvergunning",
        plaatsgevonden=called_at,
        zaak_uuid=zaak["uuid"],
        partij=partij,
    )
    await deliver(
        rig,
        notification(
            "klantcontacten",
            contact["url"],
            "klantcontact",
            contact["url"],
            "create",
            called_at,
        ),
    )
    suspended_at = datetime(2026, 11, 5, 10, tzinfo=UTC)
    fake.revise(
        zaak,
        suspended_at,
        opschorting={"indicatie": True, "eerdereOpschorting": False, "reden": "Aanvulling"},
    )
    await deliver(rig, zaak_message(zaak, "zaak", zaak["url"], "partial_update", suspended_at))
    resumed_at = datetime(2026, 11, 12, 14, tzinfo=UTC)
    fake.revise(
        zaak, resumed_at, opschorting={"indicatie": False, "eerdereOpschorting": True, "reden": ""}
    )
    extended_at = datetime(2026, 11, 13, 8, tzinfo=UTC)
    fake.revise(zaak, extended_at, verlenging={"reden": "Complexe aanvraag", "duur": "P6W"})
    # Out of order: the verlenging's notification before the resumption's.
    await deliver(
        rig,
        zaak_message(zaak, "zaak", zaak["url"], "partial_update", extended_at + LATER),
        zaak_message(zaak, "zaak", zaak["url"], "partial_update", resumed_at + LATER),
    )
    closed_at = datetime(2026, 11, 20, 15, tzinfo=UTC)
    resultaat = fake.set_resultaat(zaak, fake.resultaattype(zaaktype, "Verleend"))
    final = fake.set_status(zaak, fake.statustype(zaaktype, "Afgehandeld"), closed_at)
    fake.set_resultaat(other, fake.resultaattype(zaaktype, "Verleend"))
    other_final = fake.set_status(other, fake.statustype(zaaktype, "Afgehandeld"), closed_at)
    await deliver(
        rig,
        zaak_message(zaak, "resultaat", resultaat["url"], "create", closed_at + LATER),
        zaak_message(zaak, "status", final["url"], "create", closed_at),
        zaak_message(other, "status", other_final["url"], "create", closed_at),
    )
