"""What Servicepuls should conclude from a simulation, computed independently from the
simulator's ledger: our own small reading of the norm catalog and the survey policy, with the
`holidays` package and the BUCH calendar file. Nothing here imports services/: if the norms or
feedback service gets a rule wrong, this disagrees.

Day-granular terms are read as Dutch practice has them (and docs/norms.md says): the day of
receipt does not count, the term ends at the end of its last day.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import yaml

from schemas.resident import ResidentIn

ZONE = ZoneInfo("Europe/Amsterdam")
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"
P = "nl.servicepuls."


@cache
def buch_calendar() -> dict[str, Any]:
    return yaml.safe_load((CONFIG / "calendars" / "buch.yaml").read_text())


@cache
def catalog() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load((CONFIG / "norms" / "default.yaml").read_text())
    return {norm["id"]: norm for norm in document["norms"]}


@cache
def survey_policy() -> dict[str, Any]:
    return yaml.safe_load((CONFIG / "surveys" / "default.yaml").read_text())


def is_working_day(day: date) -> bool:
    calendar = buch_calendar()
    if day.weekday() >= 5 or day in set(calendar.get("closing_days") or []):
        return False
    for holiday, name in holidays.NL(years=day.year).items():
        if holiday != day:
            continue
        if "Liberation" in name and not (
            calendar.get("liberation_day") == "every_year"
            or (calendar.get("liberation_day") == "lustrum" and day.year % 5 == 0)
        ):
            continue
        if "Good Friday" in name and not calendar.get("closed_on_good_friday"):
            continue
        return False
    return True


def end_of_working_days(start: datetime, days: int) -> datetime:
    """The end of the `days`-th working day after the day of `start`."""
    day = start.astimezone(ZONE).date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        counted += is_working_day(day)
    return datetime.combine(day + timedelta(days=1), time(0), ZONE)


def office_seconds(start: datetime, end: datetime) -> float:
    """Seconds inside opening hours (08:30–17:00 on working days) between two instants."""
    opens, closes = time(8, 30), time(17, 0)
    total = 0.0
    day = start.astimezone(ZONE).date()
    while datetime.combine(day, time(0), ZONE) < end:
        if is_working_day(day):
            window_start = max(start, datetime.combine(day, opens, ZONE))
            window_end = min(end, datetime.combine(day, closes, ZONE))
            total += max(0.0, (window_end - window_start).total_seconds())
        day += timedelta(days=1)
    return total


# A clock's key in the comparisons: (norm, subject) for its first cycle, and with the cycle's
# start added for later ones (a reopened case), as `cycle_keys` makes them.
ClockKey = tuple[str, str] | tuple[str, str, datetime]


def cycle_keys(
    starts: list[tuple[str, str, datetime]],
) -> dict[tuple[str, str, datetime], ClockKey]:
    """Each (norm, subject, started) its key: the earliest start of a norm and subject is the
    first cycle, keyed (norm, subject); a later one keeps its start in the key."""
    first: dict[tuple[str, str], datetime] = {}
    for norm, subject, started in starts:
        if (norm, subject) not in first or started < first[(norm, subject)]:
            first[(norm, subject)] = started
    return {
        (norm, subject, started): (
            (norm, subject) if started == first[(norm, subject)] else (norm, subject, started)
        )
        for norm, subject, started in starts
    }


@dataclass(frozen=True, slots=True)
class Clock:
    norm: str
    subject: str
    started: datetime
    stopped: datetime | None
    outcome: str | None  # met / missed / cancelled / None (still running)
    due: datetime | None = None  # for working-day and office-hour targets

    @property
    def start(self) -> tuple[str, str, datetime]:
        return self.norm, self.subject, self.started

    def breached_by(self, moment: datetime) -> bool:
        """The due instant passed by `moment` while the clock was still running."""
        return (
            self.due is not None
            and self.due <= moment
            and (self.stopped is None or self.stopped > self.due)
        )


def _t(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["time"])


def expected_clocks(events: list[dict[str, Any]]) -> list[Clock]:
    """Every norm clock the ledger's events start, with its outcome where it is decided."""
    norms = catalog()
    received: dict[str, dict[str, Any]] = {}
    replies: dict[str, dict[str, Any]] = {}
    calls_with_callback: dict[str, dict[str, Any]] = {}
    callbacks: dict[str, dict[str, Any]] = {}
    case_events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    clocks: list[Clock] = []
    for event in sorted(events, key=_t):
        kind, data = event["type"].removeprefix(P), event["data"]
        if kind == "contact.received.v1":
            received[data["contact_id"]] = event
        elif kind == "contact.completed.v1":
            inbound = data.get("direction", "inbound") == "inbound"
            if data.get("in_reply_to") and not inbound:
                target = replies if data["channel"] != "phone" else callbacks
                target.setdefault(data["in_reply_to"], event)
            if inbound and data["channel"] in ("phone", "counter"):
                norm = "phone_answered" if data["channel"] == "phone" else "counter_helped"
                limit = _seconds(norms[norm]["target"])
                met = data.get("answered", True) and data.get("wait_seconds", 0) <= limit
                # Judged per contact, whatever case the contact may have opened.
                clocks.append(
                    Clock(
                        norm, data["contact_id"], _t(event), _t(event), "met" if met else "missed"
                    )
                )
            if inbound and data["channel"] == "phone" and data.get("callback_requested"):
                calls_with_callback[data["contact_id"]] = event
        elif kind.startswith("case."):
            case_events[data["case_id"]].append(event)

    written = {
        "email": "email_answered",
        "webform": "email_answered",
        "social_media": "social_media_answered",
        "letter": "letter_acknowledged",
    }
    for contact_id, event in received.items():
        norm = written[event["data"]["channel"]]
        clocks.append(_decide(norm, contact_id, _t(event), replies.get(contact_id)))
    for contact_id, event in calls_with_callback.items():
        clocks.append(_decide("callback_made", contact_id, _t(event), callbacks.get(contact_id)))
    for case_id, lifecycle in case_events.items():
        clocks.extend(_case_clocks(case_id, lifecycle))
    return clocks


