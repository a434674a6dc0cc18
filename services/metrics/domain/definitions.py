"""Every business metric the metrics service exposes: name, kind, help text, labels, buckets.

One table, so the consumer, the durable store, the exposition and the dashboards agree on names.
Names follow the Prometheus conventions: `servicepuls_` prefix, base units (seconds), `_total` on
counters (added by the exposition, not part of `name` here for counters), and labels whose values
come from closed vocabularies (municipality code, channel, party role, case type, norm, outcome)
— never a case id, a contact id or anything about a person.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    name: str  # without the `_total` suffix for counters
    kind: Kind
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()


MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

# Queue waits: the phone norm (30 s) must be a bucket edge so the service level can also be read
# from the histogram.
PHONE_WAIT_BUCKETS = (5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
COUNTER_WAIT_BUCKETS = (
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    20 * MINUTE,
    30 * MINUTE,
    45 * MINUTE,
    HOUR,
    1.5 * HOUR,
)
# Lead times of cases from opening to closing, from an hour to half a year.
LEAD_TIME_BUCKETS = (
    HOUR,
    4 * HOUR,
    8 * HOUR,
    DAY,
    2 * DAY,
    3 * DAY,
    5 * DAY,
    7 * DAY,
    10 * DAY,
    14 * DAY,
    21 * DAY,
    28 * DAY,
    42 * DAY,
    56 * DAY,
    91 * DAY,
    182 * DAY,
)
# Lead time counted in working days (one working day = 86 400 s), from half a day to 60 days.
WORKING_DAY_BUCKETS = tuple(DAY * days for days in (0.5, 1, 2, 3, 5, 8, 10, 15, 20, 30, 40, 60))
# Business time a norm clock ran (working/office time, as the norms service measured it).
BUSINESS_TIME_BUCKETS = (
    30.0,
    MINUTE * 5,
    HOUR,
    4 * HOUR,
    8 * HOUR,
    DAY,
    2 * DAY,
    3 * DAY,
    5 * DAY,
    10 * DAY,
    20 * DAY,
    40 * DAY,
    60 * DAY,
)
# The Dutch rapportcijfer 1..10: one bucket per score.
SCORE_BUCKETS = tuple(float(score) for score in range(1, 11))

_M = "municipality"

DEFINITIONS: tuple[MetricDefinition, ...] = (
    # --- contacts (klantcontacten) -----------------------------------------------------------
    MetricDefinition(
        "servicepuls_contacts",
        Kind.COUNTER,
        "Contacts by channel, party role and direction (each contact once; replies not counted).",
        (_M, "channel", "party_role", "direction"),
    ),
    MetricDefinition(
        "servicepuls_contacts_forwarded",
        Kind.COUNTER,
        "Finished contacts that were forwarded to another department or organisation.",
        (_M, "channel"),
    ),
    MetricDefinition(
        "servicepuls_first_contact_resolution",
        Kind.COUNTER,
        "Finished contacts whose first-contact resolution is known, by outcome "
        "(resolved / not_resolved).",
        (_M, "channel", "outcome"),
    ),
    MetricDefinition(
        "servicepuls_contact_replies",
        Kind.COUNTER,
        "Replies and callbacks sent for an earlier contact (in_reply_to set).",
        (_M, "channel"),
    ),
    # --- phone (KCC) ---------------------------------------------------------------------------
    MetricDefinition(
        "servicepuls_phone_calls_offered",
        Kind.COUNTER,
        "Inbound calls that reached the queue (answered plus abandoned).",
        (_M,),
    ),
    MetricDefinition(
        "servicepuls_phone_calls_answered", Kind.COUNTER, "Inbound calls answered.", (_M,)
    ),
    MetricDefinition(
        "servicepuls_phone_calls_abandoned",
        Kind.COUNTER,
        "Inbound calls abandoned in the queue (missed calls).",
        (_M,),
    ),
    MetricDefinition(
        "servicepuls_phone_calls_answered_within_norm",
        Kind.COUNTER,
        "Inbound calls answered within the phone norm (servicepuls_phone_answer_norm_seconds).",
        (_M,),
    ),
    MetricDefinition(
        "servicepuls_phone_callbacks_requested",
        Kind.COUNTER,
        "Calls in which the caller asked to be called back.",
        (_M,),
    ),
    MetricDefinition(
        "servicepuls_phone_wait_seconds",
        Kind.HISTOGRAM,
        "Queue wait of inbound calls, by outcome (answered / abandoned).",
        (_M, "outcome"),
        PHONE_WAIT_BUCKETS,
    ),
    # --- counter (balie) -----------------------------------------------------------------------
    MetricDefinition(
        "servicepuls_desk_visits",
        Kind.COUNTER,
        "Counter (balie) visits, by outcome (helped / left before being helped).",
        (_M, "outcome"),
    ),
    MetricDefinition(
        "servicepuls_desk_wait_seconds",
        Kind.HISTOGRAM,
        "Waiting time at the counter (balie), by outcome (helped / left).",
        (_M, "outcome"),
        COUNTER_WAIT_BUCKETS,
    ),
    # --- cases (zaken) -------------------------------------------------------------------------
    MetricDefinition(
        "servicepuls_cases_opened",
        Kind.COUNTER,
        "Cases opened, by case type and channel.",
        (_M, "case_type", "channel"),
    ),
    MetricDefinition(
        "servicepuls_cases_closed",
        Kind.COUNTER,
        "Cases closed, by case type and outcome.",
        (_M, "case_type", "outcome"),
    ),
    MetricDefinition(
        "servicepuls_cases_reopened", Kind.COUNTER, "Cases reopened.", (_M, "case_type")
    ),
    MetricDefinition(
        "servicepuls_case_types_undeclared",
        Kind.COUNTER,
        "Case events whose case type the municipality did not declare (counted under "
        'case_type="other"), by the channel system that sent them.',
        (_M, "channel_system"),
    ),
    MetricDefinition(
        "servicepuls_case_data_quality_problems",
        Kind.COUNTER,
        "Case events that contradict the case, by the channel system that sent them and "
        "problem (closed_before_opened: not counted as closed, no longer open).",
        (_M, "channel_system", "problem"),
    ),
    MetricDefinition(
        "servicepuls_cases_open",
        Kind.GAUGE,
        "Cases open now (opened or reopened and not closed), by case type.",
        (_M, "case_type"),
    ),
    MetricDefinition(
        "servicepuls_case_lead_time_seconds",
        Kind.HISTOGRAM,
        "Calendar time from opening to closing of a case (event time), by case type.",
        (_M, "case_type"),
        LEAD_TIME_BUCKETS,
    ),
    MetricDefinition(
        "servicepuls_case_lead_time_business_seconds",
        Kind.HISTOGRAM,
        "Lead time from opening to closing counted in working days of the municipality's "
        "business calendar (weekends and public holidays excluded; one working day = 86400 s), "
        "by case type.",
        (_M, "case_type"),
        WORKING_DAY_BUCKETS,
    ),
    # --- complaints (klachten, Awb chapter 9) ---------------------------------------------------
    MetricDefinition(
        "servicepuls_complaints_received",
        Kind.COUNTER,
        "Complaints received (cases of a complaint case type opened), by channel.",
        (_M, "channel"),
    ),
    MetricDefinition(
        "servicepuls_complaints_closed",
        Kind.COUNTER,
        "Complaints closed, by verdict (gegrond, deels_gegrond, ongegrond, ...).",
        (_M, "verdict"),
    ),
    # --- norms (servicenormen) -----------------------------------------------------------------
    MetricDefinition(
        "servicepuls_norm_clocks_started", Kind.COUNTER, "Norm clocks started.", (_M, "norm")
    ),
    MetricDefinition(
        "servicepuls_norm_warnings",
        Kind.COUNTER,
        "Norm clocks that passed a warning threshold while running.",
        (_M, "norm"),
    ),
    MetricDefinition(
        "servicepuls_norm_breaches",
        Kind.COUNTER,
        "Norm clocks whose due instant passed while they were running.",
        (_M, "norm"),
    ),
    MetricDefinition(
        "servicepuls_norm_clocks_stopped",
        Kind.COUNTER,
        "Norm clocks stopped, by outcome (met / missed / cancelled / data_quality: stopped "
        "before it started). Compliance = met / (met + missed).",
        (_M, "norm", "outcome"),
    ),
    MetricDefinition(
        "servicepuls_norm_outcomes_revised",
        Kind.COUNTER,
        "Final outcomes of norm clock cycles a catalog revision changed, by previous and new "
        "outcome (none: no final outcome); norm.revised events. servicepuls_norm_clocks_stopped "
        "already counts the new outcomes instead of the old.",
        (_M, "norm", "previous", "outcome"),
    ),
    MetricDefinition(
        "servicepuls_norm_data_quality_problems",
        Kind.COUNTER,
        "Input events dated before the start of a norm clock they concern, by the channel "
        "system that sent them and problem (norm.data_quality events).",
        (_M, "norm", "channel_system", "problem"),
    ),
    MetricDefinition(
        "servicepuls_norm_elapsed_business_seconds",
        Kind.HISTOGRAM,
        "Business time a stopped norm clock ran (pauses excluded), by norm and case type.",
        (_M, "norm", "case_type"),
        BUSINESS_TIME_BUCKETS,
    ),
    MetricDefinition(
        "servicepuls_norm_clocks_running",
        Kind.GAUGE,
        "Norm clocks running now.",
        (_M, "norm"),
    ),
    MetricDefinition(
        "servicepuls_norm_clocks_at_risk",
        Kind.GAUGE,
        "Running norm clocks past a warning threshold and not yet breached.",
        (_M, "norm"),
    ),
    MetricDefinition(
        "servicepuls_norm_clocks_overdue",
        Kind.GAUGE,
        "Running norm clocks past their due instant (breached, not yet stopped).",
        (_M, "norm"),
    ),
    MetricDefinition(
        "servicepuls_norm_compliance_goal_ratio",
        Kind.GAUGE,
        "The compliance goal of a norm (0..1), from the norm catalog via the norm events.",
        (_M, "norm"),
    ),
    # --- surveys (KTO) -------------------------------------------------------------------------
    MetricDefinition(
        "servicepuls_surveys_sent",
        Kind.COUNTER,
        "Surveys sent, by delivery channel.",
        (_M, "delivery_channel"),
    ),
    MetricDefinition(
        "servicepuls_survey_deliveries_failed",
        Kind.COUNTER,
        "Survey deliveries that failed after retries, by delivery channel.",
        (_M, "delivery_channel"),
    ),
    MetricDefinition(
        "servicepuls_surveys_suppressed",
        Kind.COUNTER,
        "Surveys not sent, by reason (no consent, throttled, excluded, ...).",
        (_M, "reason"),
    ),
    MetricDefinition(
        "servicepuls_surveys_responded",
        Kind.COUNTER,
        "Survey responses, by channel and case type of the contact or case surveyed.",
        (_M, "channel", "case_type"),
    ),
    MetricDefinition(
        "servicepuls_surveys_expired", Kind.COUNTER, "Surveys that expired unanswered.", (_M,)
    ),
    MetricDefinition(
        "servicepuls_survey_follow_ups_requested",
        Kind.COUNTER,
        "Low scores with permission to contact: follow-up requested.",
        (_M,),
    ),
    MetricDefinition(
        "servicepuls_survey_score",
        Kind.HISTOGRAM,
        "Survey scores (rapportcijfer 1..10), by channel and case type.",
        (_M, "channel", "case_type"),
        SCORE_BUCKETS,
    ),
    # --- the metrics service itself ------------------------------------------------------------
    MetricDefinition(
        "servicepuls_metrics_events_applied",
        Kind.COUNTER,
        "Events applied to the aggregates (each event once), by topic family and type.",
        ("family", "event_type"),
    ),
)

BY_NAME: dict[str, MetricDefinition] = {d.name: d for d in DEFINITIONS}

# Label value for an optional field that was absent (e.g. a survey about a contact has no case type).
NONE = "none"
# Municipality label for events of a municipality this deployment does not serve (bounds the
# cardinality even if a channel system sends a wrong code).
UNKNOWN_MUNICIPALITY = "unknown"
# Case-type label for a code the municipality did not declare (its `case_types` file): bounds
# the cardinality whatever codes channel systems send.
OTHER_CASE_TYPE = "other"


def declared_or_other(case_type: str, declared: Collection[str]) -> str:
    """A stored case-type label as shown: `other` unless the municipality declares it (rows
    stored before it declared its list); `none` (no case type at all) stays what it is."""
    return case_type if case_type == NONE or case_type in declared else OTHER_CASE_TYPE
