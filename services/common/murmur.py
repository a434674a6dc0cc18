"""Kafka's murmur2: the hash the default partitioner chooses a key's partition by.

A module of its own so that it can be compiled (services/_native.py): the rebuild hashes every
subject and the intake every key, and in pure Python each step of the hash allocates an int.
Compiled, the arithmetic is done in 64-bit machine integers (`i64`, plain `int` when the module
runs as Python): every product below is of two numbers under 2**32 and 2**31, so under 2**63.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Final

from mypy_extensions import i64

_M: Final = 0x5BD1E995
_MASK: Final = 0xFFFFFFFF


@lru_cache(maxsize=256)
def _words(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}I")


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of a key (what the Java client's default partitioner hashes), as an
    unsigned 32-bit int. Equal to aiokafka's `murmur2`, which goes byte by byte, at a fraction
    of its cost: the key is read four bytes at a time (docs/benchmarks.md, "Intake")."""
    length: i64 = len(data)
    h: i64 = 0x9747B28C ^ length
    for word in _words(length >> 2).unpack_from(data):
        k: i64 = word
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest:
        tail = length - rest
        if rest == 3:
            h ^= i64(data[tail + 2]) << 16
        if rest >= 2:
            h ^= i64(data[tail + 1]) << 8
        h = ((h ^ data[tail]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)
