"""The storage form of a clock row: its `transitions` column as compact JSON lists in a stable
field order, read back into the domain's `StoredClock`."""

from __future__ import annotations

from typing import Any

import orjson

from services.norms.domain.clock import Transition, TransitionKind, new_transition
from services.norms.domain.planning import StoredClock


def transitions_json(clock: StoredClock) -> str:
    return orjson.dumps(stored_form(clock.transitions)).decode()


def stored_form(transitions: list[tuple[Transition, dict[str, str]]]) -> list[list[Any]]:
    """Transitions as the `transitions` column lists them (`transitions_from_json` reads
    them back)."""
    return [
        [t.at, t.kind.value, t.event_key, t.extension, t.reason, context]
        for t, context in transitions
    ]


def transitions_from_json(text: str | bytes | None) -> list[tuple[Transition, dict[str, str]]]:
    if not text:
        return []
    kinds = _TRANSITION_KINDS  # a dict lookup: calling the enum is slow
    transitions = [
        (new_transition(at, kinds[kind], key, extension, reason), context)
        for at, kind, key, extension, reason, context in orjson.loads(text)
    ]
    # Transitions are appended without reading the clock (`ClockRepository`): one event
    # applied twice (its dedupe key purged, then delivered again) counts once, as `add`.
    if len({(t.event_key, t.kind) for t, _ in transitions}) < len(transitions):
        seen: set[tuple[str, TransitionKind]] = set()
        unique = []
        for item in transitions:
            mark = (item[0].event_key, item[0].kind)
            if mark not in seen:
                seen.add(mark)
                unique.append(item)
        transitions = unique
    return transitions


_TRANSITION_KINDS = {kind.value: kind for kind in TransitionKind}


def clock_of_row(row: Any) -> StoredClock:
    """A clock from its row (clock_id, municipality, norm_id, subject_id, transitions, taken)."""
    return StoredClock(
        clock_id=row["clock_id"],
        municipality=row["municipality"],
        norm_id=row["norm_id"],
        subject_id=row["subject_id"],
        transitions=transitions_from_json(row["transitions"]),
        taken=set(filter(None, row["taken"].split("|"))),
    )
