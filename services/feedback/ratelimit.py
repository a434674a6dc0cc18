"""Rate limits of feedback's HTTP faces: the survey page per client address, failed look-ups
(unknown survey links, unknown staff tokens) per client address, and the staff API per token.

Token buckets in memory, per replica: a bucket holds `burst` requests and refills at `rate` per
second. A refused request is answered 429 with `Retry-After` before anything is read from or
written to the database, so it has no effect at all and can simply be sent again.

Client addresses are personal data: they live only in these buckets (never in a log line or a
metric label), and the number of buckets kept is bounded (the least recently used is dropped,
which only ever gives that address a full bucket again). IPv6 addresses are grouped by their /64
prefix, the block one subscriber usually gets.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fastapi import Request


class RateLimited(Exception):
    """Over a limit: answer 429, retry after `retry_after` seconds."""

    def __init__(self, face: str, retry_after: float) -> None:
        super().__init__(face)
        self.face = face
        self.retry_after = max(1, math.ceil(retry_after))


class TokenBuckets:
    def __init__(
        self,
        per_minute: float,
        *,
        burst: float | None = None,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute / 60.0
        self.burst = burst if burst is not None else per_minute
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, key: str) -> float:
        now = self._clock()
        tokens, then = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - then) * self.rate)

    def _store(self, key: str, tokens: float) -> None:
        self._buckets[key] = (tokens, self._clock())
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)

    def wait(self, key: str) -> float:
        """Seconds until `key` may make a request (0: now); takes nothing."""
        level = self._level(key)
        return 0.0 if level >= 1 else (1 - level) / self.rate

    def take(self, key: str) -> float:
        """Take one request from `key`'s bucket: 0 when allowed, else the seconds to wait (and
        nothing is taken)."""
        level = self._level(key)
        if level < 1:
            return (1 - level) / self.rate
        self._store(key, level - 1)
        return 0.0


@dataclass
class Limits:
    """The limits of one feedback instance."""

    page: TokenBuckets
    failed_lookups: TokenBuckets
    staff: TokenBuckets
    exempt: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def build(
        cls,
        *,
        page_per_minute: float,
        failed_lookups_per_hour: float,
        staff_per_minute: float,
        exempt: Iterable[str] = (),
    ) -> Limits:
        return cls(
            page=TokenBuckets(page_per_minute),
            failed_lookups=TokenBuckets(
                failed_lookups_per_hour / 60.0, burst=failed_lookups_per_hour
            ),
            staff=TokenBuckets(staff_per_minute),
            exempt=tuple(ipaddress.ip_network(n, strict=False) for n in exempt),
        )

    def client_key(self, request: Request) -> str | None:
        """The key of the request's client address, or None when it is exempt."""
        host = request.client.host if request.client else ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host or "unknown"
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.exempt):
            return None
        if isinstance(address, ipaddress.IPv6Address):
            return str(ipaddress.IPv6Network((address, 64), strict=False))
        return str(address)

    def check_page(self, request: Request) -> None:
        """A survey page request: refused when the address is over the page limit, or spent its
        failed look-ups (a scraper trying links)."""
        key = self.client_key(request)
        if key is None:
            return
        waiting = self.failed_lookups.wait(key)
        if waiting:
            raise RateLimited("failed_lookups", waiting)
        waiting = self.page.take(key)
        if waiting:
            raise RateLimited("survey_page", waiting)

    def check_failed_lookups(self, request: Request) -> None:
        key = self.client_key(request)
        if key is not None:
            waiting = self.failed_lookups.wait(key)
            if waiting:
                raise RateLimited("failed_lookups", waiting)

    def failed_lookup(self, request: Request) -> None:
        """Count a look-up that found nothing (a forged link, an unknown staff token)."""
        key = self.client_key(request)
        if key is not None:
            self.failed_lookups.take(key)

    def check_staff(self, token_name: str) -> None:
        waiting = self.staff.take(token_name)
        if waiting:
            raise RateLimited("staff", waiting)
