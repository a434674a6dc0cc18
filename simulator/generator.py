"""The traffic of one or more municipalities as a stream of CloudEvents in event-time order.

Pure: no I/O, no clock, no global randomness. Everything is drawn from `random.Random` seeded by
the plan, so the same plan gives exactly the same stream, event ids included. The generator
works a day at a time: it draws the day's arrivals on every channel, plays out what happens to
each contact or case (answers, callbacks, reactions, suspensions, extensions, closures) and
yields the events whose time has come, so a long simulation never holds more than the work in
progress in memory.

Events are what the channel systems would post to intake: structured CloudEvents whose `data`
follows `schemas.events`, with `data.resident` as a `schemas.resident.ResidentIn`.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from schemas.common import Channel, Direction, PartyRole
from schemas.envelope import deterministic_id
from schemas.events import (
    CaseClosed,
    CaseExtended,
    CaseOpened,
    CaseOutcome,
    CaseReopened,
    CaseResponded,
    CaseResumed,
    CaseStatusChanged,
    CaseSuspended,
    ComplaintVerdict,
    ContactCompleted,
    ContactReceived,
    EventData,
    SuspensionReason,
)
from services.common.calendar import BusinessCalendar
from simulator.model import (
    CASE_TYPES,
    CHANNELS,
    CONTACT_TOPICS,
    DEFAULT_BEHAVIOUR,
    Behaviour,
    CaseType,
    ChannelProfile,
)
from simulator.office_hours import AMSTERDAM, OfficeHours
from simulator.residents import FakeResident, ResidentPool

# The channel system behind each channel, as registered with intake
# (deploy/config/intake/channel_systems.yaml). The source is /<organisation>/<system>; the
# municipality travels in its own attribute, so one phone platform serves all four of BUCH.
CHANNEL_SYSTEMS: dict[Channel, str] = {
    Channel.PHONE: "telefonie",
    Channel.COUNTER: "balie",
    Channel.EMAIL: "kcc/email",
    Channel.WEBFORM: "kcc/webformulier",
    Channel.LETTER: "kcc/post",
    Channel.SOCIAL_MEDIA: "kcc/webcare",
    Channel.CHAT: "kcc/chat",
    Channel.PUBLIC_SPACE_REPORT: "meldingen",
}
CASE_SYSTEM = "zaaksysteem"
REPORT_SYSTEM = CHANNEL_SYSTEMS[Channel.PUBLIC_SPACE_REPORT]  # Signalen-like, owns its cases
DEFAULT_ORGANISATION = "buch"

BIN = timedelta(minutes=30)


def source_for(organisation: str, system: str) -> str:
    return f"/{organisation}/{system}"


def channel_system_name(source: str) -> str:
    """The intake channel system (and its dev token's name) behind a source: /buch/kcc/email -> kcc."""
    return source.strip("/").split("/")[1]


@dataclass(frozen=True, slots=True)
class SimulatedMunicipality:
    code: str
    name: str
    inhabitants: int
    # Its business calendar (deploy/config/calendars/, as `python -m simulator` loads it): when
    # the phone and counter are closed and when the back office works. The default is the Dutch
    # municipal calendar without local closing days.
    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)


