"""`python -m simulator --via-connector SHARE`: a share of the case system's zaken reaches
Servicepuls the way a municipality running Open Zaak sends them (fake Open Zaak and Open Klant,
notifications to the connector), the rest is posted to a real intake process. Both land on one
private intake topic on real Kafka. A simulated day of one municipality: about 30 seconds."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from simulator.cli import default_start
from simulator.ledger import read_ledger
from tests.integration.norms.support import free_ports
from tests.support.kafka import private_topics, topic_tail
from tests.support.services import REPO_ROOT, running_service

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CASE_SYSTEM = "/buch/zaaksysteem"
OPEN_ZAAK = "/buch/open-zaak"


async def test_a_share_of_the_zaken_goes_through_open_zaak_and_the_connector() -> None:
    run = f"via{uuid.uuid4().hex[:8]}"
    topic = f"test.simulator-via-connector.{run}"
    [port] = free_ports(1)
    env = {
        "SERVICEPULS_INTAKE_PORT": str(port),
        "SERVICEPULS_INTAKE_TOPIC": topic,
        # The connector the simulator runs writes to the same private topic.
        "SERVICEPULS_CONNECTOR_TOPIC": topic,
    }
    folder = REPO_ROOT / ".stack" / "simulator"
    ledger_path, summary_path = folder / f"{run}.jsonl", folder / f"{run}.summary.json"
    async with (
        private_topics(topic, partitions=3),
        topic_tail(topic, from_beginning=True) as tail,
        running_service("intake", port=port, env=env),
    ):
        simulator = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simulator",
            "--municipalities", "GM0383",
            "--days", "10",
            "--scale", "0.25",
            "--speedup", "60000",
            "--start", default_start(10).isoformat(),
            "--run-id", run,
            "--intake-url", f"http://127.0.0.1:{port}",
            "--ledger", str(ledger_path),
            "--summary-json", str(summary_path),
            "--via-connector", "0.7",
            "--no-live", "--no-watch", "--no-answers", "--settle", "0",
            cwd=REPO_ROOT,
            env={**os.environ, **env},
        )  # fmt: skip
        assert await asyncio.wait_for(simulator.wait(), timeout=240) == 0
        ledger = read_ledger(ledger_path)
        [end] = ledger.ends
        via = end["via_connector"]
        # What the simulator posted to intake, and what the connector admitted (through
        # Open Zaak's changes) are all on the topic.
        expected = len(ledger.events) + sum(via["events"].values())
        events = await tail.wait_for(lambda e: True, count=expected, timeout=60)

    assert not ledger.rejected
    assert via["zaken"] > 0, "no zaak went through the connector: a larger --scale?"
    assert via["refused"] == 0 and via["dead_letters"] == 0 and via["pending"] == 0
    routed = {
        e["event"]["data"]["case_id"]
        for e in _records(ledger_path, "via_connector")
        if e["event"]["type"].endswith("case.opened.v1")
    }
    assert len(routed) == via["zaken"]
    posted_cases = {
        e["data"]["case_id"] for e in ledger.events if e["type"].startswith("nl.servicepuls.case.")
    }
    assert routed.isdisjoint(posted_cases)  # no event of a routed zaak is also posted to intake
    assert posted_cases, "the other cases still go to intake directly"
    # The zaken as the connector tells them: their own source, one case.opened per zaak, and
    # every case event the simulator played as a change in Open Zaak (a case.responded is a
    # status of its own there, so it adds a case.status_changed).
    from_open_zaak = Counter(
        e.type.removeprefix("nl.servicepuls.").removesuffix(".v1")
        for e in events
        if e.source == OPEN_ZAAK
    )
    played = via["events"]
    assert played.get("case.closed", 0) + played.get("case.suspended", 0) > 0, played
    assert from_open_zaak["case.opened"] == via["zaken"] == played["case.opened"]
    for kind in ("case.closed", "case.suspended", "case.resumed", "case.extended"):
        assert from_open_zaak[kind] == played.get(kind, 0), kind
    assert from_open_zaak["case.responded"] == played.get("case.responded", 0)
    assert from_open_zaak["case.status_changed"] == played.get(
        "case.status_changed", 0
    ) + played.get("case.responded", 0) + played.get("case.closed", 0)
    assert not [e for e in events if e.source == CASE_SYSTEM and e.subject in routed]


def _records(path: Path, kind: str) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()
    return [record for line in lines if (record := json.loads(line))["kind"] == kind]
