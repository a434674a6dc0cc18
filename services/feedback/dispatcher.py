"""The dispatcher: sends due surveys, retries failed deliveries with backoff, expires unanswered
surveys and erases contact details that are no longer needed. Several replicas share the work
through `FOR UPDATE SKIP LOCKED`.

Nothing is sent twice: a survey is claimed (status `sending`, committed) before the message goes
out and marked sent after. If the process dies in between, the outcome is unknown; when the claim
lapses the survey is reported `delivery_failed` (`outcome_unknown`) instead of being sent again.
A graceful stop (SIGTERM) finishes the sends in flight first.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import structlog

from schemas.events import DeliveryChannel
from schemas.resident import ContactDetails
from services.common.sealing import SealError
from services.feedback import messages, metrics
from services.feedback import service as svc
from services.feedback.adapters import postgres as db
from services.feedback.adapters.delivery import DeliveryFailure, PermanentFailure
from services.feedback.adapters.sms import SmsGateway
from services.feedback.adapters.smtp import SmtpMailer
from services.feedback.clock import Clock
from services.feedback.config import PolicyBook
from services.feedback.domain.tokens import sign_link
from services.feedback.settings import FeedbackSettings

log = structlog.get_logger("feedback.dispatcher")


class Dispatcher:
    def __init__(
        self,
        *,
        settings: FeedbackSettings,
        pool: asyncpg.Pool,
        clock: Clock,
        book: PolicyBook,
        mailer: SmtpMailer,
        sms: SmsGateway,
        sealing_private: str | None,
        link_key: bytes,
        outbox_wake: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.clock = clock
        self.book = book
        self.mailer = mailer
        self.sms = sms
        self.sealing_private = sealing_private
        self.link_key = link_key
        self.outbox_wake = outbox_wake
        self.wake = asyncio.Event()
        self._stopping = False
        self._limit = asyncio.Semaphore(settings.dispatch_concurrency)

    def stop(self) -> None:
        self._stopping = True
        self.wake.set()

    async def run(self) -> None:
        housekeeping_at = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                handled = await self.deliver_due()
                if loop.time() >= housekeeping_at:
                    await self.housekeeping()
                    housekeeping_at = loop.time() + 5
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatcher round failed; retrying")
                handled = 0
            if handled == 0 and not self._stopping:
                self.wake.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=self.settings.poll_seconds)

    async def deliver_due(self) -> int:
        s = self.settings
        async with self.pool.acquire() as conn, conn.transaction():
            now = await self.clock.now(conn)
            lease = datetime.now(UTC) + timedelta(seconds=s.sending_lease_seconds)
            claimed = await db.claim_due(conn, now, lease, s.dispatch_batch)
            # Taken to be sent for the first time: no earlier closure can replace it any more,
            # so its survey.scheduled is published now (service.scheduled_event).
            final = [svc.scheduled_event(r) for r in claimed if r["attempts"] == 1]
            await db.enqueue(conn, [e for e in final if e is not None])
        if claimed:
            # Sends in flight are awaited even when a stop is requested (shielded below).
            await asyncio.shield(self._deliver_all(claimed, now))
        return len(claimed)

    async def _deliver_all(self, claimed: list[asyncpg.Record], now: datetime) -> None:
        outcomes = await asyncio.gather(*(self._deliver(row, now) for row in claimed))
        delivered = [o for o in outcomes if o is not None]
        if not delivered:
            return
        # One commit for the whole round: what was sent is recorded together.
        async with self.pool.acquire() as conn, conn.transaction():
            events = []
            for survey, expires_at, list_date in delivered:
                if await db.mark_sent(conn, survey["survey_id"], now, expires_at, list_date):
                    events.append(svc.sent_event(survey, now, expires_at))
            await db.enqueue(conn, events)
        for survey, _, _ in delivered:
            metrics.DELIVERIES.labels(survey["delivery_channel"], "sent").inc()
        self.outbox_wake.set()

    async def _deliver(
        self, survey: asyncpg.Record, now: datetime
    ) -> tuple[asyncpg.Record, datetime, date | None] | None:
        """Send one survey; its outcome if sent, None if it failed (recorded already)."""
        channel = DeliveryChannel(survey["delivery_channel"])
        policy = self.book.for_case(survey["municipality"], survey["case_type"])
        valid_for = policy.link_valid_for if policy else timedelta(days=14)
        expires_at = now + valid_for
        token = sign_link(self.link_key, survey["survey_id"], expires_at)
        list_date: date | None = None
        try:
            async with self._limit:
                contact = self._open(survey)
                if channel is DeliveryChannel.EMAIL:
                    if not contact.email:
                        raise PermanentFailure("no_email_address")
                    await self.mailer.send(
                        messages.survey_email(
                            to=contact.email,
                            sender=self.settings.smtp.from_address,
                            municipality_name=self.book.municipality_name(survey["municipality"]),
                            language=survey["language"],
                            base_url=self.settings.public_base_url,
                            token=token,
                            survey_id=str(survey["survey_id"]),
                        )
                    )
                elif channel is DeliveryChannel.SMS:
                    if not contact.phone:
                        raise PermanentFailure("no_phone_number")
                    await self.sms.send(
                        str(survey["survey_id"]),
                        contact.phone,
                        messages.survey_sms(
                            municipality_name=self.book.municipality_name(survey["municipality"]),
                            language=survey["language"],
                            base_url=self.settings.public_base_url,
                            token=token,
                        ),
                    )
                else:
                    # Letter and phone lists: the survey joins today's list for staff.
                    zone = ZoneInfo(policy.timezone if policy else "Europe/Amsterdam")
                    list_date = now.astimezone(zone).date()
        except DeliveryFailure as failure:
            await self._failed(survey, failure)
            return None
        return survey, expires_at, list_date

    def _open(self, survey: asyncpg.Record) -> ContactDetails:
        if not survey["sealed_contact"] or not self.sealing_private:
            raise PermanentFailure("no_contact_details")
        try:
            return svc.unseal_contact(self.sealing_private, survey["sealed_contact"])
        except (SealError, ValueError) as exc:
            raise PermanentFailure("contact_details_unreadable") from exc

    async def _failed(self, survey: asyncpg.Record, failure: DeliveryFailure) -> None:
        s = self.settings
        channel = survey["delivery_channel"]
        final = isinstance(failure, PermanentFailure) or survey["attempts"] >= s.max_attempts
        async with self.pool.acquire() as conn, conn.transaction():
            if final:
                if await db.mark_failed(conn, survey["survey_id"], failure.code):
                    now = await self.clock.now(conn)
                    await db.enqueue(conn, [svc.delivery_failed_event(survey, now, failure.code)])
            else:
                at = datetime.now(UTC) if self.clock.mode == "wall" else await self.clock.now(conn)
                retry_at = at + db.backoff(
                    survey["attempts"], s.retry_base_seconds, s.retry_max_seconds
                )
                await db.mark_retry(conn, survey["survey_id"], retry_at, failure.code)
        metrics.DELIVERIES.labels(channel, "failed" if final else "retry").inc()
        log.info(
            "delivery failed",
            survey_id=str(survey["survey_id"]),
            channel=channel,
            error=failure.code,
            attempt=survey["attempts"],
            final=final,
        )
        self.outbox_wake.set()

    async def housekeeping(self) -> None:
        """Expire unanswered surveys, report abandoned sends (old data: services/feedback/retention.py)."""
        async with self.pool.acquire() as conn, conn.transaction():
            now = await self.clock.now(conn)
            expired = await db.expire_due(conn, now, 500)
            abandoned = await db.abandoned_sends(conn, datetime.now(UTC))
            events: list[Any] = [svc.expired_event(r) for r in expired]
            events += [svc.delivery_failed_event(r, now, "outcome_unknown") for r in abandoned]
            await db.enqueue(conn, events)
        if expired:
            metrics.EXPIRED.inc(len(expired))
        for row in abandoned:
            metrics.DELIVERIES.labels(row["delivery_channel"], "failed").inc()
        if events:
            self.outbox_wake.set()
