"""Exact counts from a known input, through kill -9, restart and consumer-group rebalances.

The metrics service runs as real processes against the real Kafka and PostgreSQL. Events are
published while a second replica joins (rebalance) and the first is killed with SIGKILL mid-stream
and restarted; part of the input is then published a second time (same ids, as a producer retry
or a replay would). Every counter, histogram count/sum and "now" gauge of the test's own
municipality must equal the values written down when the input was made.
"""

from __future__ import annotations

import asyncio
import csv
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.integration.metrics.support import (
    DATABASE_URL,
    Publisher,
    config_with,
    fresh_municipality,
    scrape,
    scrape_text,
    start_group_at_end,
)
from tests.integration.metrics.traffic import NORM, make_traffic, mismatches, sample_key
from tests.support.services import REPO_ROOT, running_service

pytestmark = pytest.mark.integration

# Ports and a consumer group of the test's own: a demo or another test may run the metrics
# service on 8083 with group `metrics` at the same time (both count into the same PostgreSQL
# aggregates, once per event, so the exporter here still sees exact totals).
PORT_A = 18083
PORT_B = 18093


async def _exporter(urls: list[str]) -> str | None:
    for url in urls:
        try:
            samples = await scrape(url)
        except Exception:
            continue
        if samples.get(sample_key("servicepuls_metrics_exporting")) == 1.0:
            return url
    return None


async def _wait_exact(urls: list[str], expected: dict, timeout: float = 90) -> tuple[str, list]:
    deadline = asyncio.get_running_loop().time() + timeout
    wrong: list[str] = ["no replica exporting"]
    while asyncio.get_running_loop().time() < deadline:
        url = await _exporter(urls)
        if url is not None:
            wrong = mismatches(expected, await scrape(url))
            if not wrong:
                return url, []
        await asyncio.sleep(1)
    return "", wrong


@pytest.mark.timeout(240)
async def test_exact_counts_survive_kill_restart_and_rebalance(tmp_path):
    municipality = fresh_municipality()
    traffic = make_traffic(municipality, scale=2)
    events = traffic.events
    third = len(events) // 3
    group = f"metrics-test-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(group)
    env = {
        "SERVICEPULS_METRICS_PORT": str(PORT_A),
        "SERVICEPULS_METRICS_CONSUMER_GROUP": group,
        "SERVICEPULS_CONFIG_DIR": str(config_with(tmp_path, municipality)),
        "SERVICEPULS_METRICS_REFRESH_SECONDS": "1",
        "SERVICEPULS_METRICS_MAX_BATCH": "40",
    }
    urls = [f"http://127.0.0.1:{PORT_A}", f"http://127.0.0.1:{PORT_B}"]
    async with (
        Publisher() as publisher,
        running_service("metrics", port=PORT_A, env=env) as replica_a,
    ):
        await publisher.send(events[:third], chunk=20, pause=0.02)
        # A second replica joins the group: the partitions are rebalanced mid-stream.
        async with running_service(
            "metrics", port=PORT_B, env={**env, "SERVICEPULS_METRICS_PORT": str(PORT_B)}
        ):
            sending = asyncio.create_task(
                publisher.send(events[third : 2 * third], chunk=10, pause=0.02)
            )
            await asyncio.sleep(0.3)
            replica_a.kill()  # SIGKILL while batches are in flight
            await sending
            await publisher.send(events[2 * third :], chunk=20)
            replica_a.start()
            await replica_a.wait_ready()
            # The same events again (a producer retry, a replay): they must count nothing.
            await publisher.send(events[: third + 40], chunk=50)
            url, wrong = await _wait_exact(urls, traffic.expected)
            assert not wrong, "\n".join(wrong[:30])

        # Replica B is gone (graceful stop), replica A takes over exporting: still exact, and
        # the "now" gauges come from PostgreSQL, not from what A itself consumed.
        url, wrong = await _wait_exact(urls[:1], traffic.expected, timeout=30)
        assert not wrong, "\n".join(wrong[:30])

        # After a plain restart the numbers are the same again, loaded from PostgreSQL.
        await replica_a.restart()
        url, wrong = await _wait_exact(urls[:1], traffic.expected, timeout=30)
        assert not wrong, "\n".join(wrong[:30])

        text = await scrape_text(url)
        lint = await asyncio.create_subprocess_exec(
            "promtool",
            "check",
            "metrics",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await lint.communicate(text.encode())
        assert lint.returncode == 0, output.decode()

    # The durable facts behind the period report agree with the counters.
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        contacts = await conn.fetchval(
            "SELECT sum(value) FROM metrics.daily_fact WHERE municipality = $1 AND fact = 'contact'",
            municipality,
        )
        responses = await conn.fetchval(
            "SELECT sum(value) FROM metrics.daily_fact"
            " WHERE municipality = $1 AND fact = 'survey_response'",
            municipality,
        )
    finally:
        await conn.close()
    expected_contacts = sum(
        v for (name, labels), v in traffic.expected.items() if name == "servicepuls_contacts_total"
    )
    expected_responses = sum(
        v
        for (name, labels), v in traffic.expected.items()
        if name == "servicepuls_surveys_responded_total"
    )
    assert contacts == expected_contacts
    assert responses == expected_responses

    # The period report command reads the same facts: per-norm outcomes match the counters.
    today = datetime.now(UTC).date()
    out = tmp_path / "report"
    report = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.metrics.report",
        "--municipality",
        municipality,
        "--from",
        (today - timedelta(days=40)).isoformat(),
        "--to",
        today.isoformat(),
        "--out",
        str(out),
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await report.communicate()
    assert report.returncode == 0, output.decode()
    with (out / "norms.csv").open() as handle:
        [norm] = list(csv.DictReader(handle))
    for outcome in ("met", "missed"):
        assert (
            int(norm[outcome])
            == traffic.expected[
                sample_key(
                    "servicepuls_norm_clocks_stopped_total",
                    municipality=municipality,
                    norm=NORM,
                    outcome=outcome,
                )
            ]
        )
    html = (out / "report.html").read_text()
    assert "<svg" in html and "<script" not in html and "src=" not in html
