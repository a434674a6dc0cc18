"""`revise_clock`: what a catalog change does to one stored clock (pure, no I/O)."""

from __future__ import annotations

import random
import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from schemas.common import Channel
from schemas.envelope import Envelope, new_event
from schemas.events import (
    CaseClosed,
    CaseOpened,
    CaseOutcome,
    CaseReopened,
    CaseResponded,
    EventData,
)
from services.common.calendar import to_us
from services.norms.config import load_catalogs
from services.norms.domain.catalog import NormCatalog
from services.norms.domain.planning import StoredClock, advance_clock, plan_events
from services.norms.revision import CycleChange, StoredDecisions, revise_clock
from tests.unit.norms.conftest import CONFIG
from tests.unit.norms.test_handlers import history

AMS = ZoneInfo("Europe/Amsterdam")
NORM = "report_reaction"


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=AMS)


def catalog(
    tmp: Path, version: str, days: int, closing: list[date], norm_id: str = NORM
) -> NormCatalog:
    target = tmp / version
    shutil.copytree(CONFIG, target)
    path = target / "norms" / "default.yaml"
    norms = yaml.safe_load(path.read_text())
    norms["version"] = version
    for norm in norms["norms"]:
        if norm["id"] == norm_id:
            norm["target"]["amount"] = days
    path.write_text(yaml.safe_dump(norms, sort_keys=False))
    path = target / "calendars" / "buch.yaml"
    calendar = yaml.safe_load(path.read_text())
    calendar["closing_days"] += closing
    path.write_text(yaml.safe_dump(calendar, sort_keys=False))
    return load_catalogs(target)["GM0383"]


def event(data: EventData, time: datetime) -> Envelope[Any]:
    return new_event(data, source="/buch/unit", municipality="GM0383", time=time)


def report(case: str, opened: datetime, responded: datetime | None) -> list[Envelope[Any]]:
    events = [
        event(
            CaseOpened(case_id=case, case_type="melding-openbare-ruimte", channel=Channel.WEBFORM),
            opened,
        )
    ]
    if responded is not None:
        events.append(
            event(
                CaseResponded(
                    case_id=case, case_type="melding-openbare-ruimte", channel=Channel.EMAIL
                ),
                responded,
            )
        )
    return events


def decided(
    events: list[Envelope[Any]], with_catalog: NormCatalog, now: int
) -> list[tuple[StoredClock, StoredDecisions]]:
    """The clocks as the live service stores them, decided with `with_catalog` up to `now`."""
    plan = plan_events(events, {"GM0383": with_catalog})
    stored = []
    for blank, transitions in plan.transitions.values():
        clock = StoredClock(blank.clock_id, blank.municipality, blank.norm_id, blank.subject_id)
        for transition, context in transitions:
            clock.add(transition, context)
        update = advance_clock(clock, with_catalog, now)
        clock.taken = update.taken
        stored.append(
            (
                clock,
                StoredDecisions(
                    update.norm_version, update.outcome, update.due_at, update.stopped_at
                ),
            )
        )
    return stored


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, NormCatalog]:
    tmp = tmp_path_factory.mktemp("revision")
    return {
        "a": catalog(tmp, "a", 3, []),
        "b": catalog(tmp, "b", 2, []),
        "c": catalog(tmp, "c", 2, [date(2026, 11, 13)]),
        "resolved-3": catalog(tmp, "resolved-3", 3, [], norm_id="report_resolved"),
    }


def test_a_shorter_target_turns_met_into_missed_and_a_running_case_overdue(
    catalogs: dict[str, NormCatalog],
) -> None:
    now = to_us(at(20, 13))
    events = report("B", at(9, 10), at(12, 15)) + report("E", at(17, 10), None)
    clocks = {
        c.subject_id: (c, s) for c, s in decided(events, catalogs["a"], now) if c.norm_id == NORM
    }
    b = revise_clock(*clocks["B"], catalogs["b"], now)
    assert b is not None and b.changed and b.norm_version == "b"
    assert b.changes == [CycleChange(1, to_us(at(9, 10)), to_us(at(12, 15)), "met", "missed")]
    assert b.running is None and not b.alerts  # an ended cycle raises no alert afterwards
    assert b.update.outcome == "missed"
    e = revise_clock(*clocks["E"], catalogs["b"], now)
    assert e is not None and e.changes == [] and e.running_changed
    assert e.running is not None and e.running.breached and e.running.due_at == to_us(at(20, 0))
    assert [a.kind.value for a in e.alerts] == ["breached"]
    assert "breached" in e.update.taken


