"""Search what Servicepuls leaves behind for the personal data a run used (DESIGN.md: no plaintext
e-mail address, phone number or BSN on a topic, in a log line, in a metric label or a table).

`PersonalData.of_events` collects the e-mail addresses, phone numbers and BSNs from the events a
channel system posted (the simulator's ledger). `PersonalData.find` looks for them in a text by
tokens, not by substring, so a BSN inside a longer number (a timestamp, an offset) is no hit,
and a phone number is found in any of its spellings (06-12345678, 0612345678, +31612345678,
0031 6 1234 5678). What intake sealed is ciphertext and never matches: the scan finds plaintext.

The sources: service log files (from an offset), every record on the topics (from the offsets
where the run began), /metrics pages, every table of every schema of the database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.support.kafka import end_offsets

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
# Digits, possibly with single hyphens or spaces between them, possibly after a '+'; a whole
# token (not a run of digits inside a hex digest, an identifier or a longer number).
_NUMBER = re.compile(r"(?<![A-Za-z0-9])\+?\d(?:\d|[- ](?=\d))*(?![A-Za-z0-9])")


@dataclass(frozen=True)
class Hit:
    where: str  # e.g. "topic servicepuls.intake.v1 partition 3 offset 17", "table norms.clock"
    kind: str  # email | phone | bsn
    excerpt: str  # the text around the value, the value itself masked

    def __str__(self) -> str:
        return f"{self.kind} in {self.where}: …{self.excerpt}…"


def _phone_forms(phone: str) -> set[str]:
    """A Dutch number as digits in its national and international spellings."""
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("0031"):
        national = "0" + digits[4:]
    elif digits.startswith("31") and phone.strip().startswith("+"):
        national = "0" + digits[2:]
    else:
        national = digits
    return {national, "31" + national[1:], "0031" + national[1:]}


@dataclass
class PersonalData:
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)  # digits, every spelling
    bsns: set[str] = field(default_factory=set)

    @classmethod
    def of_events(cls, events: Iterable[Mapping[str, Any]]) -> PersonalData:
        """Every `email`, `phone` and `bsn` anywhere in the events (CloudEvents as posted)."""
        found = cls()

        def walk(value: Any) -> None:
            if isinstance(value, Mapping):
                for key, item in value.items():
                    if isinstance(item, str) and item:
                        if key == "email":
                            found.emails.add(item.lower())
                        elif key == "phone":
                            found.phones |= _phone_forms(item)
                        elif key == "bsn":
                            found.bsns.add(item)
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(list(events))
        return found

    def __len__(self) -> int:
        return len(self.emails) + len(self.phones) + len(self.bsns)

    def find(self, text: str, where: str) -> list[Hit]:
        hits = [*self._find(text, where)]
        if "%40" in text or "%2B" in text:  # URL-encoded, e.g. in a logged query string
            hits += self._find(unquote(text), where + " (URL-decoded)")
        return hits

    def _find(self, text: str, where: str) -> Iterator[Hit]:
        for match in _EMAIL.finditer(text):
            if match.group().lower() in self.emails:
                yield _hit(text, match.start(), match.end(), where, "email")
        for match in _NUMBER.finditer(text):
            pieces = {match.group(), *match.group().split(" ")}
            for piece in pieces:
                digits = re.sub(r"\D", "", piece)
                kind = "bsn" if digits in self.bsns else "phone" if digits in self.phones else ""
                if kind:
                    yield _hit(text, match.start(), match.end(), where, kind)
                    break


def _hit(text: str, start: int, end: int, where: str, kind: str) -> Hit:
    excerpt = text[max(0, start - 40) : start] + "<" + kind + ">" + text[end : end + 40]
    return Hit(where, kind, excerpt.replace("\n", " "))


# --- the places a run leaves data ---------------------------------------------------------------


def log_sizes(paths: Iterable[Path]) -> dict[Path, int]:
    """Where each log file ends now (0 for one not written yet): scan from there afterwards."""
    return {path: path.stat().st_size if path.exists() else 0 for path in paths}


def scan_logs(data: PersonalData, since: Mapping[Path, int]) -> list[Hit]:
    hits = []
    for path, offset in since.items():
        with path.open("rb") as log:
            log.seek(offset)
            for number, line in enumerate(log, start=1):
                hits += data.find(line.decode("utf-8", "replace"), f"{path.name} (+line {number})")
    return hits


async def topic_ends(topics: Iterable[str]) -> dict[TopicPartition, int]:
    """Where each partition of `topics` ends now: scan from there afterwards."""
    ends: dict[TopicPartition, int] = {}
    for topic in topics:
        for partition, offset in (await end_offsets(topic)).items():
            ends[TopicPartition(topic, partition)] = offset
    return ends


async def scan_topics(
    data: PersonalData, bootstrap: str, since: Mapping[TopicPartition, int]
) -> tuple[list[Hit], int]:
    """Every record written since `since` (value, key and headers); and how many were read."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    hits: list[Hit] = []
    read = 0
    try:
        partitions = list(since)
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, since[tp])
        pending = {tp for tp in partitions if ends[tp] > since[tp]}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=2000, max_records=5000)
            if not batches:
                raise TimeoutError(f"records up to the end offsets never came: {pending}")
            for tp, records in batches.items():
                for record in records:
                    read += 1
                    where = f"topic {tp.topic} partition {tp.partition} offset {record.offset}"
                    parts = [record.value or b"", record.key or b""]
                    parts += [value for _, value in record.headers]
                    for part in parts:
                        hits += data.find(part.decode("utf-8", "replace"), where)
                    if record.offset + 1 >= ends[tp]:
                        pending.discard(tp)
    finally:
        await consumer.stop()
    return hits, read


async def scan_pages(data: PersonalData, urls: Iterable[str]) -> list[Hit]:
    hits = []
    async with httpx.AsyncClient(timeout=10) as client:
        for url in urls:
            response = await client.get(url)
            response.raise_for_status()
            hits += data.find(response.text, url)
    return hits


async def scan_database(data: PersonalData, database_url: str) -> tuple[list[Hit], int]:
    """Every row of every table in every schema but PostgreSQL's own, as text; and how many
    tables were read."""
    conn = await asyncpg.connect(database_url)
    hits: list[Hit] = []
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE'"
            " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            " AND table_schema NOT LIKE 'pg_toast%'"
        )
        for table in tables:
            name = f'"{table["table_schema"]}"."{table["table_name"]}"'
            async with conn.transaction():
                async for row in conn.cursor(f"SELECT t::text AS row FROM {name} t"):
                    hits += data.find(row["row"], f"table {name}")
    finally:
        await conn.close()
    return hits, len(tables)