def _seconds(target: dict[str, Any]) -> float:
    unit = target["unit"]
    factor = {"seconds": 1, "minutes": 60}[unit]
    return float(target["amount"]) * factor


def _due(norm: str, started: datetime) -> datetime | None:
    """The due instant for day-granular targets; None for office-hour targets."""
    target = catalog()[norm]["target"]
    if target["unit"] == "working_days":
        return end_of_working_days(started, int(target["amount"]))
    return None


def office_hours_later(start: datetime, hours: float) -> datetime:
    """The instant at which `hours` of opening hours have passed since `start`."""
    remaining = hours * 3600
    day = start.astimezone(ZONE).date()
    while True:
        if is_working_day(day):
            opens = max(start, datetime.combine(day, time(8, 30), ZONE))
            closes = datetime.combine(day, time(17, 0), ZONE)
            available = (closes - opens).total_seconds()
            if available > 0 and remaining <= available:
                return opens + timedelta(seconds=remaining)
            remaining -= max(0.0, available)
        day += timedelta(days=1)


def _decide(norm: str, subject: str, started: datetime, stop: dict[str, Any] | None) -> Clock:
    target = catalog()[norm]["target"]
    if target["unit"] == "office_hours":
        due = office_hours_later(started, float(target["amount"]))
    else:
        due = _due(norm, started)
    assert due is not None
    if stop is None:
        return Clock(norm, subject, started, None, None, due)
    stopped = _t(stop)
    if target["unit"] == "office_hours":
        met = office_seconds(started, stopped) <= float(target["amount"]) * 3600
    else:
        met = stopped <= due
    return Clock(norm, subject, started, stopped, "met" if met else "missed", due)


def _resolved(case_id: str, started: datetime, close: dict[str, Any] | None) -> Clock:
    """One cycle of 'report resolved within 10 working days', stopped (or cancelled) by `close`."""
    if close is not None and close["data"]["outcome"] in ("cancelled", "withdrawn", "auto_closed"):
        due = _due("report_resolved", started)
        return Clock("report_resolved", case_id, started, _t(close), "cancelled", due)
    return _decide("report_resolved", case_id, started, close)


