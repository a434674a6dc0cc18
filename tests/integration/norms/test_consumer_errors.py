"""The norms consumer when PostgreSQL rejects its transactions, as a real process against real
Kafka and PostgreSQL.

The consumer reads and prepares the next batch while the last one is still being applied, and
commits a batch's offsets itself once it is. A transaction that fails must rewind the consumer
to the oldest offsets not committed, even when no further batch comes to notice: otherwise its
events would be skipped until the next restart.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.common import Channel
from schemas.envelope import encode
from schemas.events import CaseOpened
from services.common.kafka import durable_producer, send_records
from tests.integration.norms.support import (
    drop_schema,
    event,
    fetchval,
    free_ports,
    new_schema,
    private_config,
    service_env,
)
from tests.support.kafka import BOOTSTRAP, private_topics
from tests.support.services import running_service

pytestmark = pytest.mark.integration


async def test_events_of_transactions_that_failed_are_applied_once_the_database_takes_them(
    tmp_path: Path,
) -> None:
    run = uuid.uuid4().hex[:8]
    intake_topic, norms_topic = f"servicepuls.test-{run}.intake", f"servicepuls.test-{run}.norms"
    schema = new_schema("norms_errors")
    config = private_config(tmp_path, f"errors-{run}")
    [port] = free_ports(1)
    env = service_env(
        config,
        schema,
        port=port,
        intake_topic=intake_topic,
        norms_topic=norms_topic,
        auto_offset_reset="earliest",
    )

    def opened(n: int) -> object:
        case = CaseOpened(case_id=f"Z-{run}-{n}", case_type="test-snel", channel=Channel.WEBFORM)
        return replace(encode(event(case, datetime.now(UTC))), topic=intake_topic)

    producer = durable_producer(BOOTSTRAP, "norms-errors-test")
    await producer.start()
    try:
        async with (
            private_topics(intake_topic, norms_topic),
            running_service("norms", port=port, env=env),
        ):
            # Every transaction of the consumer fails while its dedupe table is away.
            await fetchval(f'ALTER TABLE "{schema}".processed_event RENAME TO away')
            await send_records(producer, [opened(n) for n in range(30)])
            await asyncio.sleep(4)  # consumed, tried, failed (more than once)
            assert await fetchval(f'SELECT count(*) FROM "{schema}".clock') == 0
            await fetchval(f'ALTER TABLE "{schema}".away RENAME TO processed_event')
            # Whether or not more events come, the failed ones are delivered again.
            deadline = time.monotonic() + 60
            while await fetchval(f'SELECT count(*) FROM "{schema}".processed_event') < 30:
                assert time.monotonic() < deadline, "events of the failed transactions lost"
                await asyncio.sleep(0.5)
            await send_records(producer, [opened(n) for n in range(30, 40)])
            while await fetchval(f'SELECT count(*) FROM "{schema}".processed_event') < 40:
                assert time.monotonic() < deadline, "events after the failure not applied"
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)  # room for a wrong second application to show
            clocks = await fetchval(
                f"SELECT count(*) FROM \"{schema}\".clock WHERE subject_id LIKE 'Z-{run}-%'"
            )
            assert clocks == 40
            assert await fetchval(f'SELECT count(*) FROM "{schema}".processed_event') == 40
    finally:
        await producer.stop()
        await drop_schema(schema)
