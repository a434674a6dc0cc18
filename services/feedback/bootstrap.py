"""The composition root: settings, configuration, database, Kafka, delivery adapters, and the
tasks that run inside the web app's lifespan (consumer, dispatcher, outbox relay)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from services.common.consumer import BatchConsumer
from services.common.deadletters import DeadLetters
from services.common.kafka import RenewingProducer
from services.common.migrations import migrate_url
from services.common.sealing import Keys, load_keys
from services.feedback import metrics
from services.feedback.adapters import outbox
from services.feedback.adapters import postgres as db
from services.feedback.adapters.sms import SmsGateway
from services.feedback.adapters.smtp import SmtpMailer
from services.feedback.clock import Clock
from services.feedback.config import PolicyBook, StaffTokens, load_policy_book, load_staff_tokens
from services.feedback.dispatcher import Dispatcher
from services.feedback.entrypoints.consumer import register_handlers
from services.feedback.ratelimit import Limits
from services.feedback.retention import apply_retention
from services.feedback.settings import FeedbackSettings

MIGRATIONS = Path(__file__).parent / "migrations"
log = structlog.get_logger("feedback")


class Feedback:
    """Everything the service is made of; tests can build one with other settings."""

    def __init__(self, settings: FeedbackSettings) -> None:
        self.settings = settings
        self.book: PolicyBook = load_policy_book(
            settings.infra.config_dir,
            delay_override=timedelta(seconds=settings.delay_seconds)
            if settings.delay_seconds is not None
            else None,
            always_send=settings.sending_hours == "always",
            link_valid_override=timedelta(seconds=settings.link_valid_seconds)
            if settings.link_valid_seconds
            else None,
        )
        self.staff_tokens: StaffTokens = load_staff_tokens(
            settings.staff_tokens_path(), served=self.book.municipalities
        )
        self.limits = Limits.build(
            page_per_minute=settings.page_requests_per_minute,
            failed_lookups_per_hour=settings.failed_lookups_per_hour,
            staff_per_minute=settings.staff_requests_per_minute,
            exempt=settings.rate_limit_exempt,
        )
        self.keys: Keys = load_keys(settings.infra.state_dir)
        self.link_key = settings.link_key_bytes()
        self.outbox_wake = asyncio.Event()
        self._pool: asyncpg.Pool | None = None
        self.producer: RenewingProducer | None = None
        self.broker = KafkaBroker(
            settings.infra.kafka_bootstrap, client_id="feedback", logger=log, graceful_timeout=15
        )
        self.dispatcher: Dispatcher | None = None
        self.dead_letters = DeadLetters(
            settings.infra.kafka_bootstrap, "feedback", metrics.DEAD_LETTERS, log=log
        )
        self.consumer = BatchConsumer(self.dead_letters, log)
        register_handlers(
            self.broker,
            consumer=self.consumer,
            pool_ref=lambda: self.pool,
            book=self.book,
            event_clock=settings.clock == "event",
            wake=self._wake_dispatcher,
            group=settings.consumer_group,
            start_from=settings.start_from,
            topic=settings.intake_topic,
            clock_max_ahead=settings.clock_max_ahead(),
        )

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "the pool exists once the app started"
        return self._pool

    @property
    def clock(self) -> Clock:
        return Clock(self.settings.clock, self.pool, self.settings.clock_max_ahead())

    def _wake_dispatcher(self) -> None:
        self.outbox_wake.set()
        if self.dispatcher is not None:
            self.dispatcher.wake.set()

    async def readiness_problems(self) -> list[str]:
        problems = []
        try:
            async with asyncio.timeout(3), self.pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1")
        except Exception:
            problems.append("database")
        try:
            assert self.producer is not None
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), 2)
        except Exception:
            problems.append("kafka")
        consumer = getattr(self.broker.subscribers[0], "consumer", None)
        if consumer is None or not consumer.assignment():
            problems.append("no intake partitions assigned yet")
        return problems

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        s = self.settings
        await migrate_url(s.infra.database_url, s.db_schema, MIGRATIONS)
        self._pool = await db.create_pool(s.infra.database_url, schema=s.db_schema, max_size=12)
        self.producer = RenewingProducer(s.infra.kafka_bootstrap, "feedback")
        await self.producer.start()
        await self.dead_letters.start()
        sms = SmsGateway(s.sms_gateway_url, s.sms_gateway_token)
        mailer = SmtpMailer(s.smtp, size=s.dispatch_concurrency)
        self.dispatcher = Dispatcher(
            settings=s,
            pool=self.pool,
            clock=self.clock,
            book=self.book,
            mailer=mailer,
            sms=sms,
            sealing_private=self.keys.sealing_private,
            link_key=self.link_key,
            outbox_wake=self.outbox_wake,
        )
        relay = asyncio.create_task(outbox.run_relay(self.pool, self.producer, self.outbox_wake))
        dispatching = asyncio.create_task(self.dispatcher.run())
        purge = asyncio.create_task(_every(3600, outbox.purge_sent, self.pool))
        retention = asyncio.create_task(
            _every(
                s.retention_interval_seconds,
                apply_retention,
                self.pool,
                self.book,
                # Soon after a start too: a service restarted more often than the interval
                # must still purge.
                first_after=min(60.0, s.retention_interval_seconds),
                dedupe_retention=timedelta(days=s.dedupe_retention_days),
                case_resident_retention=timedelta(days=s.case_resident_retention_days),
            )
        )
        await self.broker.start()
        log.info("feedback started", clock=s.clock, port=s.port)
        try:
            yield
        finally:
            await self.broker.stop()
            # Let sends in flight finish (nothing is claimed and then dropped), then drain events.
            self.dispatcher.stop()
            with suppress(Exception):
                await asyncio.wait_for(dispatching, s.smtp.timeout_seconds + 5)
            with suppress(Exception):
                await outbox.relay_once(self.pool, self.producer)
            for task in (relay, purge, retention, dispatching):
                task.cancel()
            for task in (relay, purge, retention, dispatching):
                with suppress(asyncio.CancelledError, Exception):
                    await task
            await sms.close()
            await mailer.close()
            await self.producer.stop()
            await self.dead_letters.stop()
            await self.pool.close()
            log.info("feedback stopped")


async def _every(
    seconds: float, job: Any, *args: Any, first_after: float | None = None, **kwargs: Any
) -> None:
    await asyncio.sleep(seconds if first_after is None else first_after)
    while True:
        try:
            await job(*args, **kwargs)
        except Exception as error:  # the next round tries again
            log.warning("periodic job failed", job=job.__name__, error=type(error).__name__)
        await asyncio.sleep(seconds)
