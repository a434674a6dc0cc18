"""The consumer plans a batch in steps (`NormsService.prepare`), letting the transaction in
flight go on in between: the plan must be the one made in a single step."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from schemas.common import Channel, Direction
from schemas.envelope import Envelope, new_event
from schemas.events import (
    CaseClosed,
    CaseOpened,
    CaseOutcome,
    ContactCompleted,
    ContactReceived,
)
from services.norms.service import PreparedBatch
from tests.unit.norms.test_watermark import WALL, norms_service


def _event(data: Any, time: datetime, municipality: str = "GM0383") -> Envelope[Any]:
    return new_event(data, source="/unit/prepare", municipality=municipality, time=time)


def traffic(rng: random.Random) -> list[tuple[int, Envelope[Any]]]:
    """Starts and stops of the same clocks in different steps, phone calls (judged at once),
    an event delivered twice, and one of a municipality without a catalog."""
    at = WALL - timedelta(days=30)
    events: list[Envelope[Any]] = []
    for n in range(40):
        at += timedelta(minutes=rng.uniform(1, 90))
        kind = n % 4
        if kind == 0:
            mail = f"E-{uuid.uuid4()}"
            events.append(
                _event(ContactReceived(contact_id=mail, channel=Channel.EMAIL, topic="afval"), at)
            )
            answer = ContactCompleted(
                contact_id=f"E-{uuid.uuid4()}",
                channel=Channel.EMAIL,
                direction=Direction.OUTBOUND,
                topic="afval",
                started_at=at + timedelta(hours=5),
                in_reply_to=mail,
            )
            events.append(_event(answer, at + timedelta(hours=5)))
        elif kind == 1:
            case = f"Z-{uuid.uuid4()}"
            kind_ = "melding-openbare-ruimte"
            events.append(
                _event(
                    CaseOpened(case_id=case, case_type=kind_, channel=Channel.PUBLIC_SPACE_REPORT),
                    at,
                )
            )
            closed = CaseClosed(case_id=case, case_type=kind_, outcome=CaseOutcome.RESOLVED)
            events.append(_event(closed, at + timedelta(days=2)))
        elif kind == 2:
            call = ContactCompleted(
                contact_id=f"T-{uuid.uuid4()}",
                channel=Channel.PHONE,
                topic="afval",
                started_at=at,
                wait_seconds=rng.uniform(0, 90),
                handling_seconds=120,
            )
            events.append(_event(call, at + timedelta(minutes=3)))
        else:
            events.append(events[-1])  # delivered twice
    events.append(
        _event(
            ContactReceived(contact_id="E-x", channel=Channel.EMAIL, topic="afval"), at, "GM9999"
        )
    )
    rng.shuffle(events)
    return [(n % 3, e) for n, e in enumerate(events)]


def form(batch: PreparedBatch) -> Any:
    plan = batch.plan
    return (
        batch.size,
        list(batch.by_key),
        batch.progress,
        batch.ahead_of_wall,
        [
            (cid, (b.clock_id, b.municipality, b.norm_id, b.subject_id), new)
            for cid, (b, new) in plan.transitions.items()
        ],
        plan.instant_events,
        plan.instant_outcomes,
        plan.unknown_municipalities,
    )


@pytest.mark.parametrize("step", [1, 3, 7, 250])
async def test_planning_in_steps_plans_what_planning_at_once_plans(
    catalogs: Any,
    step: int,
) -> None:
    events = traffic(random.Random(step))
    at_once = await norms_service(catalogs).prepare(events, {0: True}, step=len(events))
    in_steps = await norms_service(catalogs).prepare(events, {0: True}, step=step)
    assert form(in_steps) == form(at_once)
    assert at_once.plan.instant_events and at_once.plan.unknown_municipalities  # all kinds seen
    assert any(len(new) > 1 for _, new in at_once.plan.transitions.values())
