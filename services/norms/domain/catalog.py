"""The norm catalog: which events start, pause, resume, extend, stop and cancel which clock.

A catalog is data (deploy/config/norms/*.yaml), validated by these models; a calendar likewise
(deploy/config/calendars/*.yaml). `NormCatalog.match()` turns one intake event into the
transitions it causes, per norm, keyed by the clock's subject (a case or a contact).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.common import Channel, Code, Direction, Duration, DurationUnit
from schemas.events import PREFIX, CaseOutcome, SuspensionReason
from services.common.calendar import BusinessCalendar, Measure
from services.norms.domain.clock import ClockRule, Threshold, TransitionKind
from services.norms.domain.matching import (
    CaseTypeScope,
    FieldTest,
    InstantMatch,
    Judge,
    Match,
    Matcher,
    Rule,
    Test,
    duration_us,
)

UNIT_MEASURE: dict[DurationUnit, Measure] = {
    DurationUnit.SECONDS: Measure.CONTINUOUS,
    DurationUnit.MINUTES: Measure.CONTINUOUS,
    DurationUnit.OFFICE_HOURS: Measure.OFFICE_HOURS,
    DurationUnit.WORKING_DAYS: Measure.WORKING_DAYS,
    DurationUnit.CALENDAR_DAYS: Measure.CALENDAR_DAYS,
    DurationUnit.WEEKS: Measure.CALENDAR_DAYS,
}
DAY_UNITS = frozenset({DurationUnit.WORKING_DAYS, DurationUnit.CALENDAR_DAYS, DurationUnit.WEEKS})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------------------------------
# Norm file
# ------------------------------------------------------------------------------------------

SHORT_TYPES = {
    "contact.received",
    "contact.completed",
    "case.opened",
    "case.status_changed",
    "case.responded",
    "case.suspended",
    "case.resumed",
    "case.extended",
    "case.closed",
    "case.reopened",
}
KeyField = Literal["case_id", "contact_id", "in_reply_to"]


class Selector(_Strict):
    """Which events a rule listens to. Every given field must match; lists mean "one of"."""

    type: str
    channel: list[Channel] | None = None
    case_type: list[Code] | None = None
    topic: list[Code] | None = None
    direction: Direction | None = None
    reply: bool | None = None  # whether `in_reply_to` is set
    callback_requested: bool | None = None
    outcome: list[CaseOutcome] | None = None
    suspension_reason: list[SuspensionReason] | None = None
    # Which field of the event names the clock's subject. Default: case_id for case events,
    # contact_id for contact events.
    key: KeyField | None = None
    # For cancel rules: the reason code on the NormCancelled event.
    as_reason: Code | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in SHORT_TYPES:
            raise ValueError(
                f"unknown event type {value!r}; one of {', '.join(sorted(SHORT_TYPES))}"
            )
        return value

    @property
    def event_type(self) -> str:
        return f"{PREFIX}.{self.type}.v1"

    @property
    def key_field(self) -> str:
        if self.key:
            return self.key
        return "case_id" if self.type.startswith("case.") else "contact_id"

    def matches(self, data: Any) -> bool:
        """Whether the event data `data` is selected."""
        return self.compile()(data.__dict__)

    def compile(self) -> Test:
        """`matches` as a function of a model's field values (its `__dict__`), with the option
        lists as sets: the catalog compiles each selector once and tests every event with it."""
        one_of = [
            (name, frozenset(options))
            for name, options in (
                ("channel", self.channel),
                ("case_type", self.case_type),
                ("topic", self.topic),
                ("outcome", self.outcome),
                ("reason", self.suspension_reason),
            )
            if options is not None
        ]
        equal = [
            (name, value)
            for name, value in (
                ("direction", self.direction),
                ("callback_requested", self.callback_requested),
            )
            if value is not None
        ]
        return FieldTest(one_of, equal, self.reply)

    def matches_by_definition(self, data: Any) -> bool:
        """`matches` spelled out field by field (a unit test holds the compiled form to it)."""

        def one_of(options: list[Any] | None, value: Any) -> bool:
            return options is None or (value is not None and value in options)

        return (
            one_of(self.channel, data.__dict__.get("channel"))
            and one_of(self.case_type, data.__dict__.get("case_type"))
            and one_of(self.topic, data.__dict__.get("topic"))
            and one_of(self.outcome, data.__dict__.get("outcome"))
            and one_of(self.suspension_reason, data.__dict__.get("reason"))
            and (self.direction is None or data.__dict__.get("direction") == self.direction)
            and (self.reply is None or (data.__dict__.get("in_reply_to") is not None) == self.reply)
            and (
                self.callback_requested is None
                or data.__dict__.get("callback_requested") == self.callback_requested
            )
        )


class WarningThreshold(_Strict):
    """`at: 0.75` (a fraction of the target) or `before: {amount: 4, unit: office_hours}`."""

    at: float | None = Field(default=None, gt=0, lt=1)
    before: Duration | None = None

    @model_validator(mode="after")
    def _one_of(self) -> WarningThreshold:
        if (self.at is None) == (self.before is None):
            raise ValueError("give either `at` (a fraction) or `before` (a duration)")
        return self

    @property
    def label(self) -> str:
        if self.at is not None:
            return f"{round(self.at * 100, 1):g}%"
        assert self.before is not None
        return f"{self.before.amount:g} {self.before.unit.value} before"


class LocalisedName(_Strict):
    nl: str = Field(min_length=1, max_length=200)
    en: str = Field(min_length=1, max_length=200)


class NormDefinition(_Strict):
    id: Code
    version: str | None = Field(default=None, min_length=1, max_length=40)
    name: LocalisedName
    legal_basis: str | None = None
    target: Duration
    compliance_goal: float = Field(gt=0, le=1)
    warnings: list[WarningThreshold] = Field(default_factory=list)
    # A legal term (Awb): ends at the end of a day and follows the Algemene termijnenwet.
    legal_term: bool = False
    max_extension: Duration | None = None
    # Instant norms are judged from one contact (its queue wait); no clock is kept.
    judge: Selector | None = None
    start: list[Selector] = Field(default_factory=list)
    pause: list[Selector] = Field(default_factory=list)
    resume: list[Selector] = Field(default_factory=list)
    extend: list[Selector] = Field(default_factory=list)
    stop: list[Selector] = Field(default_factory=list)
    cancel: list[Selector] = Field(default_factory=list)
    # Events that begin a new cycle of a clock whose cycle ended (a reopened case): counted
    # afresh, with outcomes of its own; the earlier cycle's outcome stays.
    restart: list[Selector] = Field(default_factory=list)

    @model_validator(mode="after")
    def _coherent(self) -> NormDefinition:
        if self.judge is not None:
            if self.start or self.stop or self.restart:
                raise ValueError("an instant norm (judge) has no start/stop/restart rules")
            if self.judge.type != "contact.completed":
                raise ValueError("judge: instant norms are judged from contact.completed")
            if self.target.unit not in (DurationUnit.SECONDS, DurationUnit.MINUTES):
                raise ValueError("target: an instant norm is measured in seconds or minutes")
            return self
        if not self.start or not self.stop:
            raise ValueError("a clock norm needs at least one start and one stop rule")
        if self.legal_term and self.target.unit not in DAY_UNITS:
            raise ValueError("legal_term: only terms in days or weeks follow the Atw")
        if self.extend and self.max_extension is None:
            raise ValueError("max_extension: required when the norm has extend rules")
        for threshold in self.warnings:
            if threshold.before is not None and duration_us(threshold.before) >= duration_us(
                self.target
            ):
                raise ValueError("warnings: `before` must be shorter than the target")
        return self

    @property
    def instant(self) -> bool:
        return self.judge is not None

    def rule(self, calendar: BusinessCalendar) -> ClockRule:
        return ClockRule(
            calendar=calendar,
            measure=UNIT_MEASURE[self.target.unit],
            target=duration_us(self.target),
            day_granular=self.target.unit in DAY_UNITS,
            legal_term=self.legal_term,
            warnings=tuple(
                Threshold(
                    label=w.label,
                    fraction=w.at,
                    before=duration_us(w.before) if w.before is not None else 0,
                )
                for w in self.warnings
            ),
            max_extension=duration_us(self.max_extension) if self.max_extension else None,
        )


class NormFile(_Strict):
    """deploy/config/norms/<name>.yaml"""

    version: str = Field(min_length=1, max_length=40)
    norms: list[NormDefinition] = Field(min_length=1)

    @field_validator("norms")
    @classmethod
    def _unique_ids(cls, value: list[NormDefinition]) -> list[NormDefinition]:
        ids = [n.id for n in value]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"norm ids listed twice: {', '.join(twice)}")
        return value


# ------------------------------------------------------------------------------------------
# The catalog of one municipality
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Norm:
    """A norm ready to use: its definition, version and clock rule."""

    definition: NormDefinition
    version: str
    rule: ClockRule

    @property
    def id(self) -> str:
        return self.definition.id


# When one event matches several rules of one norm, the strongest wins.
_PRECEDENCE = (
    TransitionKind.CANCEL,
    TransitionKind.STOP,
    TransitionKind.PAUSE,
    TransitionKind.RESUME,
    TransitionKind.EXTEND,
    TransitionKind.START,
    TransitionKind.RESTART,
)


class NormCatalog:
    """The norms of one municipality, indexed by event type for fast matching."""

    def __init__(self, municipality: str, calendar: BusinessCalendar, norm_file: NormFile) -> None:
        self.municipality = municipality
        self.calendar = calendar
        self.version = norm_file.version
        self.norms: dict[str, Norm] = {
            d.id: Norm(definition=d, version=d.version or norm_file.version, rule=d.rule(calendar))
            for d in norm_file.norms
        }
        # Timelines computed for (norm id, transitions): a pure function of them, kept so a
        # clock is not recomputed while nothing happened to it (see planning.clock_timeline).
        self.timelines: dict[tuple[str, tuple[Any, ...]], Any] = {}
        # The fixed parts of each norm's outcome events (see outcomes.outcome_record).
        self.outcome_templates: dict[str, Any] = {}
        # Deadline summaries of plain cycles (see outcomes.explanation_json).
        self.explanations: dict[Any, bytes] = {}
        rules: dict[str, list[Rule]] = {}
        judges: dict[str, list[Judge]] = {}
        for norm in self.norms.values():
            d = norm.definition
            if d.judge is not None:
                judges.setdefault(d.judge.event_type, []).append(
                    (norm, d.judge, d.judge.compile(), d.judge.key_field)
                )
                continue
            scope = _case_types_started(d)
            for kind in _PRECEDENCE:
                for selector in getattr(d, kind.value):
                    test = selector.compile()
                    if scope is not None and kind is not TransitionKind.START:
                        test = _within(scope, selector.key_field, test)
                    rules.setdefault(selector.event_type, []).append(
                        (
                            norm,
                            d.id,
                            kind,
                            selector,
                            test,
                            selector.key_field,
                            selector.as_reason or "",
                        )
                    )
        # What an event matches: `match` (the transitions it causes, at most one per norm) and
        # `judge` (the instant norms it is judged against), compiled (matching.Matcher).
        matcher = Matcher(rules, judges)
        self.match: Callable[[str, Any], list[Match]] = matcher.match
        self.judge: Callable[[str, Any], list[InstantMatch]] = matcher.judge


def _case_types_started(definition: NormDefinition) -> frozenset[str] | None:
    """The case types whose cases can have a clock of this norm: those its start rules name,
    when every start rule is keyed by the case and names its case types (None otherwise)."""
    types: set[str] = set()
    for selector in definition.start:
        if selector.key_field != "case_id" or selector.case_type is None:
            return None
        types.update(selector.case_type)
    return frozenset(types) if types else None


def _within(case_types: frozenset[str], key_field: str, test: Test) -> Test:
    """`test`, but never for an event about a case of a type the norm's clocks cannot have.
    (A case's type is fixed: closing a public-space report would otherwise leave a clock row
    without a start for every norm that stops at any case.closed.)"""
    return CaseTypeScope(case_types, test) if key_field == "case_id" else test


def clock_id(municipality: str, norm_id: str, subject_id: str) -> str:
    return f"{municipality}/{norm_id}/{subject_id}"
