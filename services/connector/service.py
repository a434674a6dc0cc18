"""What the connector does: hear a notification (queue it durably), and work one off (fetch
what changed, map it to case and contact events, admit them through intake's own admission,
publish them, remember the new state), retrying and dead-lettering what cannot be done."""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ValidationError

from services.common.pii import redact
from services.common.sealing import Keys, Sealer
from services.connector.adapters.apis import ApiClient, FetchFailed
from services.connector.adapters.kafka import EventWriter
from services.connector.adapters.store import Queued, Store
from services.connector.config import Source, callback_digest
from services.connector.domain.drafts import Draft
from services.connector.domain.klantcontacten import (
    UnmappedChannel,
    callback,
    contact_completed,
    klant_of,
)
from services.connector.domain.mapping import Mapping
from services.connector.domain.notification import (
    Feed,
    Notification,
    feed_for,
    feed_of,
    kanaal_label,
)
from services.connector.domain.resources import (
    AuditTrail,
    InterneTaak,
    Klantcontact,
    Partij,
    Resultaat,
    ResultaatType,
    Rol,
    Status,
    StatusType,
    Zaak,
    ZaakType,
)
from services.connector.domain.zaken import UnmappedCaseType, ZaakFacts, reconcile
from services.connector.metrics import ConnectorMetrics
from services.connector.settings import ConnectorSettings
from services.intake.domain.admission import Admitted, NotAdmitted, admit

log = structlog.get_logger("connector")

KLANTCONTACT_EXPAND = "hadBetrokkenen,hadBetrokkenen.digitaleAdressen,gingOverOnderwerpobjecten"


class Heard(StrEnum):
    QUEUED = "queued"
    REPEATED = "repeated"  # the same message again: acknowledged, no second effect
    IGNORED = "ignored"  # a kanaal, resource or actie that changes nothing we report


