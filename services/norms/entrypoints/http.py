"""The norms service's HTTP routes: thin (parse the request, ask the service, answer JSON).

    GET /v1/compliance?municipality=GM0383&from=2026-01-01&to=2026-03-31
    GET /v1/clocks/{clock_id}?lang=nl|en    why the clock's due instant is what it is
    GET /v1/revisions?municipality=GM0383   the catalog revisions, oldest first
    GET /v1/revisions/{revision_id}         one revision and every clock it changed

`/health`, `/ready` and `/metrics` are added by the composition root (bootstrap.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any
from urllib.parse import parse_qs

from faststream.asgi import AsgiFastStream, AsgiResponse, get

from services.norms.service import NormsService

CLOCKS_PATH = "/v1/clocks/"
REVISIONS_PATH = "/v1/revisions/"


def _json(body: dict[str, Any], status: int) -> AsgiResponse:
    return AsgiResponse(
        json.dumps(body, ensure_ascii=False).encode(),
        status,
        headers={"content-type": "application/json"},
    )


def _query(scope: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}


def http_routes(
    service_of: Callable[[], NormsService],
) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """The routes (exact paths) and the prefix routes (a path that goes on: a clock id, a
    revision id). `service_of` gives the service when asked (it is made at start, after the
    routes)."""

    @get
    async def compliance(scope: Any) -> AsgiResponse:
        """GET /v1/compliance?municipality=GM0383&from=2026-01-01&to=2026-03-31"""
        query = _query(scope)
        municipality = query.get("municipality", "")
        norms = service_of()
        if municipality not in norms.catalogs:
            return AsgiResponse(b'{"error": "unknown municipality"}', 404)
        try:
            first = date.fromisoformat(query.get("from", "1970-01-01"))
            last = date.fromisoformat(query.get("to", "2999-12-31"))
        except ValueError:
            return AsgiResponse(b'{"error": "from and to are dates (YYYY-MM-DD)"}', 400)
        report = await norms.compliance(municipality, first, last)
        body = {"municipality": municipality, "from": str(first), "to": str(last), "norms": report}
        return AsgiResponse(
            json.dumps(body).encode(), 200, headers={"content-type": "application/json"}
        )

    @get
    async def clock(scope: Any) -> AsgiResponse:
        """GET /v1/clocks/{clock_id}?lang=nl|en: why the clock's due instant is what it is
        (the clock id, e.g. GM0383/email_answered/ZAAK-1, holds slashes)."""
        clock_id = scope.get("path", "").removeprefix(CLOCKS_PATH)
        lang = _query(scope).get("lang", "nl")
        if lang not in ("nl", "en"):
            return _json({"error": "lang: nl or en"}, 400)
        body = await service_of().explained_clock(clock_id, lang)
        if body is None:
            return _json({"error": f"no clock {clock_id!r} (or it never started)"}, 404)
        return _json(body, 200)

    @get
    async def revisions(scope: Any) -> AsgiResponse:
        """GET /v1/revisions?municipality=GM0383: the catalog revisions, oldest first."""
        municipality = _query(scope).get("municipality", "")
        norms = service_of()
        if municipality not in norms.catalogs:
            return _json({"error": "unknown municipality"}, 404)
        listed = await norms.revisions(municipality)
        return _json({"municipality": municipality, "revisions": listed}, 200)

    @get
    async def revision(scope: Any) -> AsgiResponse:
        """GET /v1/revisions/{revision_id}: one revision and every clock it changed."""
        text = scope.get("path", "").removeprefix(REVISIONS_PATH)
        try:
            revision_id = uuid.UUID(text)
        except ValueError:
            return _json({"error": f"not a revision id (a UUID): {text!r}"}, 400)
        body = await service_of().revision(revision_id)
        if body is None:
            return _json({"error": f"no revision {text}"}, 404)
        return _json(body, 200)

    routes = [("/v1/compliance", compliance), ("/v1/revisions", revisions)]
    prefix_routes = [(CLOCKS_PATH, clock), (REVISIONS_PATH, revision)]
    return routes, prefix_routes


class PrefixRoutes(AsgiFastStream):
    """FastStream's ASGI app routes exact paths; these routes also take what follows their
    prefix (a clock id)."""

    def __init__(self, *args: Any, prefix_routes: Sequence[tuple[str, Any]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.prefix_routes = list(prefix_routes)

    async def not_found(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for prefix, route in self.prefix_routes:
                if scope["path"].startswith(prefix) and len(scope["path"]) > len(prefix):
                    await route(scope, receive, send)
                    return
        await super().not_found(scope, receive, send)
