"""The outbox's storage form: all outcome events of one transaction in ONE row.

A replay takes about two decisions per intake event. As a row each, the outbox was a queue of
millions of inserts and deletes (with their index entries, dead rows and vacuum), and the relay
parsed each row's headers back from JSON. Now a transaction writes one row whose `records`
column holds its records, packed by `pack`, and `count` says how many; the relay unpacks them
(`records_of`) in one call.

The packing is `marshal` (standard library, C): it keeps bytes as bytes and tuples as tuples, so
the relay hands the records to the producer as they come out, and header pairs shared by many
records (source, type, municipality) are stored once and come back as one object. It is not
meant for data from elsewhere: only this service writes the outbox, and a row lives from its
commit until the relay publishes it (seconds). `format` records `marshal.version` for each row;
a Python of the same or a later version reads it (marshal reads its earlier versions).

Rows written before migration 005 hold one record each (`key`, `value`, `headers` as JSON);
`records_of` reads those too, so an upgrade does not lose what was waiting.
"""

from __future__ import annotations

import marshal
from collections.abc import Sequence
from typing import Any

import orjson

from schemas.envelope import KafkaRecord

FORMAT = marshal.version

Packed = tuple[bytes, bytes, Sequence[tuple[str, bytes]]]  # key, value, headers


def pack(records: Sequence[Packed]) -> bytes:
    """One transaction's records (key, value, header pairs), in order, for one outbox row."""
    return marshal.dumps(list(records), FORMAT)


def records_of(row: Any) -> list[KafkaRecord]:
    """The records of an outbox row (columns topic, key, value, headers, records, format)."""
    topic = row["topic"]
    if row["records"] is None:  # one record, as rows were before migration 005
        pairs = [(name, value.encode()) for name, value in orjson.loads(row["headers"])]
        return [KafkaRecord(topic, row["key"], row["value"], pairs)]
    if row["format"] > FORMAT:
        raise ValueError(
            f"outbox row {row['id']} was packed by marshal version {row['format']}; "
            f"this Python reads up to {FORMAT}"
        )
    return [
        KafkaRecord(topic, key, value, list(headers))
        for key, value, headers in marshal.loads(row["records"])
    ]
