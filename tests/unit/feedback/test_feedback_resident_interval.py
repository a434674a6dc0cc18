"""Which of a resident's closures inside the survey interval is surveyed: the earliest by event
time, whatever order feedback reads them in (docs/reliability.md, Findings). Pure: the decision
(`decide`) and a small in-memory model of what feedback keeps between decisions."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.common import Channel, ContactMedium
from schemas.events import CaseOutcome, SuppressionReason
from services.feedback.domain.policy import (
    CASE,
    Closure,
    ResidentHistory,
    Schedule,
    SendingHours,
    Suppress,
    SurveyPolicy,
    decide,
)
from services.feedback.domain.resident_interval import (
    Clear,
    SurveyedClosure,
    Throttled,
    last_surveyed_after,
    resident_interval_check,
)

REF = "b" * 64
T0 = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
POLICY = SurveyPolicy(sending_hours=SendingHours.always())
DAY = timedelta(days=1)


def closure(subject_id: str, closed_at: datetime) -> Closure:
    return Closure(
        subject_id=subject_id,
        subject_kind=CASE,
        closed_at=closed_at,
        channel=Channel.EMAIL,
        case_type="melding-openbare-ruimte",
        outcome=CaseOutcome.RESOLVED,
        resident_ref=REF,
        has_contact_details=True,
        reachable_by=frozenset({ContactMedium.EMAIL}),
    )


def surveyed(subject_id: str, closed_at: datetime, *, unsent: bool = True) -> SurveyedClosure:
    return SurveyedClosure(f"survey-{subject_id}", CASE, subject_id, closed_at, unsent)


@dataclass
class Feedback:
    """What feedback keeps of one resident between decisions, as service.py keeps it: the
    surveys chosen (and whether each is still unsent) and the last surveyed closure time."""

    policy: SurveyPolicy = POLICY
    chosen: dict[str, SurveyedClosure] = field(default_factory=dict)
    last_surveyed_at: datetime | None = None
    suppressed: dict[str, SuppressionReason] = field(default_factory=dict)

    def read(self, subject_id: str, closed_at: datetime) -> None:
        history = ResidentHistory(
            last_surveyed_at=self.last_surveyed_at, surveyed=tuple(self.chosen.values())
        )
        decision = decide(self.policy, closure(subject_id, closed_at), history)
        if isinstance(decision, Suppress):
            self.suppressed[subject_id] = decision.reason
            return
        for gone in decision.replaces:
            del self.chosen[gone.subject_id]
            self.suppressed[gone.subject_id] = SuppressionReason.THROTTLED
        self.chosen[subject_id] = surveyed(subject_id, closed_at)
        self.last_surveyed_at = last_surveyed_after(
            closed_at, decision.replaces, self.last_surveyed_at
        )

    def send_all(self) -> None:
        self.chosen = {k: replace(v, unsent=False) for k, v in self.chosen.items()}


def outcome(closures: list[tuple[str, datetime]]) -> tuple[set[str], dict[str, SuppressionReason]]:
    feedback = Feedback()
    for subject_id, closed_at in closures:
        feedback.read(subject_id, closed_at)
    return set(feedback.chosen), feedback.suppressed


def test_the_earlier_closure_wins_when_read_second() -> None:
    earlier, later = ("Z-earlier", T0), ("Z-later", T0 + 2 * DAY)
    assert outcome([earlier, later]) == ({"Z-earlier"}, {"Z-later": SuppressionReason.THROTTLED})
    assert outcome([later, earlier]) == ({"Z-earlier"}, {"Z-later": SuppressionReason.THROTTLED})


def test_the_replacement_is_part_of_the_schedule_decision() -> None:
    later = surveyed("Z-later", T0 + DAY)
    decision = decide(
        POLICY,
        closure("Z-earlier", T0),
        ResidentHistory(last_surveyed_at=later.closed_at, surveyed=(later,)),
    )
    assert isinstance(decision, Schedule)
    assert decision.replaces == (later,)
    assert decision.send_at == T0 + POLICY.delay


def test_a_later_survey_already_sent_is_not_undone() -> None:
    """The bound: an earlier closure read after the later one's survey went out is throttled."""
    feedback = Feedback()
    feedback.read("Z-later", T0 + DAY)
    feedback.send_all()
    feedback.read("Z-earlier", T0)
    assert set(feedback.chosen) == {"Z-later"}
    assert feedback.suppressed == {"Z-earlier": SuppressionReason.THROTTLED}


