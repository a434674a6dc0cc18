"""E-mail delivery over SMTP (aiosmtplib), over a few kept-open connections.

Opening a connection (TCP, EHLO, STARTTLS, AUTH) costs more than sending one survey, so the
mailer keeps up to `size` connections and reuses them. A connection the server closed while idle
is noticed at the first command of the next message (before anything was accepted); that message
is then sent once more over a fresh connection.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import aiosmtplib

from services.feedback.adapters.delivery import PermanentFailure, TemporaryFailure
from services.feedback.settings import SmtpSettings


class SmtpMailer:
    def __init__(self, settings: SmtpSettings, size: int = 8) -> None:
        self.settings = settings
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(size)

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            start_tls=s.start_tls,
            timeout=s.timeout_seconds,
        )

    async def send(self, message: EmailMessage) -> None:
        """Deliver or raise: 4xx replies and connection trouble are temporary (retry later),
        5xx replies are permanent (the address will not start working)."""
        async with self._slots:
            reused = not self._idle.empty()
            client = self._idle.get_nowait() if reused else self._client()
            try:
                try:
                    await self._send_on(client, message)
                except aiosmtplib.SMTPServerDisconnected:
                    if not reused:
                        raise
                    await self._discard(client)
                    client = self._client()
                    await self._send_on(client, message)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                await self._discard(client)
                codes = [r.code for r in exc.recipients]
                if all(500 <= c < 600 for c in codes):
                    raise PermanentFailure("smtp_recipient_refused") from exc
                raise TemporaryFailure("smtp_recipient_deferred") from exc
            except aiosmtplib.SMTPResponseException as exc:
                await self._discard(client)
                if 500 <= exc.code < 600:
                    raise PermanentFailure(f"smtp_{exc.code}") from exc
                raise TemporaryFailure(f"smtp_{exc.code}") from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await self._discard(client)
                raise TemporaryFailure("smtp_unreachable") from exc
            self._idle.put_nowait(client)

    async def _send_on(self, client: aiosmtplib.SMTP, message: EmailMessage) -> None:
        if not client.is_connected:
            await client.connect()
        await client.send_message(message)

    async def _discard(self, client: aiosmtplib.SMTP) -> None:
        try:
            if client.is_connected:
                client.close()
        except Exception:  # a broken connection is dropped, whatever state it is in
            pass

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            try:
                if client.is_connected:
                    await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