class Permanent(Exception):
    """A notification that will not succeed by trying again: dead-lettered at once."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Connector:
    settings: ConnectorSettings
    sources: dict[str, Source]
    mappings: dict[str, Mapping]
    zones: dict[str, ZoneInfo]
    store: Store
    api: ApiClient
    writer: EventWriter
    keys: Keys
    metrics: ConnectorMetrics = field(default_factory=ConnectorMetrics)
    # Catalogi resources (zaaktype, statustype, resultaattype) are versioned: a published
    # version does not change, so each is fetched once per process.
    _catalogi: dict[str, BaseModel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sealer = Sealer(self.keys.sealing_public)
        self.systems = {code: source.channel_system() for code, source in self.sources.items()}

    # --- receiving ------------------------------------------------------------------------

    def authenticate(self, municipality: str, authorization: str | None) -> Source | None:
        """The source whose abonnement was registered with this Authorization value."""
        source = self.sources.get(municipality.upper())
        if source is None or not authorization:
            return None
        if not hmac.compare_digest(callback_digest(authorization), source.callback_auth_sha256):
            return None
        return source

    async def hear(self, source: Source, notification: Notification) -> Heard:
        """Queue a notification durably (or recognise it as one heard before)."""
        if feed_for(notification) is None:
            heard = Heard.IGNORED
        elif await self.store.enqueue(source.municipality, notification):
            heard = Heard.QUEUED
        else:
            heard = Heard.REPEATED
        self.metrics.notifications.labels(
            source.municipality, kanaal_label(notification.kanaal), heard.value
        ).inc()
        return heard

    # --- working off the queue ------------------------------------------------------------

    async def work_one(self) -> bool:
        """Process the oldest due notification; False when there was none."""
        failure: Exception | None = None
        queued: Queued | None = None
        started = time.perf_counter()
        async with self.store.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    queued = await self.store.claim(conn)
                    if queued is None:
                        return False
                    drafts = await self._drafts(conn, queued)
                    admitted = self._admit(queued, drafts)
                    async with asyncio.timeout(self.settings.publish_timeout_seconds):
                        await self.writer.publish(a.record for a in admitted)
                    # The state and the done mark commit only after Kafka has the events: a
                    # crash in between republishes the same ids, which is harmless.
                    await self.store.done(conn, queued)
            except (FetchFailed, Permanent, KafkaError, TimeoutError) as exc:
                failure = exc
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                raise  # the database itself: the worker waits and tries again, nothing is lost
            except Exception as exc:
                if queued is None:
                    raise
                # A bug or a resource we did not foresee: counted as an attempt, so it ends
                # in the dead-letter topic rather than in an endless loop.
                log.exception("processing a notification failed unexpectedly")
                failure = Permanent("internal_error", type(exc).__name__)
                failure.retryable = True  # type: ignore[attr-defined]
        assert queued is not None
        if failure is None:
            for record in admitted:
                self.metrics.events.labels(
                    queued.municipality, _short_type(record.record.headers)
                ).inc()
            self.metrics.processing.observe(time.perf_counter() - started)
            log.info(
                "notification processed",
                municipality=queued.municipality,
                kanaal=queued.kanaal,
                resource=queued.resource,
                actie=queued.actie,
                events=len(admitted),
            )
            return True
        await self._failed(queued, failure)
        return True

    async def _failed(self, queued: Queued, failure: Exception) -> None:
        error = redact(str(failure))
        if isinstance(failure, (KafkaError, TimeoutError)):
            await self._kafka_failed(queued, failure)
            return
        reason = failure.reason  # type: ignore[attr-defined]
        attempts = queued.attempts + 1
        permanent = isinstance(failure, Permanent) and not getattr(failure, "retryable", False)
        if permanent or attempts >= self.settings.max_attempts:
            try:
                await self._dead_letter(queued, reason, error, attempts)
            except (KafkaError, TimeoutError) as exc:
                await self._kafka_failed(queued, exc)
                return
            await self.store.dead(queued, error)
            self.metrics.dead_letters.labels("connector", reason).inc()
            log.error(
                "notification dead-lettered",
                municipality=queued.municipality,
                reason=reason,
                error=error,
                attempts=attempts,
            )
            return
        retry_in = min(self.settings.retry_backoff_seconds * 2 ** (attempts - 1), 3600.0)
        await self.store.failed(queued, error, timedelta(seconds=retry_in))
        self.metrics.retries.labels(reason).inc()
        log.warning(
            "notification failed; trying again later",
            reason=reason,
            error=error,
            attempts=attempts,
            retry_in=retry_in,
        )

    async def _kafka_failed(self, queued: Queued, failure: BaseException) -> None:
        """The broker, not the notification: kept and tried again soon (without counting an
        attempt), never dead-lettered for it."""
        self.metrics.retries.labels("kafka").inc()
        log.warning("kafka unavailable; notification kept", error=type(failure).__name__)
        await self.writer.recover_from(failure)
        await self.store.postpone(
            queued,
            type(failure).__name__,
            timedelta(seconds=self.settings.kafka_retry_seconds),
        )

    async def _dead_letter(self, queued: Queued, reason: str, error: str, attempts: int) -> None:
        async with asyncio.timeout(self.settings.publish_timeout_seconds):
            await self.writer.dead_letter(
                municipality=queued.municipality,
                key=queued.hoofd_object,
                origin=f"notificaties-api/{queued.municipality}/{queued.id}",
                notification={
                    "kanaal": queued.kanaal,
                    "hoofdObject": queued.hoofd_object,
                    "resource": queued.resource,
                    "resourceUrl": queued.resource_url,
                    "actie": queued.actie,
                    "aanmaakdatum": queued.aanmaakdatum.isoformat(),
                },
                reason=reason,
                error=error,
                attempts=attempts,
            )

    def _admit(self, queued: Queued, drafts: list[Draft]) -> list[Admitted]:
        source = self.sources[queued.municipality]
        admitted = []
        for draft in drafts:
            document = draft.document(source=source.source, municipality=queued.municipality)
            try:
                admitted.append(
                    admit(
                        document,
                        system=self.systems[queued.municipality],
                        keys=self.keys,
                        sealer=self.sealer,
                    )
                )
            except NotAdmitted as error:
                raise Permanent("not_admitted", f"{draft.type}: {redact(str(error))}") from None
        return admitted

    async def _drafts(self, conn: asyncpg.Connection, queued: Queued) -> list[Draft]:
        source = self.sources.get(queued.municipality)
        if source is None:
            raise Permanent("unknown_municipality", f"{queued.municipality} is not configured")
        mapping = self.mappings[queued.municipality]
        feed = feed_of(queued.kanaal, queued.resource, queued.actie)
        try:
            if feed is Feed.ZAAK:
                facts = await self._zaak_facts(source, queued.hoofd_object)
                known = await self.store.zaak_state(conn, queued.municipality, facts.zaak.url)
                reconciled = reconcile(
                    facts,
                    known,
                    mapping,
                    changed_at=queued.aanmaakdatum,
                    zone=self.zones[queued.municipality],
                )
                await self.store.keep_zaak_state(
                    conn, queued.municipality, facts.zaak.url, reconciled.state
                )
                return reconciled.drafts
            if feed is Feed.KLANTCONTACT:
                found = await self.api.get(
                    source, queued.resource_url, params={"expand": KLANTCONTACT_EXPAND}
                )
                klantcontact = Klantcontact.model_validate(found)
                klant = klant_of(klantcontact)
                partij = None
                if klant is not None and klant.wasPartij is not None:
                    partij = await self._partij(source, klant.wasPartij.url)
                return [contact_completed(klantcontact, mapping, partij)]
            if feed is Feed.INTERNETAAK:
                taak = InterneTaak.model_validate(await self.api.get(source, queued.resource_url))
                return callback(taak, mapping, changed_at=queued.aanmaakdatum)
        except UnmappedCaseType as error:
            raise Permanent("unmapped_case_type", str(error)) from None
        except UnmappedChannel as error:
            raise Permanent("unmapped_channel", str(error)) from None
        except ValidationError as error:
            where = "; ".join(
                ".".join(str(p) for p in e["loc"]) + ": " + e["msg"]
                for e in error.errors(include_input=False, include_url=False)
            )
            raise Permanent("unreadable_resource", f"{error.title}: {where}") from None
        return []

    async def _zaak_facts(self, source: Source, zaak_url: str) -> ZaakFacts:
        zaak = Zaak.model_validate(await self.api.get(source, zaak_url))
        zaaktype = await self._catalogus(source, zaak.zaaktype, ZaakType)
        if source.zaken is None:
            raise Permanent("unknown_api", f"no Zaken API configured for {source.municipality}")
        zaken_api = source.zaken.base_url.rstrip("/")
        statuses = []
        for found in await self.api.all_pages(
            source, f"{zaken_api}/statussen", params={"zaak": zaak.url}
        ):
            status = Status.model_validate(found)
            statuses.append((status, await self._catalogus(source, status.statustype, StatusType)))
        resultaat = None
        if zaak.resultaat:
            found_result = Resultaat.model_validate(await self.api.get(source, zaak.resultaat))
            resultaat = (
                found_result,
                await self._catalogus(source, found_result.resultaattype, ResultaatType),
            )
        rollen = await self.api.all_pages(
            source,
            f"{zaken_api}/rollen",
            params={"zaak": zaak.url, "omschrijvingGeneriek": "initiator"},
        )
        initiator = Rol.model_validate(rollen[0]) if rollen else None
        bsn = (initiator.betrokkeneIdentificatie or {}).get("inpBsn") if initiator else None
        partij = await self._partij_by_bsn(source, bsn) if isinstance(bsn, str) and bsn else None
        return ZaakFacts(
            zaak,
            zaaktype,
            statuses,
            resultaat,
            initiator,
            await self._history(source, zaak),
            partij=partij,
        )

    async def _partij(self, source: Source, url: str) -> Partij | None:
        """A partij with its digitale adressen (where a resident's consent to be asked is)."""
        try:
            found = await self.api.get(source, url, params={"expand": "digitaleAdressen"})
        except FetchFailed as error:
            if error.status in (401, 403, 404):  # not ours to read: no addresses from it
                _partij_not_readable(source, error)
                return None
            raise
        return Partij.model_validate(found)

    async def _partij_by_bsn(self, source: Source, bsn: str) -> Partij | None:
        """The zaak's initiator in Open Klant, by the BSN the Zaken API gives (when the
        municipality has a Klantinteracties API); none found or not readable: None."""
        if source.klantinteracties is None:
            return None
        try:
            found = await self.api.all_pages(
                source,
                f"{source.klantinteracties.base_url.rstrip('/')}/partijen",
                params={
                    "partijIdentificator__codeSoortObjectId": "bsn",
                    "partijIdentificator__objectId": bsn,
                    "expand": "digitaleAdressen",
                },
            )
        except FetchFailed as error:
            if error.status in (401, 403, 404):
                _partij_not_readable(source, error)
                return None
            raise
        partijen = [Partij.model_validate(entry) for entry in found]
        # Open Klant can hold a resident twice (an old, inactive partij): the active one counts.
        active = [partij for partij in partijen if partij.indicatieActief]
        return (active or partijen or [None])[0]

    async def _history(self, source: Source, zaak: Zaak) -> list[AuditTrail] | None:
        """The zaak's audit trail: when each opschorting and verlenging happened. An API that
        does not let the connector read it (401/403/404) leaves the history unknown."""
        try:
            found = await self.api.get(source, f"{zaak.url.rstrip('/')}/audittrail")
        except FetchFailed as error:
            if error.status in (401, 403, 404):
                return None
            raise
        return [AuditTrail.model_validate(entry) for entry in found or []]

    async def _catalogus(self, source: Source, url: str, model: type[Any]) -> Any:
        found = self._catalogi.get(url)
        if found is None:
            found = model.model_validate(await self.api.get(source, url))
            self._catalogi[url] = found
        return found


def _partij_not_readable(source: Source, error: FetchFailed) -> None:
    """Consent stays unknown; said in the log, as a wrong token would otherwise pass unseen."""
    log.warning(
        "partij not readable in Open Klant: consent unknown",
        municipality=source.municipality,
        status=error.status,
    )


def _short_type(headers: list[tuple[str, bytes]]) -> str:
    for name, value in headers:
        if name == "ce_type":
            return value.decode().removeprefix("nl.servicepuls.").removesuffix(".v1")
    return "unknown"
