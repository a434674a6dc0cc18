"""The retention job: what feedback holds is kept no longer than each municipality allows
(`retention` in its survey policy file, docs/security.md), and no longer than feedback needs it.

- free-text remarks are blanked `remark_months` after the answer;
- survey rows are deleted `survey_months` after the closure (a survey still open is left alone);
- a kept case resident (the resident of a case not closed yet) goes after
  `case_resident_retention_days`;
- a resident record (pseudonym, last survey, opt-out) goes once the longest throttle window of
  the municipalities served has passed since the last survey, an opt-out is older than the
  longest `opt_out_months`, and no open survey or kept case resident refers to it;
- a dedupe key goes after `dedupe_retention_days`, the replay horizon.

A month counts as 31 days: data is never purged earlier than promised. Surveys of a municipality
no longer served follow the default periods. Every replica runs the job; the deletes are
idempotent, so two running at once purge each row once.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from services.feedback import metrics
from services.feedback.adapters import postgres as db
from services.feedback.config import PolicyBook, RetentionConfig

log = structlog.get_logger("feedback")


def months(n: int) -> timedelta:
    return timedelta(days=31 * n)


async def apply_retention(
    pool: asyncpg.Pool,
    book: PolicyBook,
    *,
    dedupe_retention: timedelta,
    case_resident_retention: timedelta,
    now: datetime | None = None,
) -> Counter[str]:
    """Purge what is past its retention; the counts per kind, also counted as a metric."""
    now = now or datetime.now(UTC)
    purged: Counter[str] = Counter()
    async with pool.acquire() as conn, conn.transaction():
        for code in book.municipalities:
            period = book.retention(code) or RetentionConfig()
            purged["surveys"] += await db.purge_surveys(
                conn, [code], now - months(period.survey_months)
            )
            purged["remarks"] += await db.purge_remarks(
                conn, [code], now - months(period.remark_months)
            )
        served = list(book.municipalities)
        default = RetentionConfig()
        purged["surveys"] += await db.purge_surveys(
            conn, served, now - months(default.survey_months), others=True
        )
        purged["remarks"] += await db.purge_remarks(
            conn, served, now - months(default.remark_months), others=True
        )
        purged["case_residents"] += await db.forget_old_case_residents(
            conn, now - case_resident_retention
        )
        throttle, opt_out = book.resident_record_horizon()
        purged["residents"] += await db.purge_residents(conn, now - throttle, now - opt_out)
        purged["dedupe_keys"] += await db.purge_dedupe_keys(conn, now - dedupe_retention)
    for what, count in purged.items():
        if count:
            metrics.PURGED.labels(what).inc(count)
    if any(purged.values()):
        log.info("retention applied", **{k: v for k, v in purged.items() if v})
    return purged
