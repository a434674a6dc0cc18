from __future__ import annotations

from datetime import datetime, timedelta

from simulator.clock import SimulatedClock
from simulator.office_hours import AMSTERDAM, OfficeHours


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=AMSTERDAM)


def test_next_open_skips_evenings_weekends_and_holidays() -> None:
    office = OfficeHours()
    assert office.next_open(at(3, 10)) == at(3, 10)  # Monday morning: open
    assert office.next_open(at(3, 18)) == at(4, 8, 30)
    assert office.next_open(at(7, 17, 30)) == at(10, 8, 30)  # Friday evening -> Monday
    # Easter Monday 21 April 2025 is a public holiday; Good Friday is none (the calendar's
    # `closed_on_good_friday` is false by default).
    assert office.next_open(at(18, 9, month=4)) == at(18, 9, month=4)
    assert office.next_open(at(18, 18, month=4)) == at(22, 8, 30, month=4)
    assert not office.calendar.is_working_day(at(21, 9, month=4).date())


def test_adding_office_time_carries_over_to_the_next_working_day() -> None:
    office = OfficeHours()
    assert office.add(at(3, 16), 3600) == at(3, 17)
    assert office.add(at(3, 16), 7200) == at(4, 9, 30)  # the last hour, then one more
    assert office.add_working_days(at(7, 10), 1) == at(10, 10)  # over the weekend
    assert office.add(at(3, 10), 0) == at(3, 10)


def test_office_seconds_between_is_the_inverse_of_add() -> None:
    office = OfficeHours()
    start = at(6, 15, 20)
    for seconds in (0, 60, 5000, 30_600, 100_000, 400_000):
        assert office.office_seconds_between(start, office.add(start, seconds)) == seconds


def test_simulated_clock_runs_faster_than_the_wall() -> None:
    wall = [100.0]
    clock = SimulatedClock(at(3, 8), speedup=600, monotonic=lambda: wall[0])
    assert clock.now() == at(3, 8)
    wall[0] += 6  # six wall seconds are an hour
    assert clock.now() == at(3, 9)
    assert clock.wall_seconds_until(at(3, 10)) == 6.0
    assert clock.wall_seconds_until(at(3, 8)) < 0
    assert clock.now() - at(3, 8) == timedelta(hours=1)
