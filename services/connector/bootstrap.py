"""The composition root: configuration read and checked, adapters built and wired. Tests wire
fakes (an httpx transport, a private topic and schema) through the same door."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import httpx

from services.common.config import ConfigError, load_municipalities
from services.common.migrations import migrate
from services.common.sealing import Keys, load_keys
from services.connector.adapters.apis import ApiClient
from services.connector.adapters.kafka import EventWriter
from services.connector.adapters.store import MIGRATIONS, Store
from services.connector.config import Sources, load_sources
from services.connector.domain.mapping import Mapping
from services.connector.service import Connector
from services.connector.settings import ConnectorSettings


@dataclass(frozen=True)
class Configuration:
    """Everything read from files before anything connects: a mistake stops the start."""

    sources: Sources
    mappings: dict[str, Mapping]
    keys: Keys
    zones: dict[str, object]


def configure(settings: ConnectorSettings) -> Configuration:
    sources, mappings = load_sources(settings.sources_path())
    municipalities = load_municipalities(settings.infra.config_dir).by_code()
    unknown = [s.municipality for s in sources.sources if s.municipality not in municipalities]
    if unknown:
        raise ConfigError(
            f"{settings.sources_path()}: municipalities not in municipalities.yaml: {unknown}"
        )
    zones = {s.municipality: municipalities[s.municipality].zone for s in sources.sources}
    return Configuration(sources, mappings, load_keys(settings.infra.state_dir), zones)


async def bootstrap(
    settings: ConnectorSettings,
    configuration: Configuration | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Connector:
    """A connected connector: its schema migrated, Kafka producer started."""
    configuration = configuration or configure(settings)
    pool = await asyncpg.create_pool(settings.infra.database_url, min_size=1, max_size=8)
    async with pool.acquire() as conn:
        await migrate(conn, settings.db_schema, MIGRATIONS)
    writer = EventWriter.connect(
        settings.infra.kafka_bootstrap,
        topic=settings.topic,
        dead_letter_topic=settings.dead_letter_topic,
    )
    try:
        await writer.start()
    except Exception:
        await pool.close()
        raise
    return Connector(
        settings=settings,
        sources={s.municipality: s for s in configuration.sources.sources},
        mappings=configuration.mappings,
        zones=configuration.zones,  # type: ignore[arg-type]
        store=Store(pool, settings.db_schema),
        api=ApiClient(
            timeout=settings.fetch_timeout_seconds,
            tries=settings.fetch_tries,
            backoff=settings.fetch_backoff_seconds,
            transport=transport,
        ),
        writer=writer,
        keys=configuration.keys,
    )


async def shutdown(connector: Connector) -> None:
    await connector.api.close()
    await connector.writer.stop()
    await connector.store.pool.close()
