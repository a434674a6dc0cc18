"""Our murmur2 partitions keys exactly as Kafka's Java client and aiokafka do."""

from __future__ import annotations

import ctypes

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from services.common.murmur import murmur2

# Kafka's own test vectors (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java),
# signed as Java returns them.
JAVA = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "expected"), JAVA.items())
def test_the_java_clients_vectors(key: bytes, expected: int) -> None:
    assert ctypes.c_int32(murmur2(key)).value == expected


@given(st.binary(max_size=200))
def test_equal_to_aiokafka_for_any_key(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)
