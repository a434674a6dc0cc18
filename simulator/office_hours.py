"""When the municipality's staff work: the simulator places answers, decisions and callbacks in
office hours, the way a real back office produces them.

The days and hours are the municipality's business calendar (`services/common/calendar.py`, the
files in deploy/config/calendars/ that norms, metrics and feedback read): its opening hours on
its working days, without its public holidays and closing days. The simulator only needs "the
next moment someone is at work" and "N office hours later" from it. What the simulator's traffic
should lead to is still worked out independently of services/ (tests/e2e/expected.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.common.calendar import US, BusinessCalendar, Measure, from_us, to_us

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# The calendar's own bound (BusinessCalendar.advance): a calendar without office hours is refused
# rather than searched for ever.
_SEARCH_DAYS = 40_000


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """Back-office working time: the calendar's opening hours on its working days (by default
    the Dutch municipal calendar, 08:30–17:00 on weekdays, Europe/Amsterdam)."""

    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)

    @property
    def zone(self) -> ZoneInfo:
        return self.calendar.zone

    @property
    def seconds_per_day(self) -> float:
        """Office time of an average working day (what "a working day of work" takes)."""
        days = [self.calendar.opening_hours[d] for d in sorted(self.calendar.working_weekdays)]
        seconds = sum(
            (datetime.combine(date.min, closes) - datetime.combine(date.min, opens)).total_seconds()
            for ranges in days
            for opens, closes in ranges
        )
        return seconds / len(days)

    def next_open(self, moment: datetime) -> datetime:
        """`moment` itself when the office is open then, else the next opening."""
        instant = to_us(moment)
        day = self.calendar.local_date(instant)
        for _ in range(_SEARCH_DAYS):
            for opens, closes, _, _ in self.calendar.intervals(Measure.OFFICE_HOURS, day):
                if instant < closes:
                    return from_us(max(instant, opens), self.zone)
            day += timedelta(days=1)
        raise ValueError("the calendar has no office hours")

    def add(self, moment: datetime, office_seconds: float) -> datetime:
        """The instant `office_seconds` of office time after `moment`."""
        start = to_us(self.next_open(moment))
        amount = round(max(0.0, office_seconds) * US)
        return from_us(self.calendar.advance(Measure.OFFICE_HOURS, start, amount), self.zone)

    def add_working_days(self, moment: datetime, days: float) -> datetime:
        return self.add(moment, days * self.seconds_per_day)

    def office_seconds_between(self, start: datetime, end: datetime) -> float:
        """Office time elapsed from `start` to `end` (0 when end is not after start)."""
        elapsed = self.calendar.business_between(Measure.OFFICE_HOURS, to_us(start), to_us(end))
        return elapsed / US
