"""Feedback's tables in PostgreSQL: surveys, residents (by pseudonym), the outbox, the clock.

Every function takes a connection inside the caller's transaction, so a state change and the
events it causes commit together (outbox), and a consumed event is marked processed in the same
transaction as its effect (dedupe).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from schemas.envelope import Envelope

SCHEMA = "feedback"


async def create_pool(
    database_url: str, *, schema: str = SCHEMA, min_size: int = 1, max_size: int = 10
) -> asyncpg.Pool:
    # A server setting, not a SET: the pool's RESET ALL on release would undo a SET.
    return await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": f'"{schema}", public'},
    )


async def first_time_seen(conn: asyncpg.Connection, dedupe_key: str) -> bool:
    """Mark an input event processed; False when it was processed before (a redelivery)."""
    inserted = await conn.fetchval(
        "INSERT INTO processed_events (dedupe_key) VALUES ($1) ON CONFLICT DO NOTHING RETURNING 1",
        dedupe_key,
    )
    return inserted is not None


async def enqueue(conn: asyncpg.Connection, events: Iterable[Envelope[Any]]) -> None:
    rows = [(json.dumps(e.model_dump(mode="json")),) for e in events]
    if rows:
        await conn.executemany("INSERT INTO outbox (event) VALUES ($1::jsonb)", rows)


async def advance_event_clock(conn: asyncpg.Connection, seen: datetime) -> None:
    await conn.execute(
        "INSERT INTO event_clock (singleton, watermark) VALUES (true, $1)"
        " ON CONFLICT (singleton) DO UPDATE"
        " SET watermark = greatest(event_clock.watermark, excluded.watermark)",
        seen,
    )


async def event_clock(conn: asyncpg.Connection) -> datetime | None:
    return await conn.fetchval("SELECT watermark FROM event_clock")


# --- cases opened with a resident --------------------------------------------------------------


async def keep_case_resident(conn: asyncpg.Connection, **row: Any) -> None:
    await conn.execute(
        "INSERT INTO case_residents (municipality, case_id, resident_ref, sealed_contact,"
        " reachable_by, survey_consent, language, channel, party_role, opened_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (municipality, case_id) DO UPDATE SET resident_ref = excluded.resident_ref,"
        " sealed_contact = excluded.sealed_contact, reachable_by = excluded.reachable_by,"
        " survey_consent = excluded.survey_consent, language = excluded.language",
        row["municipality"],
        row["case_id"],
        row["resident_ref"],
        row["sealed_contact"],
        row["reachable_by"],
        row["survey_consent"],
        row["language"],
        row["channel"],
        row["party_role"],
        row["opened_at"],
    )


async def take_case_resident(
    conn: asyncpg.Connection, municipality: str, case_id: str
) -> asyncpg.Record | None:
    """The resident kept at opening, removed now: after closing, feedback no longer needs it."""
    return await conn.fetchrow(
        "DELETE FROM case_residents WHERE municipality = $1 AND case_id = $2 RETURNING *",
        municipality,
        case_id,
    )


async def forget_old_case_residents(conn: asyncpg.Connection, before: datetime) -> int:
    result = await conn.execute("DELETE FROM case_residents WHERE opened_at < $1", before)
    return int(result.split()[-1])


# --- residents (pseudonymous) ------------------------------------------------------------------


async def lock_resident(conn: asyncpg.Connection, resident_ref: str) -> asyncpg.Record:
    """The resident's row, locked until commit: two closures of one resident handled at the same
    time by two replicas cannot both pass the throttle."""
    await conn.execute(
        "INSERT INTO residents (resident_ref) VALUES ($1) ON CONFLICT DO NOTHING", resident_ref
    )
    return await conn.fetchrow(
        "SELECT * FROM residents WHERE resident_ref = $1 FOR UPDATE", resident_ref
    )


async def record_surveyed(conn: asyncpg.Connection, resident_ref: str, at: datetime) -> None:
    """The resident's latest surveyed closure time, as the caller worked it out (it can move back
    when a later closure's unsent survey gives way to an earlier one)."""
    await conn.execute(
        "UPDATE residents SET last_surveyed_at = $2 WHERE resident_ref = $1", resident_ref, at
    )


