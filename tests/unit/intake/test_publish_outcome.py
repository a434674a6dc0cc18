"""What intake says when Kafka does not acknowledge: "nothing was accepted" only where that is
certain, else "outcome unknown, a retry is safe" (issue 14)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
)

from schemas.envelope import KafkaRecord
from services.common.kafka import NotHandedOver, SharedBatches
from services.intake.adapters.kafka import PublishOutcome, publish_outcome
from services.intake.service import failure_answer
from tests.unit.intake.harness import AUTH, FakeProducer, case_opened, serving

NOT_WRITTEN, UNKNOWN, WRITTEN = (
    PublishOutcome.NOT_WRITTEN,
    PublishOutcome.UNKNOWN,
    PublishOutcome.WRITTEN,
)
ACKED = object()
PENDING = object()


def futures(*states: object) -> list[asyncio.Future[None]]:
    loop = asyncio.get_running_loop()
    made = []
    for state in states:
        future: asyncio.Future[None] = loop.create_future()
        if state is ACKED:
            future.set_result(None)
        elif isinstance(state, BaseException):
            future.set_exception(state)
        made.append(future)
    return made


def not_taken(cause: Exception) -> NotHandedOver:
    error = NotHandedOver("not taken")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ((ACKED,), WRITTEN),
        ((ACKED, ACKED), WRITTEN),
        ((PENDING,), UNKNOWN),  # timed out while the producer still had the batch
        ((ACKED, PENDING), UNKNOWN),
        ((KafkaTimeoutError(),), UNKNOWN),  # delivery timeout: may have been written
        ((RequestTimedOutError(),), UNKNOWN),
        ((NotLeaderForPartitionError(),), UNKNOWN),
        ((OutOfOrderSequenceNumber(),), UNKNOWN),
        ((not_taken(KafkaTimeoutError()),), NOT_WRITTEN),  # the producer never took it
        ((not_taken(KafkaConnectionError()), not_taken(KafkaTimeoutError())), NOT_WRITTEN),
        ((ACKED, not_taken(KafkaTimeoutError())), UNKNOWN),  # part of it is written
        ((PENDING, not_taken(KafkaTimeoutError())), UNKNOWN),
        ((MessageSizeTooLargeError(),), NOT_WRITTEN),  # refused as such
        ((TopicAuthorizationFailedError(), not_taken(KafkaTimeoutError())), NOT_WRITTEN),
        ((TopicAuthorizationFailedError(), KafkaTimeoutError()), UNKNOWN),
    ],
)
async def test_the_outcome_of_a_write(states, expected):
    assert publish_outcome(handed_over=True, batches=futures(*states)) is expected


async def test_records_never_handed_over_are_certainly_not_written():
    assert publish_outcome(handed_over=False, batches=[]) is NOT_WRITTEN


def test_only_the_certain_answer_says_nothing_was_accepted():
    title, detail = failure_answer(NOT_WRITTEN)
    assert "nothing" in detail and "Retry" in detail
    title, detail = failure_answer(UNKNOWN)
    assert "unknown" in title.lower() and "nothing" not in detail
    assert "may or may not" in detail and "safe" in detail and "second effect" in detail


async def test_shared_batches_tell_a_batch_the_producer_never_took_from_one_it_lost():
    producer = FakeProducer()
    shared = SharedBatches(producer)  # type: ignore[arg-type]
    record = KafkaRecord("t", b"k", b"{}", [("ce_id", b"1")])
    producer.refuse_batches = KafkaTimeoutError()  # e.g. no metadata, no room in the queue
    with pytest.raises(NotHandedOver) as caught:
        await shared.send([record])
    assert isinstance(caught.value.__cause__, KafkaTimeoutError)
    producer.refuse_batches = None
    producer.ack = lambda batch: KafkaTimeoutError()  # taken, then not delivered in time
    with pytest.raises(KafkaTimeoutError) as lost:
        await shared.send([record])
    assert not isinstance(lost.value, NotHandedOver)


async def post_and_expect_503(client, outcome: str) -> dict:
    response = await client.post(
        "/v1/events:batch", json=[case_opened(), case_opened()], headers=AUTH
    )
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    problem = response.json()
    assert problem["type"].endswith("kafka-unavailable")
    assert problem["outcome"] == outcome and problem["retry_safe"] is True
    return problem


async def test_http_nothing_handed_over_says_nothing_was_accepted(tmp_path):
    async with serving(tmp_path) as (client, producer):
        producer.hand_over = KafkaTimeoutError()  # no partitions known: not even partitioned
        problem = await post_and_expect_503(client, "not-written")
        assert "nothing" in problem["detail"]
        producer.hand_over = None
        producer.refuse_batches = KafkaTimeoutError()  # the producer does not take the batch
        await post_and_expect_503(client, "not-written")
        producer.refuse_batches = None
        producer.ack = lambda batch: MessageSizeTooLargeError()
        await post_and_expect_503(client, "not-written")
        assert producer.written == []
        metrics = (await client.get("/metrics")).text
    assert "servicepuls_intake_publish_failures_total 3.0" in metrics
    assert "servicepuls_intake_publish_unknown_outcomes_total 0.0" in metrics


async def test_http_a_batch_the_producer_took_but_did_not_get_acknowledged_is_unknown(tmp_path):
    async with serving(tmp_path, publish_timeout_seconds=0.2) as (client, producer):
        producer.ack = lambda batch: KafkaTimeoutError()  # delivery timed out, maybe written
        problem = await post_and_expect_503(client, "unknown")
        assert "nothing" not in problem["detail"] and "unknown" in problem["title"].lower()
        producer.ack = lambda batch: None
        producer.never_acknowledge = True  # the broker is gone: the request's time runs out
        await post_and_expect_503(client, "unknown")
        metrics = (await client.get("/metrics")).text
    assert "servicepuls_intake_publish_unknown_outcomes_total 2.0" in metrics


async def test_http_a_producer_state_error_is_unknown_and_renews_the_producer(tmp_path):
    made: list[FakeProducer] = []
    async with serving(tmp_path) as (client, producer):
        producer.ack = lambda batch: OutOfOrderSequenceNumber()
        original_start = producer.start

        async def counting_start() -> None:
            made.append(producer)
            await original_start()

        producer.start = counting_start  # type: ignore[method-assign]
        await post_and_expect_503(client, "unknown")
        for _ in range(100):
            if made:
                break
            await asyncio.sleep(0.01)
        assert made  # a new producer (here: the same fake) was started
        producer.ack = lambda batch: None
        for _ in range(100):
            answer = await client.post("/v1/events", json=case_opened(), headers=AUTH)
            if answer.status_code == 202:
                break
            await asyncio.sleep(0.01)
        assert answer.status_code == 202
