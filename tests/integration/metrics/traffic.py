"""A known day of traffic for one municipality, and the exact metric values it must produce.

The expected values are written down while the events are made, from the meaning of each event
(not by running the metrics service's own aggregation code), so a wrong count fails the test.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from schemas.common import Channel, Direction, Duration, DurationUnit, PartyRole
from schemas.envelope import Envelope, new_event
from schemas.events import (
    AnsweredVia,
    CaseClosed,
    CaseOpened,
    CaseOutcome,
    ComplaintVerdict,
    ContactCompleted,
    ContactReceived,
    DeliveryChannel,
    NormBreached,
    NormCancelled,
    NormClockStarted,
    NormMet,
    NormMissed,
    NormWarning,
    SuppressionReason,
    SurveyDeliveryFailed,
    SurveyExpired,
    SurveyFollowUpRequested,
    SurveyResponded,
    SurveySent,
    SurveySuppressed,
)

SampleKey = tuple[str, frozenset[tuple[str, str]]]
SOURCE = "urn:servicepuls:test:metrics"
NORM = "reactie_3_werkdagen"
PHONE_NORM_SECONDS = 30.0
# The case types of this traffic that deploy/config does not declare (support.config_with adds them).
TRAFFIC_CASE_TYPES = ("melding_openbare_ruimte", "aanvraag")


def sample_key(name: str, **labels: str) -> SampleKey:
    return (name, frozenset(labels.items()))


@dataclass
class Traffic:
    municipality: str
    events: list[Envelope[Any]] = field(default_factory=list)
    expected: dict[SampleKey, float] = field(default_factory=lambda: defaultdict(float))

    def expect(self, name: str, by: float = 1.0, **labels: str) -> None:
        self.expected[sample_key(name, **labels)] += by

    def emit(self, data: Any, at: datetime) -> None:
        self.events.append(
            new_event(
                data,
                source=SOURCE,
                municipality=self.municipality,
                time=at,
                id=str(uuid.uuid4()),
            )
        )


def make_traffic(municipality: str, *, scale: int = 1, seed: int = 7) -> Traffic:
    """Contacts, calls, counter visits, cases, complaints, norm clocks and surveys."""
    rng = random.Random(seed)
    t = Traffic(municipality)
    m = municipality
    # Far enough back that every derived time (expiry after 14 days) lies in the past.
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
    tag = uuid.uuid4().hex[:10]

    # Phone calls: answered or abandoned, waits around the 30 s norm.
    for i in range(60 * scale):
        answered = i % 4 != 0
        wait = float(rng.choice([3, 12, 29, 30, 31, 44, 75, 130, 400]))
        resolved = (True, False, None)[i % 3]
        forwarded = answered and i % 5 == 0
        t.emit(
            ContactCompleted(
                contact_id=f"call-{tag}-{i}",
                channel=Channel.PHONE,
                party_role=PartyRole.INWONER,
                topic="afval",
                started_at=base + timedelta(minutes=i),
                wait_seconds=wait,
                answered=answered,
                handling_seconds=120.0 if answered else None,
                resolved_in_first_contact=resolved if answered else None,
                forwarded=forwarded,
                callback_requested=not answered and i % 8 == 0,
            ),
            base + timedelta(minutes=i, seconds=wait + 120),
        )
        t.expect(
            "servicepuls_contacts_total",
            municipality=m,
            channel="phone",
            party_role="inwoner",
            direction="inbound",
        )
        t.expect("servicepuls_phone_calls_offered_total", municipality=m)
        outcome = "answered" if answered else "abandoned"
        if answered:
            t.expect("servicepuls_phone_calls_answered_total", municipality=m)
            if wait <= PHONE_NORM_SECONDS:
                t.expect("servicepuls_phone_calls_answered_within_norm_total", municipality=m)
            if resolved is not None:
                t.expect(
                    "servicepuls_first_contact_resolution_total",
                    municipality=m,
                    channel="phone",
                    outcome="resolved" if resolved else "not_resolved",
                )
        else:
            t.expect("servicepuls_phone_calls_abandoned_total", municipality=m)
            if i % 8 == 0:
                t.expect("servicepuls_phone_callbacks_requested_total", municipality=m)
        if forwarded:
            t.expect("servicepuls_contacts_forwarded_total", municipality=m, channel="phone")
        t.expect("servicepuls_phone_wait_seconds_count", municipality=m, outcome=outcome)
        t.expect("servicepuls_phone_wait_seconds_sum", by=wait, municipality=m, outcome=outcome)
        if wait <= 30:
            t.expect(
                "servicepuls_phone_wait_seconds_bucket", municipality=m, outcome=outcome, le="30.0"
            )

    # Outbound calls the KCC makes on its own initiative (not replies, not in the phone queue).
    for i in range(3 * scale):
        t.emit(
            ContactCompleted(
                contact_id=f"outcall-{tag}-{i}",
                channel=Channel.PHONE,
                direction=Direction.OUTBOUND,
                topic="wmo",
                started_at=base + timedelta(minutes=13 * i),
                handling_seconds=300.0,
            ),
            base + timedelta(minutes=13 * i, seconds=300),
        )
        t.expect(
            "servicepuls_contacts_total",
            municipality=m,
            channel="phone",
            party_role="inwoner",
            direction="outbound",
        )

    # Counter visits (balie).
    for i in range(20 * scale):
        helped = i % 5 != 0
        wait = float(rng.randint(30, 2400))
        t.emit(
            ContactCompleted(
                contact_id=f"visit-{tag}-{i}",
                channel=Channel.COUNTER,
                party_role=PartyRole.ONDERNEMER if i % 4 == 0 else PartyRole.INWONER,
                topic="paspoort",
                started_at=base + timedelta(minutes=3 * i),
                wait_seconds=wait,
                answered=helped,
                resolved_in_first_contact=True if helped else None,
            ),
            base + timedelta(minutes=3 * i, seconds=wait + 300),
        )
        role = "ondernemer" if i % 4 == 0 else "inwoner"
        t.expect(
            "servicepuls_contacts_total",
            municipality=m,
            channel="counter",
            party_role=role,
            direction="inbound",
        )
        outcome = "helped" if helped else "left"
        t.expect("servicepuls_desk_visits_total", municipality=m, outcome=outcome)
        t.expect("servicepuls_desk_wait_seconds_count", municipality=m, outcome=outcome)
        if helped:
            t.expect(
                "servicepuls_first_contact_resolution_total",
                municipality=m,
                channel="counter",
                outcome="resolved",
            )

    # Written contacts (e-mail and web form) and their answers.
    for i in range(30 * scale):
        channel = Channel.EMAIL if i % 3 else Channel.WEBFORM
        role = PartyRole.ONDERNEMER if i % 3 == 0 else PartyRole.INWONER
        received = base + timedelta(minutes=7 * i)
        t.emit(
            ContactReceived(
                contact_id=f"mail-{tag}-{i}", channel=channel, party_role=role, topic="belasting"
            ),
            received,
        )
        t.expect(
            "servicepuls_contacts_total",
            municipality=m,
            channel=channel.value,
            party_role=role.value,
            direction="inbound",
        )
        t.emit(
            ContactCompleted(
                contact_id=f"reply-{tag}-{i}",
                channel=channel,
                direction=Direction.OUTBOUND,
                party_role=role,
                topic="belasting",
                started_at=received + timedelta(hours=2),
                in_reply_to=f"mail-{tag}-{i}",
            ),
            received + timedelta(hours=2, minutes=5),
        )
        t.expect("servicepuls_contact_replies_total", municipality=m, channel=channel.value)

    # Cases, complaints and the norm clock of each case.
    closed_outcomes = [CaseOutcome.RESOLVED, CaseOutcome.GRANTED, CaseOutcome.REJECTED]
    for i in range(40 * scale):
        case_id = f"zaak-{tag}-{i}"
        case_type = "klacht" if i % 4 == 0 else ("melding_openbare_ruimte" if i % 2 else "aanvraag")
        channel = (
            Channel.PUBLIC_SPACE_REPORT
            if case_type == "melding_openbare_ruimte"
            else Channel.WEBFORM
        )
        opened = base + timedelta(minutes=5 * i)
        t.emit(CaseOpened(case_id=case_id, case_type=case_type, channel=channel), opened)
        t.expect(
            "servicepuls_cases_opened_total",
            municipality=m,
            case_type=case_type,
            channel=channel.value,
        )
        if case_type == "klacht":
            t.expect("servicepuls_complaints_received_total", municipality=m, channel=channel.value)
        norm_fields: dict[str, Any] = {
            "clock_id": f"{case_id}:{NORM}",
            "norm_id": NORM,
            "norm_version": "1",
            "subject_id": case_id,
            "channel": channel,
            "case_type": case_type,
            "target": Duration(amount=3, unit=DurationUnit.WORKING_DAYS),
            "compliance_goal": 0.88,
            "started_at": opened,
            "due_at": opened + timedelta(days=3),
            "paused_seconds": 0.0,
        }
        t.emit(NormClockStarted(**norm_fields, elapsed_business_seconds=0.0), opened)
        t.expect("servicepuls_norm_clocks_started_total", municipality=m, norm=NORM)
        warned = i % 4 == 1
        breached = i % 8 == 3
        if warned:
            t.emit(
                NormWarning(**norm_fields, elapsed_business_seconds=3600.0, threshold="75%"),
                opened + timedelta(hours=1),
            )
            t.expect("servicepuls_norm_warnings_total", municipality=m, norm=NORM)
        if breached:
            t.emit(
                NormBreached(**norm_fields, elapsed_business_seconds=3 * 28800.0),
                opened + timedelta(days=3),
            )
            t.expect("servicepuls_norm_breaches_total", municipality=m, norm=NORM)
        stop = i % 5  # 0,1,2: stopped (met unless breached), 3: cancelled, 4: still running
        if stop <= 2:
            stopped = opened + timedelta(hours=3 + i)
            final = NormMissed if breached else NormMet
            t.emit(
                final(**norm_fields, elapsed_business_seconds=3600.0 * (3 + i), stopped_at=stopped),
                stopped,
            )
            outcome = "missed" if breached else "met"
            t.expect(
                "servicepuls_norm_clocks_stopped_total", municipality=m, norm=NORM, outcome=outcome
            )
            t.expect(
                "servicepuls_norm_elapsed_business_seconds_count",
                municipality=m,
                norm=NORM,
                case_type=case_type,
            )
        elif stop == 3:
            t.emit(
                NormCancelled(**norm_fields, elapsed_business_seconds=60.0, reason="withdrawn"),
                opened + timedelta(minutes=30),
            )
            t.expect(
                "servicepuls_norm_clocks_stopped_total",
                municipality=m,
                norm=NORM,
                outcome="cancelled",
            )
        else:
            t.expect("servicepuls_norm_clocks_running", municipality=m, norm=NORM)
            if warned and not breached:
                t.expect("servicepuls_norm_clocks_at_risk", municipality=m, norm=NORM)
            if breached:
                t.expect("servicepuls_norm_clocks_overdue", municipality=m, norm=NORM)
        # Close most cases; complaints get a verdict.
        if i % 10 < 7:
            outcome = closed_outcomes[i % 3]
            verdict = None
            if case_type == "klacht":
                verdict = ComplaintVerdict.GEGROND if i % 8 == 0 else ComplaintVerdict.ONGEGROND
                t.expect(
                    "servicepuls_complaints_closed_total", municipality=m, verdict=verdict.value
                )
            closed = opened + timedelta(hours=4 + i)
            t.emit(
                CaseClosed(
                    case_id=case_id, case_type=case_type, outcome=outcome, complaint_verdict=verdict
                ),
                closed,
            )
            t.expect(
                "servicepuls_cases_closed_total",
                municipality=m,
                case_type=case_type,
                outcome=outcome.value,
            )
            t.expect(
                "servicepuls_case_lead_time_seconds_count", municipality=m, case_type=case_type
            )
            t.expect(
                "servicepuls_case_lead_time_business_seconds_count",
                municipality=m,
                case_type=case_type,
            )
            t.expect(
                "servicepuls_case_lead_time_seconds_sum",
                by=(closed - opened).total_seconds(),
                municipality=m,
                case_type=case_type,
            )
        else:
            t.expect("servicepuls_cases_open", municipality=m, case_type=case_type)

    # Surveys: sent, failed, suppressed, answered (a low score asks for follow-up), expired.
    reasons = [
        SuppressionReason.NO_CONSENT,
        SuppressionReason.THROTTLED,
        SuppressionReason.OPTED_OUT,
    ]
    for i in range(24 * scale):
        survey = {
            "survey_id": f"survey-{tag}-{i}",
            "subject_id": f"zaak-{tag}-{i}",
            "subject_kind": "case",
            "case_type": "melding_openbare_ruimte" if i % 2 else "aanvraag",
            "channel": Channel.PUBLIC_SPACE_REPORT if i % 2 else Channel.WEBFORM,
        }
        at = base + timedelta(hours=1, minutes=11 * i)
        if i % 6 == 5:
            reason = reasons[i % 3]
            t.emit(SurveySuppressed(**survey, reason=reason), at)
            t.expect("servicepuls_surveys_suppressed_total", municipality=m, reason=reason.value)
            continue
        delivery = DeliveryChannel.EMAIL if i % 4 else DeliveryChannel.LETTER_LIST
        if i % 7 == 3:
            t.emit(
                SurveyDeliveryFailed(
                    **survey, delivery_channel=delivery, attempts=3, error="smtp_451"
                ),
                at,
            )
            t.expect(
                "servicepuls_survey_deliveries_failed_total",
                municipality=m,
                delivery_channel=delivery.value,
            )
            continue
        t.emit(
            SurveySent(**survey, delivery_channel=delivery, expires_at=at + timedelta(days=14)), at
        )
        t.expect("servicepuls_surveys_sent_total", municipality=m, delivery_channel=delivery.value)
        if i % 5 == 4:
            t.emit(SurveyExpired(**survey), at + timedelta(days=14))
            t.expect("servicepuls_surveys_expired_total", municipality=m)
            continue
        score = 1 + (i * 3) % 10
        t.emit(
            SurveyResponded(**survey, score=score, answered_via=AnsweredVia.WEB),
            at + timedelta(minutes=30),
        )
        labels = {"channel": survey["channel"].value, "case_type": survey["case_type"]}
        t.expect("servicepuls_surveys_responded_total", municipality=m, **labels)
        t.expect("servicepuls_survey_score_count", municipality=m, **labels)
        t.expect("servicepuls_survey_score_sum", by=float(score), municipality=m, **labels)
        if score <= 5:
            # A low score with permission to contact (the board's "callback after a low score"):
            # without it the traffic left that panel to whatever earlier tests had published.
            t.emit(SurveyFollowUpRequested(**survey, score=score), at + timedelta(minutes=31))
            t.expect("servicepuls_survey_follow_ups_requested_total", municipality=m)
    return t


def parse_metrics(text: str) -> dict[SampleKey, float]:
    samples: dict[SampleKey, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def mismatches(expected: dict[SampleKey, float], actual: dict[SampleKey, float]) -> list[str]:
    wrong = []
    for key, value in sorted(expected.items(), key=lambda kv: (kv[0][0], sorted(kv[0][1]))):
        got = actual.get(key, 0.0)
        if abs(got - value) > 1e-6:
            wrong.append(f"{key[0]}{dict(key[1])}: expected {value}, got {got}")
    return wrong
