"""Simulated time: a clock that runs `speedup` times faster than the wall clock.

Events are posted when their simulated time comes and carry that time as their event time, so
the norms service (with an event-time clock) reaches exactly the outcomes it would reach if the
week had really passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta


class SimulatedClock:
    def __init__(
        self,
        start: datetime,
        speedup: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speedup <= 0:
            raise ValueError("speed-up must be positive")
        self.start = start
        self.speedup = speedup
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(self._monotonic() - self._origin) * self.speedup)

    def wall_seconds_until(self, moment: datetime) -> float:
        """How long to wait on the wall clock before `moment` arrives in simulated time."""
        return (moment - self.now()).total_seconds() / self.speedup
