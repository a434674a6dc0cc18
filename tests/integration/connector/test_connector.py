"""The connector end to end with real PostgreSQL and Kafka, and a spec-checked fake of Open
Zaak, Open Klant and Open Notificaties: notifications posted to the callback, queued, worked
off, and the resulting events on a private intake topic (and dead letters on a private
dead-letter topic)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.common.kafka import durable_producer
from tests.integration.connector.support import (
    CALLBACK_AUTH,
    Rig,
    connector_rig,
    short,
    zaak_message,
    zaak_world,
)
from tests.support.kafka import BOOTSTRAP, topic_tail
from tests.support.zgw import notification

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Europe/Amsterdam")


async def test_a_zaak_opened_suspended_resumed_extended_and_closed(rig: Rig) -> None:
    fake = rig.fake
    zaaktype, zaak = zaak_world(fake)
    async with topic_tail(rig.topic) as tail:
        created = zaak_message(
            zaak, "zaak", zaak["url"], "create", datetime(2026, 11, 2, 9, tzinfo=UTC)
        )
        assert await rig.post(created) == 204
        assert await rig.post(created) == 204  # delivered again: no second effect
        status = fake.set_status(
            zaak, fake.statustype(zaaktype, "Ontvangen"), datetime(2026, 11, 2, 9, 5, tzinfo=UTC)
        )
        assert (
            await rig.post(
                zaak_message(
                    zaak, "status", status["url"], "create", datetime(2026, 11, 2, 9, 5, tzinfo=UTC)
                )
            )
            == 204
        )
        assert await rig.drain() == 2

        # Each change is in the zaak's audit trail at its instant; Open Zaak's notification
        # follows a moment later. The events carry the instant of the change.
        later = timedelta(seconds=3)
        suspended_at = datetime(2026, 11, 5, 10, tzinfo=UTC)
        fake.revise(zaak, suspended_at, opschorting=_opgeschort("Aanvulling gevraagd"))
        message = zaak_message(zaak, "zaak", zaak["url"], "partial_update", suspended_at + later)
        assert await rig.post(message) == 204
        await rig.drain()
        resumed_at = datetime(2026, 11, 12, 14, tzinfo=UTC)
        fake.revise(zaak, resumed_at, opschorting=_hervat())
        message = zaak_message(zaak, "zaak", zaak["url"], "partial_update", resumed_at + later)
        assert await rig.post(message) == 204
        await rig.drain()
        extended_at = datetime(2026, 11, 13, 8, tzinfo=UTC)
        fake.revise(zaak, extended_at, verlenging={"reden": "Complexe aanvraag", "duur": "P6W"})
        message = zaak_message(zaak, "zaak", zaak["url"], "partial_update", extended_at + later)
        assert await rig.post(message) == 204
        await rig.drain()

        closed_at = datetime(2026, 11, 20, 15, tzinfo=UTC)
        resultaat = fake.set_resultaat(zaak, fake.resultaattype(zaaktype, "Verleend"))
        final = fake.set_status(zaak, fake.statustype(zaaktype, "Afgehandeld"), closed_at)
        # Out of order: the status is heard before the resultaat; both arrive twice.
        for message in (
            zaak_message(zaak, "status", final["url"], "create", closed_at),
            zaak_message(zaak, "resultaat", resultaat["url"], "create", closed_at),
        ):
            assert await rig.post(message) == 204
            assert await rig.post(message) == 204
        await rig.drain()

        seen = await tail.wait_for(lambda e: True, count=8, timeout=30)
        with pytest.raises(TimeoutError):  # and nothing more
            await tail.wait_for(lambda e: True, count=9, timeout=2)

    by_type = {short(e): e for e in seen}
    assert [short(e) for e in seen] == [
        "case.opened",
        "case.status_changed",
        "case.responded",
        "case.suspended",
        "case.resumed",
        "case.extended",
        "case.status_changed",
        "case.closed",
    ]
    assert all(e.subject == zaak["uuid"] and e.source == "/buch/open-zaak" for e in seen)
    assert by_type["case.opened"].time == datetime(2026, 11, 2, tzinfo=ZONE)
    assert by_type["case.opened"].data.case_type == "omgevingsvergunning"
    assert by_type["case.opened"].data.resident.sealed_contact
    assert by_type["case.suspended"].time == suspended_at
    assert by_type["case.suspended"].data.reason == "awaiting_information"
    assert by_type["case.resumed"].time == resumed_at
    assert by_type["case.extended"].time == extended_at
    assert by_type["case.extended"].data.extension.amount == 6
    assert by_type["case.closed"].time == closed_at
    assert by_type["case.closed"].data.outcome == "granted"
    assert all(
        b"aanvrager@example.nl" not in r.value and b"111222333" not in r.value for r in tail.records
    )
    assert fake.check is None or fake.validated > 0
    # Every call carried the source's credentials.
    assert all(auth for _, _, auth in fake.requests)


def _opgeschort(reden: str) -> dict[str, object]:
    return {"indicatie": True, "eerdereOpschorting": False, "reden": reden}


def _hervat() -> dict[str, object]:
    return {"indicatie": False, "eerdereOpschorting": True, "reden": ""}


async def test_a_suspension_begun_and_ended_before_the_worker_came_is_still_reported(
    rig: Rig,
) -> None:
    """Both notifications are worked off after the opschorting ended: the zaak as it is now
    shows no opschorting, its audit trail shows both changes and when."""
    _, zaak = zaak_world(rig.fake)
    await rig.post(
        zaak_message(zaak, "zaak", zaak["url"], "create", datetime(2026, 11, 2, 9, tzinfo=UTC))
    )
    await rig.drain()
    suspended_at, resumed_at = (datetime(2026, 11, d, 10, tzinfo=UTC) for d in (5, 9))
    rig.fake.revise(zaak, suspended_at, opschorting=_opgeschort("advies gevraagd"))
    rig.fake.revise(zaak, resumed_at, opschorting=_hervat())
    async with topic_tail(rig.topic) as tail:
        for at in (resumed_at, suspended_at):  # and heard out of order
            await rig.post(zaak_message(zaak, "zaak", zaak["url"], "partial_update", at))
        await rig.drain()
        seen = await tail.wait_for(lambda e: True, count=2)
        with pytest.raises(TimeoutError):
            await tail.wait_for(lambda e: True, count=3, timeout=2)
    assert [(short(e), e.time) for e in seen] == [
        ("case.suspended", suspended_at),
        ("case.resumed", resumed_at),
    ]
    assert seen[0].data.reason == "awaiting_advice"


async def test_without_the_audit_trail_a_change_is_dated_by_its_notification(rig: Rig) -> None:
    rig.fake.audit_forbidden = True
    _, zaak = zaak_world(rig.fake)
    await rig.post(
        zaak_message(zaak, "zaak", zaak["url"], "create", datetime(2026, 11, 2, 9, tzinfo=UTC))
    )
    await rig.drain()
    noticed = datetime(2026, 11, 5, 10, 0, 3, tzinfo=UTC)
    rig.fake.revise(zaak, datetime(2026, 11, 5, 10, tzinfo=UTC), opschorting=_opgeschort("x"))
    async with topic_tail(rig.topic) as tail:
        await rig.post(zaak_message(zaak, "zaak", zaak["url"], "partial_update", noticed))
        await rig.drain()
        [suspended] = await tail.wait_for(lambda e: True)
    assert (short(suspended), suspended.time) == ("case.suspended", noticed)
    assert suspended.data.reason == "awaiting_information"  # the default for an unknown reden


async def test_a_status_heard_before_its_zaak_opens_the_case_first(rig: Rig) -> None:
    zaaktype, zaak = zaak_world(rig.fake)
    at = datetime(2026, 11, 2, 9, 5, tzinfo=UTC)
    status = rig.fake.set_status(zaak, rig.fake.statustype(zaaktype, "Ontvangen"), at)
    async with topic_tail(rig.topic) as tail:
        await rig.post(zaak_message(zaak, "status", status["url"], "create", at))
        await rig.post(
            zaak_message(zaak, "zaak", zaak["url"], "create", datetime(2026, 11, 2, 9, tzinfo=UTC))
        )
        await rig.drain()
        seen = await tail.wait_for(lambda e: True, count=3)
    assert [short(e) for e in seen] == ["case.opened", "case.status_changed", "case.responded"]


async def test_a_klantcontact_and_a_callback_from_open_klant(rig: Rig) -> None:
    at = datetime(2026, 11, 3, 11, tzinfo=UTC)
    contact = rig.fake.klantcontact(
        kanaal="telefoon", onderwerp="afval", plaatsgevonden=at, email="inwoner@example.nl"
    )
    taak = rig.fake.internetaak(contact, handeling="terugbellen", toegewezen=at)
    async with topic_tail(rig.topic) as tail:
        await rig.post(
            notification(
                "klantcontacten", contact["url"], "klantcontact", contact["url"], "create", at
            )
        )
        await rig.post(
            notification("internetaken", taak["url"], "internetaak", taak["url"], "create", at)
        )
        await rig.drain()
        taak["status"] = "verwerkt"
        taak["afgehandeldOp"] = datetime(2026, 11, 4, 9, tzinfo=UTC).isoformat()
        await rig.post(
            notification(
                "internetaken",
                taak["url"],
                "internetaak",
                taak["url"],
                "update",
                datetime(2026, 11, 4, 9, tzinfo=UTC),
            )
        )
        await rig.drain()
        seen = await tail.wait_for(lambda e: True, count=4)
    # Different keys, different partitions: found by what they are, not by order.
    [contact_event] = [e for e in seen if e.data.contact_id == contact["uuid"]]
    request, request_again = [e for e in seen if e.data.callback_requested]
    [answer] = [e for e in seen if e.data.in_reply_to]
    assert contact_event.data.channel == "phone" and contact_event.data.resident.survey_consent
    assert request.data.callback_requested and request.id == request_again.id
    assert answer.data.in_reply_to == request.data.contact_id
    assert answer.time == datetime(2026, 11, 4, 9, tzinfo=UTC)


async def test_a_fetch_failing_twice_is_retried_and_succeeds(rig: Rig) -> None:
    _, zaak = zaak_world(rig.fake)
    rig.fake.fail[zaak["url"]] = 2
    async with topic_tail(rig.topic) as tail:
        await rig.post(
            zaak_message(zaak, "zaak", zaak["url"], "create", datetime(2026, 11, 2, 9, tzinfo=UTC))
        )
        assert await rig.drain() == 1
        [opened] = await tail.wait_for(lambda e: True)
    assert short(opened) == "case.opened"
    assert sum(1 for m, url, _ in rig.fake.requests if url == zaak["url"]) == 3


async def test_a_resource_that_cannot_be_fetched_is_dead_lettered_with_the_reason(rig: Rig) -> None:
    _, zaak = zaak_world(rig.fake)
    rig.fake.fail[zaak["url"]] = 1000
    async with topic_tail(rig.dead_letters) as dead:
        await rig.post(
            zaak_message(zaak, "zaak", zaak["url"], "create", datetime(2026, 11, 2, 9, tzinfo=UTC))
        )
        await rig.drain()  # attempt 1 fails, scheduled again at once (backoff 0 in this test)
        await rig.drain()
        records = []
        for _ in range(20):
            batches = await dead.consumer.getmany(timeout_ms=500)
            records += [r for rs in batches.values() for r in rs]
            if records:
                break
    [record] = records
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["dl_service"] == "connector"
    assert headers["dl_reason"] == "http_503"
    assert "503" in headers["dl_error"]
    assert headers["dl_attempts"] == "2"
    assert headers["dl_origin"].startswith("notificaties-api/GM")
    assert b'"resourceUrl"' in record.value
    backlog = await rig.connector.store.backlog()
    assert backlog.get("dead") == 1 and not backlog.get("pending")


async def test_the_queue_is_in_the_metrics_its_pending_its_oldest_age_and_its_dead(
    rig: Rig,
) -> None:
    """What Prometheus scrapes to see a queue that no longer drains (ConnectorQueueStuck)."""
    _, zaak = zaak_world(rig.fake)
    rig.fake.fail[zaak["url"]] = 1000
    await rig.post(
        zaak_message(zaak, "zaak", zaak["url"], "create", datetime(2026, 11, 2, 9, tzinfo=UTC))
    )
    await asyncio.sleep(1.1)
    waiting = await _queue_metrics(rig)
    assert waiting["pending"] == 1 and waiting["dead"] == 0
    assert waiting["oldest"] >= 1
    await rig.drain()
    await rig.drain()  # the second attempt fails too: dead-lettered (max_attempts 2 here)
    after = await _queue_metrics(rig)
    assert after == {"pending": 0, "done": 0, "dead": 1, "oldest": 0}


async def _queue_metrics(rig: Rig) -> dict[str, float]:
    text = (await rig.http.get("/metrics")).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "servicepuls_connector_queue_notifications":
                found[sample.labels["state"]] = sample.value
            elif sample.name == "servicepuls_connector_oldest_pending_seconds":
                found["oldest"] = sample.value
    return found


async def test_an_unmapped_zaaktype_is_dead_lettered_at_once(rig: Rig) -> None:
    zaaktype = rig.fake.zaaktype("ZT-ONBEKEND", "Onbekend")
    zaak = rig.fake.zaak(zaaktype, registratiedatum=date(2026, 11, 2))
    await rig.post(
        zaak_message(zaak, "zaak", zaak["url"], "create", datetime(2026, 11, 2, 9, tzinfo=UTC))
    )
    assert await rig.drain() == 1
    assert (await rig.connector.store.backlog()).get("dead") == 1


async def test_wrong_authorization_is_refused_and_nothing_is_queued(rig: Rig) -> None:
    _, zaak = zaak_world(rig.fake)
    message = zaak_message(
        zaak, "zaak", zaak["url"], "create", datetime(2026, 11, 2, 9, tzinfo=UTC)
    )
    assert await rig.post(message, auth="Bearer wrong") == 401
    assert await rig.post(message, auth=None) == 401
    response = await rig.http.post(
        "/v1/notificaties/GM0399", json=message, headers={"Authorization": CALLBACK_AUTH}
    )
    assert response.status_code == 401  # another municipality's callback
    assert await rig.connector.store.backlog() == {}


async def test_unknown_kanalen_and_acties_are_acknowledged_counted_and_not_queued(rig: Rig) -> None:
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    url = "http://open-zaak.test/documenten/api/v1/enkelvoudiginformatieobjecten/1"
    assert (
        await rig.post(
            notification("documenten", url, "enkelvoudiginformatieobject", url, "create", at)
        )
        == 204
    )
    assert (
        await rig.post(
            notification("test", "http://x.test/1", "test", "http://x.test/1", "create", at)
        )
        == 204
    )
    assert await rig.connector.store.backlog() == {}
    ignored = rig.connector.metrics.notifications.labels("GM0383", "other", "ignored")._value.get()
    assert ignored == 2
    bad = await rig.http.post(
        "/v1/notificaties/GM0383", content=b"{", headers={"Authorization": CALLBACK_AUTH}
    )
    assert bad.status_code == 400


async def test_the_served_workers_work_off_the_queue_by_themselves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with connector_rig(tmp_path, monkeypatch, workers=2) as served:
        zaaktype, zaak = zaak_world(served.fake)
        at = datetime(2026, 11, 2, 9, 5, tzinfo=UTC)
        status = served.fake.set_status(zaak, served.fake.statustype(zaaktype, "Ontvangen"), at)
        async with topic_tail(served.topic) as tail:
            assert await served.post(zaak_message(zaak, "zaak", zaak["url"], "create", at)) == 204
            assert (
                await served.post(zaak_message(zaak, "status", status["url"], "create", at)) == 204
            )
            seen = await tail.wait_for(lambda e: True, count=3, timeout=30)
        assert [short(e) for e in seen] == ["case.opened", "case.status_changed", "case.responded"]
        counted = 'servicepuls_connector_events_total{municipality="GM0383",type="case.opened"} 1.0'
        for _ in range(50):  # counted just after the commit that follows the Kafka write
            if counted in (await served.http.get("/metrics")).text:
                break
            await asyncio.sleep(0.1)
        assert counted in (await served.http.get("/metrics")).text
        assert (await served.http.get("/ready")).status_code == 200


async def test_kafka_refusing_the_events_keeps_the_notification_without_counting_it(
    rig: Rig,
) -> None:
    _, zaak = zaak_world(rig.fake)
    writer = rig.connector.writer
    working = writer.producer
    closed = durable_producer(BOOTSTRAP, "connector-test-closed")
    await closed.start()
    await closed.stop()  # a real producer that can no longer write
    writer.producer = closed
    await rig.post(
        zaak_message(zaak, "zaak", zaak["url"], "create", datetime(2026, 11, 2, 9, tzinfo=UTC))
    )
    try:
        for _ in range(2):
            assert await rig.connector.work_one()
        row = await rig.connector.store.pool.fetchrow(
            f'SELECT state, attempts, last_error FROM "{rig.connector.store.schema}".notifications'
        )
        assert (row["state"], row["attempts"]) == ("pending", 0)
        assert row["last_error"] in ("ProducerClosed", "TimeoutError")
    finally:
        writer.producer = working
    async with topic_tail(rig.topic) as tail:
        assert await rig.drain() == 1
        [opened] = await tail.wait_for(lambda e: True)
    assert short(opened) == "case.opened"