async def opt_out(
    conn: asyncpg.Connection, resident_ref: str, at: datetime
) -> list[asyncpg.Record]:
    """Never survey this resident again: erase contact details of their open surveys and cancel
    the ones not sent yet (returned, so the caller can say why)."""
    await conn.execute(
        "INSERT INTO residents (resident_ref, opted_out_at) VALUES ($1, $2)"
        " ON CONFLICT (resident_ref) DO UPDATE"
        " SET opted_out_at = coalesce(residents.opted_out_at, excluded.opted_out_at)",
        resident_ref,
        at,
    )
    await conn.execute(
        "UPDATE surveys SET sealed_contact = NULL WHERE resident_ref = $1"
        " AND sealed_contact IS NOT NULL AND status IN ('sent', 'sending')",
        resident_ref,
    )
    return await conn.fetch(
        "UPDATE surveys SET status = 'cancelled', suppression = 'opted_out',"
        " sealed_contact = NULL, next_attempt_at = NULL"
        " WHERE resident_ref = $1 AND status = 'scheduled' RETURNING *",
        resident_ref,
    )


# --- surveys ----------------------------------------------------------------------------------

# A survey was chosen for the closure (whatever became of it since).
NOT_CHOSEN = ["suppressed", "cancelled"]


async def surveyed_near(
    conn: asyncpg.Connection,
    resident_ref: str,
    closed_after: datetime,
    closed_before: datetime,
) -> list[dict[str, Any]]:
    """The resident's closures with a chosen survey, closed in the open interval given; `unsent`
    is true for each that can still give way to an earlier closure: scheduled, never handed to a
    sender, and locked now (SKIP LOCKED: a survey that a dispatcher is claiming right now, or
    that another transaction holds, counts as sent — it may be). The caller holds the
    resident's lock, so no other decision about this resident runs meanwhile."""
    rows = await conn.fetch(
        "SELECT survey_id, subject_kind, subject_id, closed_at, status, attempts FROM surveys"
        " WHERE resident_ref = $1 AND closed_at > $2 AND closed_at < $3"
        " AND NOT (status = ANY($4::text[])) ORDER BY closed_at, subject_kind, subject_id",
        resident_ref,
        closed_after,
        closed_before,
        NOT_CHOSEN,
    )
    candidates = [r["survey_id"] for r in rows if r["status"] == "scheduled" and not r["attempts"]]
    locked: set[uuid.UUID] = set()
    if candidates:
        locked = {
            r["survey_id"]
            for r in await conn.fetch(
                "SELECT survey_id FROM surveys WHERE survey_id = ANY($1::uuid[])"
                " AND status = 'scheduled' AND attempts = 0 FOR UPDATE SKIP LOCKED",
                candidates,
            )
        }
    return [{**dict(r), "unsent": r["survey_id"] in locked} for r in rows]


