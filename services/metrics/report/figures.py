"""The figures of a period report, computed from the durable per-day facts (pure, no I/O).

Facts are the rows of `metrics.daily_fact` summed over a period: (fact, dimensions) -> count.
The report never reads Prometheus: Prometheus keeps weeks, a council asks about quarters and
years, and the facts are exact (each event counted once).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from schemas.common import DIGITAL_CHANNELS
from services.metrics.domain.definitions import declared_or_other

Facts = Mapping[tuple[str, tuple[str, ...]], float]
DIGITAL = {c.value for c in DIGITAL_CHANNELS}


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    def __str__(self) -> str:
        return f"{self.start.isoformat()} – {self.end.isoformat()}"


@dataclass(frozen=True)
class NormFigure:
    norm: str
    met: int
    missed: int
    compliance: float | None
    goal: float | None
    baseline_compliance: float | None

    @property
    def change(self) -> float | None:
        """Change against the baseline, in percentage points."""
        if self.compliance is None or self.baseline_compliance is None:
            return None
        return (self.compliance - self.baseline_compliance) * 100

    @property
    def meets_goal(self) -> bool | None:
        if self.compliance is None or self.goal is None:
            return None
        return self.compliance >= self.goal


@dataclass(frozen=True)
class ScoreFigure:
    group: str
    responses: int
    mean: float | None
    baseline_mean: float | None
    low_share: float | None  # share of scores 1-5 (onvoldoende)


@dataclass(frozen=True)
class ChannelFigure:
    channel: str
    contacts: int
    share: float
    baseline_share: float | None


@dataclass
class PeriodFigures:
    municipality: str
    name: str
    period: Period
    baseline: Period
    norms: list[NormFigure] = field(default_factory=list)
    satisfaction_by_channel: list[ScoreFigure] = field(default_factory=list)
    satisfaction_by_case_type: list[ScoreFigure] = field(default_factory=list)
    overall_score: float | None = None
    baseline_overall_score: float | None = None
    channel_mix: list[ChannelFigure] = field(default_factory=list)
    digital_share: float | None = None
    baseline_digital_share: float | None = None
    complaints_received: dict[str, int] = field(default_factory=dict)
    complaint_verdicts: dict[str, int] = field(default_factory=dict)
    baseline_complaints_received: int = 0
    surveys_sent: int = 0
    survey_responses: int = 0
    surveys_suppressed: dict[str, int] = field(default_factory=dict)
    phone_offered: int = 0
    phone_within_norm: int = 0
    phone_abandoned: int = 0

    @property
    def response_rate(self) -> float | None:
        return self.survey_responses / self.surveys_sent if self.surveys_sent else None

    @property
    def phone_service_level(self) -> float | None:
        return self.phone_within_norm / self.phone_offered if self.phone_offered else None


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


# Where a fact's dimensions hold the case type (services.metrics.domain.tally writes them).
CASE_TYPE_DIMENSION = {"case_opened": 0, "case_closed": 0, "survey_response": 1}


def bound_case_types(
    facts: Facts, declared: frozenset[str]
) -> dict[tuple[str, tuple[str, ...]], float]:
    """Case types the municipality does not declare (facts stored before it declared its list)
    are shown as `other`, as the consumer stores them now."""
    bounded: dict[tuple[str, tuple[str, ...]], float] = {}
    for (fact, dims), value in facts.items():
        at = CASE_TYPE_DIMENSION.get(fact)
        if at is not None:
            dims = (*dims[:at], declared_or_other(dims[at], declared), *dims[at + 1 :])
        bounded[(fact, dims)] = bounded.get((fact, dims), 0.0) + value
    return bounded


def _norm_counts(facts: Facts) -> tuple[dict[str, Counter[str]], dict[str, Counter[float]]]:
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    goals: dict[str, Counter[float]] = defaultdict(Counter)
    for (fact, dims), value in facts.items():
        if fact == "norm_outcome":
            norm, outcome, goal = dims
            outcomes[norm][outcome] += int(value)
            goals[norm][float(goal)] += int(value)
    return outcomes, goals


def _scores(facts: Facts, index: int) -> dict[str, Counter[int]]:
    """Score counts per channel (index 0) or case type (index 1)."""
    scores: dict[str, Counter[int]] = defaultdict(Counter)
    for (fact, dims), value in facts.items():
        if fact == "survey_response":
            scores[dims[index]][int(dims[2])] += int(value)
    return scores


def _mean(counts: Counter[int]) -> float | None:
    n = sum(counts.values())
    return sum(score * c for score, c in counts.items()) / n if n else None


def _score_figures(current: Facts, baseline: Facts, index: int) -> list[ScoreFigure]:
    now, before = _scores(current, index), _scores(baseline, index)
    figures = []
    for group in sorted(now):
        counts = now[group]
        n = sum(counts.values())
        low = sum(c for score, c in counts.items() if score <= 5)
        figures.append(
            ScoreFigure(
                group, n, _mean(counts), _mean(before.get(group, Counter())), _ratio(low, n)
            )
        )
    return figures


def _contacts_by_channel(facts: Facts) -> Counter[str]:
    channels: Counter[str] = Counter()
    for (fact, dims), value in facts.items():
        if fact == "contact" and dims[2] == "inbound":
            channels[dims[0]] += int(value)
    return channels


def _sum(facts: Facts, name: str) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for (fact, dims), value in facts.items():
        if fact == name:
            totals[dims[0]] += int(value)
    return dict(sorted(totals.items()))


def compute(
    municipality: str,
    name: str,
    period: Period,
    baseline: Period,
    current: Facts,
    before: Facts,
) -> PeriodFigures:
    figures = PeriodFigures(municipality, name, period, baseline)

    outcomes, goals = _norm_counts(current)
    baseline_outcomes, _ = _norm_counts(before)
    for norm in sorted(outcomes):
        met, missed = outcomes[norm]["met"], outcomes[norm]["missed"]
        b = baseline_outcomes.get(norm, Counter())
        figures.norms.append(
            NormFigure(
                norm,
                met,
                missed,
                _ratio(met, met + missed),
                goals[norm].most_common(1)[0][0] if goals[norm] else None,
                _ratio(b["met"], b["met"] + b["missed"]),
            )
        )

    figures.satisfaction_by_channel = _score_figures(current, before, 0)
    figures.satisfaction_by_case_type = _score_figures(current, before, 1)
    all_now: Counter[int] = Counter()
    all_before: Counter[int] = Counter()
    for counts in _scores(current, 0).values():
        all_now.update(counts)
    for counts in _scores(before, 0).values():
        all_before.update(counts)
    figures.overall_score, figures.baseline_overall_score = _mean(all_now), _mean(all_before)

    channels, baseline_channels = _contacts_by_channel(current), _contacts_by_channel(before)
    total, baseline_total = sum(channels.values()), sum(baseline_channels.values())
    for channel, contacts in channels.most_common():
        figures.channel_mix.append(
            ChannelFigure(
                channel,
                contacts,
                contacts / total,
                _ratio(baseline_channels.get(channel, 0), baseline_total),
            )
        )
    figures.digital_share = _ratio(sum(v for c, v in channels.items() if c in DIGITAL), total)
    figures.baseline_digital_share = _ratio(
        sum(v for c, v in baseline_channels.items() if c in DIGITAL), baseline_total
    )

    figures.complaints_received = _sum(current, "complaint_received")
    figures.complaint_verdicts = _sum(current, "complaint_closed")
    figures.baseline_complaints_received = sum(_sum(before, "complaint_received").values())
    figures.surveys_sent = sum(_sum(current, "survey_sent").values())
    figures.survey_responses = sum(c.total() for c in _scores(current, 0).values())
    figures.surveys_suppressed = _sum(current, "survey_suppressed")
    calls = _sum(current, "phone_call")
    figures.phone_offered = sum(calls.values())
    figures.phone_within_norm = calls.get("answered_within_norm", 0)
    figures.phone_abandoned = calls.get("abandoned", 0)
    return figures
