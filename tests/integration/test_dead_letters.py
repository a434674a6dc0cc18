"""Every consumer carries on, whatever arrives: a record of each bad kind between good events on
one partition of a real topic; norms, feedback and metrics each set every bad record aside on
the dead-letter topic exactly once, and the good events before and after it take full effect.
Then the dead letters are re-driven, and nothing counts twice."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from schemas.envelope import Envelope, encode
from services.common.deadletters import DeadLetter, Reason, read_all, redrive
from services.common.kafka import durable_producer
from tests.integration.feedback.harness import case_closed, case_opened, resident
from tests.integration.metrics.support import config_with, fresh_municipality, scrape
from tests.integration.norms.support import free_ports
from tests.support.kafka import BOOTSTRAP, private_topics
from tests.support.services import running_service

pytestmark = pytest.mark.asyncio
DATABASE_URL = __import__("os").environ.get(
    "SERVICEPULS_DATABASE_URL", "postgresql://servicepuls:servicepuls@127.0.0.1:55432/servicepuls"
)
SERVICES = ("norms", "feedback", "metrics")


def poison(
    good: Envelope[Any],
) -> list[tuple[Reason, bytes | None, list[tuple[str, bytes | None]]]]:
    """One record of every bad kind, each built from a good one, all with its key."""
    framed = encode(good)
    headers = framed.headers

    def header(name: str, value: bytes | None) -> list[tuple[str, bytes | None]]:
        return [(k, value if k == name else v) for k, v in headers]

    return [
        (Reason.EMPTY_VALUE, b"", headers),
        (Reason.EMPTY_VALUE, None, headers),  # a tombstone
        (Reason.INVALID_JSON, b"{not json", headers),
        (Reason.BAD_HEADER, framed.value, header("ce_subject", None)),
        (Reason.BAD_HEADER, framed.value, header("ce_id", b"\xff\xfe\xfd")),
        (Reason.MISSING_HEADER, framed.value, [(k, v) for k, v in headers if k != "ce_type"]),
        (Reason.UNKNOWN_TYPE, framed.value, header("ce_type", b"nl.servicepuls.case.eaten.v1")),
        (Reason.INVALID_DATA, b'{"case_id": "x"}', headers),
        (Reason.OVERSIZED, b" " * (600 * 1024) + framed.value, headers),
    ]


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.3)


async def count(query: str, *args: Any) -> int:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        return int(await conn.fetchval(query, *args))
    finally:
        await conn.close()


def metric_sum(samples: dict[Any, float], name: str, municipality: str) -> float:
    return sum(
        value
        for (sample, labels), value in samples.items()
        if sample == name and ("municipality", municipality) in labels
    )


async def test_bad_records_are_dead_lettered_once_per_service_and_good_ones_take_effect(
    tmp_path: Path,
) -> None:
    municipality = fresh_municipality()
    config = config_with(tmp_path, municipality)
    topic = f"servicepuls.intake.v1.test-dl-{uuid.uuid4().hex[:8]}"
    run = uuid.uuid4().hex[:8]
    norms_schema, feedback_schema = f"norms_dl_{run}", f"feedback_dl_{run}"
    someone = resident(email=f"dl-{run}@example.org", consent=True)
    # Before, between and after the poison: events each service acts on, all on one key.
    case = f"Z-DL-{run}"
    first = case_opened(case, someone, municipality=municipality)
    last = case_closed(case, someone, municipality=municipality)
    bad = poison(first)
    norms_port, feedback_port, metrics_port = free_ports(3)
    env = {
        "SERVICEPULS_CONFIG_DIR": str(config),
        "SERVICEPULS_NORMS_PORT": str(norms_port),
        "SERVICEPULS_NORMS_DB_SCHEMA": norms_schema,
        "SERVICEPULS_NORMS_CONSUMER_GROUP": f"norms-{norms_schema}",
        "SERVICEPULS_NORMS_INTAKE_TOPIC": topic,
        "SERVICEPULS_NORMS_RELAY_ENABLED": "false",
        "SERVICEPULS_FEEDBACK_PORT": str(feedback_port),
        "SERVICEPULS_FEEDBACK_DB_SCHEMA": feedback_schema,
        "SERVICEPULS_FEEDBACK_CONSUMER_GROUP": f"feedback-{feedback_schema}",
        "SERVICEPULS_FEEDBACK_INTAKE_TOPIC": topic,
        "SERVICEPULS_METRICS_PORT": str(metrics_port),
        "SERVICEPULS_METRICS_CONSUMER_GROUP": f"metrics-dl-{run}",
        "SERVICEPULS_METRICS_TOPICS": json.dumps([topic]),
        "SERVICEPULS_METRICS_REFRESH_SECONDS": "1",
    }
    async with private_topics(topic, partitions=1):
        producer = durable_producer(BOOTSTRAP, "dead-letter-test")
        await producer.start()
        try:
            records = [
                (encode(first).value, encode(first).headers),
                *((value, headers) for _, value, headers in bad),
                (encode(last).value, encode(last).headers),
            ]
            for value, headers in records:
                await producer.send_and_wait(topic, value=value, key=case.encode(), headers=headers)
        finally:
            await producer.stop()

        async with (
            running_service("norms", port=norms_port, env=env),
            running_service("feedback", port=feedback_port, env=env),
            running_service("metrics", port=metrics_port, env=env) as metrics,
        ):

            async def all_set_aside() -> bool:
                letters = [d for d in await read_all(BOOTSTRAP) if d.origin_topic == topic]
                return len(letters) >= len(bad) * len(SERVICES)

            await until(all_set_aside, "every bad record dead-lettered by every service")

            # Good events before and after the poison took effect in each service.
            processed = f"SELECT count(*) FROM {norms_schema}.processed_event"
            await until(lambda: _equals(count(processed), 2), "norms applied both events")
            clocks = f"SELECT count(*) FROM {norms_schema}.clock"
            assert await count(clocks) >= 1
            surveys = f"SELECT count(*) FROM {feedback_schema}.surveys WHERE subject_id = $1"
            await until(lambda: _equals(count(surveys, case), 1), "feedback scheduled a survey")

            async def metrics_counted() -> bool:
                samples = await scrape(metrics.base_url)
                return (
                    metric_sum(samples, "servicepuls_cases_opened_total", municipality) == 1
                    and metric_sum(samples, "servicepuls_cases_closed_total", municipality) == 1
                )

            await until(metrics_counted, "metrics counted the case opened and closed once")

            everything = await read_all(BOOTSTRAP, distinct=False)
            letters = [d for d in everything if d.origin_topic == topic]
            by_service: dict[str, list[DeadLetter]] = {s: [] for s in SERVICES}
            for letter in letters:
                by_service[letter.service].append(letter)
            for service, found in by_service.items():
                # Exactly once per bad record, in order, with the reason and the original.
                assert [d.origin_offset for d in found] == list(range(1, len(bad) + 1)), service
                assert [d.reason for d in found] == [str(r) for r, _, _ in bad], service
                for letter, (_, value, headers) in zip(found, bad, strict=True):
                    assert letter.value == value
                    assert letter.headers == headers
                    assert letter.key == case.encode()
                    assert f"dl-{run}@example.org" not in letter.error

            # Each service counts its dead letters by reason.
            samples = await scrape(metrics.base_url)
            assert sum(
                v
                for (name, labels), v in samples.items()
                if name == "servicepuls_dead_letters_total" and ("service", "metrics") in labels
            ) == len(bad)

            # Re-driving sends each original once, whoever set it aside; what is still bad is
            # set aside again (now from its new offset), and nothing good counts twice.
            sent = await redrive(BOOTSTRAP, by_service["norms"][:2])
            assert sent == 2

            async def set_aside_again() -> bool:
                again = [
                    d
                    for d in await read_all(BOOTSTRAP)
                    if d.origin_topic == topic and d.origin_offset > len(bad) + 1
                ]
                return len(again) == 2 * len(SERVICES)

            await until(set_aside_again, "re-driven records seen again by every service")
            samples = await scrape(metrics.base_url)
            assert metric_sum(samples, "servicepuls_cases_opened_total", municipality) == 1
            assert await count(processed) == 2

    conn = await asyncpg.connect(DATABASE_URL)
    try:
        for schema in (norms_schema, feedback_schema):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected
