"""Playing a plan in (compressed) real time: events are posted when their simulated time comes.

The loop asks the simulated clock what time it is, posts everything that has happened by then
(in batches), and sleeps until the next event is due. When the platform is slower than the
simulation, it catches up in larger batches; event time stays exact either way, so outcomes are
the same as in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from simulator.clock import SimulatedClock
from simulator.generator import SimEvent, SimulationPlan, TrafficGenerator
from simulator.open_zaak import OpenZaakRoute
from simulator.poster import IntakePoster

CASE_OPENED = "nl.servicepuls.case.opened.v1"
CASE_CLOSED = "nl.servicepuls.case.closed.v1"
CASE_REOPENED = "nl.servicepuls.case.reopened.v1"


@dataclass(slots=True)
class Progress:
    """What the simulation has done so far (read by the progress bar and the live summary)."""

    plan: SimulationPlan
    sim_now: datetime
    posted: int = 0
    finished: bool = False
    open_cases: dict[str, set[str]] = field(default_factory=dict)  # municipality -> case ids
    closed_cases: int = 0
    pending_at_end: int = 0

    @property
    def fraction(self) -> float:
        total = (self.plan.end - self.plan.start).total_seconds()
        done = (self.sim_now - self.plan.start).total_seconds()
        return max(0.0, min(1.0, done / total))

    def observe(self, events: list[SimEvent]) -> None:
        self.posted += len(events)
        for event in events:
            cases = self.open_cases.setdefault(event.municipality, set())
            if event.type in (CASE_OPENED, CASE_REOPENED):
                cases.add(event.subject)
            elif event.type == CASE_CLOSED:
                cases.discard(event.subject)
                self.closed_cases += 1


async def play(
    plan: SimulationPlan,
    clock: SimulatedClock,
    poster: IntakePoster,
    progress: Progress,
    *,
    stop: asyncio.Event | None = None,
    on_posted: Callable[[list[SimEvent]], None] | None = None,
    tick: float = 0.25,
    route: OpenZaakRoute | None = None,
) -> None:
    """Post the plan's events as simulated time passes, until the plan ends or `stop` is set.
    With a `route`, the zaken it takes go through Open Zaak and the connector instead."""
    stop = stop or asyncio.Event()
    generator = TrafficGenerator(plan)
    stream = generator.events()
    upcoming = next(stream, None)
    while not stop.is_set():
        now = min(clock.now(), plan.end)
        progress.sim_now = now
        due: list[SimEvent] = []
        while upcoming is not None and upcoming.at <= now and len(due) < poster.max_batch:
            due.append(upcoming)
            upcoming = next(stream, None)
        if due:
            if route is None:
                await poster.post(due)
            else:
                via = [event for event in due if route.takes(event)]
                await poster.post([event for event in due if not route.has(event)])
                await route.post(via)
            progress.observe(due)
            if on_posted:
                on_posted(due)
            continue
        if upcoming is None and now >= plan.end:
            break
        wait = clock.wall_seconds_until(upcoming.at if upcoming else plan.end)
        await _sleep_or_stop(stop, max(0.0, min(wait, tick)))
    progress.pending_at_end = len(generator.pending())
    progress.finished = True


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
