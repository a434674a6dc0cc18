"""At most one survey per resident per interval (`resident_interval_days`): which closure gets it.

Of a resident's closures inside one interval the *earliest* is surveyed — by event time, ties
broken by the subject (kind, then id) — whatever order feedback happens to read them in. Two
cases are on two partitions, and the order in which two partitions are read is not fixed
(restart, rebalance, replay), so the choice must not follow read order.

A closure read after a later closure of the same resident was chosen takes its place while that
survey is still unsent (scheduled, never handed to a sender): the later one is then throttled.
Once a survey went out nothing undoes it, and the earlier closure read after that is throttled
instead. The replacement window is therefore the delay after closing (`delay_hours`, plus the
wait for the sending hours); an earlier closure read later than that loses. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class SurveyedClosure:
    """Another closure of the same resident whose survey was chosen (scheduled or beyond)."""

    survey_id: str
    subject_kind: str
    subject_id: str
    closed_at: datetime
    # Scheduled and never handed to a sender: it can still give way to an earlier closure.
    unsent: bool


@dataclass(frozen=True)
class Throttled:
    """Another closure of the resident inside the interval has (or had) the survey."""


@dataclass(frozen=True)
class Clear:
    """This closure may be surveyed; the later, unsent surveys it replaces (often none)."""

    replaces: tuple[SurveyedClosure, ...] = ()


def resident_interval_check(
    *,
    subject_kind: str,
    subject_id: str,
    closed_at: datetime,
    interval: timedelta,
    surveyed: Iterable[SurveyedClosure],
    last_surveyed_at: datetime | None,
) -> Throttled | Clear:
    """Whether this closure may be the resident's survey of its interval.

    `surveyed` are the resident's closures with a chosen survey that feedback still holds;
    `last_surveyed_at` is the latest closure time ever surveyed (it outlives purged or erased
    survey rows). It is set when a survey is chosen, so it may be the closure time of a later,
    unsent survey that this closure replaces: that one does not count against it.
    """
    # Event time first, then a fixed tie-break: the same order on every run and replica.
    me = (closed_at, subject_kind, subject_id)
    near = [
        s
        for s in surveyed
        if abs(s.closed_at - closed_at) < interval
        and (s.subject_kind, s.subject_id) != (subject_kind, subject_id)
    ]
    for other in near:
        if (other.closed_at, other.subject_kind, other.subject_id) < me:
            return Throttled()  # an earlier closure has the survey
        if not other.unsent:
            return Throttled()  # a later one does, and it went out already: cannot be undone
    replaced_times = {s.closed_at for s in near}
    if (
        last_surveyed_at is not None
        and abs(closed_at - last_surveyed_at) < interval
        and last_surveyed_at not in replaced_times
    ):
        return Throttled()  # a survey feedback no longer holds the row of
    return Clear(tuple(sorted(near, key=lambda s: (s.closed_at, s.subject_kind, s.subject_id))))


def last_surveyed_after(
    closed_at: datetime, replaced: Iterable[SurveyedClosure], before: datetime | None
) -> datetime:
    """The resident's latest surveyed closure time once this closure's survey is chosen: the
    closure times of the surveys it replaced no longer count."""
    gone = {s.closed_at for s in replaced}
    if before is None or before in gone:
        return closed_at
    return max(before, closed_at)