def _case_clocks(case_id: str, lifecycle: list[dict[str, Any]]) -> list[Clock]:
    opened = lifecycle[0]
    assert opened["type"] == P + "case.opened.v1"
    case_type = opened["data"]["case_type"]
    started = _t(opened)
    first_close = next((e for e in lifecycle if e["type"] == P + "case.closed.v1"), None)
    outcome = first_close["data"]["outcome"] if first_close else None
    clocks: list[Clock] = []
    if case_type == "melding-openbare-ruimte":
        reaction = next(
            (e for e in lifecycle if e["type"] in (P + "case.responded.v1", P + "case.closed.v1")),
            None,
        )
        if (
            reaction is not None
            and reaction is first_close
            and outcome in ("cancelled", "withdrawn")
        ):
            clocks.append(Clock("report_reaction", case_id, started, _t(reaction), "cancelled"))
        else:
            clocks.append(_decide("report_reaction", case_id, started, reaction))
        clocks.append(_resolved(case_id, started, first_close))
        # A report reopened after its term ended gets a fresh one (the catalog's `restart`),
        # decided by the next close; the first cycle's outcome stays as it was.
        if first_close is not None:
            reopened: dict[str, Any] | None = None
            for event in lifecycle[lifecycle.index(first_close) + 1 :]:
                if event["type"] == P + "case.reopened.v1" and reopened is None:
                    reopened = event
                elif event["type"] == P + "case.closed.v1" and reopened is not None:
                    clocks.append(_resolved(case_id, _t(reopened), event))
                    reopened = None
            if reopened is not None:
                clocks.append(_resolved(case_id, _t(reopened), None))
        return clocks
    norm = "complaint_handled" if case_type == "klacht" else "decision_made"
    if first_close is None:
        return [Clock(norm, case_id, started, None, None)]
    stopped = _t(first_close)
    if outcome in ("withdrawn", "cancelled"):
        return [Clock(norm, case_id, started, stopped, "cancelled")]
    weeks = float(catalog()[norm]["target"]["amount"])
    # Suspensions and extensions only move the due instant later, so a case decided within the
    # bare term met it whatever they were. A simulation short enough for the e2e test never
    # runs into the term itself; if it did, this reading is not enough and says so.
    assert stopped - started < timedelta(weeks=weeks), f"{case_id}: decide the legal term here"
    return [Clock(norm, case_id, started, stopped, "met")]


# ----------------------------------------------------------------------------------------------
# Surveys
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SurveyCandidate:
    subject: str
    resident: str  # what the pseudonym is computed from (the strongest identifier posted)
    email: str | None
    delivery: str  # the first delivery channel the policy prefers that reaches the resident


def survey_candidates(events: list[dict[str, Any]]) -> list[SurveyCandidate]:
    """Closures the survey policy allows a survey for (before throttling per resident)."""
    policy = survey_policy()
    excluded_types = set(policy["excluded_case_types"])
    excluded_outcomes = set(policy["excluded_outcomes"])
    contact_channels = (
        set(policy["contacts"]["channels"]) if policy["contacts"]["surveyed"] else set()
    )
    kept: dict[str, dict[str, Any]] = {}  # case id -> resident posted when opened
    decided: set[str] = set()
    candidates: list[SurveyCandidate] = []
    for event in sorted(events, key=_t):
        kind, data = event["type"].removeprefix(P), event["data"]
        if kind == "case.opened.v1" and data.get("resident"):
            kept[data["case_id"]] = data["resident"]
            continue
        if kind == "case.closed.v1":
            subject = data["case_id"]
            if subject in decided:
                continue  # a case closed again after reopening is surveyed at most once
            decided.add(subject)
            if data["outcome"] in excluded_outcomes or data["case_type"] in excluded_types:
                continue
            resident = data.get("resident") or kept.get(subject)
        elif kind == "contact.completed.v1":
            if data.get("case_id") or data.get("direction", "inbound") != "inbound":
                continue
            if data["channel"] not in contact_channels or not data.get("answered", True):
                continue
            subject = data["contact_id"]
            resident = data.get("resident")
        else:
            continue
        if not resident or resident.get("survey_consent") is False:
            continue
        posted = ResidentIn.model_validate(resident)
        media = {m.value for m in posted.reachable_by()}
        delivery = next(
            (
                c
                for c in policy["delivery_channels"]
                if {"email": "email", "sms": "sms", "letter_list": "letter", "phone_list": "phone"}[
                    c
                ]
                in media
            ),
            None,
        )
        if delivery is None:
            continue
        candidates.append(
            SurveyCandidate(
                subject,
                posted.recognised_by(),
                str(posted.email) if posted.email else None,
                delivery,
            )
        )
    return candidates
