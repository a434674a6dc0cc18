"""What a catalog change does to one stored clock, without doing any I/O itself.

`revise_clock` decides a clock afresh with the active catalog (its stored transitions, the
service's now) and compares the result with what the clock row says was decided before:
which cycles' final outcomes change (compliance moves from the old outcome to the new one on
the final's local day), the clock's new row state, whether its running cycle changed (due
instant, warned, breached), and the alerts of the new version that were never published (a case
now overdue under a shorter target gets its breach). The repository applies it in one
transaction (`NormsService.revise`); docs/norms.md, "Recompute after a catalog change".

The old catalog is gone when this runs, so the old outcome of each cycle is read from the row:
the latest ended cycle's from `outcome`; an earlier cycle's (a reopened case) is `cancelled`
when the clock's own transitions cancel it (that does not depend on the target), else `missed`
when its breach was taken, else `met`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from schemas.envelope import Envelope, deterministic_id, new_event
from schemas.events import NormRevised, RevisedCycle, RevisedOutcome, RunningCycle
from services.common.calendar import from_us
from services.norms.domain.catalog import NormCatalog
from services.norms.domain.clock import (
    FINAL_KINDS,
    STOPPED_BEFORE_START,
    Decision,
    DecisionKind,
    decisions_due,
    finished_cycles,
)
from services.norms.domain.outcomes import SOURCE, Outcome, explanation_json, outcome_record
from services.norms.domain.planning import (
    ClockUpdate,
    StoredClock,
    _start_context,
    clock_timeline,
)

MET, MISSED, CANCELLED, DATA_QUALITY = "met", "missed", "cancelled", "data_quality"


@dataclass(frozen=True, slots=True)
class StoredDecisions:
    """What the clock row says was decided before the revision."""

    norm_version: str | None
    outcome: str | None  # the latest final outcome: met, missed or cancelled
    due_at: int | None
    stopped_at: int | None


@dataclass(frozen=True, slots=True)
class CycleChange:
    cycle: int
    started_at: int
    stopped_at: int  # the final's instant: the local day compliance counts it on
    previous: str | None  # met, missed, cancelled, data_quality; None: not decided
    outcome: str | None


@dataclass(frozen=True, slots=True)
class Running:
    """The latest cycle while it runs, as the active version decides it."""

    started_at: int
    due_at: int
    warned: bool
    breached: bool


@dataclass(slots=True)
class ClockRevision:
    clock: StoredClock
    norm_version: str
    update: ClockUpdate  # the row's new state (taken, next decision, outcome, instants)
    changes: list[CycleChange] = field(default_factory=list)
    running: Running | None = None
    running_changed: bool = False  # due instant, warned or breached of the running cycle
    previous_due_at: int | None = None
    alerts: list[Outcome] = field(default_factory=list)  # to publish: never published before

    @property
    def changed(self) -> bool:
        """Whether consumers must hear of it (a `norm.revised` event)."""
        return bool(self.changes) or self.running_changed


def compliance_kind(decision: Decision) -> str:
    if decision.kind is DecisionKind.CANCELLED and decision.reason == STOPPED_BEFORE_START:
        return DATA_QUALITY
    return decision.kind.value


def _cycle_key(cycle: int, key: str) -> str:
    return key if cycle == 1 else f"{cycle}:{key}"


def revise_clock(
    clock: StoredClock,
    stored: StoredDecisions,
    catalog: NormCatalog,
    now: int,
    first: int | None = None,
    last: int | None = None,
) -> ClockRevision | None:
    """The revision of `clock` under `catalog` as of `now`; None for a norm the catalog no
    longer has or an instant norm (no clock). Only cycles started in [first, last) change
    compliance; the clock row is decided afresh as a whole."""
    norm = catalog.norms.get(clock.norm_id)
    if norm is None or norm.definition.instant:
        return None
    decisions = clock_timeline(catalog, norm, [t for t, _ in clock.transitions])
    ready, upcoming = decisions_due(decisions, set(), now)
    # The clock row's new state, as `advance_clock` would store it for a clock that took every
    # decision of the active version that is due (without framing them: nothing is published),
    # plus the alerts already published (a warning or breach already sent is not sent again).
    update = ClockUpdate(
        events=[],
        taken={d.key for d in ready} | {k for k in clock.taken if _is_alert(k)},
        next_decision_at=upcoming,
        norm_version=norm.version,
    )
    for decision in ready:
        update.started_at, update.due_at = decision.started_at, decision.due_at
        if decision.kind in FINAL_KINDS:
            update.outcome, update.stopped_at = decision.kind.value, decision.stopped_at
    revision = ClockRevision(clock, norm.version, update, previous_due_at=stored.due_at)

    def in_period(started_at: int) -> bool:
        return (first is None or started_at >= first) and (last is None or started_at < last)

    # Final outcomes per cycle, new and old.
    every_final = {d.cycle: d for d in decisions if d.kind in FINAL_KINDS}
    new_finals = {d.cycle: d for d in ready if d.kind in FINAL_KINDS}
    old_ended = finished_cycles(clock.taken)
    latest_old = max(old_ended, default=0)
    starts = {d.cycle: d.started_at for d in decisions}
    for cycle in sorted(old_ended | set(new_finals)):
        final = every_final.get(cycle)
        previous: str | None = None
        if cycle in old_ended:
            if cycle == latest_old and stored.outcome is not None:
                previous = stored.outcome
                if previous == CANCELLED and final is not None:
                    # Stopped before its start: counted apart (`data_quality`), either version.
                    previous = DATA_QUALITY if compliance_kind(final) == DATA_QUALITY else previous
            elif final is not None and final.kind is DecisionKind.CANCELLED:
                previous = compliance_kind(final)
            else:
                previous = MISSED if _cycle_key(cycle, "breached") in clock.taken else MET
        outcome = compliance_kind(new_finals[cycle]) if cycle in new_finals else None
        if previous == outcome:
            continue
        stopped_at = final.at if final is not None else stored.stopped_at
        started_at = starts.get(cycle, final.started_at if final is not None else None)
        if stopped_at is None or started_at is None or not in_period(started_at):
            continue
        revision.changes.append(CycleChange(cycle, started_at, stopped_at, previous, outcome))

    # The latest cycle, if it still runs.
    latest = max((d.cycle for d in ready if d.kind is DecisionKind.STARTED), default=0)
    if latest and latest not in new_finals:
        mine = [d for d in ready if d.cycle == latest]
        revision.running = Running(
            started_at=mine[0].started_at,
            due_at=mine[-1].due_at,
            warned=any(d.kind is DecisionKind.WARNING for d in mine),
            breached=any(d.kind is DecisionKind.BREACHED for d in mine),
        )
        if in_period(revision.running.started_at):
            old_warned = any(k.startswith(_cycle_key(latest, "warning:")) for k in clock.taken)
            old_breached = _cycle_key(latest, "breached") in clock.taken
            revision.running_changed = (
                latest in old_ended  # it ended under the old version
                or stored.due_at != revision.running.due_at
                or old_warned != revision.running.warned
                or old_breached != revision.running.breached
            )
            # Alerts of the active version never published: the case worker must hear of them.
            for decision in mine:
                if decision.kind in (DecisionKind.WARNING, DecisionKind.BREACHED) and (
                    decision.key not in clock.taken
                ):
                    why = explanation_json(catalog, norm, clock.transitions, decision)
                    revision.alerts.append(
                        outcome_record(
                            catalog,
                            norm,
                            clock.clock_id,
                            clock.subject_id,
                            _start_context(clock),
                            decision,
                            None,
                            why,
                        )
                    )
    elif latest and latest not in old_ended and in_period(starts.get(latest, 0)):
        # Ended under the active version while it ran under the old one: the running-clock
        # gauges must let go of it (the cycle change says so too).
        revision.running_changed = True
    return revision


def _is_alert(key: str) -> bool:
    """A warning's or breach's key ("breached", "warning:75%", "2:breached", …)."""
    bare = key.split(":", 1)[1] if key[:1].isdigit() else key
    return bare == "breached" or bare.startswith("warning:")


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    """What a revision was: of which catalog, over which local days, decided as of when."""

    revision_id: uuid.UUID
    municipality: str
    catalog_version: str
    first: date
    last: date
    now: int


_COLUMN = {MET: 0, MISSED: 1, CANCELLED: 2, DATA_QUALITY: 3}


def compliance_deltas(
    revisions: list[ClockRevision], catalog: NormCatalog
) -> list[tuple[str, date, list[int]]]:
    """Per norm and local day: the (met, missed, cancelled, data_quality) counts to add. Each
    changed cycle leaves its old outcome and joins its new one, on the local day of its final
    (the stop's instant: the same for either version)."""
    deltas: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in revisions:
        for change in r.changes:
            day = catalog.calendar.local_date(change.stopped_at)
            if change.previous is not None:
                deltas[(r.clock.norm_id, day)][_COLUMN[change.previous]] -= 1
            if change.outcome is not None:
                deltas[(r.clock.norm_id, day)][_COLUMN[change.outcome]] += 1
    return [(norm_id, day, counts) for (norm_id, day), counts in sorted(deltas.items())]


def revised_event(
    revision: ClockRevision,
    revision_id: uuid.UUID,
    catalog: NormCatalog,
    previous_version: str | None,
    now: int,
) -> Envelope[NormRevised]:
    """The `norm.revised` event of one changed clock; its id follows from the revision and the
    clock, so the relay re-sending it after a crash sends the same event."""
    clock = revision.clock
    norm = catalog.norms[clock.norm_id]
    zone = catalog.calendar.zone
    running = revision.running
    data = NormRevised(
        revision_id=str(revision_id),
        clock_id=clock.clock_id,
        norm_id=clock.norm_id,
        previous_version=previous_version,
        norm_version=revision.norm_version,
        subject_id=clock.subject_id,
        case_type=_start_context(clock).get("case_type"),
        compliance_goal=norm.definition.compliance_goal,
        cycles=[
            RevisedCycle(
                cycle=c.cycle,
                started_at=from_us(c.started_at).astimezone(zone),
                stopped_at=from_us(c.stopped_at).astimezone(zone),
                previous_outcome=None if c.previous is None else RevisedOutcome(c.previous),
                outcome=None if c.outcome is None else RevisedOutcome(c.outcome),
            )
            for c in revision.changes
        ],
        running=None
        if running is None
        else RunningCycle(
            started_at=from_us(running.started_at).astimezone(zone),
            due_at=from_us(running.due_at).astimezone(zone),
            warned=running.warned,
            breached=running.breached,
        ),
    )
    return new_event(
        data,
        source=SOURCE,
        municipality=clock.municipality,
        time=from_us(now).astimezone(zone),
        id=deterministic_id(SOURCE, "revised", str(revision_id), clock.clock_id),
    )
