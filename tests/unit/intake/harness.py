"""The intake HTTP app in-process, with a fake Kafka producer (unit tests of the HTTP layer only;
what Kafka does is tested against the real broker in tests/integration/intake)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.common.settings import InfraSettings
from services.intake.bootstrap import create_app
from services.intake.settings import IntakeSettings

REPO = Path(__file__).resolve().parents[3]
DEPLOYED_SYSTEMS = REPO / "deploy" / "config" / "intake" / "channel_systems.yaml"


class Builder:
    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.ids: list[str] = []

    def append(self, *, timestamp: None, key: bytes, value: bytes, headers: list) -> object:
        self.records.append(value)
        self.ids.append(dict(headers)["ce_id"].decode())
        return object()


class FakeProducer:
    """Acknowledges every batch at once, or answers as `ack` says: `ack(batch)` returns None to
    acknowledge or an exception to fail the batch with. `hand_over` fails the partitioning
    (before any batch), `refuse_batches` fails `send_batch` (the producer does not take the
    batch), `never_acknowledge` leaves every batch unanswered."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.written_ids: list[str] = []
        self.ack: Callable[[Builder], BaseException | None] = lambda batch: None
        self.hand_over: BaseException | None = None
        self.refuse_batches: BaseException | None = None  # raised by send_batch itself
        self.never_acknowledge = False

    async def start(self) -> None:
        self.client = self  # what /ready asks for the cluster's metadata

    async def fetch_all_metadata(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def partitions_for(self, topic: str) -> set[int]:
        if self.hand_over is not None:
            raise self.hand_over
        return {0, 1}

    def create_batch(self) -> Builder:
        return Builder()

    async def send_batch(self, builder: Builder, topic: str, *, partition: int) -> asyncio.Future:
        if self.refuse_batches is not None:
            raise self.refuse_batches
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.never_acknowledge:
            return acked
        failure = self.ack(builder)
        if failure is None:
            self.written.extend(builder.records)
            self.written_ids.extend(builder.ids)
            acked.set_result(None)
        else:
            acked.set_exception(failure)
        return acked


@asynccontextmanager
async def serving(
    tmp_path: Path,
    *,
    channel_systems: str | None = None,
    producer: FakeProducer | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[httpx.AsyncClient, FakeProducer]]:
    """The app with its lifespan running, and the producer it writes with."""
    systems_file = DEPLOYED_SYSTEMS
    if channel_systems is not None:
        systems_file = tmp_path / "channel_systems.yaml"
        systems_file.write_text(channel_systems)
    producer = producer or FakeProducer()
    app = create_app(
        IntakeSettings(
            channel_systems_file=systems_file,
            infra=InfraSettings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:1"),
            **settings,
        ),
        producer=producer,  # type: ignore[arg-type]
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://intake") as client,
    ):
        for _ in range(100):  # connecting happens in the background
            if (await client.get("/ready")).status_code == 200:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("intake did not connect to the fake producer")
        yield client, producer


def case_opened(**data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/buch/zaaksysteem",
        "type": "nl.servicepuls.case.opened.v1",
        "time": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "municipality": "GM0383",
        "data": {"case_id": f"Z-{uuid.uuid4()}", "case_type": "klacht", "channel": "email", **data},
    }


AUTH = {"Authorization": "Bearer dev-zaaksysteem"}