async def give_way(conn: asyncpg.Connection, survey_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """Unsent surveys of later closures that an earlier closure of the resident replaces: they
    become what they would have been had the earlier closure been read first (suppressed,
    throttled, no contact details). The rows were locked by `surveyed_near`."""
    return await conn.fetch(
        "UPDATE surveys SET status = 'suppressed', suppression = 'throttled',"
        " delivery_channel = NULL, sealed_contact = NULL, send_at = NULL, next_attempt_at = NULL"
        " WHERE survey_id = ANY($1::uuid[]) AND status = 'scheduled' AND attempts = 0"
        " RETURNING *",
        survey_ids,
    )


async def survey_for_subject(
    conn: asyncpg.Connection, municipality: str, subject_kind: str, subject_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM surveys WHERE municipality = $1 AND subject_kind = $2 AND subject_id = $3",
        municipality,
        subject_kind,
        subject_id,
    )


async def get_survey(conn: asyncpg.Connection, survey_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM surveys WHERE survey_id = $1", survey_id)


_SURVEY_COLUMNS = (
    "survey_id",
    "municipality",
    "subject_kind",
    "subject_id",
    "case_type",
    "channel",
    "party_role",
    "resident_ref",
    "language",
    "status",
    "suppression",
    "delivery_channel",
    "sealed_contact",
    "decided_at",
    "closed_at",
    "send_at",
    "next_attempt_at",
    "low_score",
    "decided_by",
    "answered_at",
    "answered_via",
    "score",
    "comment",
    "may_contact",
)


async def insert_survey(conn: asyncpg.Connection, **row: Any) -> bool:
    """Insert the one row of this subject; False when it already had one (a race lost)."""
    values = [row.get(c) for c in _SURVEY_COLUMNS]
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    inserted = await conn.fetchval(
        f"INSERT INTO surveys ({', '.join(_SURVEY_COLUMNS)}) VALUES ({placeholders})"
        " ON CONFLICT DO NOTHING RETURNING 1",
        *values,
    )
    return inserted is not None


async def claim_due(
    conn: asyncpg.Connection, now: datetime, lease_until: datetime, limit: int
) -> list[asyncpg.Record]:
    """Take due surveys for delivery. SKIP LOCKED lets replicas share the work; the claim is
    committed before sending, so a survey is never handed to two senders."""
    return await conn.fetch(
        "UPDATE surveys SET status = 'sending', attempts = attempts + 1, lease_until = $2"
        " WHERE survey_id IN (SELECT survey_id FROM surveys WHERE status = 'scheduled'"
        "  AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
        " RETURNING *",
        now,
        lease_until,
        limit,
    )


async def mark_sent(
    conn: asyncpg.Connection,
    survey_id: uuid.UUID,
    sent_at: datetime,
    expires_at: datetime,
    list_date: date | None,
) -> bool:
    # The resident may have answered already (the message arrives before this commits): the
    # survey stays answered, but it was sent all the same.
    done = await conn.fetchval(
        "UPDATE surveys SET status = CASE WHEN status = 'sending' THEN 'sent' ELSE status END,"
        " sent_at = $2, expires_at = $3, list_date = $4,"
        " lease_until = NULL, next_attempt_at = NULL, last_error = NULL"
        " WHERE survey_id = $1"
        " AND (status = 'sending' OR (status = 'answered' AND sent_at IS NULL)) RETURNING 1",
        survey_id,
        sent_at,
        expires_at,
        list_date,
    )
    return done is not None


async def mark_retry(
    conn: asyncpg.Connection, survey_id: uuid.UUID, at: datetime, error: str
) -> bool:
    done = await conn.fetchval(
        "UPDATE surveys SET status = 'scheduled', next_attempt_at = $2, last_error = $3,"
        " lease_until = NULL WHERE survey_id = $1 AND status = 'sending' RETURNING 1",
        survey_id,
        at,
        error,
    )
    return done is not None


async def mark_failed(conn: asyncpg.Connection, survey_id: uuid.UUID, error: str) -> bool:
    done = await conn.fetchval(
        "UPDATE surveys SET status = 'failed', last_error = $2, lease_until = NULL,"
        " sealed_contact = NULL WHERE survey_id = $1 AND status = 'sending' RETURNING 1",
        survey_id,
        error,
    )
    return done is not None


async def abandoned_sends(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    """Claims whose sender vanished (crash mid-send): the outcome is unknown, so they are
    reported failed rather than sent a second time."""
    return await conn.fetch(
        "UPDATE surveys SET status = 'failed', last_error = 'outcome_unknown',"
        " sealed_contact = NULL, lease_until = NULL"
        " WHERE survey_id IN (SELECT survey_id FROM surveys WHERE status = 'sending'"
        "  AND lease_until < $1 FOR UPDATE SKIP LOCKED) RETURNING *",
        now,
    )


async def expire_due(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "UPDATE surveys SET status = 'expired', sealed_contact = NULL"
        " WHERE survey_id IN (SELECT survey_id FROM surveys WHERE status = 'sent'"
        "  AND expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " RETURNING *",
        now,
        limit,
    )


async def record_answer(
    conn: asyncpg.Connection,
    survey_id: uuid.UUID,
    now: datetime,
    *,
    score: int,
    comment: str | None,
    may_contact: bool,
    via: str,
    statuses: tuple[str, ...] = ("sent",),
) -> asyncpg.Record | None:
    """Single use: only an open survey takes an answer; the row update is the arbiter when two
    submits race. Contact details are erased: they are no longer needed."""
    return await conn.fetchrow(
        "UPDATE surveys SET status = 'answered', answered_at = $2, score = $3, comment = $4,"
        " may_contact = $5, answered_via = $6, sealed_contact = NULL, next_attempt_at = NULL"
        " WHERE survey_id = $1 AND status = ANY($7::text[])"
        " AND (expires_at IS NULL OR expires_at > $2) RETURNING *",
        survey_id,
        now,
        score,
        comment,
        may_contact,
        via,
        list(statuses),
    )


async def record_supplement(
    conn: asyncpg.Connection,
    survey_id: uuid.UUID,
    now: datetime,
    comment: str | None,
    may_contact: bool,
) -> asyncpg.Record | None:
    """After a score sent from a score link without a remark, the resident may add one once,
    while the link is valid."""
    return await conn.fetchrow(
        "UPDATE surveys SET comment = $3, may_contact = $4, supplemented_at = $2"
        " WHERE survey_id = $1 AND status = 'answered' AND answered_via = 'email_one_click'"
        " AND comment IS NULL AND supplemented_at IS NULL AND expires_at > $2 RETURNING *",
        survey_id,
        now,
        comment,
        may_contact,
    )


async def day_list(
    conn: asyncpg.Connection, municipality: str, day: date, channel: str
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM surveys WHERE municipality = $1 AND list_date = $2"
        " AND delivery_channel = $3 AND status = 'sent' AND sealed_contact IS NOT NULL"
        " ORDER BY sent_at",
        municipality,
        day,
        channel,
    )


def backoff(attempt: int, base_seconds: float, max_seconds: float) -> timedelta:
    return timedelta(seconds=min(max_seconds, base_seconds * 2 ** max(0, attempt - 1)))


# --- erasure on request (AVG art. 17) ----------------------------------------------------------

OPEN_STATUSES = ["scheduled", "sending", "sent"]


def _count(result: str) -> int:
    return int(result.split()[-1])


async def erase_resident(
    conn: asyncpg.Connection,
    municipality: str,
    refs: list[str],
    *,
    opt_out_refs: list[str],
    opt_out: bool,
    at: datetime,
) -> dict[str, Any]:
    """Erase what feedback holds of the resident known by any of `refs`, in one municipality.

    Survey rows stay as anonymous aggregates (municipality, case type, channel, status, score,
    dates), under a fresh id and without subject, pseudonym, contact details, remark or
    permission to contact: the survey link stops working, the case cannot be traced back. A
    survey still open is cancelled. The kept case resident goes. The resident record goes unless
    another municipality's surveys still refer to it, or the resident also asked never to be
    surveyed again (then only the opt-out is kept). Outbox events not yet published lose the
    pseudonym; published ones that carry it are deleted."""
    locked = await conn.fetch(
        "SELECT survey_id, status FROM surveys WHERE municipality = $1"
        " AND resident_ref = ANY($2::text[]) FOR UPDATE",
        municipality,
        refs,
    )
    await conn.execute(
        "WITH fresh AS (SELECT survey_id AS old, gen_random_uuid() AS new FROM surveys"
        "  WHERE municipality = $1 AND resident_ref = ANY($2::text[]))"
        " UPDATE surveys s SET survey_id = fresh.new, subject_id = 'erased-' || fresh.new,"
        "  resident_ref = NULL, sealed_contact = NULL, comment = NULL, may_contact = NULL,"
        "  last_error = NULL, list_date = NULL, lease_until = NULL, next_attempt_at = NULL,"
        "  status = CASE WHEN s.status = ANY($3::text[]) THEN 'cancelled' ELSE s.status END,"
        "  suppression = CASE WHEN s.status = ANY($3::text[]) THEN 'erased' ELSE s.suppression END"
        " FROM fresh WHERE s.survey_id = fresh.old",
        municipality,
        refs,
        OPEN_STATUSES,
    )
    case_residents = _count(
        await conn.execute(
            "DELETE FROM case_residents WHERE municipality = $1 AND resident_ref = ANY($2::text[])",
            municipality,
            refs,
        )
    )
    # Still needed by another municipality served here (its throttle, its open surveys)?
    elsewhere = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM surveys WHERE resident_ref = ANY($1::text[]))"
        " OR EXISTS (SELECT 1 FROM case_residents WHERE resident_ref = ANY($1::text[]))",
        refs,
    )
    resident_erased = False
    if opt_out:
        # Only the opt-out stays (and the throttle, when another municipality still needs it).
        kept = _count(
            await conn.execute(
                "UPDATE residents SET opted_out_at = coalesce(opted_out_at, $2)"
                + ("" if elsewhere else ", last_surveyed_at = NULL")
                + " WHERE resident_ref = ANY($1::text[])",
                refs,
                at,
            )
        )
        if not kept:
            await conn.executemany(
                "INSERT INTO residents (resident_ref, opted_out_at) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                [(ref, at) for ref in opt_out_refs],
            )
    elif not elsewhere:
        resident_erased = (
            _count(
                await conn.execute(
                    "DELETE FROM residents WHERE resident_ref = ANY($1::text[])", refs
                )
            )
            > 0
        )
    await conn.execute(
        "DELETE FROM outbox WHERE sent_at IS NOT NULL AND event->>'municipality' = $1"
        " AND event->'data'->>'resident_ref' = ANY($2::text[])",
        municipality,
        refs,
    )
    await conn.execute(
        "UPDATE outbox SET event = jsonb_set(event, '{data,resident_ref}', 'null')"
        " WHERE sent_at IS NULL AND event->>'municipality' = $1"
        " AND event->'data'->>'resident_ref' = ANY($2::text[])",
        municipality,
        refs,
    )
    return {
        "surveys_erased": len(locked),
        "open_surveys_cancelled": sum(1 for r in locked if r["status"] in OPEN_STATUSES),
        "case_residents_erased": case_residents,
        "resident_record_erased": resident_erased,
        "opt_out_kept": opt_out,
    }


# --- retention --------------------------------------------------------------------------------


def _municipalities(others: bool) -> str:
    """The municipalities named ($1), or (others) every municipality not named."""
    return "NOT (municipality = ANY($1::text[]))" if others else "municipality = ANY($1::text[])"


async def purge_surveys(
    conn: asyncpg.Connection,
    municipalities: list[str],
    closed_before: datetime,
    *,
    others: bool = False,
) -> int:
    """Survey rows of closures older than the retention period, unless still open."""
    return _count(
        await conn.execute(
            f"DELETE FROM surveys WHERE {_municipalities(others)} AND closed_at < $2"
            " AND NOT (status = ANY($3::text[]))",
            municipalities,
            closed_before,
            OPEN_STATUSES,
        )
    )


async def purge_remarks(
    conn: asyncpg.Connection,
    municipalities: list[str],
    answered_before: datetime,
    *,
    others: bool = False,
) -> int:
    """Free-text remarks older than their retention period are blanked; the score stays."""
    return _count(
        await conn.execute(
            f"UPDATE surveys SET comment = NULL WHERE {_municipalities(others)}"
            " AND comment IS NOT NULL AND answered_at < $2",
            municipalities,
            answered_before,
        )
    )


async def purge_residents(
    conn: asyncpg.Connection, surveyed_before: datetime, opted_out_before: datetime
) -> int:
    """Resident records no longer needed: the throttle window since their last survey has passed
    (or they were never surveyed), any opt-out is older than its retention, and no survey or kept
    case resident still refers to them."""
    return _count(
        await conn.execute(
            "DELETE FROM residents r WHERE (r.last_surveyed_at IS NULL OR r.last_surveyed_at < $1)"
            " AND (r.opted_out_at IS NULL OR r.opted_out_at < $2)"
            " AND NOT EXISTS (SELECT 1 FROM surveys s WHERE s.resident_ref = r.resident_ref"
            "  AND s.status = ANY($3::text[]))"
            " AND NOT EXISTS (SELECT 1 FROM case_residents c WHERE c.resident_ref = r.resident_ref)",
            surveyed_before,
            opted_out_before,
            OPEN_STATUSES,
        )
    )


async def purge_dedupe_keys(conn: asyncpg.Connection, processed_before: datetime) -> int:
    return _count(
        await conn.execute("DELETE FROM processed_events WHERE processed_at < $1", processed_before)
    )
