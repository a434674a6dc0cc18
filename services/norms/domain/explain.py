"""Why a deadline is what it is: the due instant of a clock, explained day by day.

A case worker must be able to answer a resident who asks "why is my answer due on Thursday?":
from which instant the term counts (the day after receipt, for terms in days), which days were
skipped and why (a weekend, a named public holiday, a municipal closing day), which days the
term was suspended and why (Awb 4:15), which extensions counted (Awb 4:14, 9:11 lid 2) and
whether the Algemene termijnenwet moved the end (a term ending on a Saturday, Sunday or general
holiday ends on the next working day).

`explain()` folds a clock's transitions the way `clock.timeline()` does (the same rules,
restated here so that each can be held to the other: a property test checks that the due
instant explained is the one the clock computes), and then walks the local days of the term.
It is computed on request (`GET /v1/clocks/{id}`) and, in short (`summary()`), when a warning,
breach or final outcome is decided — never for every intake event.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import NamedTuple

from services.common.calendar import (
    DAY_US,
    US,
    WEEKDAYS,
    BusinessCalendar,
    Measure,
    from_us,
)
from services.norms.domain.catalog import Norm
from services.norms.domain.clock import ClockRule, Transition, TransitionKind
from services.norms.domain.matching import UNIT_SECONDS

_ONE_DAY = timedelta(days=1)


class Day(NamedTuple):
    """One local day of the term and what it did to it (a tuple: a term of weeks makes many)."""

    day: date
    # counted, weekend, holiday, closing_day, closed (no opening hours), suspended,
    # atw_shift (added by the Atw), not_counted (e.g. the term cannot end before a resumption)
    status: str
    counted: int = 0  # nominal business microseconds counted on this day
    number: int = 0  # for a counted day: its ordinal in the term (1, 2, …)
    name_nl: str = ""  # the holiday's name, the weekday's, or why it was skipped
    name_en: str = ""
    reason: str = ""  # a suspension's reason code; for an Atw day, why it is off


@dataclass(frozen=True, slots=True)
class Suspension:
    """A suspension (Awb 4:15): requested at `requested_at`; the term stood still from
    `effective_from` up to `until` (both instants; `until` None: still suspended)."""

    requested_at: int
    reason: str
    effective_from: int | None  # None: it never took effect (resumed before it began)
    until: int | None = None
    resumed_at: int | None = None  # the resuming event's instant
    days: int = 0  # whole local days the term stood still
    after_expiry: bool = False  # asked after the term had expired: it moves nothing


@dataclass(frozen=True, slots=True)
class Extension:
    """An extension (verdaging): asked for `requested` microseconds, `counted` of them count;
    `refused` says why not all: not_allowed, after_expiry, beyond_maximum."""

    given_at: int
    requested: int
    counted: int
    refused: str = ""


@dataclass(frozen=True, slots=True)
class AtwShift:
    """Algemene termijnenwet art. 1: the term's last day `from_day` was a day off (`name_*`),
    so the term ends at the end of `to_day`."""

    from_day: date
    to_day: date
    kind: str  # weekend or holiday
    name_nl: str
    name_en: str

    @property
    def days(self) -> int:
        return (self.to_day - self.from_day).days


@dataclass(frozen=True, slots=True)
class Explanation:
    """The explanation of one cycle of a clock."""

    measure: Measure
    day_granular: bool
    legal_term: bool
    started_at: int  # receipt: the instant of the start (or restart)
    counting_from: int  # the day after receipt (day terms), else the start itself
    target: int  # the norm's target, nominal business microseconds
    extended: int  # extensions that count
    due_at: int | None  # None while suspended (the term stands still)
    status: str  # running, suspended, met, missed, cancelled
    breached_at: int | None
    stopped_at: int | None
    cycle: int
    days: tuple[Day, ...]
    suspensions: tuple[Suspension, ...]
    extensions: tuple[Extension, ...]
    atw: AtwShift | None
    # The term cannot end before the day of the event that last recomputed it (a resumption
    # or an extension on the term's last day): that event's instant, when it decided.
    not_before: int | None = None
    # Stopped while suspended: the due instant is counted as if the term ran on from the stop.
    counted_on_from_stop: bool = False
    # Closed (or cancelled) with a date before the start: cancelled at once, as the clock's
    # rule for events dated before the start says (clock.STOPPED_BEFORE_START).
    stopped_before_start: bool = False

    @property
    def counted_days(self) -> int:
        return sum(1 for d in self.days if d.status == "counted")

    def days_with(self, status: str) -> int:
        return sum(1 for d in self.days if d.status == status)

    @property
    def suspended_days(self) -> int:
        return sum(s.days for s in self.suspensions)


@dataclass(slots=True)
class _Fold:
    """The state of a cycle as `clock._State` keeps it, with what the explanation needs."""

    rule: ClockRule
    cursor: int
    target: int
    consumed: int = 0
    extended: int = 0
    due: int = 0
    raw: int = 0  # the instant the count reaches the target (before the day end, the Atw)
    floor: int | None = None  # not_before that decided the due (see Explanation.not_before)
    running: bool = True
    pause_at: int | None = None
    breached_at: int | None = None
    segments: list[list[int | None]] = field(default_factory=list)  # counted [a, b)
    suspensions: list[Suspension] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)
    pending: Transition | None = None  # the pause asked for and not resumed yet

    def set_due(self, raw: int, not_before: int) -> None:
        self.raw = raw
        self.floor = not_before if not_before > raw else None
        self.due = self.round(max(raw, not_before))

    def round(self, raw: int) -> int:
        rule = self.rule
        if not rule.day_granular:
            return raw
        due = rule.calendar.end_of_day_ceil(raw)
        return rule.calendar.atw_term_end(due) if rule.legal_term else due

    def count(self, start: int, end: int | None) -> None:
        if end is not None and end <= start:
            return
        if self.segments and self.segments[-1][1] == start:
            self.segments[-1][1] = end
        else:
            self.segments.append([start, end])

    def run_until(self, until: int | None) -> None:
        """`_State.run_until` without the warnings."""
        if not self.running:
            return
        end = self.pause_at
        if until is not None:
            end = until if end is None else min(end, until)
        start = self.cursor
        if self.breached_at is None and self.due >= start and (end is None or self.due < end):
            self.breached_at = self.due
        if end is None:
            self.count(start, None)
            return
        self.consumed += self.rule.calendar.business_between(self.rule.measure, start, end)
        self.count(start, max(start, end))
        self.cursor = max(start, end)
        if self.pause_at is not None and until is not None and until >= self.pause_at:
            self.running = False


def explain(
    rule: ClockRule,
    transitions: list[Transition],
    *,
    cycle: int | None = None,
    until: int | None = None,
) -> Explanation | None:
    """Explain cycle `cycle` (None: the latest) of a clock from its transitions; `until`: only
    what happened at or before that instant (a decision's explanation knows no later events).
    None when the clock never started (or has no such cycle)."""
    ordered = sorted(transitions, key=Transition.sort_key)
    if until is not None:
        ordered = [t for t in ordered if t.at <= until]
    start = next((t for t in ordered if t.kind is TransitionKind.START), None)
    if start is None:
        return None
    # The cycles, as `timeline()` finds them: each begins with the start or a restart after
    # an end, and holds what follows up to its stop or cancel.
    cycles: list[tuple[Transition, list[Transition]]] = [(start, [])]
    # The clock's rule for events dated before the start: a stop or cancel among them ends the
    # first cycle at once, at the start (cancelled); anything else before the start is ignored.
    closing = next(
        (
            t
            for t in ordered
            if t.at < start.at and t.kind in (TransitionKind.STOP, TransitionKind.CANCEL)
        ),
        None,
    )
    if closing is not None:
        cycles[0][1].append(closing._replace(at=start.at, kind=TransitionKind.CANCEL))
    ended = closing is not None
    for transition in ordered:
        if transition.at < start.at or transition is start:
            continue
        kind = transition.kind
        if ended:
            if kind is TransitionKind.RESTART:
                cycles.append((transition, []))
                ended = False
            continue
        if kind is TransitionKind.START or kind is TransitionKind.RESTART:
            continue
        cycles[-1][1].append(transition)
        ended = kind in (TransitionKind.STOP, TransitionKind.CANCEL)
    number = len(cycles) if cycle is None else cycle
    if not 1 <= number <= len(cycles):
        return None
    begin, events = cycles[number - 1]
    explanation = _explain_cycle(rule, begin, events, number, until)
    if number == 1 and closing is not None:
        explanation = dataclasses.replace(
            explanation, stopped_at=closing.at, stopped_before_start=True
        )
    return explanation


def _explain_cycle(
    rule: ClockRule, begin: Transition, events: list[Transition], number: int, until: int | None
) -> Explanation:
    calendar, measure = rule.calendar, rule.measure
    origin = calendar.start_of_next_day(begin.at) if rule.day_granular else begin.at
    fold = _Fold(rule=rule, cursor=origin, target=rule.target)
    fold.set_due(calendar.advance(measure, origin, rule.target), 0)
    status, stopped_at, from_stop = "running", None, False
    for transition in events:
        kind = transition.kind
        fold.run_until(transition.at)
        if kind is TransitionKind.PAUSE:
            if fold.running and fold.pause_at is None:
                fold.pause_at = (
                    max(calendar.start_of_next_day(transition.at), fold.cursor)
                    if rule.day_granular
                    else transition.at
                )
                fold.pending = transition
                fold.run_until(transition.at)
        elif kind is TransitionKind.RESUME:
            if fold.pause_at is None or fold.pending is None:
                continue
            asked = fold.pending
            fold.pending = None
            if fold.running:  # resumed before the suspension took effect: it never happened
                fold.pause_at = None
                fold.suspensions.append(
                    Suspension(asked.at, asked.reason, None, resumed_at=transition.at)
                )
                continue
            resumed = (
                max(calendar.start_of_day(calendar.local_date(transition.at)), fold.pause_at)
                if rule.day_granular
                else transition.at
            )
            fold.suspensions.append(
                Suspension(
                    asked.at,
                    asked.reason,
                    fold.pause_at,
                    resumed,
                    transition.at,
                    _days_between(rule, fold.pause_at, resumed),
                    after_expiry=fold.breached_at is not None,
                )
            )
            fold.cursor = resumed
            fold.pause_at = None
            fold.running = True
            if fold.breached_at is None:
                fold.set_due(
                    calendar.advance(measure, resumed, fold.target - fold.consumed), transition.at
                )
        elif kind is TransitionKind.EXTEND:
            allowed = rule.max_extension
            if allowed is None or fold.breached_at is not None:
                refused = "not_allowed" if allowed is None else "after_expiry"
                fold.extensions.append(Extension(transition.at, transition.extension, 0, refused))
                continue
            extension = min(transition.extension, allowed - fold.extended)
            if extension <= 0:
                fold.extensions.append(
                    Extension(transition.at, transition.extension, 0, "beyond_maximum")
                )
                continue
            fold.extensions.append(
                Extension(
                    transition.at,
                    transition.extension,
                    extension,
                    "" if extension == transition.extension else "beyond_maximum",
                )
            )
            fold.extended += extension
            fold.target += extension
            if fold.running:
                consumed_now = fold.consumed + calendar.business_between(
                    measure, fold.cursor, transition.at
                )
                fold.set_due(
                    calendar.advance(
                        measure, max(fold.cursor, transition.at), fold.target - consumed_now
                    ),
                    transition.at,
                )
        elif kind in (TransitionKind.STOP, TransitionKind.CANCEL):
            stopped_at = transition.at
            if kind is TransitionKind.CANCEL:
                status = "cancelled"
            else:
                status = "missed" if fold.breached_at is not None else "met"
            unresumed = fold.pending
            fold.pending = None
            if fold.running:  # the term would have run on to its end (as projected)
                if unresumed is not None:  # a suspension asked for that never took effect
                    fold.suspensions.append(Suspension(unresumed.at, unresumed.reason, None))
                fold.count(fold.cursor, None)
            elif unresumed is not None and fold.pause_at is not None:
                resumed = max(transition.at, fold.cursor)
                fold.suspensions.append(
                    Suspension(
                        unresumed.at,
                        unresumed.reason,
                        fold.pause_at,
                        resumed,
                        None,
                        _days_between(rule, fold.pause_at, resumed),
                        after_expiry=fold.breached_at is not None,
                    )
                )
                if fold.breached_at is None:
                    # `_State.decision`: stopped while suspended, the due instant is counted
                    # as if the term ran on from the stop.
                    fold.set_due(calendar.advance(measure, resumed, fold.target - fold.consumed), 0)
                    fold.count(resumed, None)
                    from_stop = True
            break
    if status == "running":
        # A suspension asked for that has not begun yet (it begins the next day) leaves the
        # due instant as it is until it does: the term is projected without it.
        # (Explaining as of `until`: one that begins after it has not begun; without `until`,
        # every suspension asked for begins, as the clock's own projection has it.)
        pending_from = fold.pause_at if fold.running and until is not None else None
        if pending_from is not None and pending_from <= until:  # type: ignore[operator]
            pending_from = None
        if pending_from is not None:
            fold.pause_at = None
        fold.run_until(None)
        if pending_from is not None:
            if fold.breached_at is not None and fold.breached_at >= pending_from:
                fold.breached_at = None  # (the suspension comes first)
            fold.pause_at = pending_from
        elif fold.breached_at is None and (not fold.running or fold.pause_at is not None):
            status = "suspended"
    if fold.pending is not None and fold.pause_at is not None:
        # Still suspended (or about to be): the term stands still from `pause_at`.
        asked = fold.pending
        fold.suspensions.append(
            Suspension(
                asked.at,
                asked.reason,
                fold.pause_at,
                after_expiry=fold.breached_at is not None and fold.breached_at < fold.pause_at,
            )
        )
    due: int | None = fold.due
    if status == "suspended":
        due = None
    days, atw = _walk(rule, fold, origin, due)
    return Explanation(
        measure=measure,
        day_granular=rule.day_granular,
        legal_term=rule.legal_term,
        started_at=begin.at,
        counting_from=origin,
        target=rule.target,
        extended=fold.extended,
        due_at=due,
        status=status,
        breached_at=fold.breached_at,
        stopped_at=stopped_at,
        cycle=number,
        days=days,
        suspensions=tuple(fold.suspensions),
        extensions=tuple(fold.extensions),
        atw=atw,
        not_before=fold.floor if due is not None else None,
        counted_on_from_stop=from_stop,
    )


def _days_between(rule: ClockRule, start: int, end: int) -> int:
    """Whole local days in [start, end) (a day-granular suspension runs midnight to midnight);
    a suspension of a term in hours counts the days it touched."""
    calendar = rule.calendar
    if end <= start:
        return 0
    first, last = calendar.local_date(start), calendar.local_date(end - 1)
    return (last - first).days + 1


def _walk(
    rule: ClockRule, fold: _Fold, origin: int, due: int | None
) -> tuple[tuple[Day, ...], AtwShift | None]:
    """Every local day from the first counted one to the term's last, and what it was."""
    calendar, measure = rule.calendar, rule.measure
    if due is not None:
        count_end = fold.raw  # the count reached the target here
        last = calendar.local_date(max(due, origin + 1) - 1)
    else:  # suspended: up to the day before the suspension took effect
        count_end = fold.pause_at if fold.pause_at is not None else fold.cursor
        last = calendar.local_date(max(count_end, origin + 1) - 1)
    atw: AtwShift | None = None
    term_last = last
    if due is not None and rule.day_granular and rule.legal_term:
        day_end = calendar.end_of_day_ceil(max(fold.raw, fold.floor or 0))
        if due > day_end:
            term_last = calendar.local_date(day_end - 1)
            off = calendar.atw_day_off(term_last)
            if off is not None:
                atw = AtwShift(term_last, last, off.kind, off.name_nl, off.name_en)
    suspended = [
        (s.effective_from, s.until, s.reason)
        for s in fold.suspensions
        if s.effective_from is not None and not s.after_expiry
    ]
    # The counted stretches, clipped to where the count reached the target; walked with the
    # days (a 56-day term with a suspension is explained in ~60 steps, not 60 × segments).
    segments = [
        (max(a, origin), b if b is not None and b < count_end else count_end)
        for a, b in fold.segments
        if a is not None
    ]
    segments = [(a, b) for a, b in segments if b > a]
    days: list[Day] = []
    day = calendar.local_date(origin)
    number = 0
    first = 0
    lo = calendar.start_of_day(day)
    while day <= last:
        following = day + _ONE_DAY
        hi = calendar.start_of_day(following)
        counted = 0
        while first < len(segments) and segments[first][1] <= lo:
            first += 1
        for a, b in segments[first:]:
            if a >= hi:
                break
            counted += calendar.business_between(measure, max(a, lo), min(b, hi))
        if counted > 0:
            number += 1
            days.append(Day(day, "counted", counted, number))
        elif reason := next(
            (r for a, b, r in suspended if a <= lo and (b is None or lo < b)), None
        ):
            days.append(Day(day, "suspended", reason=reason))
        elif any(a <= lo and (b is None or lo < b) for a, b, _ in suspended):
            days.append(Day(day, "suspended"))  # (a reason not known: stored before it was)
        elif atw is not None and day > term_last:
            off = calendar.atw_day_off(day)
            if off is not None:
                days.append(Day(day, "atw_shift", 0, 0, off.name_nl, off.name_en, off.kind))
            else:
                days.append(Day(day, "atw_shift", 0, 0, "volgende werkdag", "next working day"))
        elif measure in (Measure.WORKING_DAYS, Measure.OFFICE_HOURS) and (
            off := calendar.day_off(day)
        ):
            days.append(Day(day, off.kind, 0, 0, off.name_nl, off.name_en))
        elif measure is Measure.OFFICE_HOURS and not calendar.intervals(measure, day):
            days.append(Day(day, "closed"))
        else:
            days.append(Day(day, "not_counted"))
        day, lo = following, hi
    return tuple(days), atw


def summary(explanation: Explanation) -> dict[str, object]:
    """The explanation in short, as outcome events carry it (`schemas.events.DeadlineSummary`:
    the same fields in the same order)."""
    return {
        "counted_days": explanation.counted_days,
        "skipped_days": {
            "weekend": explanation.days_with("weekend"),
            "holiday": explanation.days_with("holiday"),
            "closing_day": explanation.days_with("closing_day"),
        },
        "suspended_days": explanation.suspended_days,
        "extension_days": explanation.extended / DAY_US,
        "atw_shift_days": explanation.atw.days if explanation.atw else 0,
    }


# ---- in the municipality's words ------------------------------------------------------------

_MONTHS_NL = (
    "januari", "februari", "maart", "april", "mei", "juni",
    "juli", "augustus", "september", "oktober", "november", "december",
)  # fmt: skip
_MONTHS_EN = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_WEEKDAYS_NL = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
_UNITS = {  # unit → (Dutch singular, plural, English singular, plural)
    "seconds": ("seconde", "seconden", "second", "seconds"),
    "minutes": ("minuut", "minuten", "minute", "minutes"),
    "office_hours": ("kantooruur", "kantooruren", "office hour", "office hours"),
    "working_days": ("werkdag", "werkdagen", "working day", "working days"),
    "calendar_days": ("dag", "dagen", "day", "days"),
    "weeks": ("week", "weken", "week", "weeks"),
}
# Suspension reasons (schemas.events.SuspensionReason) as a resident would read them.
_SUSPENSION_REASONS = {
    "awaiting_information": (
        "we wachtten op informatie van de aanvrager (Awb 4:15)",
        "we were waiting for information from the applicant (Awb 4:15)",
    ),
    "awaiting_advice": ("we wachtten op een advies", "we were waiting for advice"),
    "awaiting_payment": (
        "we wachtten op betaling van de leges (Awb 4:15)",
        "we were waiting for the fees to be paid (Awb 4:15)",
    ),
    "by_agreement": (
        "de aanvrager was het daarmee eens (Awb 4:15)",
        "the applicant agreed to it (Awb 4:15)",
    ),
    "other": ("om een andere reden", "for another reason"),
}
_STATUS_NAMES = {  # day status → Dutch and English (for the day list)
    "counted": ("telt mee", "counted"),
    "weekend": ("weekend", "weekend"),
    "holiday": ("feestdag", "public holiday"),
    "closing_day": ("sluitingsdag", "closing day"),
    "closed": ("geen openingstijden", "no opening hours"),
    "suspended": ("termijn stond stil", "term suspended"),
    "atw_shift": ("verschoven door de Algemene termijnenwet", "moved by the Atw"),
    "not_counted": ("telt niet mee", "not counted"),
}


def _date(day: date, lang: str, *, year: bool = True) -> str:
    if lang == "nl":
        text = f"{_WEEKDAYS_NL[day.weekday()]} {day.day} {_MONTHS_NL[day.month - 1]}"
    else:
        text = f"{WEEKDAYS[day.weekday()].capitalize()} {day.day} {_MONTHS_EN[day.month - 1]}"
    return f"{text} {day.year}" if year else text


def _amount(amount: float, unit: str, lang: str) -> str:
    nl_one, nl_many, en_one, en_many = _UNITS[unit]
    number = f"{amount:g}"
    if lang == "nl":
        return f"{number.replace('.', ',')} {nl_one if amount == 1 else nl_many}"
    return f"{number} {en_one if amount == 1 else en_many}"


def _join(items: list[str], lang: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + (" en " if lang == "nl" else " and ") + items[-1]


def _reason(code: str, lang: str) -> str:
    pair = _SUSPENSION_REASONS.get(code)
    if pair is None:
        return "(reden niet bekend)" if lang == "nl" else "(reason not known)"
    return pair[0] if lang == "nl" else pair[1]


def describe(
    explanation: Explanation,
    lang: str,
    *,
    calendar: BusinessCalendar,
    unit: str,
    unit_us: int,
    now: int | None = None,
) -> list[str]:
    """The explanation as sentences a case worker can read to a resident: Dutch at B1 level
    (`lang` "nl") or English ("en"). `unit`: the norm's target unit (`working_days`, …), of
    `unit_us` nominal microseconds; local times in the calendar's time zone. `now`: the
    service's now (an open clock's breach may still lie ahead)."""
    nl = lang == "nl"
    ex = explanation

    def moment(instant: int) -> str:
        when = from_us(instant, calendar.zone)
        return (
            f"{_date(when.date(), lang)} om {when:%H:%M}"
            if nl
            else f"{_date(when.date(), lang)} at {when:%H:%M}"
        )

    def day_of(instant: int) -> date:
        return calendar.local_date(instant)

    lines = [
        (
            f"Ontvangen op {moment(ex.started_at)}."
            if nl
            else f"Received on {moment(ex.started_at)}."
        )
        if ex.cycle == 1
        else (
            f"De zaak is heropend op {moment(ex.started_at)}; de termijn begon opnieuw."
            if nl
            else f"The case was reopened on {moment(ex.started_at)}; the term began again."
        )
    ]
    target = _amount(ex.target / unit_us, unit, lang)
    lines.append(f"De termijn is {target}." if nl else f"The term is {target}.")
    if ex.day_granular:
        first = _date(day_of(ex.counting_from), lang)
        lines.append(
            f"De dag van ontvangst telt niet mee. We tellen vanaf {first}."
            if nl
            else f"The day of receipt does not count. Counting starts on {first}."
        )
        if ex.measure is Measure.CALENDAR_DAYS:
            lines.append(
                "Weekenden en feestdagen tellen bij deze termijn gewoon mee."
                if nl
                else "Weekends and public holidays count for this term."
            )
    elif ex.measure is Measure.OFFICE_HOURS:
        lines.append(
            "Alleen de openingstijden op werkdagen tellen mee, vanaf het moment van ontvangst."
            if nl
            else "Only opening hours on working days count, from the moment of receipt."
        )
    counted = [d for d in ex.days if d.status == "counted"]
    if counted and ex.day_granular:
        if len(counted) <= 5:
            which = _join([_date(d.day, lang, year=False) for d in counted], lang)
        else:
            which = (
                f"van {_date(counted[0].day, lang)} tot en met {_date(counted[-1].day, lang)}"
                if nl
                else f"from {_date(counted[0].day, lang)} to {_date(counted[-1].day, lang)}"
            )
        lines.append(
            f"Deze {len(counted)} dagen tellen mee: {which}."
            if nl
            else f"These {len(counted)} days count: {which}."
        )
    skipped = [d for d in ex.days if d.status in ("weekend", "holiday", "closing_day")]
    if skipped:
        parts = []
        for d in skipped:
            name = d.name_nl if nl else d.name_en
            if d.status == "weekend":
                parts.append(_date(d.day, lang, year=False) + " (weekend)")
            else:
                parts.append(f"{_date(d.day, lang, year=False)} ({name})")
        lines.append(
            f"Deze dagen tellen niet mee: {_join(parts, lang)}."
            if nl
            else f"These days do not count: {_join(parts, lang)}."
        )
    for s in ex.suspensions:
        why = _reason(s.reason, lang)
        asked = moment(s.requested_at)
        if s.effective_from is None or (s.until is not None and s.days == 0):
            lines.append(
                f"Op {asked} stopte de termijn even ({why}), maar het antwoord kwam voordat de "
                "stilstand begon. De termijn liep dus gewoon door."
                if nl
                else f"On {asked} the term was suspended ({why}), but the answer came before "
                "the suspension began, so the term ran on."
            )
        elif s.after_expiry:
            lines.append(
                f"Op {asked} stopte de termijn ({why}), maar de termijn was toen al verlopen. "
                "Dat verandert de uiterste datum niet."
                if nl
                else f"On {asked} the term was suspended ({why}), but it had already expired. "
                "That does not change the due date."
            )
        elif s.until is None:
            lines.append(
                f"De termijn staat stil vanaf {_date(day_of(s.effective_from), lang)}, omdat "
                f"{why}. Als dat binnen is, loopt de termijn verder."
                if nl
                else f"The term is suspended from {_date(day_of(s.effective_from), lang)}"
                f" because {why}. Once that has arrived, the term runs on."
            )
        else:
            first = _date(day_of(s.effective_from), lang)
            last = _date(day_of(s.until - 1), lang)
            days = (
                f"{s.days} {'dag' if s.days == 1 else 'dagen'}"
                if nl
                else (f"{s.days} {'day' if s.days == 1 else 'days'}")
            )
            lines.append(
                f"De termijn stond stil van {first} tot en met {last} ({days}), omdat {why}."
                if nl
                else f"The term was suspended from {first} to {last} ({days}) because {why}."
            )
    for e in ex.extensions:
        given = _date(day_of(e.given_at), lang)
        if e.counted and not e.refused:
            amount = _amount(e.counted / unit_us, unit, lang)
            lines.append(
                f"Op {given} is de termijn verlengd met {amount}."
                if nl
                else f"On {given} the term was extended by {amount}."
            )
        elif e.refused == "beyond_maximum":
            amount = _amount(e.counted / unit_us, unit, lang)
            lines.append(
                f"De verlenging van {given} telt maar voor {amount}: langer verlengen mag niet."
                if nl
                else f"The extension of {given} counts for {amount} only: no longer extension is "
                "allowed."
            )
        elif e.refused == "after_expiry":
            lines.append(
                f"De verlenging van {given} telt niet: de termijn was toen al verlopen."
                if nl
                else f"The extension of {given} does not count: the term had already expired."
            )
        else:
            lines.append(
                f"De verlenging van {given} telt niet: deze termijn kan niet verlengd worden."
                if nl
                else f"The extension of {given} does not count: this term cannot be extended."
            )
    if ex.not_before is not None:
        lines.append(
            f"De termijn eindigt niet vóór de dag waarop hij weer ging lopen of werd verlengd: "
            f"{_date(day_of(ex.not_before), lang)}."
            if nl
            else "The term does not end before the day on which it ran again or was extended: "
            f"{_date(day_of(ex.not_before), lang)}."
        )
    if ex.counted_on_from_stop:
        lines.append(
            "De zaak werd afgesloten terwijl de termijn stilstond. De uiterste datum is geteld "
            "alsof de termijn vanaf de afsluiting weer liep."
            if nl
            else "The case was closed while the term was suspended. The due date is counted as "
            "if the term ran again from the closing."
        )
    if ex.atw is not None:
        name = ex.atw.name_nl if nl else ex.atw.name_en
        name = "weekend" if ex.atw.kind == "weekend" else name
        lines.append(
            f"De laatste dag van de termijn was {_date(ex.atw.from_day, lang)} ({name}). Volgens "
            "de Algemene termijnenwet schuift de termijn dan door naar de eerstvolgende "
            f"werkdag: {_date(ex.atw.to_day, lang)}."
            if nl
            else f"The last day of the term was {_date(ex.atw.from_day, lang)} ({name}). Under "
            "the Algemene termijnenwet (General Time Limits Act) the term then ends on the next "
            f"working day: {_date(ex.atw.to_day, lang)}."
        )
    if ex.due_at is None:
        lines.append(
            "Zolang de termijn stilstaat, is er geen uiterste datum."
            if nl
            else "While the term is suspended, there is no due date."
        )
    elif ex.day_granular:
        last = _date(day_of(ex.due_at - 1), lang)
        lines.append(
            f"De uiterste datum is {last} (tot het einde van die dag)."
            if nl
            else f"The due date is {last} (until the end of that day)."
        )
    else:
        lines.append(
            f"Het uiterste moment is {moment(ex.due_at)}."
            if nl
            else f"The deadline is {moment(ex.due_at)}."
        )
    if ex.status in ("met", "missed") and ex.stopped_at is not None:
        done = moment(ex.stopped_at)
        if ex.status == "met":
            lines.append(f"Afgehandeld op {done}: op tijd." if nl else f"Done on {done}: in time.")
        else:
            lines.append(f"Afgehandeld op {done}: te laat." if nl else f"Done on {done}: late.")
    elif ex.stopped_before_start and ex.stopped_at is not None:
        done = moment(ex.stopped_at)
        lines.append(
            f"De zaak is afgesloten met een datum ({done}) van vóór de ontvangst. Dat kan niet: "
            "de termijn telt daarom niet mee voor de norm (een fout in de gegevens)."
            if nl
            else f"The case was closed with a date ({done}) before it was received. That cannot "
            "be: the term does not count for the norm (an error in the data)."
        )
    elif ex.status == "cancelled" and ex.stopped_at is not None:
        done = moment(ex.stopped_at)
        lines.append(
            f"De termijn is gestopt op {done}; deze zaak telt niet mee voor de norm."
            if nl
            else f"The clock was stopped on {done}; this case does not count for the norm."
        )
    elif ex.breached_at is not None and (now is None or ex.breached_at < now):
        lines.append(
            "De termijn is verlopen en de zaak is nog niet afgehandeld."
            if nl
            else "The term has expired and the case has not been dealt with yet."
        )
    elif ex.status == "running":
        lines.append("De zaak is nog open." if nl else "The case is still open.")
    return lines


def day_rows(explanation: Explanation, lang: str, *, unit_us: int) -> list[dict[str, object]]:
    """The days of the term as the API lists them."""
    nl = lang == "nl"
    rows: list[dict[str, object]] = []
    for d in explanation.days:
        row: dict[str, object] = {
            "date": d.day.isoformat(),
            "status": d.status,
            "label": _STATUS_NAMES[d.status][0 if nl else 1],
        }
        if d.status == "counted":
            row["number"] = d.number
            row["counted"] = round(d.counted / unit_us, 6)
        if d.name_nl:
            row["name"] = d.name_nl if nl else d.name_en
        if d.reason:
            row["reason"] = d.reason
        rows.append(row)
    return rows


def report(
    norm: Norm,
    calendar: BusinessCalendar,
    transitions: list[Transition],
    *,
    lang: str,
    now: int | None = None,
) -> dict[str, object] | None:
    """The explanation of a clock's latest cycle as `GET /v1/clocks/{id}` answers it (None: the
    clock never started)."""
    explanation = explain(norm.rule, transitions)
    if explanation is None:
        return None
    unit = norm.definition.target.unit
    unit_us = UNIT_SECONDS[unit] * US
    nl = lang == "nl"

    def iso(instant: int | None) -> str | None:
        return None if instant is None else calendar.isoformat(instant)

    def amount(value: int) -> dict[str, object]:
        return {"amount": value / unit_us, "unit": unit.value}

    ex = explanation
    return {
        "norm_id": norm.id,
        "norm_version": norm.version,
        "norm_name": norm.definition.name.nl if nl else norm.definition.name.en,
        "legal_basis": norm.definition.legal_basis,
        "lang": lang,
        "cycle": ex.cycle,
        "status": ex.status,
        "target": amount(ex.target),
        "extended": amount(ex.extended),
        "started_at": iso(ex.started_at),
        "counting_from": iso(ex.counting_from),
        "due_at": iso(ex.due_at),
        "breached_at": iso(ex.breached_at),
        "stopped_at": iso(ex.stopped_at),
        "summary": summary(ex),
        "explanation": describe(
            ex, lang, calendar=calendar, unit=unit.value, unit_us=unit_us, now=now
        ),
        "days": day_rows(ex, lang, unit_us=unit_us),
        "suspensions": [
            {
                "requested_at": iso(s.requested_at),
                "reason": s.reason or None,
                "reason_text": _reason(s.reason, lang),
                "took_effect": s.effective_from is not None,
                "from": iso(s.effective_from),
                "until": iso(s.until),
                "resumed_at": iso(s.resumed_at),
                "days": s.days,
                "after_expiry": s.after_expiry,
            }
            for s in ex.suspensions
        ],
        "extensions": [
            {
                "given_at": iso(e.given_at),
                "requested": amount(e.requested),
                "counted": amount(e.counted),
                "refused": e.refused or None,
            }
            for e in ex.extensions
        ],
        "atw_shift": None
        if ex.atw is None
        else {
            "term_last_day": ex.atw.from_day.isoformat(),
            "because": ex.atw.name_nl if nl else ex.atw.name_en,
            "kind": ex.atw.kind,
            "ends_on": ex.atw.to_day.isoformat(),
            "days": ex.atw.days,
        },
        "not_before": iso(ex.not_before),
    }