@dataclass(frozen=True, slots=True)
class SimulationPlan:
    municipalities: tuple[SimulatedMunicipality, ...]
    start: datetime
    days: float
    seed: int
    run_id: str
    scale: float = 1.0  # multiplies every municipality's volume (size of the simulation)
    behaviour: Behaviour = DEFAULT_BEHAVIOUR
    zone: ZoneInfo = AMSTERDAM
    organisation: str = DEFAULT_ORGANISATION  # first part of every source

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("the simulation start must carry a time zone")
        if self.days <= 0:
            raise ValueError("simulate at least a moment (days > 0)")

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One event as a channel system posts it, with its event time."""

    at: datetime
    seq: int
    municipality: str
    source: str
    type: str
    subject: str
    id: str
    data: dict[str, Any]

    def cloudevent(self) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.at.isoformat(),
            "subject": self.subject,
            "municipality": self.municipality,
            "datacontenttype": "application/json",
            "data": dict(self.data),  # a copy: callers may edit their document
        }


@dataclass(slots=True)
class _Counters:
    contacts: int = 0
    cases: int = 0


@dataclass(slots=True)
class _Stream:
    """What has been decided but has not happened yet (a heap on event time)."""

    heap: list[tuple[datetime, int, SimEvent]] = field(default_factory=list)
    seq: int = 0


class TrafficGenerator:
    def __init__(self, plan: SimulationPlan) -> None:
        self.plan = plan
        self.behaviour = plan.behaviour
        self.rng = random.Random(f"servicepuls-sim:{plan.seed}")
        self.offices = {m.code: OfficeHours(m.calendar) for m in plan.municipalities}
        self.run_tag = run_tag(plan.run_id)
        self.pools = {
            m.code: ResidentPool(
                m.code, random.Random(f"{plan.seed}:{plan.run_id}:{m.code}"), self.run_tag
            )
            for m in plan.municipalities
        }
        self.counters = {m.code: _Counters() for m in plan.municipalities}
        self.stream = _Stream()

    # ---------------------------------------------------------------------------------------
    # The stream
    # ---------------------------------------------------------------------------------------

    def events(self) -> Iterator[SimEvent]:
        """Every event from the plan's start to its end, in event-time order."""
        plan = self.plan
        day = plan.start.astimezone(plan.zone).date()
        last_day = plan.end.astimezone(plan.zone).date()
        while day <= last_day:
            for municipality in plan.municipalities:
                for profile in CHANNELS:
                    for arrival in self._arrivals(municipality, profile, day):
                        self._play_out(municipality, profile.channel, arrival)
            next_midnight = datetime.combine(day + timedelta(days=1), time(0), plan.zone)
            yield from self._due_before(min(next_midnight, plan.end))
            day += timedelta(days=1)

    def _due_before(self, moment: datetime) -> Iterator[SimEvent]:
        heap = self.stream.heap
        while heap and heap[0][0] < moment:
            yield heapq.heappop(heap)[2]

    def pending(self) -> list[SimEvent]:
        """Events decided but beyond the end of the simulation (work still in progress)."""
        return [item[2] for item in sorted(self.stream.heap)]

    def _emit(self, at: datetime, municipality: str, system: str, data: EventData,
              resident: dict[str, Any] | None = None) -> datetime:  # fmt: skip
        """Schedule one event; returns its time so a lifecycle can keep its order."""
        self.stream.seq += 1
        seq = self.stream.seq
        source = source_for(self.plan.organisation, system)
        payload = data.model_dump(mode="json", exclude_none=True)
        if resident is not None:
            payload["resident"] = resident
        at = at.astimezone(self.plan.zone).replace(microsecond=0)
        event = SimEvent(
            at=at,
            seq=seq,
            municipality=municipality,
            source=source,
            type=data.event_type,
            subject=data.subject(),
            id=deterministic_id("simulator", self.plan.run_id, str(self.plan.seed), str(seq)),
            data=payload,
        )
        heapq.heappush(self.stream.heap, (at, seq, event))
        return at

    # ---------------------------------------------------------------------------------------
    # Arrivals: how many, when
    # ---------------------------------------------------------------------------------------

    def _arrivals(
        self, municipality: SimulatedMunicipality, profile: ChannelProfile, day: date
    ) -> list[datetime]:
        plan = self.plan
        weekday = day.weekday()
        factor = profile.weekday_factor[weekday]
        if municipality.calendar.is_holiday(day):
            factor = profile.weekday_factor[6] if profile.open_on_holidays else 0.0
        expected = (
            profile.per_10k_per_working_day
            * municipality.inhabitants
            / 10_000
            * plan.scale
            * factor
        )
        if expected <= 0:
            return []
        bins = self._bins(profile, day)
        total_weight = sum(weight for _, weight in bins)
        arrivals: list[datetime] = []
        for bin_start, weight in bins:
            count = _poisson(self.rng, expected * weight / total_weight)
            for _ in range(count):
                moment = bin_start + self.rng.random() * BIN
                if plan.start <= moment < plan.end:
                    arrivals.append(moment)
        arrivals.sort()
        return arrivals

    def _bins(self, profile: ChannelProfile, day: date) -> list[tuple[datetime, float]]:
        zone = self.plan.zone
        opens = profile.opens
        closes = profile.closes
        if profile.late_opening_weekday == day.weekday() and profile.late_closes:
            closes = profile.late_closes
        bins = []
        moment = datetime.combine(day, time(0), zone)
        for _ in range(48):
            local = moment.time()
            weight = profile.hourly[local.hour]
            if opens is not None and closes is not None and not (opens <= local < closes):
                weight = 0.0
            if weight > 0:
                bins.append((moment, weight))
            moment += BIN
        return bins

    # ---------------------------------------------------------------------------------------
    # What happens to a contact
    # ---------------------------------------------------------------------------------------

    def _play_out(
        self, municipality: SimulatedMunicipality, channel: Channel, at: datetime
    ) -> None:
        code = municipality.code
        b = self.behaviour
        rng = self.rng
        resident = self.pools[code].next(
            returning=b.returning_resident,
            consent_yes=b.survey_consent_yes,
            consent_no=b.survey_consent_no,
            english=b.english_speaking,
            ondernemer=b.ondernemer,
        )
        if channel == Channel.PHONE:
            self._phone_call(code, resident, at)
        elif channel == Channel.COUNTER:
            self._counter_visit(code, resident, at)
        elif channel == Channel.CHAT:
            self._chat(code, at)
        elif channel == Channel.PUBLIC_SPACE_REPORT:
            self._case(code, resident, channel, at, contact_id=None)
        else:
            starts_case = {
                Channel.EMAIL: b.email_starts_case,
                Channel.WEBFORM: b.webform_starts_case,
                Channel.LETTER: b.letter_starts_case,
            }.get(channel, 0.0)
            if rng.random() < starts_case:
                self._case(code, resident, channel, at, contact_id=self._contact_id(code))
            else:
                self._written_contact(code, resident, channel, at)

    def _contact_id(self, code: str) -> str:
        self.counters[code].contacts += 1
        return f"K-{code}-{self.run_tag}-{self.counters[code].contacts:06d}"

    def _case_id(self, code: str) -> str:
        self.counters[code].cases += 1
        return f"Z-{code}-{self.run_tag}-{self.counters[code].cases:06d}"

    def _load(self, profile_hour_weight: float, at: datetime) -> float:
        """How busy the queue is now relative to an average hour (Monday mornings are worst)."""
        weekday_factor = (1.3, 1.0, 0.95, 1.0, 0.85, 1.0, 1.0)[at.weekday()]
        return max(0.3, profile_hour_weight / 1.1) * weekday_factor

    def _phone_call(self, code: str, resident: FakeResident, at: datetime) -> None:
        b = self.behaviour
        rng = self.rng
        local = at.astimezone(self.plan.zone)
        load = self._load(CHANNELS[0].hourly[local.hour], local)
        wait = rng.expovariate(1 / (b.phone_mean_wait_seconds * load**1.5))
        patience = rng.expovariate(1 / b.phone_mean_patience_seconds)
        answered = wait <= patience
        contact_id = self._contact_id(code)
        topic = rng.choice(CONTACT_TOPICS[Channel.PHONE])
        posted = resident.as_posted_by(Channel.PHONE)
        if not answered:
            self._emit(
                at + timedelta(seconds=patience),
                code,
                CHANNEL_SYSTEMS[Channel.PHONE],
                ContactCompleted(
                    contact_id=contact_id,
                    channel=Channel.PHONE,
                    party_role=resident.party_role,
                    topic=topic,
                    started_at=at,
                    queue="kcc",
                    wait_seconds=round(patience, 1),
                    answered=False,
                ),
                posted,
            )
            return
        handling = _lognormal(rng, b.phone_median_handling_seconds, 0.6)
        resolved = rng.random() < b.phone_first_contact_resolution
        forwarded = not resolved and rng.random() < b.phone_forwarded
        callback = not resolved and not forwarded and rng.random() < b.phone_callback_requested
        opens_case = not (resolved or forwarded or callback) and rng.random() < b.phone_starts_case
        case_id = self._case_id(code) if opens_case else None
        ended = self._emit(
            at + timedelta(seconds=wait + handling),
            code,
            CHANNEL_SYSTEMS[Channel.PHONE],
            ContactCompleted(
                contact_id=contact_id,
                channel=Channel.PHONE,
                party_role=resident.party_role,
                topic=topic,
                started_at=at,
                queue="kcc",
                wait_seconds=round(wait, 1),
                answered=True,
                handling_seconds=round(handling, 1),
                resolved_in_first_contact=resolved,
                forwarded=forwarded,
                callback_requested=callback,
                case_id=case_id,
            ),
            posted,
        )
        if callback:
            delay = _lognormal(rng, b.callback_median_office_hours * 3600, b.callback_sigma)
            called_back = self.offices[code].add(ended, delay)
            reached = rng.random() < 0.9
            self._emit(
                called_back,
                code,
                CHANNEL_SYSTEMS[Channel.PHONE],
                ContactCompleted(
                    contact_id=self._contact_id(code),
                    channel=Channel.PHONE,
                    direction=Direction.OUTBOUND,
                    party_role=resident.party_role,
                    topic=topic,
                    started_at=called_back - timedelta(seconds=120 if reached else 30),
                    answered=reached,
                    handling_seconds=120.0 if reached else None,
                    resolved_in_first_contact=reached,
                    in_reply_to=contact_id,
                ),
                posted,
            )
        if case_id is not None:
            self._case(code, resident, Channel.PHONE, ended, contact_id=contact_id, case_id=case_id)

    def _counter_visit(self, code: str, resident: FakeResident, at: datetime) -> None:
        b = self.behaviour
        rng = self.rng
        wait = min(rng.expovariate(1 / b.counter_mean_wait_seconds), 3600.0)
        left = rng.random() < b.counter_no_show_leave
        handling = None if left else _lognormal(rng, b.counter_median_handling_seconds, 0.5)
        contact_id = self._contact_id(code)
        opens_case = not left and rng.random() < b.counter_starts_case
        case_id = self._case_id(code) if opens_case else None
        ended = self._emit(
            at + timedelta(seconds=wait + (handling or 0)),
            code,
            CHANNEL_SYSTEMS[Channel.COUNTER],
            ContactCompleted(
                contact_id=contact_id,
                channel=Channel.COUNTER,
                party_role=resident.party_role,
                topic=rng.choice(CONTACT_TOPICS[Channel.COUNTER]),
                started_at=at,
                queue="balie",
                wait_seconds=round(wait, 1),
                answered=not left,
                handling_seconds=round(handling, 1) if handling else None,
                resolved_in_first_contact=None if left else not opens_case,
                case_id=case_id,
            ),
            resident.as_posted_by(Channel.COUNTER),
        )
        if case_id is not None:
            self._case(
                code, resident, Channel.COUNTER, ended, contact_id=contact_id, case_id=case_id
            )

    def _chat(self, code: str, at: datetime) -> None:
        b = self.behaviour
        rng = self.rng
        wait = rng.expovariate(1 / b.chat_mean_wait_seconds)
        patience = rng.expovariate(1 / b.chat_mean_patience_seconds)
        answered = wait <= patience
        handling = _lognormal(rng, 420, 0.5) if answered else None
        self._emit(
            at + timedelta(seconds=(wait if answered else patience) + (handling or 0)),
            code,
            CHANNEL_SYSTEMS[Channel.CHAT],
            ContactCompleted(
                contact_id=self._contact_id(code),
                channel=Channel.CHAT,
                topic=rng.choice(CONTACT_TOPICS[Channel.CHAT]),
                started_at=at,
                queue="chat",
                wait_seconds=round(wait if answered else patience, 1),
                answered=answered,
                handling_seconds=round(handling, 1) if handling else None,
                resolved_in_first_contact=(rng.random() < 0.8) if answered else None,
            ),
        )

    def _written_contact(
        self, code: str, resident: FakeResident, channel: Channel, at: datetime
    ) -> None:
        """An e-mail, web form, letter or social-media message, and the answer to it."""
        b = self.behaviour
        rng = self.rng
        median, sigma = {
            Channel.EMAIL: (b.email_answer_median_hours, b.email_answer_sigma),
            Channel.WEBFORM: (b.webform_answer_median_hours, b.email_answer_sigma),
            Channel.LETTER: (b.letter_answer_median_hours, b.letter_answer_sigma),
            Channel.SOCIAL_MEDIA: (b.social_answer_median_hours, b.social_answer_sigma),
        }[channel]
        system = CHANNEL_SYSTEMS[channel]
        posted = resident.as_posted_by(channel)
        received_id = self._contact_id(code)
        topic = rng.choice(CONTACT_TOPICS[channel])
        party_role = resident.party_role if posted else PartyRole.INWONER
        received = self._emit(
            at,
            code,
            system,
            ContactReceived(
                contact_id=received_id, channel=channel, party_role=party_role, topic=topic
            ),
            posted,
        )
        handling = _lognormal(rng, 600, 0.6)
        office = self.offices[code]
        answered = office.add(received, _lognormal(rng, median * 3600, sigma) + handling)
        answered = max(answered, received + timedelta(seconds=handling + 1))
        self._emit(
            answered,
            code,
            system,
            ContactCompleted(
                contact_id=self._contact_id(code),
                channel=channel,
                direction=Direction.OUTBOUND,
                party_role=party_role,
                topic=topic,
                started_at=answered - timedelta(seconds=handling),
                handling_seconds=round(handling, 1),
                in_reply_to=received_id,
            ),
            posted,
        )

    # ---------------------------------------------------------------------------------------
    # What happens to a case
    # ---------------------------------------------------------------------------------------

    def _pick_case_type(self, channel: Channel) -> CaseType:
        candidates = [(ct, ct.channels.get(channel, 0.0)) for ct in CASE_TYPES]
        candidates = [(ct, w) for ct, w in candidates if w > 0]
        return self.rng.choices([ct for ct, _ in candidates], [w for _, w in candidates])[0]

    def _case(
        self,
        code: str,
        resident: FakeResident,
        channel: Channel,
        at: datetime,
        *,
        contact_id: str | None,
        case_id: str | None = None,
    ) -> None:
        rng = self.rng
        case_type = self._pick_case_type(channel)
        case_id = case_id or self._case_id(code)
        system = REPORT_SYSTEM if case_type.kind == "report" else CASE_SYSTEM
        posted = resident.as_posted_by(channel)
        ct = case_type.code
        topic = rng.choice(case_type.topics)
        life = _Lifecycle(self, code, system, case_id, ct)
        opened = life.emit(
            at + timedelta(seconds=30),
            CaseOpened(
                case_id=case_id,
                case_type=ct,
                channel=channel,
                party_role=resident.party_role,
                topic=topic,
                contact_id=contact_id,
            ),
            posted,
        )
        if rng.random() < case_type.auto_close_probability:
            # A duplicate report of something already known: closed automatically.
            life.close(
                opened + timedelta(minutes=rng.randint(5, 90)),
                CaseOutcome.AUTO_CLOSED,
                None,
                posted,
            )
            return
        if rng.random() < case_type.cancel_probability:
            life.close(
                self.offices[code].add(opened, rng.uniform(600, 20_000)),
                CaseOutcome.CANCELLED,
                None,
                posted,
            )
            return
        reply_channel = Channel.EMAIL if resident.email and channel != Channel.LETTER else channel
        responded = life.emit(
            self.offices[code].add(
                opened,
                _lognormal(rng, case_type.response_median_hours * 3600, case_type.response_sigma),
            ),
            CaseResponded(case_id=case_id, case_type=ct, channel=reply_channel),
        )
        life.emit(
            responded + timedelta(seconds=60),
            CaseStatusChanged(
                case_id=case_id, case_type=ct, status="in_behandeling", previous_status="ontvangen"
            ),
        )
        if case_type.kind == "report":
            self._report_resolution(life, case_type, opened, posted, reply_channel)
        else:
            self._decision(life, case_type, opened, posted, reply_channel)

    def _report_resolution(self, life: _Lifecycle, case_type: CaseType, opened: datetime,
                           posted: dict[str, Any] | None, reply_channel: Channel) -> None:  # fmt: skip
        rng = self.rng
        office = self.offices[life.code]
        resolve_after = _lognormal(rng, case_type.close_median * 3600, case_type.close_sigma)
        planned = life.emit(
            office.add(opened, resolve_after * 0.6),
            CaseStatusChanged(
                case_id=life.case_id,
                case_type=life.case_type,
                status="ingepland",
                previous_status="in_behandeling",
            ),
        )
        closed = life.close(
            office.add(planned, resolve_after * 0.4),
            CaseOutcome.RESOLVED,
            None,
            posted,
            reply_channel,
        )
        if rng.random() < case_type.reopen_probability:
            reopened = life.emit(
                closed + timedelta(hours=rng.uniform(20, 72)),
                CaseReopened(
                    case_id=life.case_id, case_type=life.case_type, reason="niet_opgelost"
                ),
            )
            life.close(
                office.add(reopened, _lognormal(rng, 16 * 3600, 0.5)),
                CaseOutcome.RESOLVED,
                None,
                posted,
                reply_channel,
            )

    def _decision(self, life: _Lifecycle, case_type: CaseType, opened: datetime,
                  posted: dict[str, Any] | None, reply_channel: Channel) -> None:  # fmt: skip
        """A complaint (Awb chapter 9) or an application (Awb 4:13-4:15) up to its decision."""
        rng = self.rng
        office = self.offices[life.code]
        days = _lognormal(rng, case_type.close_median, case_type.close_sigma)
        if rng.random() < case_type.suspend_probability:
            # Awb 4:15 lid 1 sub a: the term stops while the applicant supplies what is missing.
            suspended = life.emit(
                office.add_working_days(opened, rng.uniform(1, min(8, days * 0.5 + 1))),
                CaseSuspended(
                    case_id=life.case_id,
                    case_type=life.case_type,
                    reason=SuspensionReason.AWAITING_INFORMATION,
                    legal_basis="Awb 4:15 lid 1 sub a",
                ),
            )
            pause = _lognormal(rng, 6, 0.6)
            life.emit(
                office.next_open(suspended + timedelta(days=pause)),
                CaseResumed(case_id=life.case_id, case_type=life.case_type),
            )
            days += pause
        if case_type.extension_weeks and rng.random() < case_type.extend_probability:
            # Extended before the original term ends (Awb 4:14 lid 3, Awb 9:11 lid 2).
            life.emit(
                office.next_open(opened + timedelta(days=days * rng.uniform(0.5, 0.8))),
                CaseExtended(
                    case_id=life.case_id,
                    case_type=life.case_type,
                    extension={"amount": case_type.extension_weeks, "unit": "weeks"},
                    legal_basis=case_type.extension_basis,
                ),
            )
            days += rng.uniform(0.3, 0.9) * case_type.extension_weeks * 7
        decided = office.next_open(opened + timedelta(days=days))
        if case_type.kind == "complaint":
            verdict = rng.choices(list(ComplaintVerdict), [0.2, 0.2, 0.35, 0.05, 0.2])[0]
            outcome = CaseOutcome.RESOLVED
        else:
            verdict = None
            outcome = rng.choices(
                [
                    CaseOutcome.GRANTED,
                    CaseOutcome.PARTIALLY_GRANTED,
                    CaseOutcome.REJECTED,
                    CaseOutcome.WITHDRAWN,
                ],
                [0.75, 0.07, 0.13, 0.05],
            )[0]
        life.emit(
            decided - timedelta(minutes=5),
            CaseStatusChanged(
                case_id=life.case_id,
                case_type=life.case_type,
                status="besluitvorming",
                previous_status="in_behandeling",
            ),
        )
        life.close(decided, outcome, verdict, posted, reply_channel)


