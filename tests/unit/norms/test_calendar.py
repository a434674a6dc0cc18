"""The business calendar against real Dutch dates: holidays, 5 May, Atw, DST, year ends."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.calendar import (
    DAY_US,
    US,
    BusinessCalendar,
    LiberationDay,
    Measure,
    from_us,
    parse_opening_hours,
    to_us,
)

AMS = ZoneInfo("Europe/Amsterdam")
CALENDAR = BusinessCalendar()


def at(text: str) -> int:
    return to_us(datetime.fromisoformat(text).replace(tzinfo=AMS))


def local(instant: int) -> str:
    return from_us(instant, AMS).isoformat()


@pytest.mark.parametrize(
    ("day", "working", "why"),
    [
        (date(2026, 4, 3), True, "Good Friday: open unless configured"),
        (date(2026, 4, 6), False, "Easter Monday"),
        (date(2026, 4, 7), True, "Tuesday after Easter"),
        (date(2026, 4, 27), False, "King's Day (Monday)"),
        (date(2026, 5, 14), False, "Ascension Day"),
        (date(2026, 5, 15), True, "Friday after Ascension: only a local closing day"),
        (date(2026, 5, 25), False, "Whit Monday"),
        (date(2026, 12, 25), False, "Christmas Day"),
        (date(2026, 12, 28), True, "between Christmas and New Year"),
        (date(2027, 1, 1), False, "New Year's Day"),
        (date(2025, 4, 28), True, "Monday after King's Day moved to Saturday 26 April 2025"),
        (date(2025, 5, 5), False, "5 May 2025: a lustrum year"),
        (date(2026, 5, 5), True, "5 May 2026: not a lustrum year"),
        (date(2030, 5, 6), True, "6 May 2030"),
        (date(2026, 3, 29), False, "Sunday (DST switch)"),
    ],
)
def test_working_days_of_real_dates(day: date, working: bool, why: str) -> None:
    assert CALENDAR.is_working_day(day) is working, why


def test_kings_day_on_a_sunday_is_celebrated_the_saturday_before() -> None:
    assert date(2025, 4, 26) in CALENDAR.public_holidays(2025)
    assert date(2025, 4, 27) not in CALENDAR.public_holidays(2025)
    # For the Atw the celebrated day counts: a term ending Friday 25 April 2025 is unaffected,
    # one ending on Saturday 26 April (King's Day) runs to Monday 28 April.
    assert CALENDAR.atw_term_end(at("2025-04-26T00:00")) == at("2025-04-26T00:00")
    assert CALENDAR.atw_term_end(at("2025-04-27T00:00")) == at("2025-04-29T00:00")


@pytest.mark.parametrize(
    ("policy", "year", "closed"),
    [
        (LiberationDay.LUSTRUM, 2025, True),
        (LiberationDay.LUSTRUM, 2026, False),
        (LiberationDay.LUSTRUM, 2030, True),
        (LiberationDay.EVERY_YEAR, 2026, True),
        (LiberationDay.EVERY_YEAR, 2027, True),
        (LiberationDay.NEVER, 2025, False),
    ],
)
def test_liberation_day_policy(policy: LiberationDay, year: int, closed: bool) -> None:
    calendar = BusinessCalendar(liberation_day=policy)
    day = date(year, 5, 5)
    assert (day in calendar.public_holidays(year)) is closed


def test_atw_counts_5_may_every_year_regardless_of_office_policy() -> None:
    calendar = BusinessCalendar(liberation_day=LiberationDay.NEVER)
    # A term ending on Tuesday 5 May 2026 runs to the end of Wednesday 6 May.
    assert calendar.atw_term_end(at("2026-05-06T00:00")) == at("2026-05-07T00:00")


def test_good_friday_and_closing_days_are_configurable() -> None:
    calendar = BusinessCalendar(
        closed_on_good_friday=True, closing_days=frozenset({date(2026, 5, 15)})
    )
    assert not calendar.is_working_day(date(2026, 4, 3))
    assert not calendar.is_working_day(date(2026, 5, 15))
    # Neither is a general holiday under the Atw: a legal term can end on them.
    assert not calendar.is_atw_day_off(date(2026, 4, 3))
    assert not calendar.is_atw_day_off(date(2026, 5, 15))


@pytest.mark.parametrize(
    ("start", "days", "due", "why"),
    [
        ("2026-03-02T10:00", 2, "2026-03-05T00:00", "Monday + 2: end of Wednesday"),
        ("2026-03-06T16:00", 2, "2026-03-11T00:00", "Friday + 2: end of Tuesday"),
        ("2026-03-07T11:00", 2, "2026-03-11T00:00", "Saturday + 2: end of Tuesday"),
        ("2026-04-02T09:00", 2, "2026-04-08T00:00", "Thursday before Easter: Fri, Tue"),
        ("2026-05-13T12:00", 3, "2026-05-20T00:00", "day before Ascension: Fri 15, Mon, Tue"),
        ("2026-05-22T12:00", 3, "2026-05-29T00:00", "Friday before Whitsun: Tue, Wed, Thu"),
        ("2026-12-24T10:00", 2, "2026-12-30T00:00", "Christmas Eve: Mon 28, Tue 29"),
        ("2026-12-30T10:00", 2, "2027-01-05T00:00", "year end: Thu 31, Mon 4"),
        ("2026-03-27T10:00", 3, "2026-04-02T00:00", "over the DST switch: Mon, Tue, Wed"),
    ],
)
def test_working_day_terms(start: str, days: int, due: str, why: str) -> None:
    counting_from = CALENDAR.start_of_next_day(at(start))  # the day of receipt does not count
    raw = CALENDAR.advance(Measure.WORKING_DAYS, counting_from, days * DAY_US)
    assert local(CALENDAR.end_of_day_ceil(raw)) == local(at(due)), why


@pytest.mark.parametrize(
    ("start", "hours", "due", "why"),
    [
        ("2026-03-02T10:00", 4, "2026-03-02T14:00", "same day"),
        ("2026-03-06T15:00", 4, "2026-03-09T10:30", "over the weekend"),
        ("2026-03-27T15:00", 4, "2026-03-30T10:30", "over the spring DST switch"),
        ("2026-10-23T15:00", 4, "2026-10-26T10:30", "over the autumn DST switch"),
        ("2026-04-02T16:00", 4, "2026-04-03T11:30", "Thursday before Easter: Good Friday open"),
        ("2026-12-24T16:30", 1, "2026-12-28T09:00", "Christmas"),
        ("2026-03-07T12:00", 4, "2026-03-09T12:30", "received on Saturday"),
        ("2026-03-02T06:00", 1, "2026-03-02T09:30", "before opening"),
    ],
)
def test_office_hour_terms(start: str, hours: int, due: str, why: str) -> None:
    assert local(CALENDAR.advance(Measure.OFFICE_HOURS, at(start), hours * 3600 * US)) == local(
        at(due)
    ), why


def test_a_calendar_day_is_a_local_day_across_dst() -> None:
    spring = CALENDAR.advance(Measure.CALENDAR_DAYS, at("2026-03-29T00:00"), DAY_US)
    assert local(spring) == local(at("2026-03-30T00:00"))
    assert spring - at("2026-03-29T00:00") == 23 * 3600 * US  # 23 real hours, one day
    autumn = CALENDAR.advance(Measure.CALENDAR_DAYS, at("2026-10-25T00:00"), DAY_US)
    assert autumn - at("2026-10-25T00:00") == 25 * 3600 * US
    assert (
        CALENDAR.business_between(Measure.CALENDAR_DAYS, at("2026-10-25T00:00"), autumn) == DAY_US
    )


def test_opening_hours_are_validated() -> None:
    assert parse_opening_hours(["13:00-17:00", "08:30-12:30"])[0][0].hour == 8
    with pytest.raises(ValueError):
        parse_opening_hours(["17:00-08:30"])
    with pytest.raises(ValueError):
        parse_opening_hours(["08:00-12:00", "11:00-13:00"])
    with pytest.raises(ValueError):
        parse_opening_hours(["08:00"])


# ---- properties -----------------------------------------------------------------------------

instants = st.integers(min_value=at("2024-01-01T00:00"), max_value=at("2031-12-31T00:00"))
measures = st.sampled_from(list(Measure))
amounts = st.integers(min_value=0, max_value=30 * DAY_US)


@settings(max_examples=300, deadline=None)
@given(measures, instants, amounts)
def test_advance_is_the_inverse_of_business_between(
    measure: Measure, start: int, amount: int
) -> None:
    due = CALENDAR.advance(measure, start, amount)
    assert due >= start
    assert CALENDAR.business_between(measure, start, due) >= amount
    if amount > 0:
        assert CALENDAR.business_between(measure, start, due - 1) < amount


@settings(max_examples=300, deadline=None)
@given(
    measures, instants, st.integers(min_value=0, max_value=10 * DAY_US), st.integers(0, 10 * DAY_US)
)
def test_business_time_is_never_negative_and_grows_with_time(
    measure: Measure, start: int, first: int, second: int
) -> None:
    middle, end = start + first, start + first + second
    a = CALENDAR.business_between(measure, start, middle)
    b = CALENDAR.business_between(measure, start, end)
    assert 0 <= a <= b
    assert CALENDAR.business_between(measure, end, start) == 0


@settings(max_examples=300, deadline=None)
@given(instants, st.integers(min_value=1, max_value=80 * 3600 * US))
def test_office_hour_deadlines_fall_inside_opening_hours(start: int, amount: int) -> None:
    due = CALENDAR.advance(Measure.OFFICE_HOURS, start, amount)
    # The due instant is the moment the last counting second is used: inside opening hours,
    # at the latest exactly at closing time.
    assert CALENDAR.has_business_time_at(Measure.OFFICE_HOURS, due - 1)
    day = from_us(due, AMS)
    assert CALENDAR.is_working_day(day.date()) or day.time().isoformat() == "00:00:00"


@settings(max_examples=300, deadline=None)
@given(instants)
def test_atw_term_end_never_falls_on_a_day_off(due_day_start: int) -> None:
    midnight = CALENDAR.end_of_day_ceil(due_day_start)
    end = CALENDAR.atw_term_end(midnight)
    last_day = CALENDAR.local_date(end - 1)
    assert end >= midnight
    assert not CALENDAR.is_atw_day_off(last_day)
    assert from_us(end, AMS).time().isoformat() == "00:00:00"
    # Only days off were skipped.
    day = CALENDAR.local_date(midnight - 1)
    while day < last_day:
        assert CALENDAR.is_atw_day_off(day)
        day += timedelta(days=1)


@pytest.mark.parametrize(
    "moment", ["2026-03-29T01:59:59", "2026-10-25T02:30:00", "2026-12-31T23:59:59"]
)
@settings(max_examples=300)
@given(offset=st.integers(min_value=-3 * DAY_US, max_value=3 * DAY_US))
def test_local_dates_and_midnights_agree_with_zoneinfo_around_dst(moment: str, offset: int) -> None:
    # The calendar remembers local days per UTC day; zoneinfo is the reference.
    instant = at(moment) + offset
    assert CALENDAR.local_date(instant) == from_us(instant, AMS).date()
    midnight = CALENDAR.start_of_next_day(instant)
    assert from_us(midnight, AMS).time() == datetime.min.time()
    assert from_us(midnight, AMS).date() == from_us(instant, AMS).date() + timedelta(days=1)


def _walked(calendar: BusinessCalendar, measure: Measure, start: int, end: int) -> int:
    """Business time the slow way: every stretch of every local day, one by one."""
    total = 0
    day = from_us(start, AMS).date()
    while day <= from_us(end, AMS).date():
        for lo, hi, num, den in calendar.intervals(measure, day):
            a, b = max(lo, start), min(hi, end)
            if b > a:
                total += (b - a) * num // den
        day += timedelta(days=1)
    return total


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([m for m in Measure if m is not Measure.CONTINUOUS]),
    instants,
    st.integers(min_value=0, max_value=800 * DAY_US),
)
def test_counting_whole_days_agrees_with_walking_them(
    measure: Measure, start: int, span: int
) -> None:
    # Whole days in between are counted from per-year tallies (also across year ends, DST
    # days and holidays); the walk is the reference. A fresh calendar: nothing remembered.
    calendar = BusinessCalendar(closing_days=frozenset({date(2026, 12, 24), date(2027, 5, 7)}))
    assert calendar.business_between(measure, start, start + span) == _walked(
        calendar, measure, start, start + span
    )
    due = calendar.advance(measure, start, span)
    assert calendar.advance(measure, start, span) == due  # remembered
    if span > 0:
        assert (
            _walked(calendar, measure, start, due)
            >= span
            > _walked(calendar, measure, start, due - 1)
        )


@pytest.mark.parametrize(
    "zone", ["Europe/Amsterdam", "America/St_Johns", "Australia/Lord_Howe", "Asia/Kathmandu"]
)
@settings(max_examples=400, deadline=None)
@given(instant=st.integers(min_value=-2_208_988_800 * US, max_value=4_102_444_800 * US))
def test_isoformat_writes_the_local_time_with_the_offset_zoneinfo_gives(
    zone: str, instant: int
) -> None:
    """`isoformat` writes the wall time plus an offset it remembers per UTC hour; zoneinfo's own
    form is the reference, across DST changes, half-hour zones, a 30-minute DST shift (Lord
    Howe) and historical offsets in seconds (before 1940 Amsterdam was UTC+00:19:32)."""
    calendar = BusinessCalendar(zone=ZoneInfo(zone))
    for moment in (instant, instant - instant % (3600 * US), instant + 1):
        assert calendar.isoformat(moment) == from_us(moment, ZoneInfo(zone)).isoformat()


@pytest.mark.parametrize(
    "zone", ["Europe/Amsterdam", "America/St_Johns", "Australia/Lord_Howe", "Asia/Kathmandu"]
)
def test_isoformat_is_exact_every_quarter_hour_of_a_year_with_dst_changes(zone: str) -> None:
    calendar = BusinessCalendar(zone=ZoneInfo(zone))
    for year in (1937, 2026):
        start = to_us(datetime(year, 1, 1, tzinfo=ZoneInfo("UTC")))
        for step in range(366 * 96):
            moment = start + step * 900 * US
            for instant in (moment - 1, moment, moment + 1):
                assert calendar.isoformat(instant) == from_us(instant, ZoneInfo(zone)).isoformat()
