"""Readiness probe and topic set-up for the local Kafka broker (used by scripts/stack.sh).

    kafka_admin.py ready [--timeout SECONDS]   exit 0 once a metadata request succeeds
    kafka_admin.py ensure-topics [--timeout S] the same, then create the project's missing topics

Uses the same client library as the services (aiokafka), so "ready" means ready for them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

BOOTSTRAP = os.environ.get("SERVICEPULS_KAFKA_BOOTSTRAP", "127.0.0.1:9092")

# The project's topics: name -> partitions. Replication factor 1: a single local broker.
TOPICS = {
    "servicepuls.intake.v1": 6,
    "servicepuls.norms.v1": 6,
    "servicepuls.feedback.v1": 6,
    # Records a consumer set aside (services/common/deadletters.py); kept 90 days.
    "servicepuls.deadletter.v1": 3,
}
TOPIC_CONFIG = {"min.insync.replicas": "1"}
CONFIG_OF = {"servicepuls.deadletter.v1": {"retention.ms": str(90 * 24 * 3600 * 1000)}}


async def _metadata_once(timeout: float) -> list[str]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=BOOTSTRAP,
        request_timeout_ms=max(1000, int(timeout * 1000)),
        client_id="servicepuls-stack",
    )
    try:
        await asyncio.wait_for(admin.start(), timeout)
        return await asyncio.wait_for(admin.list_topics(), timeout)
    finally:
        await admin.close()


async def ready(timeout: float) -> int:
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            await _metadata_once(min(3.0, max(0.5, deadline - time.monotonic())))
            return 0
        except (KafkaError, OSError, TimeoutError) as error:
            last_error = error
            await asyncio.sleep(0.3)
    print(f"kafka not ready after {timeout:.0f}s: {last_error!r}", file=sys.stderr)
    return 1


async def ensure_topics(timeout: float) -> int:
    if await ready(timeout) != 0:
        return 1
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="servicepuls-stack")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=1,
                topic_configs={**TOPIC_CONFIG, **CONFIG_OF.get(name, {})},
            )
            for name, partitions in TOPICS.items()
            if name not in existing
        ]
        for topic in missing:
            try:
                await admin.create_topics([topic])
                print(f"created topic {topic.name} ({topic.num_partitions} partitions)")
            except TopicAlreadyExistsError:
                pass  # someone else created it in between: fine
        return 0
    finally:
        await admin.close()


def main() -> int:
    logging.basicConfig(level=logging.CRITICAL)  # aiokafka logs every refused connection
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ready_parser = sub.add_parser("ready")
    ready_parser.add_argument("--timeout", type=float, default=1.0)
    topics_parser = sub.add_parser("ensure-topics")
    topics_parser.add_argument("--timeout", type=float, default=1.0)
    args = parser.parse_args()
    if args.command == "ready":
        return asyncio.run(ready(args.timeout))
    return asyncio.run(ensure_topics(args.timeout))


if __name__ == "__main__":
    sys.exit(main())