class _Lifecycle:
    """The events of one case, kept in causal order (each at least a second after the last)."""

    def __init__(self, generator: TrafficGenerator, code: str, system: str, case_id: str,
                 case_type: str) -> None:  # fmt: skip
        self.generator = generator
        self.code = code
        self.system = system
        self.case_id = case_id
        self.case_type = case_type
        self.last: datetime | None = None

    def emit(
        self, at: datetime, data: EventData, resident: dict[str, Any] | None = None
    ) -> datetime:
        if self.last is not None and at <= self.last:
            at = self.last + timedelta(seconds=1)
        self.last = self.generator._emit(at, self.code, self.system, data, resident)
        return self.last

    def close(self, at: datetime, outcome: CaseOutcome, verdict: ComplaintVerdict | None,
              resident: dict[str, Any] | None, channel: Channel | None = None) -> datetime:  # fmt: skip
        return self.emit(
            at,
            CaseClosed(
                case_id=self.case_id,
                case_type=self.case_type,
                outcome=outcome,
                complaint_verdict=verdict,
                channel=channel,
            ),
            resident,
        )


def run_tag(run_id: str) -> str:
    """A short, id-safe form of the run id for case and contact references."""
    cleaned = "".join(ch for ch in run_id.lower() if ch.isalnum())
    return cleaned[:12] or "run"


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(median), sigma)


def generate(plan: SimulationPlan) -> Iterator[SimEvent]:
    """The plan's events in event-time order (a fresh generator each call: same plan, same stream)."""
    return TrafficGenerator(plan).events()
