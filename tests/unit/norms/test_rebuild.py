"""The rebuild's cheaper admission of intake records accepts and refuses exactly what the live
consumer's decoding (`decode_record`) accepts and refuses, and reads the same event from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.envelope import Envelope, encode, new_event
from schemas.events import CaseClosed, CaseOutcome
from services.common.calendar import to_us
from services.common.consumer import decode_record
from services.common.deadletters import Problem
from services.norms.rebuild import Admitted, admit, owner_of


def closed(time: datetime = datetime(2026, 3, 2, 10, tzinfo=UTC)) -> Envelope[Any]:
    return new_event(
        CaseClosed(case_id="Z-1", case_type="melding-openbare-ruimte", outcome=CaseOutcome.GRANTED),
        source="/test/rebuild",
        municipality="GM0383",
        time=time,
    )


GOOD = encode(closed())


def record(value: bytes | None = GOOD.value, **headers: bytes | None) -> ConsumerRecord[Any, Any]:
    """GOOD with some `ce_*` headers replaced (None: left out; b"": empty)."""
    framed = [(name, headers.get(name[3:], raw)) for name, raw in GOOD.headers]
    framed = [(name, raw) for name, raw in framed if raw is not None or name[3:] not in headers]
    return ConsumerRecord(
        topic="servicepuls.intake.v1",
        partition=0,
        offset=0,
        timestamp=0,
        timestamp_type=0,
        key=GOOD.key,
        value=value,
        checksum=None,
        serialized_key_size=len(GOOD.key),
        serialized_value_size=len(value or b""),
        headers=framed,
    )


def assert_same_as_live(rec: ConsumerRecord[Any, Any]) -> None:
    ours, live = admit(rec), decode_record(rec)
    if type(live) is Problem:
        assert ours == live
        return
    assert isinstance(ours, Admitted) and isinstance(live, Envelope)
    assert (ours.municipality, ours.type, ours.data, ours.at, ours.key) == (
        live.municipality,
        live.type,
        live.data,
        to_us(live.time),
        live.dedupe_key,
    )


CASES = {
    "good": record(),
    "empty value": record(b""),
    "tombstone": record(None),
    "oversized": record(b" " * (600 * 1024)),
    "not JSON": record(b"{not json"),
    "a field missing": record(b'{"case_id": "Z-1"}'),
    "unknown type": record(type=b"nl.servicepuls.nothing.v1"),
    "no type": record(type=None),
    "no id": record(id=None),
    "empty id": record(id=b""),
    "id of 128": record(id=b"x" * 128),
    "id of 129": record(id=b"x" * 129),
    "source with a space": record(source=b"/test rebuild"),
    "source not ASCII": record(source="/gemeente/ö".encode()),
    "source of 257": record(source=b"/" * 257),
    "municipality": record(municipality=b"GM38"),
    "municipality, full-width digits": record(municipality="GM０３８３".encode()),
    "specversion": record(specversion=b"0.3"),
    "no specversion": record(specversion=None),
    "naive time": record(time=b"2026-03-02T10:00:00"),
    "time in Z": record(time=b"2026-03-02T10:00:00Z"),
    "time in milliseconds": record(time=b"2026-03-02T10:00:00.123+01:00"),
    "time of 30 February": record(time=b"2026-02-30T10:00:00+00:00"),
    "time in basic form": record(time=b"20260302T100000+0000"),
    "time before 1970": record(time=b"1969-12-31T23:59:59+00:00"),
    "time in 2100": record(time=b"2100-01-01T00:00:00+00:00"),
    "subject of 129": record(subject=b"s" * 129),
    "not UTF-8": record(id=b"\xff\xfe"),
    "a header without value": record(source=b""),
}


def reframed(headers: list[tuple[str, bytes]]) -> ConsumerRecord[Any, Any]:
    """GOOD with headers of its own (the cheap path reads intake's order by position)."""
    good = record()
    return ConsumerRecord(**{**good.__dict__, "headers": headers})


_HEADERS = list(GOOD.headers)
CASES |= {
    "headers in another order": reframed(_HEADERS[::-1]),
    "no content-type": reframed(_HEADERS[:7]),
    "an extra header": reframed([*_HEADERS, ("traceparent", b"00-1-2-01")]),
    "a header twice, the second valid": reframed(
        [("ce_time", b"not a time"), *_HEADERS[:4], *_HEADERS[5:], _HEADERS[4]]
    ),
    "a header twice, the second invalid": reframed([*_HEADERS, ("ce_time", b"not a time")]),
    "intake's names, a type not in the catalog": reframed(
        [*_HEADERS[:3], ("ce_type", b"nl.servicepuls.nothing.v1"), *_HEADERS[4:]]
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_admit_accepts_and_refuses_what_the_live_consumer_does(name: str) -> None:
    assert_same_as_live(CASES[name])


def test_the_cheap_path_takes_intakes_own_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """(Else the rebuild would be as slow as the live decoding, and no other test would notice.)"""

    def no_fallback(*_: Any) -> None:
        raise AssertionError("decoded by the live path")

    monkeypatch.setattr("services.norms.rebuild.decode_record", no_fallback)
    for rec in (record(), record(time=b"2026-03-02T10:00:00.123456+01:00")):
        admitted = admit(rec)
        assert isinstance(admitted, Admitted)
        assert admitted.key == "/test/rebuild\x1f" + dict(GOOD.headers)["ce_id"].decode()


@settings(max_examples=300, deadline=None)
@given(
    offset_minutes=st.integers(min_value=-14 * 60 + 1, max_value=14 * 60 - 1),
    seconds=st.integers(min_value=0, max_value=4_000_000_000),
    micro=st.integers(min_value=0, max_value=999_999),
)
def test_event_times_read_alike(offset_minutes: int, seconds: int, micro: int) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    moment = datetime(1970, 1, 2, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=micro)
    assert_same_as_live(record(time=moment.astimezone(zone).isoformat().encode()))


def test_a_clock_is_decided_by_the_worker_reading_its_subjects_partition() -> None:
    owners = {owner_of(f"Z-{n}", 6, 2) for n in range(100)}
    assert owners == {0, 1}
    assert all(owner_of(f"Z-{n}", 6, 1) == 0 for n in range(100))