def test_a_closing_day_added_after_the_fact_moves_the_term(
    catalogs: dict[str, NormCatalog],
) -> None:
    now = to_us(at(20, 13))
    [(clock, stored)] = [
        cs
        for cs in decided(report("D", at(12, 10), at(17, 12)), catalogs["b"], now)
        if cs[0].norm_id == NORM
    ]
    assert stored.outcome == "missed"  # 2 working days from Thursday: due end of Monday 16
    revised = revise_clock(clock, stored, catalogs["c"], now)
    assert revised is not None
    assert [(c.previous, c.outcome) for c in revised.changes] == [("missed", "met")]
    assert revised.update.due_at == to_us(at(18, 0))  # Friday 13 closed: end of Tuesday 17


def test_outside_the_period_nothing_changes_compliance(catalogs: dict[str, NormCatalog]) -> None:
    now = to_us(at(20, 13))
    [(clock, stored)] = [
        cs
        for cs in decided(report("B", at(9, 10), at(12, 15)), catalogs["a"], now)
        if cs[0].norm_id == NORM
    ]
    revised = revise_clock(clock, stored, catalogs["b"], now, first=to_us(at(10, 0)))
    assert revised is not None and revised.changes == [] and not revised.changed


def test_an_earlier_cycle_of_a_reopened_case_is_revised_too(
    catalogs: dict[str, NormCatalog],
) -> None:
    """ "Resolved within 10 working days" becomes 3: the first cycle (9 working days) was met and
    is missed now; the cycle after the reopening (1 day) stays met. The old outcome of the first
    cycle is not stored (the row keeps the latest): met, as its breach was never taken."""
    kind = {"case_type": "melding-openbare-ruimte"}
    events = [
        event(CaseOpened(case_id="R", channel=Channel.WEBFORM, **kind), at(2, 9)),
        event(CaseClosed(case_id="R", outcome=CaseOutcome.RESOLVED, **kind), at(13, 9)),
        event(CaseReopened(case_id="R", **kind), at(16, 9)),
        event(CaseClosed(case_id="R", outcome=CaseOutcome.RESOLVED, **kind), at(17, 9)),
    ]
    now = to_us(at(20, 13))
    [(clock, stored)] = [
        cs for cs in decided(events, catalogs["a"], now) if cs[0].norm_id == "report_resolved"
    ]
    assert stored.outcome == "met" and {"final", "2:final"} <= clock.taken
    revised = revise_clock(clock, stored, catalogs["resolved-3"], now)
    assert revised is not None
    assert [(c.cycle, c.previous, c.outcome, c.stopped_at) for c in revised.changes] == [
        (1, "met", "missed", to_us(at(13, 9)))
    ]
    assert revised.running is None and revised.update.outcome == "met"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_revising_with_the_same_catalog_or_twice_changes_nothing(
    catalogs: dict[str, NormCatalog], seed: int
) -> None:
    """Over every kind of norm (suspensions, extensions, cancellations, instant norms): the
    version the clocks were decided with finds nothing to revise, and neither does a second
    revision to a new version once the first was stored."""
    events = history(random.Random(seed))
    now = max(to_us(e.time) for e in events) + 1
    shipped = load_catalogs(CONFIG)["GM0383"]
    for clock, stored in decided(events, shipped, now):
        same = revise_clock(clock, stored, shipped, now)
        if same is None:
            continue
        assert not same.changed and not same.alerts, clock.clock_id
        # The row's new state is what the live path stores for these decisions.
        fresh = StoredClock(clock.clock_id, clock.municipality, clock.norm_id, clock.subject_id)
        fresh.transitions = clock.transitions
        live = advance_clock(fresh, shipped, now)
        assert (same.update.taken, same.update.next_decision_at, same.update.outcome) == (
            live.taken,
            live.next_decision_at,
            live.outcome,
        )
        assert (same.update.started_at, same.update.due_at, same.update.stopped_at) == (
            live.started_at,
            live.due_at,
            live.stopped_at,
        )
        first = revise_clock(clock, stored, catalogs["b"], now)
        assert first is not None
        clock.taken = first.update.taken
        after = StoredDecisions(
            first.norm_version, first.update.outcome, first.update.due_at, first.update.stopped_at
        )
        again = revise_clock(clock, after, catalogs["b"], now)
        assert again is not None and not again.changed and not again.alerts, clock.clock_id
