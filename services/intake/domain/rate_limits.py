"""How many events a channel system may post: a token bucket per system.

Each system has a rate (events per second, the refill) and a burst (the bucket's size). An event
costs one token; a request is admitted whole or not at all: a batch of 300 events takes 300
tokens at once, or none and is told how long until there are 300. Small and synchronous on
purpose: intake serves a request on one event loop, so taking tokens needs no lock, and the
wait to give in `Retry-After` follows from the bucket directly ("how long until n tokens").

The buckets are per intake process: with N replicas behind a load balancer a system may post N
times its rate in total.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

from pydantic import BaseModel, ConfigDict, Field

# Defaults: far above what a channel system of a municipality posts (a KCC's phone platform: a
# few events a second), and above what the simulator posts at the demo's and the e2e test's
# speeds (docs/intake.md, "Rate limits"); low enough that one system cannot take intake's whole
# capacity (docs/benchmarks.md) from the others.
DEFAULT_EVENTS_PER_SECOND = 200.0
DEFAULT_BURST = 2000


class RateLimit(BaseModel):
    """A channel system's rate limit, as configured in channel_systems.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    events_per_second: float = Field(default=DEFAULT_EVENTS_PER_SECOND, gt=0)
    # The most events at once: a batch larger than this is refused outright (413).
    burst: int = Field(default=DEFAULT_BURST, ge=1)


class TokenBucket:
    """Tokens refill at `rate` per second up to `burst`; it starts full."""

    __slots__ = ("_clock", "_tokens", "_updated", "burst", "rate")

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        return self._tokens

    def wait_for(self, count: int) -> float:
        """Seconds until `count` tokens are there (0 when they are now); takes nothing."""
        missing = count - self._refill()
        return 0.0 if missing <= 0 else missing / self.rate

    def take(self, count: int) -> float:
        """Take `count` tokens and return 0, or take none and return the seconds until there
        are enough. `count` must not exceed the burst (it would never fit)."""
        if count > self.burst:
            raise ValueError(f"{count} tokens never fit in a bucket of {self.burst}")
        wait = self.wait_for(count)
        if wait == 0:
            self._tokens -= count
        return wait

    def debit(self, count: int) -> None:
        """Take up to `count` tokens, as many as there are (for what is charged regardless)."""
        self._tokens = max(0.0, self._refill() - count)


def retry_after(wait: float) -> int:
    """The wait as `Retry-After` gives it: whole seconds, at least 1."""
    return max(1, math.ceil(wait))


class RateLimiter:
    """The token bucket of each channel system, by name."""

    def __init__(
        self,
        limits: Iterable[tuple[str, RateLimit]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._buckets = {
            name: TokenBucket(limit.events_per_second, limit.burst, clock=clock)
            for name, limit in limits
        }

    def bucket(self, system: str) -> TokenBucket:
        return self._buckets[system]
