"""Helpers of the connector's integration tests: the rig: the callback app with its real PostgreSQL schema and Kafka
topics of its own, and the fake ZGW APIs behind it."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from services.connector.bootstrap import bootstrap, shutdown
from services.connector.entrypoints.callback import create_app
from services.connector.service import Connector
from services.connector.settings import ConnectorSettings
from tests.integration.norms.support import drop_schema
from tests.support.kafka import private_topics
from tests.support.zgw import (
    CATALOGI,
    JWT_SECRET,
    KLANT_TOKEN,
    KLANTINTERACTIES,
    NOTIFICATIES,
    NRC_SECRET,
    ZAKEN,
    FakeZgw,
    notification,
)

REPO = Path(__file__).resolve().parents[3]
CALLBACK_AUTH = "Bearer test-callback-gm0383"
ZONE = ZoneInfo("Europe/Amsterdam")
PREFIX = "nl.servicepuls."


def write_config(tmp: Path) -> Path:
    config = tmp / "config"
    shutil.copytree(REPO / "deploy" / "config", config)
    auth = {"kind": "jwt", "client_id": "servicepuls", "secret_env": "TEST_CONNECTOR_OZ_SECRET"}
    sources = {
        "sources": [
            {
                "municipality": "GM0383",
                "source": "/buch/open-zaak",
                "callback_url": "http://127.0.0.1:8084/v1/notificaties/GM0383",
                "callback_auth_env": "TEST_CONNECTOR_CALLBACK",
                "callback_auth_sha256": hashlib.sha256(CALLBACK_AUTH.encode()).hexdigest(),
                "mapping": "GM0383",
                "zaken": {"base_url": ZAKEN, "auth": auth},
                "catalogi": {"base_url": CATALOGI, "auth": auth},
                "klantinteracties": {
                    "base_url": KLANTINTERACTIES,
                    "auth": {"kind": "token", "token_env": "TEST_CONNECTOR_OK_TOKEN"},
                },
                "notificaties": {
                    "base_url": NOTIFICATIES,
                    "auth": {**auth, "secret_env": "TEST_CONNECTOR_NRC_SECRET"},
                },
            }
        ]
    }
    (config / "connector" / "sources.yaml").write_text(yaml.safe_dump(sources))
    return config


@dataclass
class Rig:
    fake: FakeZgw
    connector: Connector
    http: httpx.AsyncClient
    topic: str
    dead_letters: str

    async def post(self, message: dict[str, Any], *, auth: str | None = CALLBACK_AUTH) -> int:
        if self.fake.check is not None:  # what the test sends is what Open Notificaties sends
            self.fake.check.validate_message(message)
        headers = {"Authorization": auth} if auth else {}
        response = await self.http.post("/v1/notificaties/GM0383", json=message, headers=headers)
        return response.status_code

    async def drain(self) -> int:
        """Work off every due notification (the worker loop's job), how many were worked."""
        worked = 0
        while await self.connector.work_one():
            worked += 1
        return worked


@asynccontextmanager
async def connector_rig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, workers: int = 0
) -> AsyncIterator[Rig]:
    """The callback app (workers off: a test works the queue with `Rig.drain`) on a schema,
    an intake topic and a dead-letter topic of its own, with the fake APIs behind it."""
    monkeypatch.setenv("TEST_CONNECTOR_OZ_SECRET", JWT_SECRET)
    monkeypatch.setenv("TEST_CONNECTOR_OK_TOKEN", KLANT_TOKEN)
    monkeypatch.setenv("TEST_CONNECTOR_NRC_SECRET", NRC_SECRET)
    monkeypatch.setenv("TEST_CONNECTOR_CALLBACK", CALLBACK_AUTH)
    suffix = uuid.uuid4().hex[:10]
    topic, dead = f"test.connector.intake.{suffix}", f"test.connector.deadletter.{suffix}"
    schema = f"connector_{suffix}"
    config = write_config(tmp_path)
    monkeypatch.setenv("SERVICEPULS_CONFIG_DIR", str(config))
    settings = ConnectorSettings(
        db_schema=schema,
        topic=topic,
        dead_letter_topic=dead,
        fetch_tries=3,
        fetch_backoff_seconds=0.01,
        max_attempts=2,
        retry_backoff_seconds=0,
        workers=workers,
        idle_poll_seconds=0.1,
        kafka_retry_seconds=0,
        publish_timeout_seconds=2,
    )
    fake = FakeZgw()
    async with private_topics(topic, dead, partitions=3):
        app = create_app(
            lambda: bootstrap(settings, transport=fake.transport()),
            shutdown,
            run_workers=workers > 0,
        )
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://connector"
            ) as http,
        ):
            yield Rig(fake, app.state.connector, http, topic, dead)
    await drop_schema(schema)


def short(envelope: Any) -> str:
    return envelope.type.removeprefix(PREFIX).removesuffix(".v1")


def zaak_world(fake: FakeZgw) -> tuple[dict[str, Any], dict[str, Any]]:
    zaaktype = fake.zaaktype(
        "ZT-OMGEVINGSVERGUNNING",
        "Omgevingsvergunning",
        statustypen=[("Ontvangen", False, True), ("Afgehandeld", True, False)],
        resultaattypen=[("Verleend", "toegekend")],
    )
    zaak = fake.zaak(
        zaaktype, registratiedatum=date(2026, 11, 2), bsn="111222333", email="aanvrager@example.nl"
    )
    return zaaktype, zaak


def zaak_message(
    zaak: dict[str, Any], resource: str, url: str, actie: str, at: datetime
) -> dict[str, Any]:
    return notification(
        "zaken",
        zaak["url"],
        resource,
        url,
        actie,
        at,
        bronorganisatie="002564440",
        zaaktype=zaak["zaaktype"],
        vertrouwelijkheidaanduiding="openbaar",
    )
