"""The local stack is usable: each real part answers the way the services will use it.

Needs `scripts/stack.sh up` (or docker compose); settings come from the same environment variables
as the services, defaulting to the local stack on loopback.
"""

from __future__ import annotations

import asyncio
import mailbox
import os
import uuid
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.common.kafka import seek_to_start

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
KAFKA = os.environ.get("SERVICEPULS_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
DATABASE_URL = os.environ.get(
    "SERVICEPULS_DATABASE_URL", "postgresql://servicepuls:servicepuls@127.0.0.1:55432/servicepuls"
)
PROMETHEUS = os.environ.get("SERVICEPULS_PROMETHEUS_URL", "http://127.0.0.1:9090")
SMTP_HOST = os.environ.get("SERVICEPULS_SMTP_HOST", "127.0.0.1")
SMTP_PORT = int(os.environ.get("SERVICEPULS_SMTP_PORT", "2525"))
MAILDIR = Path(
    os.environ.get(
        "SERVICEPULS_MAILDIR", Path(os.environ.get("SERVICEPULS_STATE", REPO / ".stack")) / "mail"
    )
)
PROJECT_TOPICS = {"servicepuls.intake.v1", "servicepuls.norms.v1", "servicepuls.feedback.v1"}


async def test_kafka_round_trip_on_a_throwaway_topic() -> None:
    topic = f"smoke.{uuid.uuid4().hex}"
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        assert set(await admin.list_topics()) >= PROJECT_TOPICS
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all")
        await producer.start()
        try:
            sent = await producer.send_and_wait(topic, b"hallo", key=b"zaak-1")
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
        await consumer.start()
        try:
            partition = TopicPartition(topic, sent.partition)
            consumer.assign([partition])
            await seek_to_start(consumer, [partition])
            record = await asyncio.wait_for(consumer.getone(), timeout=20)
        finally:
            await consumer.stop()
        assert (record.key, record.value, record.offset) == (b"zaak-1", b"hallo", sent.offset)
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def test_postgres_answers() -> None:
    connection = await asyncpg.connect(DATABASE_URL, timeout=10)
    try:
        assert await connection.fetchval("SELECT 1") == 1
    finally:
        await connection.close()


async def test_prometheus_is_ready() -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{PROMETHEUS}/-/ready")
    assert response.status_code == 200


def _subjects_in_maildir() -> set[str]:
    return {str(message["Subject"]) for message in mailbox.Maildir(MAILDIR, create=False)}


async def _wait_for_subject(subject: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while subject not in _subjects_in_maildir():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"no message with subject {subject!r} in {MAILDIR}")
        await asyncio.sleep(0.1)


def _message(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "gemeente@example.org"
    message["To"] = "inwoner@example.org"
    message["Subject"] = subject
    message.set_content("Hoe tevreden bent u? Geef een rapportcijfer van 1 tot 10.")
    return message


async def test_smtp_delivery_lands_in_the_maildir() -> None:
    subject = f"smoke {uuid.uuid4().hex}"
    await aiosmtplib.send(_message(subject), hostname=SMTP_HOST, port=SMTP_PORT, timeout=10)
    await _wait_for_subject(subject)


def _fail_next_deliveries(count: int) -> None:
    """The sink's control file (scripts/mailsink.py): the next `count` deliveries get a 451."""
    fail_file = Path(os.environ.get("SERVICEPULS_MAILSINK_FAIL_FILE", MAILDIR.parent / "fail_next"))
    fail_file.write_text(f"{count}\n")


async def test_smtp_sink_fails_on_request_with_a_temporary_error() -> None:
    _fail_next_deliveries(1)
    try:
        subject = f"smoke retry {uuid.uuid4().hex}"
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            await aiosmtplib.send(_message(subject), hostname=SMTP_HOST, port=SMTP_PORT, timeout=10)
        assert refused.value.code == 451
        # The budget is used up: the retry goes through.
        await aiosmtplib.send(_message(subject), hostname=SMTP_HOST, port=SMTP_PORT, timeout=10)
        await _wait_for_subject(subject)
    finally:
        _fail_next_deliveries(0)
