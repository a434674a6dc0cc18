"""The durable aggregate store (PostgreSQL schema `metrics`).

`apply` writes one batch in ONE transaction: the dedupe keys of its events (only events not seen
before count), the counter and histogram increments, the per-day facts, and the new state of the
cases and clocks it touched. `snapshot` reads everything /metrics shows. Rows are written in
primary-key order so two replicas (during a rebalance) never deadlock on each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg

from schemas.envelope import Envelope
from services.metrics.domain.definitions import BY_NAME
from services.metrics.domain.tally import (
    Known,
    Labels,
    OpenCase,
    Policy,
    RunningClock,
    SeriesKey,
    Tally,
    tally,
    touched,
)

SEP = "\x1f"  # joins label values for unnest(); codes can never contain it


def bucket_samples(metric: str) -> list[str]:
    edges = BY_NAME[metric].buckets
    return [repr(float(b)) for b in edges] + ["+Inf"]


@dataclass(slots=True)
class Snapshot:
    """Everything /metrics shows, as stored."""

    counters: dict[SeriesKey, float] = field(default_factory=dict)
    # per-bucket counts (not cumulative, +Inf last), sum, count
    histograms: dict[SeriesKey, tuple[list[float], float, float]] = field(default_factory=dict)
    gauges: dict[str, dict[Labels, float]] = field(default_factory=dict)


def series_rows(t: Tally) -> list[tuple[str, str, str, float]]:
    rows: list[tuple[str, str, str, float]] = []
    for (metric, labels), value in t.counters.items():
        rows.append((metric, SEP.join(labels), "", value))
    for (metric, labels), delta in t.histograms.items():
        joined = SEP.join(labels)
        for sample, count in zip(bucket_samples(metric), delta.buckets, strict=True):
            if count:
                rows.append((metric, joined, sample, float(count)))
        rows.append((metric, joined, "sum", delta.sum))
        rows.append((metric, joined, "count", float(delta.count)))
    rows.sort()
    return rows


class AggregateStore:
    def __init__(self, pool: asyncpg.Pool, policy: Policy) -> None:
        self.pool = pool
        self.policy = policy

    async def apply(self, events: Sequence[Envelope[Any]]) -> tuple[Tally, int]:
        """Apply a batch once; returns the tally of the events new to the store and how many
        events were duplicates (already applied, e.g. redelivered after a crash)."""
        first: dict[str, Envelope[Any]] = {}
        for event in events:
            first.setdefault(event.dedupe_key, event)
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetch(
                "INSERT INTO metrics.processed_event (dedupe_key)"
                " SELECT k FROM unnest($1::text[]) AS k ORDER BY k"
                " ON CONFLICT DO NOTHING RETURNING dedupe_key",
                sorted(first),
            )
            new_keys = {r["dedupe_key"] for r in inserted}
            fresh = [e for key, e in first.items() if key in new_keys]
            result = tally(fresh, await self._known(conn, fresh), self.policy)
            await self._write(conn, result)
        return result, len(events) - len(fresh)

    async def purge_dedupe_keys(self, older_than_days: int, batch: int = 10_000) -> int:
        """Forget the keys of events applied more than `older_than_days` ago; returns how many.

        Safe once such events can no longer be delivered again (older than the topics'
        retention). Deleted in batches, each its own short transaction, so a large backlog
        never holds locks that the consumer's inserts would wait for."""
        purged = 0
        while True:
            async with self.pool.acquire() as conn:
                status = await conn.execute(
                    "DELETE FROM metrics.processed_event WHERE dedupe_key IN"
                    " (SELECT dedupe_key FROM metrics.processed_event"
                    "  WHERE processed_at < now() - make_interval(days => $1)"
                    "  LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    older_than_days,
                    batch,
                )
            deleted = int(status.split()[-1])
            purged += deleted
            if deleted < batch:
                return purged

    async def _known(self, conn: asyncpg.Connection, events: list[Envelope[Any]]) -> Known:
        case_keys, clock_keys = touched(events, self.policy)
        known = Known()
        if case_keys:
            ordered = sorted(case_keys)
            rows = await conn.fetch(
                "SELECT municipality, case_id, case_type, opened_at, reopened FROM metrics.open_case"
                " WHERE (municipality, case_id) IN"
                " (SELECT * FROM unnest($1::text[], $2::text[]))"
                " ORDER BY municipality, case_id FOR UPDATE",
                [k[0] for k in ordered],
                [k[1] for k in ordered],
            )
            for r in rows:
                known.cases[(r["municipality"], r["case_id"])] = OpenCase(
                    r["case_type"], r["opened_at"], r["reopened"]
                )
        if clock_keys:
            ordered = sorted(clock_keys)
            rows = await conn.fetch(
                "SELECT * FROM metrics.running_clock WHERE (municipality, clock_id) IN"
                " (SELECT * FROM unnest($1::text[], $2::text[]))"
                " ORDER BY municipality, clock_id FOR UPDATE",
                [k[0] for k in ordered],
                [k[1] for k in ordered],
            )
            for r in rows:
                known.clocks[(r["municipality"], r["clock_id"])] = RunningClock(
                    r["norm"],
                    r["case_type"],
                    r["started_at"],
                    r["due_at"],
                    r["warned"],
                    r["breached"],
                )
        return known

    async def _write(self, conn: asyncpg.Connection, t: Tally) -> None:
        rows = series_rows(t)
        if rows:
            await conn.execute(
                "INSERT INTO metrics.series (metric, labels, sample, value)"
                " SELECT m, string_to_array(l, E'\\x1f'), s, v"
                " FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[]) AS u(m, l, s, v)"
                " ON CONFLICT (metric, labels, sample)"
                " DO UPDATE SET value = metrics.series.value + excluded.value",
                *zip(*rows, strict=True),
            )
        if t.facts:
            facts = sorted(t.facts.items())
            await conn.execute(
                "INSERT INTO metrics.daily_fact (municipality, day, fact, dims, value)"
                " SELECT m, d, f, string_to_array(x, E'\\x1f'), v"
                " FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::float8[])"
                " AS u(m, d, f, x, v)"
                " ON CONFLICT (municipality, day, fact, dims)"
                " DO UPDATE SET value = metrics.daily_fact.value + excluded.value",
                [k[0] for k, _ in facts],
                [k[1] for k, _ in facts],
                [k[2] for k, _ in facts],
                [SEP.join(k[3]) for k, _ in facts],
                [v for _, v in facts],
            )
        for (municipality, day, norm, outcome, goal), count in sorted(t.retracted.items()):
            await self._retract(conn, municipality, day, norm, outcome, goal, count)
        await self._write_cases(conn, t)
        await self._write_clocks(conn, t)
        if t.goals:
            goals = sorted(t.goals.items())
            await conn.execute(
                "INSERT INTO metrics.norm_goal (municipality, norm, goal, as_of)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::timestamptz[])"
                " ON CONFLICT (municipality, norm) DO UPDATE"
                " SET goal = excluded.goal, as_of = excluded.as_of"
                " WHERE metrics.norm_goal.as_of <= excluded.as_of",
                [k[0] for k, _ in goals],
                [k[1] for k, _ in goals],
                [v[0] for _, v in goals],
                [v[1] for _, v in goals],
            )

    async def _retract(
        self,
        conn: asyncpg.Connection,
        municipality: str,
        day: date,
        norm: str,
        outcome: str,
        goal: str,
        count: int,
    ) -> None:
        """Take `count` norm outcomes back from the period report's facts of that day (a catalog
        revision). They were counted with the old version's goal, which the revision event does
        not carry: the facts with another goal than the active one go first, then the largest.
        Runs rarely (one statement per revised day and outcome), so it is kept plain."""
        while count > 0:
            row = await conn.fetchrow(
                "SELECT dims, value FROM metrics.daily_fact"
                " WHERE municipality = $1 AND day = $2 AND fact = 'norm_outcome'"
                " AND dims[1] = $3 AND dims[2] = $4 AND value > 0"
                " ORDER BY (dims[3] <> $5) DESC, value DESC, dims LIMIT 1 FOR UPDATE",
                municipality,
                day,
                norm,
                outcome,
                goal,
            )
            if row is None:
                return  # counted before this store kept facts: nothing to take back
            taken = min(count, int(row["value"]))
            await conn.execute(
                "UPDATE metrics.daily_fact SET value = value - $4"
                " WHERE municipality = $1 AND day = $2 AND fact = 'norm_outcome' AND dims = $3",
                municipality,
                day,
                row["dims"],
                float(taken),
            )
            count -= taken

    async def _write_cases(self, conn: asyncpg.Connection, t: Tally) -> None:
        opened = sorted((k, v) for k, v in t.cases.items() if v is not None)
        closed = sorted(k for k, v in t.cases.items() if v is None)
        if opened:
            await conn.execute(
                "INSERT INTO metrics.open_case"
                " (municipality, case_id, case_type, opened_at, reopened)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[],"
                " $5::bool[])"
                " ON CONFLICT (municipality, case_id) DO UPDATE"
                " SET case_type = excluded.case_type, opened_at = excluded.opened_at,"
                " reopened = excluded.reopened",
                [k[0] for k, _ in opened],
                [k[1] for k, _ in opened],
                [v.case_type for _, v in opened],
                [v.opened_at for _, v in opened],
                [v.reopened for _, v in opened],
            )
        if closed:
            await conn.execute(
                "DELETE FROM metrics.open_case WHERE (municipality, case_id) IN"
                " (SELECT * FROM unnest($1::text[], $2::text[]))",
                [k[0] for k in closed],
                [k[1] for k in closed],
            )

    async def _write_clocks(self, conn: asyncpg.Connection, t: Tally) -> None:
        running = sorted(
            ((k, v) for k, v in t.clocks.items() if v is not None), key=lambda kv: kv[0]
        )
        stopped = sorted(k for k, v in t.clocks.items() if v is None)
        if running:
            await conn.execute(
                "INSERT INTO metrics.running_clock"
                " (municipality, clock_id, norm, case_type, started_at, due_at, warned, breached)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
                " $5::timestamptz[], $6::timestamptz[], $7::bool[], $8::bool[])"
                " ON CONFLICT (municipality, clock_id) DO UPDATE SET norm = excluded.norm,"
                " case_type = excluded.case_type, started_at = excluded.started_at,"
                " due_at = excluded.due_at, warned = excluded.warned, breached = excluded.breached",
                [k[0] for k, _ in running],
                [k[1] for k, _ in running],
                [v.norm for _, v in running],
                [v.case_type for _, v in running],
                [v.started_at for _, v in running],
                [v.due_at for _, v in running],
                [v.warned for _, v in running],
                [v.breached for _, v in running],
            )
        if stopped:
            await conn.execute(
                "DELETE FROM metrics.running_clock WHERE (municipality, clock_id) IN"
                " (SELECT * FROM unnest($1::text[], $2::text[]))",
                [k[0] for k in stopped],
                [k[1] for k in stopped],
            )

    async def snapshot(self) -> Snapshot:
        """All counters and histograms plus the "now" gauges, read in one consistent view."""
        snap = Snapshot()
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            histogram_parts: dict[SeriesKey, dict[str, float]] = {}
            for r in await conn.fetch("SELECT metric, labels, sample, value FROM metrics.series"):
                metric = r["metric"]
                if metric not in BY_NAME:
                    continue  # a metric this version no longer exposes
                key = (metric, tuple(r["labels"]))
                if r["sample"] == "":
                    snap.counters[key] = r["value"]
                else:
                    histogram_parts.setdefault(key, {})[r["sample"]] = r["value"]
            for (metric, labels), parts in histogram_parts.items():
                buckets = [parts.get(s, 0.0) for s in bucket_samples(metric)]
                snap.histograms[(metric, labels)] = (
                    buckets,
                    parts.get("sum", 0.0),
                    parts.get("count", 0.0),
                )
            snap.gauges = await self._gauges(conn)
        return snap

    async def gauges(self) -> dict[str, dict[Labels, float]]:
        async with self.pool.acquire() as conn:
            return await self._gauges(conn)

    async def _gauges(self, conn: asyncpg.Connection) -> dict[str, dict[Labels, float]]:
        cases_open: dict[Labels, float] = {}
        running: dict[Labels, float] = {}
        at_risk: dict[Labels, float] = {}
        overdue: dict[Labels, float] = {}
        goals: dict[Labels, float] = {}
        for r in await conn.fetch(
            "SELECT municipality, case_type, count(*) AS n FROM metrics.open_case GROUP BY 1, 2"
        ):
            cases_open[(r["municipality"], r["case_type"])] = float(r["n"])
        for r in await conn.fetch(
            "SELECT municipality, norm, count(*) AS n,"
            " count(*) FILTER (WHERE warned AND NOT breached) AS at_risk,"
            " count(*) FILTER (WHERE breached) AS overdue"
            " FROM metrics.running_clock GROUP BY 1, 2"
        ):
            labels = (r["municipality"], r["norm"])
            running[labels] = float(r["n"])
            at_risk[labels] = float(r["at_risk"])
            overdue[labels] = float(r["overdue"])
        for r in await conn.fetch("SELECT municipality, norm, goal FROM metrics.norm_goal"):
            goals[(r["municipality"], r["norm"])] = r["goal"]
        return {
            "servicepuls_cases_open": cases_open,
            "servicepuls_norm_clocks_running": running,
            "servicepuls_norm_clocks_at_risk": at_risk,
            "servicepuls_norm_clocks_overdue": overdue,
            "servicepuls_norm_compliance_goal_ratio": goals,
        }
