"""From Open Zaak to norm outcomes: the connector's events, on a private intake topic, read by
a real norms service process (private catalog version, schema, topics). The decision term of
an omgevingsvergunning (Awb 4:13, 8 weeks) pauses while the zaak is opgeschort (Awb 4:15),
is extended by the verlenging (Awb 4:14), and is met when the zaak closes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.connector.support import Rig, zaak_message, zaak_world
from tests.integration.norms.support import (
    drop_schema,
    free_ports,
    new_schema,
    private_config,
    service_env,
)
from tests.support.kafka import private_topics, topic_tail
from tests.support.services import running_service

pytestmark = pytest.mark.integration


async def test_a_zaak_through_the_connector_meets_its_decision_term(
    rig: Rig, tmp_path: Path
) -> None:
    version = f"connector-{uuid.uuid4().hex[:6]}"
    norms_topic = f"test.connector.norms.{uuid.uuid4().hex[:10]}"
    schema = new_schema("norms_connector")
    [port] = free_ports(1)
    env = service_env(
        private_config(tmp_path, version),
        schema,
        port=port,
        intake_topic=rig.topic,
        norms_topic=norms_topic,
        auto_offset_reset="earliest",
    )
    fake = rig.fake
    zaaktype, zaak = zaak_world(fake)
    opened_at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    await rig.post(zaak_message(zaak, "zaak", zaak["url"], "create", opened_at))
    await rig.drain()
    fake.revise(
        zaak,
        datetime(2026, 11, 5, 10, tzinfo=UTC),
        opschorting={"indicatie": True, "eerdereOpschorting": False, "reden": "aanvulling"},
    )
    await rig.post(
        zaak_message(
            zaak, "zaak", zaak["url"], "partial_update", datetime(2026, 11, 5, 10, tzinfo=UTC)
        )
    )
    await rig.drain()
    fake.revise(
        zaak,
        datetime(2026, 11, 12, 10, tzinfo=UTC),
        opschorting={"indicatie": False, "eerdereOpschorting": True, "reden": ""},
    )
    await rig.post(
        zaak_message(
            zaak, "zaak", zaak["url"], "partial_update", datetime(2026, 11, 12, 10, tzinfo=UTC)
        )
    )
    await rig.drain()
    fake.revise(
        zaak, datetime(2026, 11, 13, 8, tzinfo=UTC), verlenging={"reden": "complex", "duur": "P6W"}
    )
    await rig.post(
        zaak_message(
            zaak, "zaak", zaak["url"], "partial_update", datetime(2026, 11, 13, 8, tzinfo=UTC)
        )
    )
    await rig.drain()
    closed_at = datetime(2026, 11, 20, 15, tzinfo=UTC)
    fake.set_resultaat(zaak, fake.resultaattype(zaaktype, "Verleend"))
    final = fake.set_status(zaak, fake.statustype(zaaktype, "Afgehandeld"), closed_at)
    await rig.post(zaak_message(zaak, "status", final["url"], "create", closed_at))
    await rig.drain()

    try:
        async with (
            private_topics(norms_topic),
            topic_tail(norms_topic, from_beginning=True) as outcomes,
            running_service("norms", port=port, env=env),
        ):
            [met] = await outcomes.wait_for(
                lambda e: (
                    e.type.endswith("norm.met.v1")
                    and e.data.norm_id == "decision_made"
                    and e.data.subject_id == zaak["uuid"]
                ),
                timeout=60,
            )
    finally:
        await drop_schema(schema)
    assert met.data.norm_version == version
    assert met.data.case_type == "omgevingsvergunning"
    assert met.data.stopped_at == closed_at
    # Suspended from 5 to 12 November: a week, to within the day's edges the term counts in.
    assert timedelta(days=6) <= timedelta(seconds=met.data.paused_seconds) <= timedelta(days=8)
    # 8 weeks, a week's suspension and a 6-week verlenging: due in February, not late December.
    assert met.data.due_at > met.data.started_at + timedelta(weeks=14)
