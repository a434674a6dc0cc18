"""The simulator's own record of what it did: every event intake accepted, every survey it
answered. One JSON document per line, appended as it happens, so a test (or a curious person)
can compute independently what Servicepuls should have concluded.

The ledger holds the fake residents' contact details exactly as posted: they are invented
(example.nl addresses, 99xxxxxxx BSNs), and the file lives under .stack/, never in git.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from simulator.generator import SimEvent, SimulationPlan


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = path.open("a", encoding="utf-8")

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")

    def begin(self, plan: SimulationPlan, **extra: Any) -> None:
        self._write(
            {
                "kind": "run",
                "run_id": plan.run_id,
                "seed": plan.seed,
                "start": plan.start.isoformat(),
                "end": plan.end.isoformat(),
                "days": plan.days,
                "scale": plan.scale,
                "municipalities": [m.code for m in plan.municipalities],
                "wall_time": _now(),
                **extra,
            }
        )
        self.flush()

    def accepted(self, events: list[SimEvent]) -> None:
        wall = _now()
        for event in events:
            self._write({"kind": "event", "posted_at": wall, "event": event.cloudevent()})

    def rejected(self, events: list[SimEvent], status: int, problem: Any) -> None:
        wall = _now()
        for event in events:
            self._write(
                {
                    "kind": "rejected",
                    "posted_at": wall,
                    "status": status,
                    "problem": problem,
                    "event": event.cloudevent(),
                }
            )

    def via_connector(self, events: list[SimEvent]) -> None:
        """Events not posted to intake but played as Open Zaak changes and notifications to
        the connector (`--via-connector`): what the connector admits is its own rendering."""
        wall = _now()
        for event in events:
            self._write({"kind": "via_connector", "posted_at": wall, "event": event.cloudevent()})

    def intake_answer(self, ids: list[str], status: int | None, outcome: str | None = None) -> None:
        """One HTTP answer of intake to a batch (or None when it could not be reached), with the
        ids of the events in it: a fault run checks that every 202 is on the topic and counts
        what a 503 said."""
        self._write(
            {"kind": "intake_answer", "wall_time": _now(), "status": status,
             "outcome": outcome, "ids": ids}
        )  # fmt: skip

    def survey_answered(self, **answer: Any) -> None:
        self._write({"kind": "survey_answer", "wall_time": _now(), **answer})

    def end(self, **summary: Any) -> None:
        self._write({"kind": "end", "wall_time": _now(), **summary})
        self.flush()

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


@dataclass(slots=True)
class LedgerContents:
    runs: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # accepted CloudEvents
    rejected: list[dict[str, Any]] = field(default_factory=list)
    survey_answers: list[dict[str, Any]] = field(default_factory=list)
    intake_answers: list[dict[str, Any]] = field(default_factory=list)
    ends: list[dict[str, Any]] = field(default_factory=list)


def read_ledger(path: Path) -> LedgerContents:
    contents = LedgerContents()
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            kind = record["kind"]
            if kind == "event":
                contents.events.append(record["event"])
            elif kind == "rejected":
                contents.rejected.append(record)
            elif kind == "intake_answer":
                contents.intake_answers.append(record)
            elif kind == "survey_answer":
                contents.survey_answers.append(record)
            elif kind == "run":
                contents.runs.append(record)
            elif kind == "end":
                contents.ends.append(record)
    return contents


_CONTACT_TYPES = ("nl.servicepuls.contact.completed.v1", "nl.servicepuls.contact.received.v1")
_SYNCHRONOUS = ("phone", "counter", "chat")


def inbound_channel(event_type: str, data: dict[str, Any]) -> str | None:
    """The channel when this event is a resident reaching the municipality (for the channel
    mix), else None. A call or visit that opens a case counts once, as the contact; a written
    request that opens a case directly counts as the case's opening."""
    channel = data.get("channel")
    if not channel or data.get("direction", "inbound") != "inbound":
        return None
    if event_type in _CONTACT_TYPES:
        return str(channel)
    if event_type == "nl.servicepuls.case.opened.v1" and channel not in _SYNCHRONOUS:
        return str(channel)
    return None


def _now() -> str:
    return datetime.now(UTC).isoformat()
