"""Posting to intake the way a real channel system does: authenticated batches over HTTP.

Each channel system has its own bearer token (development tokens are `dev-<name>`, see
docs/intake.md), so events are grouped by the system behind their source. A batch is
all-or-nothing at intake: a 202 means every event is on Kafka. A 429 (the channel system is
over its rate limit; nothing of the batch was taken) and a 503 (Kafka not acknowledging, or the
outcome unknown) are retried with the same batch after the Retry-After the server gives (each
wait at most `max_retry_wait`, all of them together at most `give_up_after`): repeating an
event is harmless, so nothing is lost. Any other 4xx is a bug in the simulator and is recorded
in the ledger as rejected, never silently dropped.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from simulator.generator import SimEvent, channel_system_name
from simulator.ledger import Ledger, inbound_channel

DEFAULT_INTAKE_URL = "http://127.0.0.1:8080"


def dev_token(system: str) -> str:
    """The token of a channel system: SERVICEPULS_SIM_TOKEN_<SYSTEM> or the development token."""
    return os.environ.get(f"SERVICEPULS_SIM_TOKEN_{system.upper()}", f"dev-{system}")


class IntakeUnavailable(RuntimeError):
    pass


@dataclass(slots=True)
class PostingStats:
    accepted: int = 0
    rejected: int = 0
    batches: int = 0
    retries: int = 0
    rate_limited: int = 0  # of the retries, those after a 429
    by_type: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    by_channel: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    problems: list[str] = field(default_factory=list)


class IntakePoster:
    def __init__(
        self,
        ledger: Ledger,
        *,
        base_url: str = DEFAULT_INTAKE_URL,
        token_for: Callable[[str], str] = dev_token,
        max_batch: int = 500,
        give_up_after: float = 120.0,
        max_retry_wait: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.ledger = ledger
        self.base_url = base_url.rstrip("/")
        self.token_for = token_for
        self.max_batch = max_batch
        self.give_up_after = give_up_after
        self.max_retry_wait = max_retry_wait
        self.client = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
        self.stats = PostingStats()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def post(self, events: Iterable[SimEvent]) -> None:
        """Post events, grouped per channel system in their original order."""
        by_system: dict[str, list[SimEvent]] = defaultdict(list)
        for event in events:
            by_system[channel_system_name(event.source)].append(event)
        for system, group in by_system.items():
            for start in range(0, len(group), self.max_batch):
                await self._post_batch(system, group[start : start + self.max_batch])

    async def _post_batch(self, system: str, batch: list[SimEvent]) -> None:
        body = [event.cloudevent() for event in batch]
        headers = {"Authorization": f"Bearer {self.token_for(system)}"}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.give_up_after
        delay = 0.5
        while True:
            try:
                response = await self.client.post(
                    f"{self.base_url}/v1/events:batch", json=body, headers=headers
                )
            except httpx.TransportError as exc:
                reason = f"intake unreachable: {exc!r}"
                retry_after = delay
                self.ledger.intake_answer([e.id for e in batch], None)
            else:
                self.ledger.intake_answer(
                    [e.id for e in batch], response.status_code, _outcome(response)
                )
                if response.status_code in (200, 201, 202):
                    self._accepted(batch)
                    return
                if response.status_code not in (429, 502, 503, 504):
                    self._rejected(batch, response)
                    return
                reason = f"intake answered {response.status_code}"
                retry_after = min(_retry_after(response, delay), self.max_retry_wait)
                if response.status_code == 429:
                    self.stats.rate_limited += 1
            if loop.time() + retry_after > deadline:
                raise IntakeUnavailable(f"{reason}; gave up after {self.give_up_after:.0f}s")
            self.stats.retries += 1
            await asyncio.sleep(retry_after)
            delay = min(delay * 2, 10.0)

    def _accepted(self, batch: list[SimEvent]) -> None:
        self.ledger.accepted(batch)
        self.stats.accepted += len(batch)
        self.stats.batches += 1
        for event in batch:
            self.stats.by_type[event.type] += 1
            channel = inbound_channel(event.type, event.data)
            if channel:
                self.stats.by_channel[channel] += 1

    def _rejected(self, batch: list[SimEvent], response: httpx.Response) -> None:
        try:
            problem: Any = response.json()
        except ValueError:
            problem = response.text[:2000]
        self.ledger.rejected(batch, response.status_code, problem)
        self.stats.rejected += len(batch)
        self.stats.batches += 1
        detail = problem.get("detail") if isinstance(problem, dict) else str(problem)
        self.stats.problems.append(f"{response.status_code}: {str(detail)[:300]}")


def _outcome(response: httpx.Response) -> str | None:
    """What a 503 says about the batch (`not-written` or `unknown`), else None."""
    if response.status_code != 503:
        return None
    try:
        problem = response.json()
    except ValueError:
        return None
    return problem.get("outcome") if isinstance(problem, dict) else None


def _retry_after(response: httpx.Response, default: float) -> float:
    value = response.headers.get("Retry-After")
    try:
        return max(0.1, float(value)) if value is not None else default
    except ValueError:
        return default
