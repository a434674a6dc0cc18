"""The per-event part of the norm catalog: which rules an intake event matches, compiled
(services/_native.py). `NormCatalog` (catalog.py) builds the rules from the validated norm
definitions once; every event is then tested here, by its type and channel, against few rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas.common import Duration, DurationUnit
from services.common.calendar import US, to_us
from services.norms.domain.clock import TransitionKind

# Nominal length of one unit of each duration unit, in seconds of its measure.
UNIT_SECONDS: dict[DurationUnit, int] = {
    DurationUnit.SECONDS: 1,
    DurationUnit.MINUTES: 60,
    DurationUnit.OFFICE_HOURS: 3600,
    DurationUnit.WORKING_DAYS: 86_400,
    DurationUnit.CALENDAR_DAYS: 86_400,
    DurationUnit.WEEKS: 7 * 86_400,
}


def duration_us(duration: Duration) -> int:
    """A duration in nominal business microseconds of its own measure."""
    return round(duration.amount * UNIT_SECONDS[duration.unit] * US)


# Match and InstantMatch have their `__init__` written out: a generated one is Python code, run
# as such in a compiled module, and most events match a rule.


@dataclass(slots=True, init=False)
class Match:
    norm: Any  # catalog.Norm
    kind: TransitionKind
    subject_id: str
    extension: int
    reason: str

    def __init__(
        self, norm: Any, kind: TransitionKind, subject_id: str, extension: int = 0, reason: str = ""
    ) -> None:
        self.norm, self.kind, self.subject_id = norm, kind, subject_id
        self.extension, self.reason = extension, reason


@dataclass(slots=True, init=False)
class InstantMatch:
    norm: Any  # catalog.Norm
    subject_id: str
    started_at: int
    waited: int
    answered: bool

    def __init__(
        self, norm: Any, subject_id: str, started_at: int, waited: int, answered: bool
    ) -> None:
        self.norm, self.subject_id, self.started_at = norm, subject_id, started_at
        self.waited, self.answered = waited, answered


Test = Callable[[dict[str, Any]], bool]


class FieldTest:
    """A selector as a test of an event's field values (its model's `__dict__`): each listed
    field one of its options (sets), each given field equal, and `in_reply_to` set or not."""

    def __init__(
        self,
        one_of: list[tuple[str, frozenset[Any]]],
        equal: list[tuple[str, Any]],
        reply: bool | None,
    ) -> None:
        self.one_of, self.equal, self.reply = one_of, equal, reply

    def __call__(self, fields: dict[str, Any]) -> bool:
        for name, options in self.one_of:
            value = fields.get(name)
            if value is None or value not in options:
                return False
        for name, wanted in self.equal:
            if fields.get(name) != wanted:
                return False
        reply = self.reply
        return reply is None or (fields.get("in_reply_to") is not None) == reply


class CaseTypeScope:
    """`test`, but false for an event about a case of a type not in `case_types`."""

    def __init__(self, case_types: frozenset[str], test: Test) -> None:
        self.case_types, self.test = case_types, test

    def __call__(self, fields: dict[str, Any]) -> bool:
        case_type = fields.get("case_type")
        if case_type is not None and case_type not in self.case_types:
            return False
        return self.test(fields)


# (norm, its id, kind, selector, test, the field naming the subject, the cancel reason): what
# `match` needs of a rule for every event, worked out once.
Rule = tuple[Any, str, TransitionKind, Any, Test, str, str]
# (norm, selector, test, the field naming the subject)
Judge = tuple[Any, Any, Test, str]


class Matcher:
    """The rules and instant judges of one catalog, by event type, and by type and channel as
    events ask for them (most rules name a channel, so an event is tested against few; the
    order, which is the rules' precedence, is kept)."""

    def __init__(self, rules: dict[str, list[Rule]], judges: dict[str, list[Judge]]) -> None:
        self.rules, self.judges = rules, judges
        self.rules_by_channel: dict[tuple[str, Any], list[Rule]] = {}
        self.judges_by_channel: dict[tuple[str, Any], list[Judge]] = {}

    def _rules_for(self, event_type: str, channel: Any) -> list[Rule]:
        rules = self.rules_by_channel[(event_type, channel)] = [
            rule
            for rule in self.rules.get(event_type, [])
            if rule[3].channel is None or (channel is not None and channel in rule[3].channel)
        ]
        return rules

    def _judges_for(self, event_type: str, channel: Any) -> list[Judge]:
        judges = self.judges_by_channel[(event_type, channel)] = [
            judge
            for judge in self.judges.get(event_type, [])
            if judge[1].channel is None or (channel is not None and channel in judge[1].channel)
        ]
        return judges

    def match(self, event_type: str, data: Any) -> list[Match]:
        """The transitions this event causes: at most one per norm."""
        fields: dict[str, Any] = data.__dict__
        channel = fields.get("channel")
        rules = self.rules_by_channel.get((event_type, channel))
        if rules is None:
            rules = self._rules_for(event_type, channel)
        matches: list[Match] = []
        if not rules:
            return matches
        seen: set[str] = set()
        for norm, norm_id, kind, _, selected, key_field, reason in rules:
            if norm_id in seen or not selected(fields):
                continue
            subject = fields.get(key_field)
            if not subject:
                continue
            seen.add(norm_id)
            extension = 0
            if kind is TransitionKind.EXTEND:
                extension = duration_us(data.extension)
            elif kind is TransitionKind.CANCEL and not reason:
                outcome = fields.get("outcome")
                reason = str(outcome.value) if outcome is not None else "cancelled"
            elif kind is TransitionKind.PAUSE:
                # Kept with the transition: a deadline's explanation names why it stood still.
                why = fields.get("reason")
                reason = str(getattr(why, "value", why)) if why is not None else ""
            matches.append(Match(norm, kind, subject, extension, reason))
        return matches

    def judge(self, event_type: str, data: Any) -> list[InstantMatch]:
        """Instant norms this contact is judged against (needs started_at and wait_seconds)."""
        fields: dict[str, Any] = data.__dict__
        channel = fields.get("channel")
        judges = self.judges_by_channel.get((event_type, channel))
        if judges is None:
            judges = self._judges_for(event_type, channel)
        judged: list[InstantMatch] = []
        for norm, _, selected, key_field in judges:
            if not selected(fields):
                continue
            started = fields.get("started_at")
            waited = fields.get("wait_seconds")
            if started is None or waited is None:
                continue
            judged.append(
                InstantMatch(
                    norm,
                    fields[key_field],
                    to_us(started),
                    round(waited * US),
                    bool(fields.get("answered", True)),
                )
            )
        return judged
