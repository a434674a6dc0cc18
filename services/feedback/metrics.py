"""Operational metrics of the feedback service. Labels are bounded: municipality code, channel,
decision, reason, result, route. Never a survey, case or resident."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from services.common.deadletters import dead_letter_counter

DECISIONS = Counter(
    "servicepuls_feedback_decisions_total",
    "Survey decisions taken at closing",
    ["municipality", "decision", "reason"],
)
REPLACED = Counter(
    "servicepuls_feedback_surveys_replaced_total",
    "Unsent surveys of a later closure that gave way to an earlier closure of the resident"
    " (the resident interval; each is also counted as a throttled decision)",
    ["municipality"],
)
DELIVERIES = Counter(
    "servicepuls_feedback_deliveries_total",
    "Delivery attempts by channel and result (sent, retry, failed)",
    ["channel", "result"],
)
RESPONSES = Counter(
    "servicepuls_feedback_responses_total",
    "Survey answers recorded",
    ["municipality", "via"],
)
EXPIRED = Counter("servicepuls_feedback_expired_total", "Surveys expired unanswered")
PAGE_SECONDS = Histogram(
    "servicepuls_feedback_page_seconds",
    "Survey page and API response time",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
OUTBOX_PENDING = Gauge("servicepuls_feedback_outbox_pending", "Events waiting in the outbox")
CONSUMED = Counter("servicepuls_feedback_consumed_total", "Intake records consumed", ["result"])
CLOCK_AHEAD = Counter(
    "servicepuls_feedback_events_ahead_of_clock_total",
    "Intake events timed further ahead of the wall clock than the event clock may move",
)
DEAD_LETTERS = dead_letter_counter(REGISTRY)
STAFF_REFUSED = Counter(
    "servicepuls_feedback_staff_refused_total",
    "Staff API requests refused: no or unknown token (unauthenticated), a municipality outside"
    " the token's scope (municipality), a capability the token lacks (capability)",
    ["reason"],
)
RATE_LIMITED = Counter(
    "servicepuls_feedback_rate_limited_total",
    "Requests answered 429, by limit: survey_page, failed_lookups, staff",
    ["limit"],
)
ERASURES = Counter(
    "servicepuls_feedback_erasures_total",
    "Residents erased on request (AVG art. 17)",
    ["municipality"],
)
PURGED = Counter(
    "servicepuls_feedback_purged_total",
    "Rows removed or blanked by the retention job: surveys, remarks, residents, case_residents,"
    " dedupe_keys",
    ["what"],
)
UNREADABLE_SEALS = Counter(
    "servicepuls_feedback_unreadable_seals_total",
    "Sealed contact details left off a letter or phone list because they could not be opened"
    " (a sealing key rotated away)",
    ["municipality"],
)
