"""The e2e test's independent reading of the norms and survey policy, on generated traffic."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from simulator.generator import SimulatedMunicipality, SimulationPlan, generate
from simulator.office_hours import AMSTERDAM
from tests.e2e.expected import (
    Clock,
    cycle_keys,
    end_of_working_days,
    expected_clocks,
    office_hours_later,
    office_seconds,
    survey_candidates,
)


def at(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=AMSTERDAM)


def test_working_day_terms_start_the_next_day_and_end_at_the_end_of_the_last() -> None:
    assert end_of_working_days(at(11, 16, 10), 2) == at(11, 19, 0)  # Mon -> end of Wed
    assert end_of_working_days(at(11, 20, 16), 2) == at(11, 25, 0)  # Fri -> end of Tue
    # Christmas (25, 26 Dec) and the BUCH closing day 24 Dec 2026 do not count.
    assert end_of_working_days(at(12, 23, 10), 1) == at(12, 29, 0)


def test_office_seconds_count_only_opening_hours() -> None:
    assert office_seconds(at(11, 16, 16), at(11, 17, 9, 30)) == 2 * 3600
    assert office_seconds(at(11, 21, 10), at(11, 22, 10)) == 0  # a weekend


def test_office_hours_later_skips_closed_hours_and_breaches_follow_the_due_instant() -> None:
    assert office_hours_later(at(11, 16, 15), 4) == at(11, 17, 10, 30)  # 2 h Mon, 2 h Tue
    assert office_hours_later(at(11, 21, 10), 1) == at(11, 23, 9, 30)  # Saturday -> Monday
    due = at(11, 19, 0)
    running = Clock("email_answered", "K-1", at(11, 16, 10), None, None, due)
    assert not running.breached_by(at(11, 18, 23)) and running.breached_by(at(11, 19, 0))
    in_time = Clock("email_answered", "K-2", at(11, 16, 10), at(11, 19, 0), "met", due)
    late = Clock("email_answered", "K-3", at(11, 16, 10), at(11, 19, 0, 1), "missed", due)
    assert not in_time.breached_by(at(12, 1, 0)) and late.breached_by(at(11, 19, 0))


def test_a_generated_week_has_met_and_missed_clocks_and_survey_candidates() -> None:
    plan = SimulationPlan(
        municipalities=(SimulatedMunicipality("GM0383", "Castricum", 36_500),),
        start=at(11, 16, 8),
        days=4,
        seed=20260302,
        run_id="expected",
        scale=0.3,
    )
    events = [e.cloudevent() for e in generate(plan)]
    outcomes = Counter((c.norm, c.outcome) for c in expected_clocks(events))
    assert outcomes["email_answered", "met"] > outcomes["email_answered", "missed"] > 0
    assert outcomes["phone_answered", "missed"] > 0
    assert outcomes["report_reaction", "met"] > 0
    candidates = survey_candidates(events)
    assert candidates and all(c.delivery in ("email", "sms", "letter_list") for c in candidates)
    assert len({c.subject for c in candidates}) == len(candidates)


def _case_event(kind: str, when: datetime, **data: str) -> dict[str, object]:
    return {
        "type": f"nl.servicepuls.case.{kind}.v1",
        "time": when.isoformat(),
        "data": {"case_id": "Z-1", "case_type": "melding-openbare-ruimte", **data},
    }


def test_a_reopened_report_gets_a_second_resolved_cycle_keyed_by_its_start() -> None:
    events = [
        _case_event("opened", at(11, 16, 9), channel="webform"),
        _case_event("responded", at(11, 16, 11)),
        _case_event("closed", at(11, 17, 10), outcome="resolved"),
        _case_event("reopened", at(11, 18, 9)),
        _case_event("reopened", at(11, 18, 10)),  # while the second cycle runs: nothing
        _case_event("closed", at(12, 15, 10), outcome="resolved"),  # beyond 10 working days
    ]
    resolved = [c for c in expected_clocks(events) if c.norm == "report_resolved"]
    assert [(c.started, c.outcome) for c in resolved] == [
        (at(11, 16, 9), "met"),
        (at(11, 18, 9), "missed"),
    ]
    keys = cycle_keys([c.start for c in resolved])
    assert [keys[c.start] for c in resolved] == [
        ("report_resolved", "Z-1"),
        ("report_resolved", "Z-1", at(11, 18, 9)),
    ]
