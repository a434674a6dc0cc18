"""Feedback benchmarks: surveys dispatched per second to a local SMTP server, and the survey
page's latency under load.

    .venv/bin/python -m benchmarks.feedback --surveys 2000 --page-seconds 20 --concurrency 32

Needs the local stack (PostgreSQL; Kafka for the page run's service). Uses a private PostgreSQL
schema, dropped afterwards, and an SMTP server (aiosmtpd) in this process.

1. Dispatch: N surveys, due now, with sealed e-mail addresses, are inserted; a `Dispatcher` (the
   service's own, real PostgreSQL, real SMTP over loopback) sends them all. Baseline in the same
   run: the same N messages sent straight with aiosmtplib at the same concurrency (no database,
   no sealing): the SMTP ceiling on this machine.
2. Page: the feedback service runs as a real process; K open surveys; `--concurrency` clients
   GET survey pages (distinct links) for `--page-seconds`. Baseline in the same run: the same
   load on `/health` (the HTTP stack without database or template).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import secrets
import socket
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosmtplib
import asyncpg
import httpx

from schemas.resident import ContactDetails
from services.common.migrations import migrate_url
from services.common.sealing import load_keys, seal
from services.common.settings import InfraSettings
from services.feedback import messages
from services.feedback.adapters import postgres as db
from services.feedback.adapters.sms import SmsGateway
from services.feedback.adapters.smtp import SmtpMailer
from services.feedback.bootstrap import MIGRATIONS
from services.feedback.clock import Clock
from services.feedback.config import load_policy_book
from services.feedback.dispatcher import Dispatcher
from services.feedback.domain.tokens import sign_link
from services.feedback.settings import FeedbackSettings, SmtpSettings
from tests.support.services import running_service

INFRA = InfraSettings()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def insert_surveys(
    schema: str, count: int, *, status: str, sealed: bool, expires: datetime | None = None
) -> list[uuid.UUID]:
    keys = load_keys(INFRA.state_dir)
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        survey_id = uuid.uuid4()
        contact = (
            seal(
                keys.sealing_public,
                ContactDetails(email=f"bench-{i}@example.org").model_dump_json().encode(),
            )
            if sealed
            else None
        )
        rows.append(
            (
                survey_id,
                "GM0383",
                "case",
                f"BENCH-{survey_id}",
                "melding-openbare-ruimte",
                "email",
                "inwoner",
                "a" * 64,
                "nl",
                status,
                "email",
                contact,
                now,
                now,
                now,
                now if status == "scheduled" else None,
                expires,
                now if status == "sent" else None,
            )
        )
    conn = await asyncpg.connect(INFRA.database_url)
    try:
        await conn.copy_records_to_table(
            "surveys",
            schema_name=schema,
            records=rows,
            columns=[
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
                "delivery_channel",
                "sealed_contact",
                "decided_at",
                "closed_at",
                "send_at",
                "next_attempt_at",
                "expires_at",
                "sent_at",
            ],
        )
    finally:
        await conn.close()
    return [r[0] for r in rows]


async def bench_dispatch(schema: str, count: int, concurrency: int) -> tuple[float, float]:
    # The SMTP server runs in its own process (as a relay would), discarding what it accepts.
    port = free_port()
    sink = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiosmtpd",
        "-n",
        "-l",
        f"127.0.0.1:{port}",
        "-c",
        "aiosmtpd.handlers.Sink",
    )
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            await asyncio.sleep(0.1)
    try:
        # Baseline: the same messages straight to SMTP at the same concurrency.
        limit = asyncio.Semaphore(concurrency)
        link_key = secrets.token_bytes(32)

        async def raw(i: int) -> None:
            async with limit:
                token = sign_link(link_key, uuid.uuid4(), datetime.now(UTC) + timedelta(days=14))
                await aiosmtplib.send(
                    messages.survey_email(
                        to=f"bench-{i}@example.org",
                        sender="kto@example.org",
                        municipality_name="Castricum",
                        language="nl",
                        base_url="http://127.0.0.1:8082",
                        token=token,
                        survey_id=str(i),
                    ),
                    hostname="127.0.0.1",
                    port=port,
                )

        started = time.perf_counter()
        await asyncio.gather(*(raw(i) for i in range(count)))
        baseline = count / (time.perf_counter() - started)

        await insert_surveys(schema, count, status="scheduled", sealed=True)
        settings = FeedbackSettings(
            db_schema=schema,
            dispatch_batch=200,
            dispatch_concurrency=concurrency,
            smtp=SmtpSettings(host="127.0.0.1", port=port),
        )
        pool = await db.create_pool(INFRA.database_url, schema=schema, max_size=concurrency + 4)
        keys = load_keys(INFRA.state_dir)
        dispatcher = Dispatcher(
            settings=settings,
            pool=pool,
            clock=Clock("wall", pool),
            book=load_policy_book(INFRA.config_dir),
            mailer=SmtpMailer(settings.smtp, size=concurrency),
            sms=SmsGateway(None, None),
            sealing_private=keys.sealing_private,
            link_key=link_key,
            outbox_wake=asyncio.Event(),
        )
        started = time.perf_counter()
        while await dispatcher.deliver_due():
            pass
        elapsed = time.perf_counter() - started
        sent = await pool.fetchval("SELECT count(*) FROM surveys WHERE status = 'sent'")
        await pool.close()
        assert sent == count, (sent, count)
        return count / elapsed, baseline
    finally:
        sink.terminate()
        await sink.wait()


async def load(
    client: httpx.AsyncClient, urls: list[str], seconds: float, concurrency: int
) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        i = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await client.get(urls[i % len(urls)])
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
            i += concurrency

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return latencies


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "count": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
    }


async def bench_page(
    schema: str, surveys: int, seconds: float, concurrency: int
) -> tuple[dict[str, float], dict[str, float]]:
    port = free_port()
    key = secrets.token_bytes(32)
    env = {
        "SERVICEPULS_FEEDBACK_DB_SCHEMA": schema,
        "SERVICEPULS_FEEDBACK_CONSUMER_GROUP": f"feedback-bench-{schema}",
        "SERVICEPULS_FEEDBACK_START_FROM": "latest",
        "SERVICEPULS_FEEDBACK_PORT": str(port),
        "SERVICEPULS_FEEDBACK_LINK_KEY": base64.urlsafe_b64encode(key).decode().rstrip("="),
        "SERVICEPULS_LOG_LEVEL": "WARNING",
    }
    async with running_service("feedback", port=port, env=env) as service:
        expires = datetime.now(UTC) + timedelta(days=14)
        ids = await insert_surveys(schema, surveys, status="sent", sealed=False, expires=expires)
        urls = [f"{service.base_url}/s/{sign_link(key, i, expires)}" for i in ids]
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=10) as client:
            await load(client, urls[:50], 2, concurrency)  # warm up
            health = summary(
                await load(client, [f"{service.base_url}/health"], seconds, concurrency)
            )
            page = summary(await load(client, urls, seconds, concurrency))
    return page, health


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--surveys", type=int, default=2000)
    parser.add_argument("--dispatch-concurrency", type=int, default=8)
    parser.add_argument("--page-surveys", type=int, default=2000)
    parser.add_argument("--page-seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    schema = f"feedback_bench{uuid.uuid4().hex[:8]}"
    await migrate_url(INFRA.database_url, schema, MIGRATIONS)
    try:
        rate, baseline = await bench_dispatch(schema, args.surveys, args.dispatch_concurrency)
        print(
            f"dispatch: {rate:,.0f} surveys/s ({args.surveys} e-mails, concurrency {args.dispatch_concurrency})"
        )
        print(
            f"  baseline raw aiosmtplib, same messages and concurrency: {baseline:,.0f} messages/s; ratio {rate / baseline:.2f}"
        )
    finally:
        conn = await asyncpg.connect(INFRA.database_url)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
    schema = f"feedback_bench{uuid.uuid4().hex[:8]}"
    try:
        page, health = await bench_page(
            schema, args.page_surveys, args.page_seconds, args.concurrency
        )
        print(
            f"survey page: p50 {page['p50_ms']:.1f} ms, p99 {page['p99_ms']:.1f} ms over {page['count']:,} requests "
            f"({page['count'] / args.page_seconds:,.0f}/s, {args.concurrency} concurrent clients)"
        )
        print(
            f"  baseline /health, same load: p50 {health['p50_ms']:.1f} ms, p99 {health['p99_ms']:.1f} ms "
            f"({health['count'] / args.page_seconds:,.0f}/s); p99 ratio {page['p99_ms'] / health['p99_ms']:.2f}"
        )
    finally:
        conn = await asyncpg.connect(INFRA.database_url)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())

__all__ = ["Path"]
