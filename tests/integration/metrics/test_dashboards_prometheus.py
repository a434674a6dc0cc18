"""Every query of every Grafana panel, sent to the real Prometheus after an end-to-end run.

Contacts and cases go through intake (the running one on 8080, or one started here); norm and
survey events are published to their topics directly (the norms and feedback services may not
be running). The metrics service on 8083 (the port Prometheus scrapes; a running one is used). Then each panel's
PromQL — with the dashboard variables filled in as Grafana would — must parse and return data.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from schemas.events import Family
from tests.integration.metrics.support import PROMETHEUS, Publisher
from tests.integration.metrics.traffic import make_traffic
from tests.support.services import REPO_ROOT, running_service

pytestmark = pytest.mark.integration

DASHBOARDS = REPO_ROOT / "deploy" / "grafana" / "dashboards"
MUNICIPALITY = "GM0383"  # a municipality intake's development channel systems may post for
INTAKE = "http://127.0.0.1:8080"
METRICS = "http://127.0.0.1:8083"
TOKEN = {"Authorization": "Bearer dev-test"}


def panel_queries() -> list[tuple[str, str, str]]:
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                queries.append((path.name, panel["title"], target["expr"]))
    return queries


def as_grafana_sends(expr: str) -> str:
    return expr.replace("$municipality", MUNICIPALITY).replace("$__rate_interval", "1m")


async def _up(client: httpx.AsyncClient, base_url: str) -> bool:
    try:
        return (await client.get(base_url + "/ready", timeout=2)).status_code == 200
    except httpx.HTTPError:
        return False


async def _post_through_intake(client: httpx.AsyncClient, events: list[Any]) -> None:
    for start in range(0, len(events), 200):
        documents = [
            e.model_dump(mode="json", exclude_none=True) for e in events[start : start + 200]
        ]
        response = await client.post(
            INTAKE + "/v1/events:batch",
            json=documents,
            headers={**TOKEN, "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 202, response.text[:2000]


async def _query(client: httpx.AsyncClient, expr: str) -> dict[str, Any]:
    response = await client.get(PROMETHEUS + "/api/v1/query", params={"query": expr}, timeout=10)
    return response.json()


async def _scalar(client: httpx.AsyncClient, expr: str) -> float:
    result = (await _query(client, expr))["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


@pytest.mark.timeout(300)
async def test_every_panel_query_parses_and_returns_data_after_traffic():
    queries = panel_queries()
    assert len(queries) >= 40
    traffic = make_traffic(MUNICIPALITY)
    through_intake = [e for e in traffic.events if e.data.family is Family.INTAKE]
    direct = [e for e in traffic.events if e.data.family is not Family.INTAKE]
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient())
        # The rule files are loaded by Prometheus from deploy/prometheus/rules/.
        reload = await client.post(PROMETHEUS + "/-/reload", timeout=10)
        assert reload.status_code == 200, reload.text
        # The port Prometheus scrapes: use the metrics service already there (a demo), else start one.
        if not await _up(client, METRICS):
            await stack.enter_async_context(
                running_service(
                    "metrics", port=8083, env={"SERVICEPULS_METRICS_REFRESH_SECONDS": "1"}
                )
            )
        if not await _up(client, INTAKE):
            await stack.enter_async_context(running_service("intake", port=8080))
        contacts = f'sum(servicepuls_contacts_total{{municipality="{MUNICIPALITY}"}})'
        before = await _scalar(client, contacts)
        await _post_through_intake(client, through_intake)
        async with Publisher() as publisher:
            await publisher.send(direct)
        # Prometheus must have scraped this run's traffic before the panels are judged.
        expected = sum(
            v for (name, _), v in traffic.expected.items() if name == "servicepuls_contacts_total"
        )
        deadline = asyncio.get_running_loop().time() + 120
        while await _scalar(client, contacts) < before + expected:
            assert asyncio.get_running_loop().time() < deadline, "traffic never reached Prometheus"
            await asyncio.sleep(2)

        # Poll until Prometheus scraped enough (5 s interval) for rates and recording rules.
        deadline = asyncio.get_running_loop().time() + 150
        while True:
            results = {}
            for board, title, expr in queries:
                results[(board, title, expr)] = await _query(client, as_grafana_sends(expr))
            empty = [
                k
                for k, r in results.items()
                if r.get("status") != "success" or not r["data"]["result"]
            ]
            if not empty or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(5)

        failures = [
            f"{board} / {title}: {expr}\n  -> {json.dumps(results[(board, title, expr)])[:300]}"
            for board, title, expr in empty
        ]
        assert not failures, (
            f"{len(failures)} of {len(queries)} panel queries failed:\n" + "\n".join(failures)
        )

        # The municipality variable (label_values) offers the municipality that had traffic.
        values = await client.get(
            PROMETHEUS + "/api/v1/label/municipality/values",
            params={"match[]": "servicepuls_contacts_total"},
        )
        assert MUNICIPALITY in values.json()["data"]

        # The alert rules are loaded and evaluate without errors against the live series.
        rules = (await client.get(PROMETHEUS + "/api/v1/rules")).json()["data"]["groups"]
        names = {g["name"] for g in rules}
        assert {"servicepuls-recording", "servicepuls-alerts"} <= names
        unhealthy = [r["name"] for g in rules for r in g["rules"] if r.get("health") == "err"]
        assert not unhealthy, unhealthy
