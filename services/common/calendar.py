"""The business calendar of a municipality: working days, opening hours, holidays, legal terms.

Instants are integers: microseconds since the Unix epoch (UTC). Integer arithmetic keeps every
computation exact and monotone (a clock never loses or gains a microsecond through rounding) and
makes replay byte-identical. Local dates and opening hours are resolved through the
municipality's time zone (Europe/Amsterdam), so daylight-saving changes are handled by zoneinfo,
never by adding 24 hours.

Business time is measured per *measure*:

- `Measure.CONTINUOUS` (seconds, minutes): every real second counts.
- `Measure.OFFICE_HOURS`: only seconds inside opening hours on working days count.
- `Measure.WORKING_DAYS`: every working day counts as 86 400 nominal seconds, whole.
- `Measure.CALENDAR_DAYS` (calendar days, weeks): every local day counts as 86 400 nominal
  seconds, so a 23- or 25-hour day around a DST change is still exactly one day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import holidays as holidays_package

US = 1_000_000
DAY_US = 86_400 * US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = _EPOCH.date()
_ONE_DAY = timedelta(days=1)
# How many results of `advance` (and of `business_between`, `isoformat`) a calendar remembers.
# A full memo is emptied and fills again: dropping the oldest entry one at a time looks cheaper
# but is not — a dict scans the slots of every entry deleted before it to find its first one,
# which made a long replay several times slower once the memos were full.
_ADVANCE_MEMO_SIZE = 100_000
_ISO_MEMO_SIZE = 100_000
HOUR_US = 3600 * US
# `isoformat`'s parts: the text of each day (since the epoch) met, and of each second of a day.
_DAY_TEXTS: dict[int, str] = {}
_TIMES_OF_DAY = tuple(
    f"T{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)
)


def to_us(instant: datetime) -> int:
    """An aware datetime as microseconds since the epoch (exact; runs for every event)."""
    try:
        since = instant - _EPOCH
    except TypeError:  # naive: subtracting it from an aware datetime fails
        raise ValueError("instants must be timezone-aware") from None
    return (since.days * 86_400 + since.seconds) * US + since.microseconds


def from_us(instant_us: int, zone: ZoneInfo | None = None) -> datetime:
    moment = _EPOCH + timedelta(0, 0, instant_us)  # (positional: cheaper to call)
    return moment.astimezone(zone) if zone is not None else moment


class Measure(StrEnum):
    CONTINUOUS = "continuous"
    OFFICE_HOURS = "office_hours"
    WORKING_DAYS = "working_days"
    CALENDAR_DAYS = "calendar_days"


class LiberationDay(StrEnum):
    """Whether 5 May (Bevrijdingsdag) closes the offices: every year, or only in a lustrum year
    (every fifth year, as most collective agreements say), or never."""

    EVERY_YEAR = "every_year"
    LUSTRUM = "lustrum"
    NEVER = "never"


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# Holidays of the `holidays` package that close a Dutch municipal office. Good Friday is in the
# package but is no general holiday (not in Atw art. 3); a municipality may close on it.
_OFFICE_HOLIDAYS = {
    "New Year's Day",
    "Easter Sunday",
    "Easter Monday",
    "King's Day",
    "Ascension Day",
    "Pentecost",
    "Pentecost Monday",
    "Christmas Day",
    "Second Day of Christmas",
}


@dataclass(frozen=True)
class BusinessCalendar:
    """Opening hours, working days and holidays of one municipality (or a shared organisation)."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Amsterdam"))
    # Opening hours per weekday (0 = Monday): (open, close) pairs in local time.
    opening_hours: tuple[tuple[tuple[time, time], ...], ...] = (
        ((time(8, 30), time(17, 0)),),
        ((time(8, 30), time(17, 0)),),
        ((time(8, 30), time(17, 0)),),
        ((time(8, 30), time(17, 0)),),
        ((time(8, 30), time(17, 0)),),
        (),
        (),
    )
    working_weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    liberation_day: LiberationDay = LiberationDay.LUSTRUM
    closed_on_good_friday: bool = False
    closing_days: frozenset[date] = frozenset()
    # Days a Royal Decree equates with general holidays for the Algemene termijnenwet (art. 3
    # lid 3); published per year, so configured rather than computed.
    atw_equated_days: frozenset[date] = frozenset()
    # Memos of what never changes for a calendar (local midnights, counting stretches of a
    # day): the clock asks for the same days over and over. Not part of its identity.
    _day_starts: dict[date, int] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _utc_days: dict[int, tuple[date, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _day_intervals: dict[tuple[Measure, date], tuple[tuple[int, int, int, int], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _counting_years: dict[tuple[Measure, int], list[int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _advanced: dict[tuple[Measure, int, int], int] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _between: dict[tuple[Measure, int, int], int] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _iso_times: dict[int, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    # UTC hour → (UTC offset in microseconds, its ISO 8601 form); the form is "" for an hour
    # whose offset changes within it.
    _hour_offsets: dict[int, tuple[int, str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # ---- days ------------------------------------------------------------------------------

    def public_holidays(self, year: int) -> frozenset[date]:
        return _office_holidays(year, self.liberation_day, self.closed_on_good_friday)

    def is_holiday(self, day: date) -> bool:
        return day in self.public_holidays(day.year) or day in self.closing_days

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.working_weekdays and not self.is_holiday(day)

    def is_atw_day_off(self, day: date) -> bool:
        """Saturday, Sunday or a general holiday in the sense of Atw art. 1 and 3 (which counts
        5 May every year, and not the municipality's own closing days)."""
        return day.weekday() >= 5 or day in _atw_holidays(day.year) or day in self.atw_equated_days

    def day_off(self, day: date) -> DayOff | None:
        """Why `day` is no working day (None: it is one): a weekend day, a named public holiday
        (Dutch and English names from the `holidays` package), or a local closing day."""
        if day.weekday() not in self.working_weekdays:
            return DayOff("weekend", *_weekday_names(day))
        if day in self.public_holidays(day.year):
            return DayOff("holiday", *_holiday_names(day))
        if day in self.closing_days:
            return DayOff("closing_day", "sluitingsdag van de gemeente", "municipal closing day")
        return None

    def atw_day_off(self, day: date) -> DayOff | None:
        """Why `day` cannot be the last day of a legal term under the Atw (None: it can)."""
        if day.weekday() >= 5:
            return DayOff("weekend", *_weekday_names(day))
        if day in _atw_holidays(day.year):
            return DayOff("holiday", *_holiday_names(day))
        if day in self.atw_equated_days:
            return DayOff(
                "holiday", "dag gelijkgesteld aan een feestdag", "day equated with a holiday"
            )
        return None

    def next_working_day(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    # ---- local days as instants ------------------------------------------------------------

    def isoformat(self, instant_us: int) -> str:
        """The instant in local time, ISO 8601 with its UTC offset (as events carry it).
        Remembered: a clock's start and due instant are written in each of its events."""
        text = self._iso_times.get(instant_us)
        if text is None:
            if len(self._iso_times) >= _ISO_MEMO_SIZE:
                self._iso_times.clear()  # see _ADVANCE_MEMO_SIZE
            hour = instant_us // HOUR_US
            offset = self._hour_offsets.get(hour)
            if offset is None:
                offset = self._hour_offsets[hour] = self._offset_in(hour)
            if not offset[1]:
                text = from_us(instant_us, self.zone).isoformat()
            else:  # the local wall time, written with the offset, from a day's and a second's
                # text: a third less than `datetime.isoformat` (what it writes, a test holds)
                seconds, micro = divmod(instant_us + offset[0], US)
                day, second = divmod(seconds, 86_400)
                date_text = _DAY_TEXTS.get(day)
                if date_text is None:
                    if len(_DAY_TEXTS) >= _ISO_MEMO_SIZE:
                        _DAY_TEXTS.clear()
                    date_text = _DAY_TEXTS[day] = (_EPOCH_DATE + timedelta(days=day)).isoformat()
                if micro:  # (six digits: those of US + micro after its "1"; no format spec,
                    # which a compiled module hands to str.format)
                    text = date_text + _TIMES_OF_DAY[second] + "." + str(US + micro)[1:] + offset[1]
                else:
                    text = date_text + _TIMES_OF_DAY[second] + offset[1]
            self._iso_times[instant_us] = text
        return text

    def _offset_in(self, hour: int) -> tuple[int, str]:
        """The zone's UTC offset throughout UTC hour `hour` and its ISO 8601 form; the form is
        "" when the offset changes within the hour or is not whole minutes (then `isoformat`
        asks zoneinfo)."""
        first = from_us(hour * HOUR_US, self.zone).utcoffset()
        last = from_us((hour + 1) * HOUR_US - 1, self.zone).utcoffset()
        if first is None or first != last or first.seconds % 60 or first.microseconds:
            return 0, ""
        minutes = (first.days * 86_400 + first.seconds) // 60
        sign = "-" if minutes < 0 else "+"
        hours, minutes = divmod(abs(minutes), 60)
        return (first.days * 86_400 + first.seconds) * US, f"{sign}{hours:02d}:{minutes:02d}"

    def local_date(self, instant_us: int) -> date:
        """The local day `instant_us` falls on. Memo per UTC day: the local day at its start and
        the local midnight inside it (exact wherever local midnight exists once a day, as in
        Europe/Amsterdam, whose clocks change at 02:00 and 03:00)."""
        utc_day = instant_us // DAY_US
        entry = self._utc_days.get(utc_day)
        if entry is None:
            first = from_us(utc_day * DAY_US, self.zone).date()
            entry = self._utc_days[utc_day] = (first, self.start_of_day(first + _ONE_DAY))
        return entry[0] if instant_us < entry[1] else entry[0] + _ONE_DAY

    def start_of_day(self, day: date) -> int:
        start = self._day_starts.get(day)
        if start is None:
            start = self._day_starts[day] = to_us(datetime.combine(day, time(0), tzinfo=self.zone))
        return start

    def start_of_next_day(self, instant_us: int) -> int:
        return self.start_of_day(self.local_date(instant_us) + _ONE_DAY)

    def end_of_day_ceil(self, instant_us: int) -> int:
        """The first local midnight at or after `instant_us` (a day-granular term ends there)."""
        start = self.start_of_day(self.local_date(instant_us))
        return instant_us if start == instant_us else self.start_of_next_day(instant_us)

    def atw_term_end(self, due_us: int) -> int:
        """Algemene termijnenwet art. 1: a legal term that ends on a Saturday, Sunday or general
        holiday is extended to the end of the next day that is none of these. `due_us` is a
        local midnight ending the term's last day."""
        last_day = self.local_date(due_us - 1)
        if not self.is_atw_day_off(last_day):
            return due_us
        while self.is_atw_day_off(last_day):
            last_day += timedelta(days=1)
        return self.start_of_day(last_day + timedelta(days=1))

    # ---- business time ----------------------------------------------------------------------

    def intervals(self, measure: Measure, day: date) -> tuple[tuple[int, int, int, int], ...]:
        """The stretches of `day` that count under `measure`: (start, end, num, den), where
        one real microsecond counts num/den nominal microseconds."""
        key = (measure, day)
        stretches = self._day_intervals.get(key)
        if stretches is None:
            stretches = self._day_intervals[key] = _intervals(self, measure, day)
        return stretches

    def business_between(self, measure: Measure, start_us: int, end_us: int) -> int:
        """Nominal business microseconds in [start, end); zero if end is not after start."""
        if end_us <= start_us:
            return 0
        if measure is Measure.CONTINUOUS:
            return end_us - start_us
        # Warnings and breaches of clocks started on the same day fall at the same instants:
        # their elapsed time is asked again and again.
        key = (measure, start_us, end_us)
        total = self._between.get(key)
        if total is None:
            if len(self._between) >= _ADVANCE_MEMO_SIZE:
                self._between.clear()  # see _ADVANCE_MEMO_SIZE
            total = self._between[key] = self._business_between(measure, start_us, end_us)
        return total

    def _business_between(self, measure: Measure, start_us: int, end_us: int) -> int:
        day = self.local_date(start_us)
        last = self.local_date(end_us)
        total = self._counted_within(measure, day, start_us, end_us)
        if last == day:
            return total
        if measure is not Measure.OFFICE_HOURS:
            # Every whole counting day in between counts exactly one day (DAY_US nominal, be it
            # 23, 24 or 25 hours long): count them instead of walking them.
            total += DAY_US * self._counting_days(measure, day + _ONE_DAY, last)
            return total + self._counted_within(measure, last, start_us, end_us)
        day += _ONE_DAY
        while day <= last:
            total += self._counted_within(measure, day, start_us, end_us)
            day += _ONE_DAY
        return total

    def _counted_within(self, measure: Measure, day: date, start_us: int, end_us: int) -> int:
        total = 0
        for lo, hi, num, den in self.intervals(measure, day):
            a = lo if lo > start_us else start_us
            b = hi if hi < end_us else end_us
            if b > a:
                total += (b - a) * num // den
        return total

    def _counting_days(self, measure: Measure, first: date, end: date) -> int:
        """How many days in [first, end) count under a day measure."""
        if end <= first:
            return 0
        if measure is Measure.CALENDAR_DAYS:
            return (end - first).days
        counts = self._year_counts(measure, first.year)
        if end.year == first.year:
            return counts[end.timetuple().tm_yday - 1] - counts[first.timetuple().tm_yday - 1]
        total = counts[-1] - counts[first.timetuple().tm_yday - 1]
        for year in range(first.year + 1, end.year):
            total += self._year_counts(measure, year)[-1]
        return total + self._year_counts(measure, end.year)[end.timetuple().tm_yday - 1]

    def _year_counts(self, measure: Measure, year: int) -> list[int]:
        """Counting days of `year` before each of its days (index = day of the year − 1), and
        in the whole year (last element)."""
        counts = self._counting_years.get((measure, year))
        if counts is None:
            counts = [0]
            day = date(year, 1, 1)
            while day.year == year:
                counts.append(counts[-1] + (1 if self.intervals(measure, day) else 0))
                day += _ONE_DAY
            self._counting_years[(measure, year)] = counts
        return counts

    def advance(self, measure: Measure, start_us: int, amount_us: int) -> int:
        """The earliest instant at which `amount_us` of business time has passed since
        `start_us` (`start_us` itself when the amount is not positive)."""
        if amount_us <= 0:
            return start_us
        if measure is Measure.CONTINUOUS:
            return start_us + amount_us
        # Clocks ask this again and again for the same start (a local midnight) and amount.
        key = (measure, start_us, amount_us)
        instant = self._advanced.get(key)
        if instant is None:
            if len(self._advanced) >= _ADVANCE_MEMO_SIZE:
                self._advanced.clear()  # see _ADVANCE_MEMO_SIZE
            instant = self._advanced[key] = self._advance(measure, start_us, amount_us)
        return instant

    def _advance(self, measure: Measure, start_us: int, amount_us: int) -> int:
        remaining = amount_us
        day = self.local_date(start_us)
        # A generous bound: no norm is longer than ~10 000 days; a calendar without a single
        # counting day would otherwise loop forever.
        for _ in range(40_000):
            for lo, hi, num, den in self.intervals(measure, day):
                a = max(lo, start_us)
                if hi <= a:
                    continue
                capacity = (hi - a) * num // den
                if capacity >= remaining:
                    return a + -(-remaining * den // num)  # ceil: the target is fully reached
                remaining -= capacity
            day += _ONE_DAY
        raise ValueError("the calendar has no business time to count")

    def has_business_time_at(self, measure: Measure, instant_us: int) -> bool:
        """Whether `instant_us` lies inside a counting stretch (end exclusive)."""
        if measure is Measure.CONTINUOUS:
            return True
        return any(
            lo <= instant_us < hi
            for lo, hi, _, _ in self.intervals(measure, self.local_date(instant_us))
        )


@dataclass(frozen=True, slots=True)
class DayOff:
    """Why a day does not count: `kind` is weekend, holiday or closing_day; names in Dutch
    and English (the holiday's own name, or the weekday's)."""

    kind: str
    name_nl: str
    name_en: str


_WEEKDAYS_NL = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")


def _weekday_names(day: date) -> tuple[str, str]:
    return _WEEKDAYS_NL[day.weekday()], WEEKDAYS[day.weekday()].capitalize()


@lru_cache(maxsize=64)
def _holiday_table(year: int, language: str) -> dict[date, str]:
    return dict(holidays_package.Netherlands(years=year, language=language).items())


def _holiday_names(day: date) -> tuple[str, str]:
    """The holiday's Dutch and English names (5 May, which the package names only in some
    years, is Bevrijdingsdag)."""
    nl = _holiday_table(day.year, "nl").get(day)
    en = _holiday_table(day.year, "en_US").get(day)
    if day.month == 5 and day.day == 5:
        nl, en = nl or "Bevrijdingsdag", en or "Liberation Day"
    return nl or "feestdag", en or "public holiday"


@lru_cache(maxsize=256)
def _office_holidays(year: int, liberation: LiberationDay, good_friday: bool) -> frozenset[date]:
    days = {
        day
        for day, name in holidays_package.Netherlands(years=year, language="en_US").items()
        if name in _OFFICE_HOLIDAYS or (good_friday and name == "Good Friday")
    }
    liberation_day = date(year, 5, 5)
    if liberation is LiberationDay.EVERY_YEAR or (
        liberation is LiberationDay.LUSTRUM and year % 5 == 0
    ):
        days.add(liberation_day)
    return frozenset(days)


@lru_cache(maxsize=256)
def _atw_holidays(year: int) -> frozenset[date]:
    """Atw art. 3 lid 1: New Year's Day, Easter Monday, Ascension Day, Whit Monday, Christmas
    and Boxing Day, the day the King's birthday is celebrated, and 5 May (every year)."""
    names = {
        "New Year's Day",
        "Easter Monday",
        "Ascension Day",
        "Pentecost Monday",
        "Christmas Day",
        "Second Day of Christmas",
        "King's Day",
    }
    days = {
        day
        for day, name in holidays_package.Netherlands(years=year, language="en_US").items()
        if name in names
    }
    days.add(date(year, 5, 5))
    return frozenset(days)


def _intervals(
    calendar: BusinessCalendar, measure: Measure, day: date
) -> tuple[tuple[int, int, int, int], ...]:
    if measure is Measure.CALENDAR_DAYS or (
        measure is Measure.WORKING_DAYS and calendar.is_working_day(day)
    ):
        lo = calendar.start_of_day(day)
        hi = calendar.start_of_day(day + timedelta(days=1))
        return ((lo, hi, DAY_US, hi - lo),)  # 23 or 25 real hours still make one day
    if measure is Measure.OFFICE_HOURS and calendar.is_working_day(day):
        return tuple(
            (
                to_us(datetime.combine(day, opens, tzinfo=calendar.zone)),
                to_us(datetime.combine(day, closes, tzinfo=calendar.zone)),
                1,
                1,
            )
            for opens, closes in calendar.opening_hours[day.weekday()]
        )
    return ()


def parse_opening_hours(ranges: Iterable[str]) -> tuple[tuple[time, time], ...]:
    """`["08:30-12:30", "13:00-17:00"]` to ordered, non-overlapping (open, close) pairs."""
    pairs = []
    for text in ranges:
        opens_text, sep, closes_text = text.partition("-")
        if not sep:
            raise ValueError(f"{text!r}: write opening hours as HH:MM-HH:MM")
        opens, closes = (
            time.fromisoformat(opens_text.strip()),
            time.fromisoformat(closes_text.strip()),
        )
        if closes <= opens:
            raise ValueError(f"{text!r}: closing time must be after opening time")
        pairs.append((opens, closes))
    pairs.sort()
    for (_, closes), (opens, _) in pairwise(pairs):
        if opens < closes:
            raise ValueError("opening hours overlap")
    return tuple(pairs)