def test_equal_event_times_are_decided_by_the_subject() -> None:
    a, b = ("Z-a", T0), ("Z-b", T0)
    assert outcome([a, b])[0] == outcome([b, a])[0] == {"Z-a"}


def test_an_earlier_closure_that_is_not_surveyed_replaces_nothing() -> None:
    """Only a closure that would be scheduled takes the place of another (here: sampled out)."""
    policy = replace(POLICY, sampling_rate=0.0)
    later = surveyed("Z-later", T0 + DAY)
    history = ResidentHistory(last_surveyed_at=later.closed_at, surveyed=(later,))
    assert decide(policy, closure("Z-earlier", T0), history) == Suppress(
        SuppressionReason.SAMPLED_OUT
    )


def test_a_survey_whose_row_is_gone_still_throttles() -> None:
    """`last_surveyed_at` outlives purged or erased rows; only a replaced survey's time is
    discounted."""
    check = resident_interval_check(
        subject_kind=CASE,
        subject_id="Z-1",
        closed_at=T0,
        interval=timedelta(days=90),
        surveyed=(),
        last_surveyed_at=T0 + 10 * DAY,
    )
    assert check == Throttled()
    later = surveyed("Z-2", T0 + 10 * DAY)
    check = resident_interval_check(
        subject_kind=CASE,
        subject_id="Z-1",
        closed_at=T0,
        interval=timedelta(days=90),
        surveyed=(later,),
        last_surveyed_at=T0 + 10 * DAY,
    )
    assert check == Clear((later,))


def test_the_interval_is_exclusive_and_far_closures_are_both_surveyed() -> None:
    far = ("Z-far", T0 + 90 * DAY)
    assert outcome([far, ("Z-near", T0)])[0] == {"Z-far", "Z-near"}
    assert outcome([("Z-near", T0), far])[0] == {"Z-far", "Z-near"}


def test_last_surveyed_moves_back_when_the_later_survey_gives_way() -> None:
    later = surveyed("Z-later", T0 + DAY)
    assert last_surveyed_after(T0, (later,), later.closed_at) == T0
    assert last_surveyed_after(T0, (), T0 - 200 * DAY) == T0
    assert last_surveyed_after(T0, (), T0 + 200 * DAY) == T0 + 200 * DAY
    assert last_surveyed_after(T0, (), None) == T0


@settings(max_examples=200, deadline=None)
@given(
    offsets=st.lists(
        st.integers(min_value=0, max_value=89 * 24 * 60), min_size=1, max_size=5, unique=False
    ),
    data=st.data(),
)
def test_read_order_does_not_change_who_is_surveyed(
    offsets: list[int], data: st.DataObject
) -> None:
    """Closures of one resident inside one interval, all read while the surveys are unsent: every
    read order gives the outcome of reading them by event time."""
    closures = [(f"Z-{i}", T0 + timedelta(minutes=m)) for i, m in enumerate(offsets)]
    by_time = sorted(closures, key=lambda c: (c[1], c[0]))
    shuffled = data.draw(st.permutations(closures))
    expected = outcome(by_time)
    assert outcome(list(shuffled)) == expected
    assert expected[0] == {by_time[0][0]}


def test_every_order_of_three_closures_gives_the_same_outcome() -> None:
    closures = [("Z-c", T0 + 3 * DAY), ("Z-a", T0), ("Z-b", T0 + DAY)]
    outcomes = {
        (frozenset(chosen), tuple(sorted(suppressed.items())))
        for chosen, suppressed in (outcome(list(p)) for p in itertools.permutations(closures))
    }
    assert len(outcomes) == 1
