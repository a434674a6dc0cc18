"""Fetching resources from the Zaken, Catalogi and Klantinteracties APIs (and talking to the
Notificaties API): per-source authentication, timeouts, and retries with backoff."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx
import jwt
import structlog

from services.connector.config import Api, JwtAuth, Source, secret

log = structlog.get_logger("connector")

# Statuses worth trying again: the API is busy, restarting or briefly unreachable.
TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})


class FetchFailed(Exception):
    """A resource could not be fetched. `reason` is a short code for the dead letter and the
    metric; the message names the status or error, never the body (it may hold personal data)."""

    def __init__(self, reason: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


def authorization(auth: JwtAuth | Any, *, now: float | None = None) -> str:
    """The Authorization value for an API: a fresh ZGW JWT (HS256, `client_id` as issuer and
    claim, as Open Zaak checks it) or `Token <token>`."""
    if isinstance(auth, JwtAuth):
        issued = int(now if now is not None else time.time())
        token = jwt.encode(
            {
                "iss": auth.client_id,
                "iat": issued,
                "client_id": auth.client_id,
                "user_id": "servicepuls-connector",
                "user_representation": "Servicepuls connector",
            },
            secret(auth.secret_env),
            algorithm="HS256",
        )
        return f"Bearer {token}"
    return f"Token {secret(auth.token_env)}"


class ApiClient:
    """One HTTP client for every source (connections are pooled per host)."""

    def __init__(
        self,
        *,
        timeout: float,
        tries: int,
        backoff: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), transport=transport, follow_redirects=False
        )
        self.tries = tries
        self.backoff = backoff

    async def close(self) -> None:
        await self.http.aclose()

    async def get(self, source: Source, url: str, *, params: dict[str, str] | None = None) -> Any:
        """The JSON of `url`, fetched with the credentials of the API that owns it."""
        return await self.request(source, "GET", url, params=params)

    async def request(
        self,
        source: Source,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        api: Api | None = None,
    ) -> Any:
        api = api or source.api_for(url)
        if api is None:
            # Never send credentials to a host the configuration does not name.
            raise FetchFailed("unknown_api", f"no API of {source.municipality} serves {url}")
        last: FetchFailed | None = None
        for attempt in range(1, self.tries + 1):
            try:
                response = await self.http.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers={
                        "Authorization": authorization(api.auth),
                        "Accept": "application/json",
                        "Accept-Crs": "EPSG:4326",
                        "Content-Crs": "EPSG:4326",
                    },
                )
            except httpx.TimeoutException as exc:
                last = FetchFailed("timeout", f"{method} {url}: timed out ({type(exc).__name__})")
            except httpx.TransportError as exc:
                last = FetchFailed("unreachable", f"{method} {url}: {type(exc).__name__}")
            else:
                if response.is_success:
                    return response.json() if response.content else None
                last = FetchFailed(
                    "http_" + str(response.status_code),
                    f"{method} {url}: HTTP {response.status_code}",
                    status=response.status_code,
                )
                if response.status_code not in TRANSIENT:
                    raise last
            if attempt < self.tries:
                delay = self.backoff * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
                log.info("fetch failed, trying again", error=str(last), retry_in=round(delay, 2))
                await asyncio.sleep(delay)
        assert last is not None
        raise last

    async def all_pages(
        self, source: Source, url: str, *, params: dict[str, str] | None = None
    ) -> list[Any]:
        """Every result of a paginated list (`results`, `next`), or a plain list."""
        found: list[Any] = []
        page: Any = await self.get(source, url, params=params)
        while True:
            if isinstance(page, list):
                return found + page
            found.extend(page.get("results", []))
            following = page.get("next")
            if not following:
                return found
            page = await self.get(source, following)
