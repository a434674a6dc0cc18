"""Importing history: while an import is in progress, warnings and breaches dated before the
horizon are held; a clock whose stop arrives within the import raises none, one still open
raises them once the import has settled. Final outcomes are the same either way."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from schemas.common import Channel
from schemas.envelope import Envelope, new_event
from schemas.events import ContactReceived, EventData
from services.common.calendar import DAY_US, to_us
from services.norms.domain.catalog import NormCatalog
from services.norms.domain.clock import DecisionKind
from services.norms.domain.planning import StoredClock, advance_clock, plan_events
from tests.integration.norms.support import email_answer

AMS = ZoneInfo("Europe/Amsterdam")
NOW = to_us(datetime(2026, 12, 2, 12, 0, tzinfo=AMS))
HOLD = NOW - DAY_US  # the horizon: a day


def _event(data: EventData, at: datetime) -> Envelope[Any]:
    return new_event(data, source="/buch/import", municipality="GM0383", time=at)


def email(received: datetime, answered: datetime | None) -> list[Envelope[Any]]:
    mail = f"E-{uuid.uuid4()}"
    events = [
        _event(ContactReceived(contact_id=mail, channel=Channel.EMAIL, topic="afval"), received)
    ]
    if answered is not None:
        events.append(_event(email_answer(mail, answered), answered))
    return events


def clock_of(events: list[Envelope[Any]], catalog: NormCatalog) -> StoredClock:
    plan = plan_events(events, {"GM0383": catalog})
    [(blank, transitions)] = [
        v for v in plan.transitions.values() if v[0].norm_id == "email_answered"
    ]
    clock = StoredClock(blank.clock_id, blank.municipality, blank.norm_id, blank.subject_id)
    for transition, context in transitions:
        clock.add(transition, context)
    return clock


def kinds(update: Any) -> list[DecisionKind]:
    return [o.kind for o in update.events]


MONDAY = datetime(2025, 3, 3, 10, 0, tzinfo=AMS)


def test_an_imported_clock_closed_in_time_raises_no_alert(
    catalogs: dict[str, NormCatalog],
) -> None:
    catalog = catalogs["GM0383"]
    [opened, answered] = email(MONDAY, MONDAY + timedelta(days=2, hours=5))
    # Pass 1: the opening. Started goes out; the warnings wait; the clock wakes at the first.
    clock = clock_of([opened], catalog)
    first = advance_clock(clock, catalog, NOW, HOLD)
    assert kinds(first) == [DecisionKind.STARTED]
    assert first.next_decision_at == to_us(datetime(2025, 3, 5, 0, 0, tzinfo=AMS))  # 50 %
    clock.taken = first.taken
    # Pass 2: the answer. Met, and nothing of the warnings, ever.
    clock = clock_of([opened, answered], catalog)
    clock.taken = first.taken
    second = advance_clock(clock, catalog, NOW, HOLD)
    assert kinds(second) == [DecisionKind.MET]
    assert second.next_decision_at is None
    assert advance_clock(clock, catalog, NOW + DAY_US, None).events != []  # (fresh: all)
    clock.taken = second.taken
    assert advance_clock(clock, catalog, NOW + DAY_US, None).events == []  # settled: none


def test_an_imported_clock_closed_late_is_missed_without_a_breach(
    catalogs: dict[str, NormCatalog],
) -> None:
    catalog = catalogs["GM0383"]
    clock = clock_of(email(MONDAY, MONDAY + timedelta(days=9)), catalog)
    update = advance_clock(clock, catalog, NOW, HOLD)
    assert kinds(update) == [DecisionKind.STARTED, DecisionKind.MISSED]
    # The same final outcome as without the hold.
    plain = advance_clock(clock, catalog, NOW, None)
    assert kinds(plain) == [
        DecisionKind.STARTED,
        DecisionKind.WARNING,
        DecisionKind.WARNING,
        DecisionKind.BREACHED,
        DecisionKind.MISSED,
    ]
    assert update.events[-1].value == plain.events[-1].value
    assert (update.outcome, update.due_at, update.stopped_at) == (
        plain.outcome,
        plain.due_at,
        plain.stopped_at,
    )


def test_an_imported_clock_still_open_raises_its_alerts_once_the_import_settled(
    catalogs: dict[str, NormCatalog],
) -> None:
    catalog = catalogs["GM0383"]
    clock = clock_of(email(MONDAY, None), catalog)
    held = advance_clock(clock, catalog, NOW, HOLD)
    assert kinds(held) == [DecisionKind.STARTED]
    clock.taken = held.taken
    settled = advance_clock(clock, catalog, NOW + 600_000_000, None)
    assert kinds(settled) == [DecisionKind.WARNING, DecisionKind.WARNING, DecisionKind.BREACHED]


def test_alerts_within_the_horizon_are_not_held(catalogs: dict[str, NormCatalog]) -> None:
    catalog = catalogs["GM0383"]
    # Received Friday 27 November 2026: warnings at the start and the middle of Tuesday
    # 1 December, breach at the end of it. A day before now (Wednesday noon) is the horizon:
    # only the first warning lies before it, and it is no alert once the later ones went out.
    received = datetime(2026, 11, 27, 10, 0, tzinfo=AMS)
    clock = clock_of(email(received, None), catalog)
    update = advance_clock(clock, catalog, NOW, HOLD)
    assert [(o.kind, o.at) for o in update.events][1:] == [
        (DecisionKind.WARNING, to_us(datetime(2026, 12, 1, 12, 0, tzinfo=AMS))),
        (DecisionKind.BREACHED, to_us(datetime(2026, 12, 2, 0, 0, tzinfo=AMS))),
    ]
    # The first warning, superseded by the later alerts, is settled without an event.
    assert "warning:50%" in update.taken and update.next_decision_at is None
