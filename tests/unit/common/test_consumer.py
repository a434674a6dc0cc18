"""The shared consumer loop: every kind of bad record gets its reason, good ones their effect."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from schemas.envelope import Envelope, encode, new_event
from schemas.events import CaseClosed, CaseOutcome
from services.common.consumer import Backoff, BatchConsumer, decode_record
from services.common.deadletters import Problem, Reason, dead_letter_headers


def closed(case_id: str = "Z-1") -> Envelope[Any]:
    return new_event(
        CaseClosed(
            case_id=case_id, case_type="melding_openbare_ruimte", outcome=CaseOutcome.GRANTED
        ),
        source="/test/consumer",
        municipality="GM0383",
        time=datetime(2026, 3, 2, 10, tzinfo=UTC),
    )


def record(
    value: bytes | None = None,
    headers: list[tuple[str, bytes | None]] | None = None,
    offset: int = 0,
) -> ConsumerRecord[Any, Any]:
    framed = encode(closed())
    return ConsumerRecord(
        topic="servicepuls.intake.v1",
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=framed.key,
        value=framed.value if value is None and headers is None else value,
        checksum=None,
        serialized_key_size=len(framed.key),
        serialized_value_size=len(value or b""),
        headers=framed.headers if headers is None else headers,
    )


def with_header(name: str, value: bytes | None) -> list[tuple[str, bytes | None]]:
    return [(k, value if k == name else v) for k, v in encode(closed()).headers]


def without_header(name: str) -> list[tuple[str, bytes | None]]:
    return [(k, v) for k, v in encode(closed()).headers if k != name]


GOOD_VALUE = encode(closed()).value


@pytest.mark.parametrize(
    ("value", "headers", "reason", "mentions"),
    [
        (b"", None, Reason.EMPTY_VALUE, "empty"),
        (None, encode(closed()).headers, Reason.EMPTY_VALUE, "tombstone"),
        (b"x" * 600_000, encode(closed()).headers, Reason.OVERSIZED, "600000"),
        (b"{not json", encode(closed()).headers, Reason.INVALID_JSON, "Invalid JSON"),
        (b"[1, 2]", encode(closed()).headers, Reason.INVALID_DATA, ""),
        (b'{"case_id": "Z-1"}', encode(closed()).headers, Reason.INVALID_DATA, "case_type"),
        (GOOD_VALUE, with_header("ce_type", b"nl.other.v1"), Reason.UNKNOWN_TYPE, "nl.other"),
        (GOOD_VALUE, without_header("ce_type"), Reason.MISSING_HEADER, "ce_type"),
        (GOOD_VALUE, without_header("ce_id"), Reason.MISSING_HEADER, "ce_id"),
        (GOOD_VALUE, with_header("ce_subject", None), Reason.BAD_HEADER, "ce_subject"),
        (GOOD_VALUE, with_header("ce_source", b"\xff\xfe"), Reason.BAD_HEADER, "UTF-8"),
        (GOOD_VALUE, with_header("ce_time", b"yesterday"), Reason.BAD_HEADER, "ce_time"),
        (GOOD_VALUE, with_header("ce_municipality", b"XX"), Reason.BAD_HEADER, "ce_municipality"),
        # Instants norms cannot hold (its clock gave a case of the year 1 a due date in 1970).
        (
            GOOD_VALUE,
            with_header("ce_time", b"0001-01-02T00:00:00+00:00"),
            Reason.BAD_HEADER,
            "1970",
        ),
        (
            GOOD_VALUE,
            with_header("ce_time", b"9999-12-30T00:00:00+00:00"),
            Reason.BAD_HEADER,
            "2100",
        ),
    ],
)
def test_every_bad_record_has_its_reason(
    value: bytes | None, headers: Any, reason: Reason, mentions: str
) -> None:
    outcome = decode_record(record(value, headers))
    assert isinstance(outcome, Problem)
    assert outcome.reason is reason, outcome
    assert mentions in outcome.error


def test_a_good_record_decodes_and_an_irrelevant_bad_header_is_ignored() -> None:
    headers = [*encode(closed()).headers, ("traceparent", None)]
    event = decode_record(record(GOOD_VALUE, headers))
    assert isinstance(event, Envelope)
    assert event.data.case_id == "Z-1"


def test_error_text_carries_no_personal_data() -> None:
    value = b'{"case_id": "Z-1", "case_type": "jan@example.nl 0612345678"}'
    outcome = decode_record(record(value, encode(closed()).headers))
    assert isinstance(outcome, Problem)
    assert "jan@example.nl" not in outcome.error and "0612345678" not in outcome.error


def test_dead_letter_keeps_the_original_and_says_where_it_came_from() -> None:
    original = record(b"{bad", encode(closed()).headers, offset=41)
    headers = dict(dead_letter_headers(original, "metrics", Problem(Reason.INVALID_JSON, "x")))
    assert headers["ce_type"] == b"nl.servicepuls.case.closed.v1"
    assert headers["dl_service"] == b"metrics"
    assert headers["dl_reason"] == b"invalid_json"
    assert (headers["dl_topic"], headers["dl_partition"], headers["dl_offset"]) == (
        b"servicepuls.intake.v1",
        b"0",
        b"41",
    )


class FakeDeadLetters:
    def __init__(self, fail_times: int = 0) -> None:
        self.letters: list[tuple[int, Reason]] = []
        self.fail_times = fail_times

    async def send(self, letters: Any) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise ConnectionError("broker away")
        self.letters += [(r.offset, p.reason) for r, p in letters]


class Log:
    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def batch() -> list[ConsumerRecord[Any, Any]]:
    return [
        ConsumerRecord(**{**record().__dict__, "offset": 0}),
        record(b"", encode(closed()).headers, offset=1),
        ConsumerRecord(**{**encode_record(closed("Z-2")).__dict__, "offset": 2}),
        ConsumerRecord(**{**encode_record(closed("Z-3")).__dict__, "offset": 3}),
    ]


def encode_record(event: Envelope[Any]) -> ConsumerRecord[Any, Any]:
    framed = encode(event)
    return ConsumerRecord(
        topic="servicepuls.intake.v1",
        partition=0,
        offset=0,
        timestamp=0,
        timestamp_type=0,
        key=framed.key,
        value=framed.value,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=framed.headers,
    )


def test_bad_records_are_set_aside_and_the_good_ones_applied() -> None:
    letters = FakeDeadLetters()
    applied: list[str] = []

    async def apply(events: list[Envelope[Any]]) -> None:
        applied.extend(e.data.case_id for e in events)

    consumer = BatchConsumer(letters, Log())  # type: ignore[arg-type]
    asyncio.run(consumer.handle(batch(), apply))
    assert applied == ["Z-1", "Z-2", "Z-3"]
    assert letters.letters == [(1, Reason.EMPTY_VALUE)]


def test_an_event_that_fails_to_apply_alone_is_set_aside_the_others_take_effect() -> None:
    letters = FakeDeadLetters()
    applied: list[str] = []

    async def apply(events: list[Envelope[Any]]) -> None:
        if any(e.data.case_id == "Z-2" for e in events):
            raise ArithmeticError("this event breaks the plan")
        applied.extend(e.data.case_id for e in events)

    consumer = BatchConsumer(letters, Log())  # type: ignore[arg-type]
    asyncio.run(consumer.handle(batch(), apply))
    assert applied == ["Z-1", "Z-3"]
    assert letters.letters == [(1, Reason.EMPTY_VALUE), (2, Reason.APPLY_FAILED)]


def test_a_transient_failure_is_retried_never_dead_lettered() -> None:
    letters = FakeDeadLetters()
    attempts: list[int] = []

    async def apply(events: list[Envelope[Any]]) -> None:
        attempts.append(len(events))
        if len(attempts) < 3:
            raise ConnectionRefusedError("database away")

    consumer = BatchConsumer(letters, Log(), backoff=Backoff(first=0.001))  # type: ignore[arg-type]
    records = [r for r in batch() if r.offset != 1]
    for _ in range(2):
        with pytest.raises(ConnectionRefusedError):
            asyncio.run(consumer.handle(records, apply))
    assert consumer.backoff.failures == 2
    asyncio.run(consumer.handle(records, apply))
    assert attempts == [3, 3, 3]
    assert letters.letters == []
    assert consumer.backoff.failures == 0


def test_a_dead_letter_that_cannot_be_written_stops_the_batch_for_a_retry() -> None:
    letters = FakeDeadLetters(fail_times=1)
    applied: list[str] = []

    async def apply(events: list[Envelope[Any]]) -> None:
        applied.extend(e.data.case_id for e in events)

    consumer = BatchConsumer(letters, Log(), backoff=Backoff(first=0.001))  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        asyncio.run(consumer.handle(batch(), apply))
    assert applied == []  # nothing applied past a record not yet safely set aside
    asyncio.run(consumer.handle(batch(), apply))
    assert applied == ["Z-1", "Z-2", "Z-3"]
    assert letters.letters == [(1, Reason.EMPTY_VALUE)]


def test_backoff_grows_to_its_ceiling() -> None:
    backoff = Backoff(first=0.5, longest=4)
    assert [backoff.next_pause() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
