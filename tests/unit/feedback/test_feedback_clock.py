"""The event clock in event-time mode: one far-future event cannot drag it ahead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.feedback.clock import Clock, advance_for

WALL = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
FIVE_MINUTES = timedelta(minutes=5)


def test_events_up_to_the_cap_move_the_clock_to_the_latest() -> None:
    times = [WALL - timedelta(days=2), WALL + timedelta(minutes=4), WALL - timedelta(hours=1)]
    advance = advance_for(times, WALL, FIVE_MINUTES)
    assert advance.to == WALL + timedelta(minutes=4)
    assert advance.ahead == 0


def test_a_far_future_event_does_not_move_the_clock() -> None:
    times = [WALL - timedelta(hours=1), datetime(2090, 3, 6, 10, 0, tzinfo=UTC)]
    advance = advance_for(times, WALL, FIVE_MINUTES)
    assert advance.to == WALL - timedelta(hours=1)
    assert advance.ahead == 1
    alone = advance_for([datetime(2090, 3, 6, 10, 0, tzinfo=UTC)], WALL, FIVE_MINUTES)
    assert alone.to is None and alone.ahead == 1


def test_an_event_just_past_the_tolerance_is_ahead_and_one_on_it_is_not() -> None:
    on_the_cap = advance_for([WALL + FIVE_MINUTES], WALL, FIVE_MINUTES)
    assert on_the_cap.to == WALL + FIVE_MINUTES and on_the_cap.ahead == 0
    past = advance_for([WALL + FIVE_MINUTES + timedelta(microseconds=1)], WALL, FIVE_MINUTES)
    assert past.to is None and past.ahead == 1


def test_the_tolerance_is_configurable() -> None:
    times = [WALL + timedelta(hours=3)]
    assert advance_for(times, WALL, timedelta(hours=4)).to == WALL + timedelta(hours=3)
    assert advance_for(times, WALL, timedelta(0)).to is None


def test_a_batch_without_event_times_does_not_move_the_clock() -> None:
    assert advance_for([], WALL, FIVE_MINUTES).to is None


@given(
    offsets=st.lists(st.integers(min_value=-(10**8), max_value=10**10), min_size=1, max_size=30),
    tolerance=st.integers(min_value=0, max_value=10**6),
)
def test_the_clock_never_passes_the_cap_and_never_lags_an_event_within_it(
    offsets: list[int], tolerance: int
) -> None:
    times = [WALL + timedelta(seconds=s) for s in offsets]
    cap = WALL + timedelta(seconds=tolerance)
    advance = advance_for(times, WALL, timedelta(seconds=tolerance))
    within = [t for t in times if t <= cap]
    assert advance.to == (max(within) if within else None)
    assert advance.ahead == len(times) - len(within)


class _Conn:
    def __init__(self, watermark: datetime | None) -> None:
        self.watermark = watermark

    async def fetchval(self, query: str, *args: Any) -> Any:
        assert "event_clock" in query
        return self.watermark


async def test_a_clock_stored_far_ahead_before_the_cap_reads_as_the_cap() -> None:
    clock = Clock("event", pool=None, max_ahead=FIVE_MINUTES)  # type: ignore[arg-type]
    before = datetime.now(UTC)
    now = await clock.now(_Conn(datetime(2090, 1, 1, tzinfo=UTC)))  # type: ignore[arg-type]
    assert before + FIVE_MINUTES <= now <= datetime.now(UTC) + FIVE_MINUTES


async def test_a_stored_clock_within_the_cap_is_the_clock() -> None:
    clock = Clock("event", pool=None, max_ahead=FIVE_MINUTES)  # type: ignore[arg-type]
    seen = datetime.now(UTC) - timedelta(days=3)
    assert await clock.now(_Conn(seen)) == seen  # type: ignore[arg-type]
    assert await clock.now(_Conn(None)) == datetime(1970, 1, 2, tzinfo=UTC)  # type: ignore[arg-type]
