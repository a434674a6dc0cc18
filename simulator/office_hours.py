"""When the municipality's staff work: the simulator places answers, decisions and callbacks in
office hours, the way a real back office produces them.

This is deliberately not the norms service's business calendar: the simulator plays the channel
systems and must not share code with what it is testing. It only needs "the next moment someone
is at work" and "N office hours later".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@lru_cache(maxsize=64)
def _dutch_holidays(year: int) -> frozenset[date]:
    # Liberation Day (5 May) is a day off for municipal staff only every five years; the
    # simulator treats it as a working day, like most municipalities' own planning does.
    return frozenset(d for d, name in holidays.NL(years=year).items() if "Liberation" not in name)


def is_public_holiday(day: date) -> bool:
    return day in _dutch_holidays(day.year)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and not is_public_holiday(day)


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """Back-office working hours on working days (default 08:30–17:00)."""

    opens: time = time(8, 30)
    closes: time = time(17, 0)
    zone: ZoneInfo = field(default=AMSTERDAM)

    @property
    def seconds_per_day(self) -> float:
        return (
            datetime.combine(date.min, self.closes) - datetime.combine(date.min, self.opens)
        ).total_seconds()

    def _window(self, day: date) -> tuple[datetime, datetime]:
        return (
            datetime.combine(day, self.opens, self.zone),
            datetime.combine(day, self.closes, self.zone),
        )

    def next_open(self, moment: datetime) -> datetime:
        """`moment` itself when the office is open then, else the next opening."""
        local = moment.astimezone(self.zone)
        day = local.date()
        while True:
            if is_working_day(day):
                start, end = self._window(day)
                if local < end:
                    return max(local, start)
            day += timedelta(days=1)
            local = datetime.combine(day, time(0), self.zone)

    def add(self, moment: datetime, office_seconds: float) -> datetime:
        """The instant `office_seconds` of office time after `moment`."""
        current = self.next_open(moment)
        remaining = max(0.0, office_seconds)
        while True:
            _, end = self._window(current.date())
            available = (end - current).total_seconds()
            if remaining <= available:
                return current + timedelta(seconds=remaining)
            remaining -= available
            current = self.next_open(end + timedelta(seconds=1))

    def add_working_days(self, moment: datetime, days: float) -> datetime:
        return self.add(moment, days * self.seconds_per_day)

    def office_seconds_between(self, start: datetime, end: datetime) -> float:
        """Office time elapsed from `start` to `end` (0 when end is not after start)."""
        total = 0.0
        current = self.next_open(start)
        while current < end:
            _, close = self._window(current.date())
            total += (min(close, end) - current).total_seconds()
            current = self.next_open(close + timedelta(seconds=1))
        return total
