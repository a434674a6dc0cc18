"""What the norms service does: apply a batch of intake events to the clocks, take the decisions
that fell due, and revise the clocks to a changed catalog.

Each step plans with the domain (`domain/planning.py`: `plan_events`, `advance_clock`;
`revision.py`: `revise_clock`) and asks the repository (adapters/repository.py, SQL only) to
load the clocks concerned and to store clock rows, outbox and compliance in ONE transaction:
a crash at any point either keeps all of it or none. The consumer, the scheduler and the
recompute command go through here; the entrypoints (services/norms/entrypoints/) only hand on.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from typing import Any

import asyncpg

from schemas.envelope import Envelope, encode
from services.common.calendar import to_us
from services.norms.adapters import outbox
from services.norms.adapters.repository import ClockCreatedMeanwhile, ClockRepository
from services.norms.domain.clock import (
    FINAL_KINDS,
    STOPPED_BEFORE_START,
    DecisionKind,
    Transition,
)
from services.norms.domain.explain import report
from services.norms.domain.outcomes import Outcome
from services.norms.domain.planning import (
    ClockUpdate,
    Plan,
    StoredClock,
    advance_clock,
    compliance_increments,
    plan_events,
)
from services.norms.revision import (
    ClockRevision,
    RevisionRecord,
    compliance_deltas,
    revise_clock,
    revised_event,
)


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    emitted: int = 0
    decisions: list[tuple[str, str, str]] = field(default_factory=list)  # municipality, norm, kind
    decision_times: list[int] = field(default_factory=list)  # instants of warnings and breaches
    # Data-quality reports taken: municipality, norm, source of the input event at fault, problem.
    data_quality: list[tuple[str, str, str, str]] = field(default_factory=list)
    unknown_municipalities: set[str] = field(default_factory=set)


# How often a batch is tried again when another replica created one of its clocks meanwhile
# (each try sees what the other committed, so a second conflict needs a third replica).
_RACE_RETRIES = 5


@dataclass(slots=True)
class PreparedBatch:
    """A batch of intake events worked out before its transaction (`NormsService.prepare`)."""

    size: int
    by_key: dict[str, tuple[int, Envelope[Any]]]  # dedupe key → first (partition, event)
    progress: dict[int, int]  # partition → highest event time in the batch
    plan: Plan  # of every distinct event; planned again if some were applied before
    ahead_of_wall: int = 0  # events too far ahead of the wall clock to move the watermark
    # partition → whether the consumer has read it to its end once this batch is applied (as
    # the consumer reported it; partitions it did not report keep what was stored).
    caught_up: dict[int, bool] = field(default_factory=dict)
    # Partitions with historical events in the batch (an import of history is in progress).
    historical: set[int] = field(default_factory=set)


class NormsService:
    """The norms service's steps, on one repository (its schema, topics and notion of now)."""

    def __init__(self, repository: ClockRepository) -> None:
        self.repository = repository
        self.catalogs = repository.catalogs

    async def register_partitions(self, partitions: list[int]) -> None:
        """Assigned partitions hold the watermark back until they delivered (or were read to
        their end and stayed quiet for the idle time)."""
        await self.repository.register_partitions(partitions)

    # ---- consumer ------------------------------------------------------------------------

    async def apply_batch(
        self,
        events: list[tuple[int, Envelope[Any]]],
        caught_up: dict[int, bool] | None = None,
    ) -> BatchResult:
        """Apply consumed intake events (with their partition) in one transaction."""
        return await self.commit(await self.prepare(events, caught_up))

    async def prepare(
        self,
        events: list[tuple[int, Envelope[Any]]],
        caught_up: dict[int, bool] | None = None,
        step: int = 250,
    ) -> PreparedBatch:
        """What a batch asks, worked out before its transaction (no I/O): the consumer prepares
        the next batch while PostgreSQL applies the previous one. `caught_up`: per partition,
        whether the consumer will have read it to its end once these events are applied.
        Plans `step` events at a time and lets other tasks run in between: the transaction in
        flight sends its next statement as soon as PostgreSQL answered the last, instead of
        after the whole batch is planned."""
        repository = self.repository
        # An event may move its partition's progress (and so the watermark) up to the wall
        # clock plus a tolerance, no further: one event from a far future (a test posting a
        # 2090 event, a channel system with a wrong clock) would otherwise decide every clock
        # at once. Such an event is still applied to its clocks.
        tolerance = repository.future_tolerance_seconds
        limit = round((repository.wall_clock() + tolerance) * 1_000_000)
        by_key: dict[str, tuple[int, Envelope[Any]]] = {}
        unique: list[Envelope[Any]] = []
        times: list[int] = []  # of `unique`, computed once for the progress and the plan
        progress: dict[int, int] = {}
        ahead = 0
        # Older than this: historical (an import; wall-clock mode only, see `hold_before`).
        horizon_us = repository.horizon_us
        history = limit - round(tolerance * 1_000_000) - horizon_us
        historical: set[int] = set()
        for partition, event in events:
            key = event.dedupe_key
            at = to_us(event.time)
            if key not in by_key:
                by_key[key] = (partition, event)
                unique.append(event)
                times.append(at)
            if at > limit:
                at = limit
                ahead += 1
            elif horizon_us and at < history:
                historical.add(partition)
            if at > progress.get(partition, -(1 << 62)):
                progress[partition] = at
        keys = list(by_key)
        plan = Plan({}, [], [], set())
        for first in range(0, len(unique), step):
            last = first + step
            plan.extend(
                plan_events(
                    unique[first:last],
                    self.catalogs,
                    times=times[first:last],
                    keys=keys[first:last],
                )
            )
            await asyncio.sleep(0)
        return PreparedBatch(
            len(events), by_key, progress, plan, ahead, dict(caught_up or {}), historical
        )

    async def commit(self, batch: PreparedBatch) -> BatchResult:
        """Apply a prepared batch in one transaction (again, if another replica created one of
        its clocks meanwhile, or PostgreSQL broke a deadlock with another replica by aborting
        this one)."""
        for attempt in range(_RACE_RETRIES):
            try:
                return await self._commit(batch)
            except (ClockCreatedMeanwhile, asyncpg.DeadlockDetectedError):
                # (A deadlock needs two replicas applying events of the same clocks at once,
                # e.g. during a rebalance: PostgreSQL aborts one, which tries again.)
                if attempt == _RACE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def _commit(self, batch: PreparedBatch) -> BatchResult:
        result = BatchResult()
        repository = self.repository
        by_key = batch.by_key
        async with repository.transaction() as conn:
            fresh_keys = await repository.record_events(conn, list(by_key))
            result.duplicates = batch.size - len(fresh_keys)
            result.applied = len(fresh_keys)
            await repository.record_progress(
                conn, batch.progress, batch.historical, batch.caught_up
            )
            plan = batch.plan
            if len(fresh_keys) < len(by_key):  # redelivered: plan only what is new
                fresh = [by_key[k][1] for k in by_key if k in fresh_keys]
                plan = plan_events(fresh, self.catalogs)
            result.unknown_municipalities = plan.unknown_municipalities
            # With the wall clock, a clock whose new transitions lie before now is read and
            # advanced here, so what they decide at once (its start) goes out in this very
            # transaction. Every other clock only gets its transitions appended and its wake-up
            # moved forward to the earliest of them (a transition changes no decision before
            # its own instant), without being read: the scheduler takes its decisions when
            # they fall due. In event-time mode (a replay, a simulation) that is every clock:
            # the watermark lags the events by the allowed lateness, and the scheduler follows
            # it within its interval.
            now = None if repository.event_clock else await repository.now(conn)
            eager: list[str] = []
            lazy: list[tuple[StoredClock, list[tuple[Transition, dict[str, str]]], int]] = []
            for cid in sorted(plan.transitions):
                blank, new = plan.transitions[cid]
                first = min(t.at for t, _ in new)
                if now is not None and first < now:
                    eager.append(cid)
                else:
                    lazy.append((blank, new, first))
            if lazy:
                await repository.append_transitions(conn, lazy)
            clocks, created = await repository.lock_clocks(
                conn, eager, {k: v[0] for k, v in plan.transitions.items()}
            )
            hold = await repository.hold_before(conn) if eager else None
            updates: list[tuple[StoredClock, ClockUpdate]] = []
            for cid in eager:
                clock = clocks[cid]
                for transition, context in plan.transitions[cid][1]:
                    clock.add(transition, context)
                updates.append(
                    (clock, advance_clock(clock, self.catalogs[clock.municipality], now, hold))
                )
            outgoing = list(plan.instant_events)
            outcomes = list(plan.instant_outcomes)
            for outcome in plan.instant_events:
                result.decisions.append((outcome.municipality, outcome.norm_id, outcome.kind))
            await self._store(
                conn, updates, outgoing, outcomes, result, write_transitions=True, created=created
            )
        return result

    async def _store(
        self,
        conn: asyncpg.Connection,
        updates: list[tuple[StoredClock, ClockUpdate]],
        outgoing: list[Outcome],
        outcomes: list[tuple[str, str, int, DecisionKind]],
        result: BatchResult,
        *,
        write_transitions: bool,
        created: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        """Count what the advanced clocks decided, then store them, the compliance counts and
        the norm events to publish (in the caller's transaction)."""
        for clock, update in updates:
            outgoing.extend(update.events)
            for outcome in update.events:
                kind = outcome.kind
                result.decisions.append((clock.municipality, clock.norm_id, kind))
                if kind is DecisionKind.WARNING or kind is DecisionKind.BREACHED:
                    result.decision_times.append(outcome.at)
                elif kind in FINAL_KINDS:  # one per cycle: a restarted clock counts again
                    if outcome.reason == STOPPED_BEFORE_START:  # neither met, missed nor withdrawn
                        kind = DecisionKind.DATA_QUALITY
                    outcomes.append((clock.municipality, clock.norm_id, outcome.at, kind))
                elif kind is DecisionKind.DATA_QUALITY:
                    result.data_quality.append(
                        (clock.municipality, clock.norm_id, outcome.cause_source, outcome.reason)
                    )
        repository = self.repository
        await repository.store_clocks(
            conn, updates, write_transitions=write_transitions, created=created
        )
        if outcomes:
            await repository.add_compliance(conn, compliance_increments(outcomes, self.catalogs))
        if outgoing:
            await repository.add_to_outbox(conn, [(o.key, o.value, o.headers) for o in outgoing])
            result.emitted += len(outgoing)

    # ---- scheduler ---------------------------------------------------------------------------

    async def fire_due(self, limit: int) -> tuple[BatchResult, int | None]:
        """Take the decisions that fell due (warnings, breaches, outcomes waiting for the
        watermark) for up to `limit` clocks; returns what was done and the `now` used."""
        result = BatchResult()
        repository = self.repository
        async with repository.transaction() as conn:
            now = await repository.now(conn)
            if now is None:
                return result, None
            # While an import is in progress, clocks waking before the horizon wait for it.
            hold = await repository.hold_before(conn)
            clocks = await repository.claim_due(conn, now, limit, hold)
            updates = []
            for clock in clocks:
                catalog = self.catalogs.get(clock.municipality)
                if catalog is None:
                    continue
                updates.append((clock, advance_clock(clock, catalog, now, hold)))
            result.applied = len(clocks)
            await self._store(conn, updates, [], [], result, write_transitions=False)
        return result, now

    # ---- catalog revision ----------------------------------------------------------------------

    async def revise(
        self, municipality: str, first: date, last: date, revision_id: uuid.UUID | None = None
    ) -> dict[str, Any]:
        """Decide the clocks of `municipality` whose latest cycle started in [first, last]
        (local days) afresh with the active catalog, in ONE transaction: the clock rows, the
        compliance counts (each changed cycle moves from its old outcome to its new one), the
        revision record, and on the outbox a `norm.revised` event per changed clock plus the
        new version's alerts never published. Returns the revision record."""
        catalog = self.catalogs.get(municipality)
        if catalog is None:
            raise ValueError(f"no catalog for municipality {municipality!r}")
        if last < first:
            raise ValueError(f"period: {first} is after {last}")
        revision_id = revision_id or uuid.uuid4()
        calendar = catalog.calendar
        first_us = to_us(datetime.combine(first, dt_time(0), tzinfo=calendar.zone))
        last_us = to_us(
            datetime.combine(last + timedelta(days=1), dt_time(0), tzinfo=calendar.zone)
        )
        repository = self.repository
        async with repository.transaction() as conn:
            now = await repository.now(conn)
            if now is None:
                raise RuntimeError("no watermark yet: the service has not read every partition")
            if await repository.hold_before(conn) is not None:
                raise RuntimeError(
                    "an import of history is in progress: revise once it has settled"
                )
            stored = await repository.lock_clocks_started(conn, municipality, first_us, last_us)
            revisions: list[ClockRevision] = []
            for clock, decided in stored:
                revised = revise_clock(clock, decided, catalog, now, first_us, last_us)
                if revised is not None:
                    revisions.append(revised)
            previous_versions = {clock.clock_id: decided.norm_version for clock, decided in stored}
            records: list[outbox.Packed] = []
            for r in revisions:
                if r.changed:
                    event = revised_event(
                        r, revision_id, catalog, previous_versions.get(r.clock.clock_id), now
                    )
                    record = encode(event)
                    records.append((record.key, record.value, record.headers))
            records += [(a.key, a.value, a.headers) for r in revisions for a in r.alerts]
            await repository.add_to_outbox(conn, records)
            return await repository.store_revision(
                conn,
                RevisionRecord(revision_id, municipality, catalog.version, first, last, now),
                revisions,
                previous_versions,
                compliance_deltas(revisions, catalog),
            )

    # ---- reading -------------------------------------------------------------------------------

    async def compliance(self, municipality: str, first: date, last: date) -> list[dict[str, Any]]:
        """Per norm of the municipality's catalog: met, missed, cancelled and data-quality
        cycles over the local days [first, last], the compliance and whether it reaches the
        norm's goal (`GET /v1/compliance`)."""
        catalog = self.catalogs[municipality]
        counts = await self.repository.compliance_counts(municipality, first, last)
        report = []
        for norm in catalog.norms.values():
            met, missed, cancelled, data_quality = counts.get(norm.id, (0, 0, 0, 0))
            judged = met + missed
            goal = norm.definition.compliance_goal
            report.append(
                {
                    "norm_id": norm.id,
                    "norm_version": norm.version,
                    "name": norm.definition.name.model_dump(),
                    "met": met,
                    "missed": missed,
                    "cancelled": cancelled,
                    # Stopped before they started (docs/norms.md): neither met nor missed.
                    "data_quality": data_quality,
                    "compliance": (met / judged) if judged else None,
                    "compliance_goal": goal,
                    "goal_reached": (met / judged >= goal) if judged else None,
                }
            )
        return report

    async def explained_clock(self, clock_id: str, lang: str) -> dict[str, Any] | None:
        """Why the clock's due instant is what it is (`GET /v1/clocks/{id}`), in `lang`; None:
        no such clock, or it never started."""
        stored, now = await self.repository.clock(clock_id)
        if stored is None:
            return None
        catalog = self.catalogs.get(stored.municipality)
        norm = catalog.norms.get(stored.norm_id) if catalog is not None else None
        if catalog is None or norm is None:
            return None
        transitions = [t for t, _ in stored.transitions]
        body = report(norm, catalog.calendar, transitions, lang=lang, now=now)
        if body is None:
            return None
        head = {
            "clock_id": stored.clock_id,
            "municipality": stored.municipality,
            "subject_id": stored.subject_id,
        }
        return head | body

    async def revisions(self, municipality: str) -> list[dict[str, Any]]:
        """The catalog revisions of a municipality, oldest first."""
        return await self.repository.revisions(municipality)

    async def revision(self, revision_id: uuid.UUID) -> dict[str, Any] | None:
        """One revision and every clock it changed (None: no such revision)."""
        return await self.repository.revision(revision_id)

    async def outbox_backlog(self) -> int:
        """Norm events committed and not yet published."""
        return await self.repository.outbox_backlog()

    async def purge_dedupe_keys(self, older_than_days: int) -> int:
        """Forget the dedupe keys of events applied more than `older_than_days` ago."""
        return await self.repository.purge_dedupe_keys(older_than_days)
