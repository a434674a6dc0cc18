"""PostgreSQL: clocks, dedupe keys, outbox, compliance, revisions and event-time progress.

SQL only: the service layer (services/norms/service.py) opens a `transaction()`, loads what it
needs with these methods, plans and advances with the domain, and stores the result in the same
transaction with the dedupe keys of the events that caused it and the outcome events it emits
(the outbox): a crash at any point either keeps all of it or none. Several replicas share the
work: clock rows are locked (`FOR UPDATE`, in key order) by the consumer and skipped when
locked (`FOR UPDATE SKIP LOCKED`) by the scheduler.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime
from typing import Any

import asyncpg
import orjson

from services.common.calendar import from_us, to_us
from services.common.settings import REPO_ROOT
from services.norms.adapters import outbox
from services.norms.adapters.clock_rows import clock_of_row, stored_form, transitions_json
from services.norms.domain.catalog import NormCatalog
from services.norms.domain.clock import Transition, TransitionKind
from services.norms.domain.planning import ClockUpdate, StoredClock
from services.norms.revision import ClockRevision, RevisionRecord, StoredDecisions
from services.norms.settings import NormsSettings

MIGRATIONS = REPO_ROOT / "services" / "norms" / "migrations"


def _ts(instant: int | None) -> datetime | None:
    return None if instant is None else from_us(instant)


def _instant(microseconds: str) -> str:
    """SQL for a timestamptz from microseconds since the epoch given as JSON text (exact: an
    integer below 2^53 times one microsecond)."""
    return f"(timestamptz 'epoch' + ({microseconds})::bigint * interval '1 microsecond')"


class ClockCreatedMeanwhile(Exception):
    """A clock this transaction found missing was created by a concurrent one."""


class ClockRepository:
    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        catalogs: dict[str, NormCatalog],
        *,
        intake_topic: str,
        norms_topic: str,
        event_clock: bool,
        allowed_lateness_seconds: float,
        idle_partition_seconds: float,
        future_tolerance_seconds: float = 3600.0,
        wall_clock: Callable[[], float] = time.time,
        history_horizon_seconds: float = 0.0,
        history_settle_seconds: float = 300.0,
    ) -> None:
        self.pool = pool
        self.s = f'"{schema}"'
        self.schema = schema
        self.catalogs = catalogs
        self.intake_topic = intake_topic
        self.norms_topic = norms_topic
        self.event_clock = event_clock
        self.lateness_us = round(allowed_lateness_seconds * 1_000_000)
        self.idle_seconds = idle_partition_seconds
        self.wall_clock = wall_clock
        self.future_tolerance_seconds = future_tolerance_seconds
        self.notify_channel = f"{schema}_outbox"
        # Importing history (wall clock only; 0: no hold): see `hold_before`.
        self.horizon_us = 0 if event_clock else round(history_horizon_seconds * 1_000_000)
        self.settle_seconds = history_settle_seconds

    @classmethod
    def configured(
        cls, pool: asyncpg.Pool, catalogs: dict[str, NormCatalog], settings: NormsSettings
    ) -> ClockRepository:
        """The repository as the service's settings describe it (the service and the recompute
        command must see the same schema, topics and now)."""
        return cls(
            pool,
            settings.db_schema,
            catalogs,
            intake_topic=settings.intake_topic,
            norms_topic=settings.norms_topic,
            event_clock=settings.clock == "event",
            allowed_lateness_seconds=settings.allowed_lateness_seconds,
            idle_partition_seconds=settings.idle_partition_seconds,
            future_tolerance_seconds=settings.future_tolerance_seconds,
            history_horizon_seconds=settings.history_horizon_seconds,
            history_settle_seconds=settings.history_settle_seconds,
        )

    # ---- now -----------------------------------------------------------------------------

    async def now(self, conn: asyncpg.Connection) -> int | None:
        """The service's notion of now: the wall clock, or in event-time mode the watermark
        (None while an active partition has not delivered anything yet)."""
        if not self.event_clock:
            return round(self.wall_clock() * 1_000_000)
        return await self.watermark(conn)

    async def watermark(self, conn: asyncpg.Connection) -> int | None:
        """min over the intake partitions of their highest event time, minus the allowed
        lateness. A partition stops holding it back only when it is idle: read to its end by
        the consumer (`caught_up_since`) and without records, both for the idle time. A
        partition that is merely absent from the recent batches (a replay, a backlog, a slow
        consumer) still has unread events, and decisions must wait for them."""
        row = await conn.fetchrow(
            f"""
            SELECT bool_or(max_event_time IS NULL AND NOT idle) AS blocked,
                   min(max_event_time) FILTER (WHERE NOT idle) AS active_min,
                   max(max_event_time) AS overall
            FROM (SELECT max_event_time,
                         COALESCE(caught_up_since <= now() - make_interval(secs => $2)
                                  AND updated_at <= now() - make_interval(secs => $2),
                                  false) AS idle
                  FROM {self.s}.partition_progress WHERE topic = $1) AS p
            """,
            self.intake_topic,
            self.idle_seconds,
        )
        if row is None or row["blocked"]:
            return None
        highest = row["active_min"] or row["overall"]
        return None if highest is None else to_us(highest) - self.lateness_us

    async def hold_before(self, conn: asyncpg.Connection) -> int | None:
        """While an import of history is in progress — an intake event dated more than the
        horizon before the wall clock was applied less than the settle time ago, by any
        replica — warnings and breaches dated before the horizon are held (None: nothing is).
        Wall-clock mode only: in event-time mode the watermark already waits for the events."""
        if not self.horizon_us:
            return None
        importing = await conn.fetchval(
            f"""SELECT COALESCE(max(historical_at) > now() - make_interval(secs => $2), false)
                FROM {self.s}.partition_progress WHERE topic = $1""",
            self.intake_topic,
            self.settle_seconds,
        )
        return round(self.wall_clock() * 1_000_000) - self.horizon_us if importing else None

    async def register_partitions(self, partitions: list[int]) -> None:
        """Assigned partitions hold the watermark back until they delivered (or were read to
        their end and stayed quiet for the idle time)."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                f"""INSERT INTO {self.s}.partition_progress (topic, partition)
                    SELECT $1, unnest($2::int[]) ON CONFLICT DO NOTHING""",
                self.intake_topic,
                partitions,
            )

    # ---- one transaction ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection in a transaction: whatever the service loads and stores in it commits
        together, or not at all."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    # ---- consumer ------------------------------------------------------------------------

    async def record_events(self, conn: asyncpg.Connection, dedupe_keys: list[str]) -> set[str]:
        """Remember the events' dedupe keys; returns those not seen before."""
        return {
            r["dedupe_key"]
            for r in await conn.fetch(
                f"""INSERT INTO {self.s}.processed_event (dedupe_key)
                    SELECT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING dedupe_key""",
                dedupe_keys,
            )
        }

    async def record_progress(
        self,
        conn: asyncpg.Connection,
        progress: dict[int, int],
        historical: set[int],
        caught_up: dict[int, bool],
    ) -> None:
        """Per partition: its highest event time so far (`progress`), whether it delivered
        historical events (an import), and since when it has been read to its end
        (`caught_up`, event-time mode only)."""
        if progress:
            await conn.execute(
                f"""INSERT INTO {self.s}.partition_progress AS p
                        (topic, partition, max_event_time, updated_at)
                    SELECT $1, u.partition, u.at, now()
                    FROM unnest($2::int[], $3::timestamptz[]) AS u(partition, at)
                    ON CONFLICT (topic, partition) DO UPDATE SET
                      max_event_time = GREATEST(p.max_event_time, EXCLUDED.max_event_time),
                      updated_at = now()""",
                self.intake_topic,
                list(progress),
                [from_us(v) for v in progress.values()],
            )
        if historical:
            await conn.execute(
                f"""UPDATE {self.s}.partition_progress SET historical_at = now()
                    WHERE topic = $1 AND partition = ANY($2::int[])""",
                self.intake_topic,
                sorted(historical),
            )
        if caught_up and self.event_clock:
            # Since when each partition has been read to its end (kept while it stays so).
            reported = sorted(caught_up)
            await conn.execute(
                f"""INSERT INTO {self.s}.partition_progress AS p
                        (topic, partition, caught_up_since)
                    SELECT $1, u.partition, CASE WHEN u.caught THEN now() END
                    FROM unnest($2::int[], $3::bool[]) AS u(partition, caught)
                    ON CONFLICT (topic, partition) DO UPDATE SET caught_up_since =
                      CASE WHEN EXCLUDED.caught_up_since IS NOT NULL
                           THEN COALESCE(p.caught_up_since, EXCLUDED.caught_up_since) END""",
                self.intake_topic,
                reported,
                [caught_up[p] for p in reported],
            )

    async def append_transitions(
        self,
        conn: asyncpg.Connection,
        clocks: list[tuple[StoredClock, list[tuple[Transition, dict[str, str]]], int]],
    ) -> None:
        """Add transitions to clocks without reading them (in key order; each with the
        earliest instant of its new transitions): a new clock is inserted, due to wake at its
        start (a clock without a start has nothing to decide); an existing one gets them
        appended and wakes no later than the earliest of them."""
        rows = []
        for blank, new, first in clocks:
            starts = any(t.kind is TransitionKind.START for t, _ in new)
            rows.append(
                [
                    blank.clock_id,
                    blank.municipality,
                    blank.norm_id,
                    blank.subject_id,
                    stored_form(new),
                    first if starts else None,
                    first,
                ]
            )
        document = orjson.dumps(rows).decode()
        inserted = {
            r[0]
            for r in await conn.fetch(
                f"""INSERT INTO {self.s}.clock AS c (clock_id, municipality, norm_id, subject_id,
                        transitions, next_decision_at)
                    SELECT u.e->>0, u.e->>1, u.e->>2, u.e->>3, u.e->4,
                           {_instant("u.e->>5")}
                    FROM jsonb_array_elements($1::jsonb) AS u(e)
                    ON CONFLICT DO NOTHING RETURNING clock_id""",
                document,
            )
        }
        if len(inserted) < len(rows):
            existing = [row for row in rows if row[0] not in inserted]
            await conn.execute(
                f"""UPDATE {self.s}.clock AS c SET
                      transitions = c.transitions || (u.e->4),
                      next_decision_at = LEAST(c.next_decision_at, {_instant("u.e->>6")}),
                      updated_at = now()
                    FROM jsonb_array_elements($1::jsonb) AS u(e)
                    WHERE c.clock_id = u.e->>0""",
                orjson.dumps(existing).decode(),
            )

    async def lock_clocks(
        self, conn: asyncpg.Connection, ids: list[str], blanks: dict[str, StoredClock]
    ) -> tuple[dict[str, StoredClock], set[str]]:
        """The clocks `ids`, locked in key order: those that exist as stored, the others blank
        (and returned as `created`: `store_clocks` inserts them, complete, in one row version)."""
        if not ids:
            return {}, set()
        rows = await conn.fetch(
            f"""SELECT clock_id, municipality, norm_id, subject_id, transitions::text, taken
                FROM {self.s}.clock WHERE clock_id = ANY($1::text[])
                ORDER BY clock_id FOR UPDATE""",
            ids,
        )
        clocks = {r["clock_id"]: clock_of_row(r) for r in rows}
        created = {i for i in ids if i not in clocks}
        for i in created:  # blank: no transitions, nothing taken (a fresh one on every try)
            b = blanks[i]
            clocks[i] = StoredClock(b.clock_id, b.municipality, b.norm_id, b.subject_id)
        return clocks, created

    async def store_clocks(
        self,
        conn: asyncpg.Connection,
        updates: list[tuple[StoredClock, ClockUpdate]],
        *,
        write_transitions: bool,
        created: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        """Store advanced clocks: `created` ones inserted complete (one row version), the
        others updated (their transitions only if `write_transitions`). Raises
        `ClockCreatedMeanwhile` when another replica created one of `created` first."""
        # One JSON document of rows ([id, taken, next, version, outcome, started, due,
        # stopped, transitions(, municipality, norm, subject)], instants in microseconds):
        # encoding 5 000 rows as PostgreSQL arrays costs the consumer more than the statement
        # costs PostgreSQL. It is read as jsonb, parsed once: as json every `->>` parses its
        # row again, which doubled the statements' time.
        rows = []
        new_rows = []
        for c, u in updates:
            row = [
                c.clock_id,
                "|".join(sorted(u.taken)),
                u.next_decision_at,
                u.norm_version,
                u.outcome,
                u.started_at,
                u.due_at,
                u.stopped_at,
                orjson.Fragment(transitions_json(c)) if write_transitions else None,
            ]
            if c.clock_id in created:
                row += (c.municipality, c.norm_id, c.subject_id)
                new_rows.append(row)
            else:
                rows.append(row)
        if new_rows:
            inserted = await conn.fetch(
                f"""INSERT INTO {self.s}.clock AS c (clock_id, taken, next_decision_at,
                        norm_version, outcome, started_at, due_at, stopped_at, transitions,
                        municipality, norm_id, subject_id)
                    SELECT u.e->>0, u.e->>1, {_instant("u.e->>2")}, u.e->>3, u.e->>4,
                           {_instant("u.e->>5")}, {_instant("u.e->>6")}, {_instant("u.e->>7")},
                           u.e->8, u.e->>9, u.e->>10, u.e->>11
                    FROM jsonb_array_elements($1::jsonb) AS u(e)
                    ON CONFLICT DO NOTHING RETURNING 1""",
                orjson.dumps(new_rows).decode(),
            )
            if len(inserted) < len(new_rows):
                # Another replica created one of these clocks after we looked: start again.
                raise ClockCreatedMeanwhile
        if rows:
            await conn.execute(
                f"""UPDATE {self.s}.clock AS c SET
                      taken = u.e->>1,
                      next_decision_at = {_instant("u.e->>2")},
                      norm_version = COALESCE(u.e->>3, c.norm_version),
                      outcome = COALESCE(u.e->>4, c.outcome),
                      started_at = COALESCE({_instant("u.e->>5")}, c.started_at),
                      due_at = COALESCE({_instant("u.e->>6")}, c.due_at),
                      stopped_at = COALESCE({_instant("u.e->>7")}, c.stopped_at),
                      {"transitions = u.e->8," if write_transitions else ""}
                      updated_at = now()
                    FROM jsonb_array_elements($1::jsonb) AS u(e)
                    WHERE c.clock_id = u.e->>0""",
                orjson.dumps(rows).decode(),
            )

    async def add_compliance(
        self, conn: asyncpg.Connection, increments: list[tuple[str, str, Any, int, int, int, int]]
    ) -> None:
        """Add (met, missed, cancelled, data_quality) counts per municipality, norm and day."""
        if not increments:
            return
        await conn.execute(
            f"""INSERT INTO {self.s}.compliance_daily AS d
                    (municipality, norm_id, day, met, missed, cancelled, data_quality)
                SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::bigint[],
                                     $5::bigint[], $6::bigint[], $7::bigint[])
                ON CONFLICT (municipality, norm_id, day) DO UPDATE SET
                  met = d.met + EXCLUDED.met, missed = d.missed + EXCLUDED.missed,
                  cancelled = d.cancelled + EXCLUDED.cancelled,
                  data_quality = d.data_quality + EXCLUDED.data_quality""",
            *[list(col) for col in zip(*increments, strict=True)],
        )

    async def add_to_outbox(self, conn: asyncpg.Connection, records: list[outbox.Packed]) -> None:
        """Norm events to publish, in one row for all of them (see adapters/outbox.py); the
        relay is woken."""
        if not records:
            return
        await conn.execute(
            f"""INSERT INTO {self.s}.outbox (topic, records, format, count)
                VALUES ($1, $2, $3, $4)""",
            self.norms_topic,
            outbox.pack(records),
            outbox.FORMAT,
            len(records),
        )
        await conn.execute("SELECT pg_notify($1, '')", self.notify_channel)

    # ---- scheduler ---------------------------------------------------------------------------

    async def claim_due(
        self, conn: asyncpg.Connection, now: int, limit: int, hold: int | None
    ) -> list[StoredClock]:
        """Up to `limit` clocks whose next decision lies before `now` (not before `hold`, when
        given), earliest first, locked; those another replica holds are skipped."""
        held = "" if hold is None else "AND next_decision_at >= $3"
        rows = await conn.fetch(
            f"""SELECT clock_id, municipality, norm_id, subject_id, transitions::text, taken
                FROM {self.s}.clock
                WHERE next_decision_at < $1 {held}
                ORDER BY next_decision_at
                LIMIT $2
                FOR UPDATE SKIP LOCKED""",
            from_us(now),
            limit,
            *([] if hold is None else [from_us(hold)]),
        )
        return [clock_of_row(row) for row in rows]

    # ---- catalog revision ----------------------------------------------------------------------

    async def lock_clocks_started(
        self, conn: asyncpg.Connection, municipality: str, first_us: int, last_us: int
    ) -> list[tuple[StoredClock, StoredDecisions]]:
        """The clocks of `municipality` whose latest cycle started in [first_us, last_us), with
        what their rows say was decided; locked in key order, as the consumer locks them (no
        deadlock with it)."""
        rows = await conn.fetch(
            f"""SELECT clock_id, municipality, norm_id, subject_id, transitions::text, taken,
                       norm_version, outcome, due_at, stopped_at
                FROM {self.s}.clock
                WHERE municipality = $1 AND started_at >= $2 AND started_at < $3
                ORDER BY clock_id FOR UPDATE""",
            municipality,
            from_us(first_us),
            from_us(last_us),
        )
        return [
            (
                clock_of_row(row),
                StoredDecisions(
                    row["norm_version"],
                    row["outcome"],
                    None if row["due_at"] is None else to_us(row["due_at"]),
                    None if row["stopped_at"] is None else to_us(row["stopped_at"]),
                ),
            )
            for row in rows
        ]

    async def store_revision(
        self,
        conn: asyncpg.Connection,
        revision: RevisionRecord,
        revisions: list[ClockRevision],
        previous_versions: dict[str, str | None],
        deltas: list[tuple[str, date, list[int]]],
    ) -> dict[str, Any]:
        """Store a revision: the revised clock rows, the compliance `deltas` (norm, day,
        [met, missed, cancelled, data_quality]), the revision record and the clocks it changed.
        Returns the revision record as the API shows it."""
        revision_id = revision.revision_id
        if revisions:
            await conn.execute(
                f"""UPDATE {self.s}.clock AS c SET
                      taken = u.taken, next_decision_at = u.next, norm_version = u.version,
                      outcome = u.outcome, started_at = COALESCE(u.started, c.started_at),
                      due_at = COALESCE(u.due, c.due_at), stopped_at = u.stopped,
                      updated_at = now()
                    FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[],
                                $5::text[], $6::timestamptz[], $7::timestamptz[],
                                $8::timestamptz[])
                         AS u(id, taken, next, version, outcome, started, due, stopped)
                    WHERE c.clock_id = u.id""",
                [r.clock.clock_id for r in revisions],
                ["|".join(sorted(r.update.taken)) for r in revisions],
                [_ts(r.update.next_decision_at) for r in revisions],
                [r.norm_version for r in revisions],
                [r.update.outcome for r in revisions],
                [_ts(r.update.started_at) for r in revisions],
                [_ts(r.update.due_at) for r in revisions],
                [_ts(r.update.stopped_at) for r in revisions],
            )
        if deltas:
            await conn.execute(
                f"""INSERT INTO {self.s}.compliance_daily AS d
                        (municipality, norm_id, day, met, missed, cancelled, data_quality)
                    SELECT $1, * FROM unnest($2::text[], $3::date[], $4::bigint[],
                                             $5::bigint[], $6::bigint[], $7::bigint[])
                    ON CONFLICT (municipality, norm_id, day) DO UPDATE SET
                      met = d.met + EXCLUDED.met, missed = d.missed + EXCLUDED.missed,
                      cancelled = d.cancelled + EXCLUDED.cancelled,
                      data_quality = d.data_quality + EXCLUDED.data_quality""",
                revision.municipality,
                [norm_id for norm_id, _, _ in deltas],
                [day for _, day, _ in deltas],
                *[[counts[i] for _, _, counts in deltas] for i in range(4)],
            )
        changed = [r for r in revisions if r.changed]
        await conn.execute(
            f"""INSERT INTO {self.s}.revision (revision_id, municipality, catalog_version,
                    period_from, period_to, decided_as_of, clocks_examined, clocks_changed,
                    outcomes_changed, alerts_published)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
            revision_id,
            revision.municipality,
            revision.catalog_version,
            revision.first,
            revision.last,
            from_us(revision.now),
            len(revisions),
            len(changed),
            sum(len(r.changes) for r in revisions),
            sum(len(r.alerts) for r in revisions),
        )
        entries = []
        for r in changed:
            previous = previous_versions.get(r.clock.clock_id)
            for c in r.changes:
                entries.append(
                    (
                        r.clock.clock_id,
                        c.cycle,
                        r.clock.norm_id,
                        previous,
                        r.norm_version,
                        c.previous,
                        c.outcome,
                        from_us(c.started_at),
                        from_us(c.stopped_at),
                        None,
                        None,
                    )
                )
            if r.running is not None and r.running_changed:
                entries.append(
                    (
                        r.clock.clock_id,
                        0,
                        r.clock.norm_id,
                        previous,
                        r.norm_version,
                        None,
                        None,
                        from_us(r.running.started_at),
                        None,
                        _ts(r.previous_due_at),
                        from_us(r.running.due_at),
                    )
                )
        if entries:
            await conn.executemany(
                f"""INSERT INTO {self.s}.revision_clock (revision_id, clock_id, cycle, norm_id,
                        previous_version, norm_version, previous_outcome, outcome, started_at,
                        stopped_at, previous_due_at, due_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
                [(revision_id, *e) for e in entries],
            )
        record = await conn.fetchrow(
            f"SELECT * FROM {self.s}.revision WHERE revision_id = $1", revision_id
        )
        assert record is not None
        return _revision_json(record)

    async def revisions(self, municipality: str) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT * FROM {self.s}.revision WHERE municipality = $1
                    ORDER BY created_at, revision_id""",
                municipality,
            )
        return [_revision_json(r) for r in rows]

    async def revision(self, revision_id: uuid.UUID) -> dict[str, Any] | None:
        """One revision with every clock it changed (None: no such revision)."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT * FROM {self.s}.revision WHERE revision_id = $1", revision_id
            )
            if row is None:
                return None
            clocks = await conn.fetch(
                f"""SELECT * FROM {self.s}.revision_clock WHERE revision_id = $1
                    ORDER BY clock_id, cycle""",
                revision_id,
            )
        body = _revision_json(row)
        body["clocks"] = [
            {
                "clock_id": c["clock_id"],
                "norm_id": c["norm_id"],
                "cycle": c["cycle"] or None,
                "running": c["cycle"] == 0,
                "previous_version": c["previous_version"],
                "norm_version": c["norm_version"],
                "previous_outcome": c["previous_outcome"],
                "outcome": c["outcome"],
                "started_at": _iso(c["started_at"]),
                "stopped_at": _iso(c["stopped_at"]),
                "previous_due_at": _iso(c["previous_due_at"]),
                "due_at": _iso(c["due_at"]),
            }
            for c in clocks
        ]
        return body

    # ---- reading ---------------------------------------------------------------------------

    async def compliance_counts(
        self, municipality: str, first: date, last: date
    ) -> dict[str, tuple[int, int, int, int]]:
        """Per norm: (met, missed, cancelled, data_quality) over the local days [first, last]."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT norm_id, sum(met)::bigint AS met, sum(missed)::bigint AS missed,
                           sum(cancelled)::bigint AS cancelled,
                           sum(data_quality)::bigint AS data_quality
                    FROM {self.s}.compliance_daily
                    WHERE municipality = $1 AND day BETWEEN $2 AND $3
                    GROUP BY norm_id""",
                municipality,
                first,
                last,
            )
        return {
            r["norm_id"]: (r["met"], r["missed"], r["cancelled"], r["data_quality"]) for r in rows
        }

    async def clock(self, clock_id: str) -> tuple[StoredClock | None, int | None]:
        """One clock as stored (None: no such clock), and the service's now."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""SELECT clock_id, municipality, norm_id, subject_id, transitions::text, taken
                    FROM {self.s}.clock WHERE clock_id = $1""",
                clock_id,
            )
            now = await self.now(conn)
        return (None if row is None else clock_of_row(row)), now

    async def outbox_backlog(self) -> int:
        """Norm events committed and not yet published (a row holds a transaction's)."""
        async with self.pool.acquire() as conn:
            return await conn.fetchval(f"SELECT COALESCE(sum(count), 0) FROM {self.s}.outbox")

    async def purge_dedupe_keys(self, older_than_days: int) -> int:
        async with self.pool.acquire() as conn:
            status = await conn.execute(
                f"""DELETE FROM {self.s}.processed_event
                    WHERE processed_at < now() - make_interval(days => $1)""",
                older_than_days,
            )
        return int(status.split()[-1])


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _revision_json(row: Any) -> dict[str, Any]:
    return {
        "revision_id": str(row["revision_id"]),
        "municipality": row["municipality"],
        "catalog_version": row["catalog_version"],
        "from": str(row["period_from"]),
        "to": str(row["period_to"]),
        "decided_as_of": _iso(row["decided_as_of"]),
        "clocks_examined": row["clocks_examined"],
        "clocks_changed": row["clocks_changed"],
        "outcomes_changed": row["outcomes_changed"],
        "alerts_published": row["alerts_published"],
        "created_at": _iso(row["created_at"]),
    }
