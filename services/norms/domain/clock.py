"""The norm clock: start, pause, resume, extend, stop and cancel, in business time.

A clock is a pure function of its transitions. `timeline()` folds them in event-time order and
returns every decision the clock takes — started, warnings, breached, and a final met, missed or
cancelled — each at the instant it happens. Future decisions (a warning or breach still to come
if nothing else happens) are part of the timeline; the service emits a decision once its instant
has passed. Because the fold sorts by event time, the order in which events arrive does not
matter, and replaying them gives the same decisions.

Day-granular terms (working days, calendar days, weeks) follow Dutch legal practice:

- the day of receipt does not count; counting starts at the start of the next day (as in Atw
  and Awb 6:8 for terms "na de dag waarop");
- a suspension (Awb 4:15) runs from the day after the suspending event until the resumption;
- the term ends at the end of its last day; a legal term ending on a Saturday, Sunday or
  general holiday ends at the end of the next working day (Algemene termijnenwet art. 1);
- an extension (Awb 4:14, Awb 9:11 lid 2) counts only if given before the term expired.

An input event dated before the clock's start contradicts it (real exports have closures dated
before the opening). One rule, which the metrics service follows too (docs/norms.md, "Events
dated before the start"):

- a stop or cancel before the start ends the first cycle at once, at the start, cancelled with
  reason `stopped_before_start`: neither met nor missed, never overdue;
- a suspension, resumption, extension or restart before the start is ignored: nothing was
  running that it could pause, resume, extend or restart;
- each such event is reported once as a data-quality decision (`data_quality`, at the start).

A clock runs in cycles. The first start begins cycle 1; a stop or cancel ends a cycle with its
final outcome. A restart (a case reopened after it was closed) after the end begins the next
cycle, counted afresh from the restart, with decisions of its own; the earlier cycles' decisions
stay as they were. A restart while a cycle runs changes nothing (the case is still open).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from services.common.calendar import BusinessCalendar, Measure


class TransitionKind(StrEnum):
    START = "start"
    EXTEND = "extend"
    RESUME = "resume"
    PAUSE = "pause"
    STOP = "stop"
    CANCEL = "cancel"
    # Begins a new cycle of a clock whose cycle ended (a reopened case). Last in the order of
    # ties, so a case closed and reopened at one instant ends its cycle and begins the next.
    RESTART = "restart"


# Ties at one instant: a clock is started before anything else happens to it, and a closing
# event is applied after a same-instant extension or resumption.
_KIND_ORDER = {kind: rank for rank, kind in enumerate(TransitionKind)}

# A named tuple made from all its fields in order, without the `__new__` that `NamedTuple`
# generates: that is Python code, run as such even when this module is compiled, and decisions
# and transitions are made for every event. Same tuple, same class (a unit test holds them equal).
_new_tuple = tuple.__new__


class Transition(NamedTuple):
    """One input event as it affects one clock. (Immutable tuples: made for every event and
    hashed as part of a timeline's memo key, so they are cheap to make and to hash.)"""

    at: int  # event time, microseconds since the epoch
    kind: TransitionKind
    event_key: str  # the input event's dedupe key: breaks ties, identifies the cause
    extension: int = 0  # nominal business microseconds added by an EXTEND
    reason: str = ""  # why a clock was cancelled, or suspended (a code)

    def sort_key(self) -> tuple[int, int, str]:
        return (self.at, _KIND_ORDER[self.kind], self.event_key)


def new_transition(
    at: int, kind: TransitionKind, event_key: str, extension: int, reason: str
) -> Transition:
    """`Transition(at, kind, event_key, extension, reason)`, made as `_new_tuple` says."""
    return _new_tuple(Transition, (at, kind, event_key, extension, reason))


@dataclass(frozen=True, slots=True)
class Threshold:
    """A warning threshold: a fraction of the target, or an amount before the target."""

    label: str
    fraction: float | None = None
    before: int = 0  # nominal business microseconds

    def consumed_at(self, target: int) -> int:
        if self.fraction is not None:
            return int(target * self.fraction)
        return target - self.before


@dataclass(frozen=True)
class ClockRule:
    """What the clock needs to know about its norm."""

    calendar: BusinessCalendar
    measure: Measure
    target: int  # nominal business microseconds
    day_granular: bool = False
    legal_term: bool = False  # apply the Algemene termijnenwet to the end of the term
    warnings: tuple[Threshold, ...] = ()
    max_extension: int | None = None  # None: no extension allowed


class DecisionKind(StrEnum):
    STARTED = "started"
    WARNING = "warning"
    BREACHED = "breached"
    MET = "met"
    MISSED = "missed"
    CANCELLED = "cancelled"
    # An input event dated before the clock's start (see the module docstring): a report, not
    # a step of the clock.
    DATA_QUALITY = "data_quality"


FINAL_KINDS = frozenset({DecisionKind.MET, DecisionKind.MISSED, DecisionKind.CANCELLED})

# The cancel reason of a cycle ended by a stop dated before its start.
STOPPED_BEFORE_START = "stopped_before_start"
# What each kind of transition dated before the start is, as a data-quality problem.
BEFORE_START_PROBLEM = {
    TransitionKind.STOP: STOPPED_BEFORE_START,
    TransitionKind.CANCEL: STOPPED_BEFORE_START,  # a closing event all the same
    TransitionKind.PAUSE: "suspended_before_start",
    TransitionKind.RESUME: "resumed_before_start",
    TransitionKind.EXTEND: "extended_before_start",
    TransitionKind.RESTART: "reopened_before_start",
}


class Decision(NamedTuple):
    """One decision of a clock (immutable; a tuple, as a clock takes several per event)."""

    kind: DecisionKind
    at: int
    started_at: int
    due_at: int
    target: int
    elapsed: int  # nominal business microseconds counted so far
    paused: int  # real microseconds the clock was suspended so far
    threshold: str = ""
    stopped_at: int | None = None
    reason: str = ""
    cycle: int = 1  # 1 from the start; one more for each restart after a final outcome
    # DATA_QUALITY: the input event at fault (its dedupe key, source + id) and its event time.
    cause: str = ""
    cause_at: int | None = None

    @property
    def key(self) -> str:
        """Identity of the decision within its clock: each is taken at most once. Decisions of
        cycle 1 keep their plain keys ("started", "warning:50%", "final"); later cycles' keys
        are prefixed with the cycle ("2:started"). The outcome event's id is derived from it."""
        kind = self.kind
        key = _PLAIN_KEYS.get(kind)
        if key is None:
            if kind is DecisionKind.WARNING:
                key = f"warning:{self.threshold}"
            else:  # DATA_QUALITY: one per input event at fault; a digest, as a dedupe key may
                # hold any character (`taken` is stored joined by "|").
                digest = hashlib.blake2b(f"{self.reason}\x1f{self.cause}".encode(), digest_size=8)
                key = f"data_quality:{digest.hexdigest()}"
        return key if self.cycle == 1 else f"{self.cycle}:{key}"


def new_decision(
    kind: DecisionKind,
    at: int,
    started_at: int,
    due_at: int,
    target: int,
    elapsed: int,
    paused: int,
    *,
    threshold: str = "",
    stopped_at: int | None = None,
    reason: str = "",
    cycle: int = 1,
    cause: str = "",
    cause_at: int | None = None,
) -> Decision:
    """`Decision(...)`, made as `_new_tuple` says (the fields in their order)."""
    return _new_tuple(
        Decision,
        (
            kind,
            at,
            started_at,
            due_at,
            target,
            elapsed,
            paused,
            threshold,
            stopped_at,
            reason,
            cycle,
            cause,
            cause_at,
        ),
    )


# Decision keys that depend on the kind alone (`Decision.key`).
_PLAIN_KEYS: dict[DecisionKind, str] = {
    kind: "final" if kind in FINAL_KINDS else kind.value
    for kind in DecisionKind
    if kind not in (DecisionKind.WARNING, DecisionKind.DATA_QUALITY)
}


@dataclass(slots=True, init=False)
class _State:
    rule: ClockRule
    started_at: int
    cursor: int  # consumed is counted up to here
    consumed: int
    target: int
    extended: int
    due: int
    running: bool
    pause_at: int | None  # effective instant of a pending or active pause
    paused_total: int
    breached: bool
    warned: set[str]
    # No decision is taken before the event being applied: a day-granular resumption counts
    # from the start of its day (Awb 4:15), but what it causes happens from its own instant.
    not_before: int
    cycle: int

    def __init__(  # (written out: the generated one would run as Python code when compiled)
        self, rule: ClockRule, started_at: int, cursor: int, *, target: int = 0, cycle: int = 1
    ) -> None:
        self.rule, self.started_at, self.cursor = rule, started_at, cursor
        self.consumed, self.target, self.extended, self.due = 0, target, 0, 0
        self.running, self.pause_at, self.paused_total, self.breached = True, None, 0, False
        self.warned = set()
        self.not_before, self.cycle = 0, cycle

    def round_due(self, raw: int) -> int:
        rule = self.rule
        if not rule.day_granular:
            return raw
        due = rule.calendar.end_of_day_ceil(raw)
        return rule.calendar.atw_term_end(due) if rule.legal_term else due

    def compute_due(self, from_us: int, not_before: int = 0) -> int:
        raw = self.rule.calendar.advance(self.rule.measure, from_us, self.target - self.consumed)
        return self.round_due(max(raw, not_before))

    def elapsed_at(self, instant: int) -> int:
        if not self.running:
            return self.consumed
        end = instant if self.pause_at is None else min(instant, self.pause_at)
        return self.consumed + self.rule.calendar.business_between(
            self.rule.measure, self.cursor, end
        )

    def paused_at(self, instant: int) -> int:
        if self.pause_at is not None and instant > self.pause_at:
            return self.paused_total + instant - self.pause_at
        return self.paused_total

    def decision(
        self,
        kind: DecisionKind,
        at: int,
        *,
        threshold: str = "",
        stopped_at: int | None = None,
        reason: str = "",
        cause: str = "",
        cause_at: int | None = None,
    ) -> Decision:
        due = (
            self.due if (self.running or self.breached) else self.compute_due(max(at, self.cursor))
        )
        return new_decision(
            kind,
            at,
            self.started_at,
            due,
            self.target,
            self.elapsed_at(at),
            self.paused_at(at),
            threshold=threshold,
            stopped_at=stopped_at,
            reason=reason,
            cycle=self.cycle,
            cause=cause,
            cause_at=cause_at,
        )

    def run_until(self, until: int | None, out: list[Decision]) -> None:
        """Let the clock run up to `until` (None: for ever), taking the warnings and the breach
        that fall before it, then settle a pause that became effective on the way."""
        if not self.running:
            return
        end = self.pause_at if self.pause_at is not None else None
        if until is not None:
            end = until if end is None else min(end, until)
        calendar, measure = self.rule.calendar, self.rule.measure
        start = self.cursor
        if not self.breached:
            for threshold in self.rule.warnings:
                if threshold.label in self.warned:
                    continue
                goal = threshold.consumed_at(self.target)
                instant = max(
                    calendar.advance(measure, start, goal - self.consumed), self.not_before
                )
                if instant < self.due and (end is None or instant < end):
                    self.warned.add(threshold.label)
                    out.append(
                        self.decision(DecisionKind.WARNING, instant, threshold=threshold.label)
                    )
            if self.due >= start and (end is None or self.due < end):
                self.breached = True
                out.append(self.decision(DecisionKind.BREACHED, self.due))
        if end is None:
            return
        self.consumed += calendar.business_between(measure, start, end)
        self.cursor = max(start, end)
        if self.pause_at is not None and until is not None and until >= self.pause_at:
            self.running = False

    def sort_warnings(self, out: list[Decision], since: int) -> None:
        out[since:] = sorted(out[since:], key=lambda d: (d.at, d.kind != DecisionKind.WARNING))


def _begin(rule: ClockRule, start: Transition, cycle: int, out: list[Decision]) -> _State:
    """A cycle of the clock, begun by `start` (a start, or a restart after a final outcome)."""
    origin = rule.calendar.start_of_next_day(start.at) if rule.day_granular else start.at
    state = _State(rule=rule, started_at=start.at, cursor=origin, target=rule.target, cycle=cycle)
    state.due = state.compute_due(origin)
    out.append(state.decision(DecisionKind.STARTED, start.at))
    return state


def _before_start(
    state: _State, ordered: list[Transition], start: Transition, out: list[Decision]
) -> _State | None:
    """Apply the rule for input events dated before the start (module docstring): report each
    at the start; a stop or cancel among them ends the first cycle there. Returns the running
    state, or None if the cycle ended."""
    closing: Transition | None = None
    for transition in ordered:
        if transition.at >= start.at:
            break
        problem = BEFORE_START_PROBLEM.get(transition.kind)
        if problem is None:  # (a start: the first one is the start)
            continue
        out.append(
            state.decision(
                DecisionKind.DATA_QUALITY,
                start.at,
                reason=problem,
                cause=transition.event_key,
                cause_at=transition.at,
            )
        )
        if closing is None and problem == STOPPED_BEFORE_START:
            closing = transition
    if closing is None:
        return state
    out.append(
        state.decision(
            DecisionKind.CANCELLED, start.at, stopped_at=closing.at, reason=STOPPED_BEFORE_START
        )
    )
    return None


def timeline(rule: ClockRule, transitions: list[Transition]) -> list[Decision]:
    """Every decision of the clock, in order of their instants (see the module docstring)."""
    ordered = sorted(transitions, key=Transition.sort_key)
    start = next((t for t in ordered if t.kind is TransitionKind.START), None)
    if start is None:
        return []
    calendar = rule.calendar
    out: list[Decision] = []
    cycle = 1
    running = _before_start(_begin(rule, start, cycle, out), ordered, start, out)
    for transition in ordered:
        if transition.at < start.at or transition is start:
            continue
        kind = transition.kind
        if running is None:  # between cycles: only a restart begins the next one
            if kind is TransitionKind.RESTART:
                cycle += 1
                running = _begin(rule, transition, cycle, out)
            continue
        state = running
        mark = len(out)
        if kind is TransitionKind.START or kind is TransitionKind.RESTART:
            # The first start wins: a repeated start is the same clock, and a restart while
            # the cycle runs (the case is still open) is the same promise.
            continue
        state.run_until(transition.at, out)
        state.sort_warnings(out, mark)
        state.not_before = transition.at
        if kind is TransitionKind.PAUSE:
            if state.running and state.pause_at is None:
                state.pause_at = (
                    max(calendar.start_of_next_day(transition.at), state.cursor)
                    if rule.day_granular
                    else transition.at
                )
                # A pause that takes effect now settles at once.
                state.run_until(transition.at, out)
        elif kind is TransitionKind.RESUME:
            if state.pause_at is not None:
                if state.running:  # the pause had not taken effect yet: it never happened
                    state.pause_at = None
                else:
                    # Awb 4:15: suspended "tot de dag waarop" the information arrived, so a
                    # day-granular term runs again from the start of that day.
                    resumed = (
                        max(
                            calendar.start_of_day(calendar.local_date(transition.at)),
                            state.pause_at,
                        )
                        if rule.day_granular
                        else transition.at
                    )
                    state.paused_total += resumed - state.pause_at
                    state.cursor = resumed
                    state.pause_at = None
                    state.running = True
                    if not state.breached:
                        state.due = state.compute_due(resumed, not_before=transition.at)
        elif kind is TransitionKind.EXTEND:
            allowed = rule.max_extension
            if allowed is None or state.breached:
                continue  # Awb 4:14 lid 3 / 9:11 lid 2: only before the term has expired
            extension = min(transition.extension, allowed - state.extended)
            if extension <= 0:
                continue
            state.extended += extension
            state.target += extension
            if state.running:
                base = state.cursor
                consumed_now = state.consumed + calendar.business_between(
                    rule.measure, state.cursor, transition.at
                )
                raw = calendar.advance(
                    rule.measure, max(base, transition.at), state.target - consumed_now
                )
                state.due = state.round_due(max(raw, transition.at))
        elif kind in (TransitionKind.STOP, TransitionKind.CANCEL):
            if kind is TransitionKind.CANCEL:
                out.append(
                    state.decision(
                        DecisionKind.CANCELLED,
                        transition.at,
                        stopped_at=transition.at,
                        reason=transition.reason or "cancelled",
                    )
                )
            else:
                final = DecisionKind.MISSED if state.breached else DecisionKind.MET
                out.append(state.decision(final, transition.at, stopped_at=transition.at))
            running = None  # the cycle is over; a restart may begin the next
    if running is not None:
        mark = len(out)
        running.run_until(None, out)
        running.sort_warnings(out, mark)
    return out


def judge_instant(
    *,
    started_at: int,
    waited: int,
    answered: bool,
    target: int,
) -> Decision:
    """An instant norm (phone answered within 30 s, counter visitor helped within 10 minutes):
    judged from the contact itself. An abandoned contact counts as not answered in time."""
    stopped_at = started_at + waited
    met = answered and waited <= target
    return new_decision(
        DecisionKind.MET if met else DecisionKind.MISSED,
        stopped_at,
        started_at,
        started_at + target,
        target,
        waited,
        0,
        stopped_at=stopped_at,
    )


def decisions_due(
    decisions: list[Decision], taken: set[str], now: int
) -> tuple[list[Decision], int | None]:
    """The decisions whose instant has passed (`at < now`) and that were not taken before, and
    the instant of the next one still to come (None: nothing more unless an event arrives).

    Strictly before `now`: an event at exactly a decision's instant can still change it (a stop
    at the due instant is met), and every event at or after the watermark may still arrive.

    Each decision is taken once (`taken` holds their keys). After a cycle's final decision
    nothing more of that cycle is taken: late events beyond the allowed lateness cannot reopen
    a finished cycle (only a restart begins a new one). A data-quality report is still taken:
    it changes no outcome, and a replay reports it too.
    """
    finished = finished_cycles(taken)
    ready: list[Decision] = []
    for decision in decisions:
        if decision.key in taken or (
            decision.cycle in finished and decision.kind is not DecisionKind.DATA_QUALITY
        ):
            continue
        if decision.at >= now:
            return ready, decision.at
        ready.append(decision)
    return ready, None


def finished_cycles(taken: set[str]) -> set[int]:
    """The cycles whose final decision was taken (keys "final", "2:final", …)."""
    finished = set()
    for key in taken:
        if key == "final":
            finished.add(1)
        elif key.endswith(":final"):
            finished.add(int(key.partition(":")[0]))
    return finished
