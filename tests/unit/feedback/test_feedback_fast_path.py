"""The consumer passes by events that cannot concern feedback without a connection
(`service.concerns_feedback`): held here to what `apply_intake_event` does with each event of
generated traffic — an event passed by would have had no effect at all, and every event that
could have one is applied."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from typing import Any

from services.common.sealing import generate_keys
from services.feedback import service as svc
from services.feedback.adapters import postgres as db
from services.intake.domain.admission import admit
from services.intake.domain.channel_systems import ChannelSystem, token_digest
from simulator.generator import SimulatedMunicipality, SimulationPlan, generate
from simulator.office_hours import AMSTERDAM


class _Untouchable:
    """A connection that fails on any use: `apply_intake_event` must not use it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"connection used: {name}")


def test_an_event_passed_by_has_no_effect_and_every_other_one_is_applied(monkeypatch: Any) -> None:
    plan = SimulationPlan(
        municipalities=(SimulatedMunicipality("GM0383", "Castricum", 36_500),),
        start=datetime(2026, 11, 16, 8, tzinfo=AMSTERDAM),
        days=3,
        seed=20261207,
        run_id="fast-path",
        scale=0.3,
    )
    system = ChannelSystem(
        name="all",
        token_sha256=token_digest("secret"),
        sources=["/buch/**"],
        event_types=["nl.servicepuls.*"],
        municipalities=["GM0383"],
    )
    keys, now = generate_keys(), datetime(2026, 12, 1, tzinfo=AMSTERDAM)
    # As feedback reads them: admitted by intake (residents sealed and pseudonymised).
    events = [
        admit(e.cloudevent(), system=system, keys=keys, now=now).envelope() for e in generate(plan)
    ]
    marked: list[str] = []

    async def first_time_seen(_: Any, key: str) -> bool:
        marked.append(key)
        return False  # as if seen before: nothing further is read or written

    monkeypatch.setattr(db, "first_time_seen", first_time_seen)
    passed, applied = Counter[str](), Counter[str]()
    for envelope in events:
        before = len(marked)
        if svc.concerns_feedback(envelope.data):
            asyncio.run(svc.apply_intake_event(_Untouchable(), envelope, book=None))  # type: ignore[arg-type]
            assert len(marked) == before + 1, envelope.type  # its dedupe mark is asked for
            applied[envelope.type] += 1
        else:
            asyncio.run(svc.apply_intake_event(_Untouchable(), envelope, book=None))  # type: ignore[arg-type]
            assert len(marked) == before, envelope.type  # no effect, not even a mark
            passed[envelope.type] += 1
    # The traffic had both kinds (here about 45 % passed by).
    assert applied["nl.servicepuls.case.closed.v1"] > 0
    assert applied["nl.servicepuls.contact.completed.v1"] > 0
    assert passed["nl.servicepuls.contact.received.v1"] > 0
    assert passed["nl.servicepuls.case.status_changed.v1"] > 0
    assert passed["nl.servicepuls.contact.completed.v1"] > 0  # outbound, or about a case
