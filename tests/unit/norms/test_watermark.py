"""What an event may do to the watermark (event-time mode): a far-future event is applied to its
clock but moves a partition's progress no further than the wall clock plus the tolerance."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.common import Channel
from schemas.envelope import Envelope, new_event
from schemas.events import ContactReceived
from services.common.calendar import to_us
from services.norms.adapters.repository import ClockRepository
from services.norms.domain.catalog import NormCatalog
from services.norms.service import NormsService

CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "config"
WALL = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
TOLERANCE = 3600.0


def norms_service(catalogs: dict[str, NormCatalog], tolerance: float = TOLERANCE) -> NormsService:
    repository = ClockRepository(
        pool=None,  # type: ignore[arg-type]  # prepare() does no I/O
        schema="norms_unit",
        catalogs=catalogs,
        intake_topic="intake",
        norms_topic="norms",
        event_clock=True,
        allowed_lateness_seconds=300,
        idle_partition_seconds=10,
        future_tolerance_seconds=tolerance,
        wall_clock=WALL.timestamp,
    )
    return NormsService(repository)


def mail(time: datetime) -> tuple[str, Envelope[Any]]:
    contact = f"E-{uuid.uuid4()}"
    data = ContactReceived(contact_id=contact, channel=Channel.EMAIL, topic="afval")
    return contact, new_event(data, source="/buch/unit", municipality="GM0383", time=time)


async def test_a_far_future_event_does_not_move_the_watermark_past_wall_time_plus_tolerance(
    catalogs: dict[str, NormCatalog],
) -> None:
    _, past = mail(WALL - timedelta(hours=1))
    _, soon = mail(WALL + timedelta(minutes=10))  # within the tolerance: counts as it is
    future_contact, future = mail(datetime(2090, 1, 1, tzinfo=UTC))
    prepared = await norms_service(catalogs).prepare([(0, past), (1, soon), (2, future)])
    assert prepared.progress == {
        0: to_us(WALL - timedelta(hours=1)),
        1: to_us(WALL + timedelta(minutes=10)),
        2: to_us(WALL) + round(TOLERANCE * 1_000_000),
    }
    assert prepared.ahead_of_wall == 1
    # Still applied to its clock, at its own time.
    [(_clock, transitions)] = [
        entry for cid, entry in prepared.plan.transitions.items() if future_contact in cid
    ]
    assert [t.at for t, _ in transitions] == [to_us(datetime(2090, 1, 1, tzinfo=UTC))]


async def test_a_partition_keeps_the_highest_progress_of_its_events(
    catalogs: dict[str, NormCatalog],
) -> None:
    _, earlier = mail(WALL - timedelta(hours=3))
    _, later = mail(WALL - timedelta(hours=2))
    _, future = mail(WALL + timedelta(days=30))
    prepared = await norms_service(catalogs, tolerance=0).prepare(
        [(0, later), (0, future), (0, earlier)]
    )
    assert prepared.progress == {0: to_us(WALL)}
    assert prepared.ahead_of_wall == 1
