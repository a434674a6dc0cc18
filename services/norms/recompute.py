"""Recompute norm outcomes for a period after a catalog change, and make the change take effect.

    python -m services.norms.recompute --municipality GM0383 --from 2026-01-01 --to 2026-03-31
    python -m services.norms.recompute ... --emit      # revise: the active version everywhere

Reads the intake topic from its start up to its current end, applies the current catalog (its
`version` is in every outcome), and decides every clock that started in the period as the live
service would: in event time, with decisions taken up to the watermark (the last event time
minus the allowed lateness). Prints the compliance per norm against its goal: a preview.

With --emit it revises the norms service's own state (`NormsService.revise`, one
transaction): the clocks of the period are decided afresh with the active catalog, the clock
rows and compliance counts (`/v1/compliance`) take the new outcomes, the revision is recorded
(`/v1/revisions`), and one `norm.revised` event per changed clock (with the new version's alerts
never sent) goes out through the outbox, from which the metrics service moves its counts.
Run it after the norms service was restarted with the new catalog (docs/norms.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from datetime import date, datetime, time, timedelta
from time import monotonic
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from schemas.envelope import Envelope, decode
from services.common.calendar import to_us
from services.common.kafka import seek_to_start, topic_partitions
from services.common.migrations import migrate
from services.common.settings import InfraSettings
from services.norms.adapters.repository import MIGRATIONS, ClockRepository
from services.norms.config import load_catalogs
from services.norms.domain.catalog import NormCatalog
from services.norms.domain.clock import STOPPED_BEFORE_START
from services.norms.domain.planning import StoredClock, advance_clock, plan_events
from services.norms.service import NormsService
from services.norms.settings import NormsSettings

# How long reading the topic may go without a record before recompute gives up and says where.
STALL_SECONDS = 60.0


async def read_topic(
    bootstrap: str, topic: str, municipality: str, progress: Progress | None = None
) -> list[tuple[int, Envelope[Any]]]:
    """Every decodable event of `municipality` on `topic`, up to the end as it is now."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic, STALL_SECONDS)
        consumer.assign(partitions)
        start = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        await seek_to_start(consumer, partitions)
        remaining = {tp for tp in partitions if end[tp] > start[tp]}
        task = (
            progress.add_task("reading intake", total=sum(end[tp] - start[tp] for tp in partitions))
            if progress
            else None
        )
        events: list[tuple[int, Envelope[Any]]] = []
        last_progress = monotonic()
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= end[tp]:
                        continue
                    try:
                        envelope = decode(record.headers, record.value)
                    except ValueError:
                        continue
                    if envelope.municipality == municipality:
                        events.append((record.partition, envelope))
                if progress is not None and task is not None:
                    progress.advance(task, len(records))
            # Done with a partition when the consumer's position passed the end, not when a
            # record at end - 1 came by: offsets a consumer is never given (transaction markers,
            # records of aborted transactions) would otherwise keep it waiting for ever.
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
            if batch:
                last_progress = monotonic()
            elif monotonic() - last_progress > STALL_SECONDS:
                behind = {tp.partition: end[tp] for tp in remaining}
                raise TimeoutError(
                    f"{topic}: nothing read for {STALL_SECONDS:.0f} s; partitions not read to "
                    f"their end (partition: end offset): {behind}"
                )
        return events
    finally:
        await consumer.stop()


def recompute(
    events: list[Envelope[Any]],
    catalog: NormCatalog,
    first: int,
    last: int,
    now: int,
    progress: Progress | None = None,
) -> list[Envelope[Any]]:
    """The outcomes of clocks started in [first, last), decided up to `now`."""
    plan = plan_events(events, {catalog.municipality: catalog})
    framed = [o for o in plan.instant_events if first <= o.started_at < last]
    task = progress.add_task("deciding clocks", total=len(plan.transitions)) if progress else None
    for cid in sorted(plan.transitions):
        blank, transitions = plan.transitions[cid]
        clock = StoredClock(blank.clock_id, blank.municipality, blank.norm_id, blank.subject_id)
        for transition, context in transitions:
            clock.add(transition, context)
        update = advance_clock(clock, catalog, now)
        framed.extend(o for o in update.events if first <= o.started_at < last)
        if progress is not None and task is not None:
            progress.advance(task)
    # As the consumers of the norms topic read them (validated by the models).
    outcomes = [o.envelope() for o in framed]
    return outcomes


def compliance_table(outcomes: list[Envelope[Any]], catalog: NormCatalog) -> Table:
    counts: Counter[tuple[str, str]] = Counter(
        (e.data.norm_id, _outcome_column(e)) for e in outcomes
    )
    table = Table(title=f"Compliance {catalog.municipality} (catalog {catalog.version})")
    columns = ("norm", "met", "missed", "cancelled", "data quality", "open breaches")
    for column in (*columns, "compliance", "goal"):
        table.add_column(column, justify="left" if column == "norm" else "right")
    for norm in catalog.norms.values():
        met, missed = counts[(norm.id, "met")], counts[(norm.id, "missed")]
        judged = met + missed
        goal = norm.definition.compliance_goal
        share = f"{met / judged:.1%}" if judged else "—"
        mark = "" if not judged else (" ✓" if met / judged >= goal else " ✗")
        table.add_row(
            norm.id,
            str(met),
            str(missed),
            str(counts[(norm.id, "cancelled")]),
            str(counts[(norm.id, STOPPED_BEFORE_START)]),
            "—" if norm.definition.instant else str(max(0, counts[(norm.id, "breached")] - missed)),
            share + mark,
            f"{goal:.0%}",
        )
    return table


def _outcome_column(outcome: Envelope[Any]) -> str:
    """The kind of a norm event (`met`, `cancelled` …); a cycle stopped before its start is
    counted apart from the other cancellations, as in `/v1/compliance`."""
    kind = outcome.type.split(".")[-2]
    if kind == "cancelled" and outcome.data.reason == STOPPED_BEFORE_START:
        return STOPPED_BEFORE_START
    return kind


def _day_start(day: date, catalog: NormCatalog) -> int:
    return to_us(datetime.combine(day, time(0), tzinfo=catalog.calendar.zone))


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.norms.recompute", description=__doc__)
    parser.add_argument("--municipality", required=True, help="CBS code, e.g. GM0383")
    parser.add_argument("--from", dest="first", required=True, type=date.fromisoformat)
    parser.add_argument("--to", dest="last", required=True, type=date.fromisoformat)
    parser.add_argument(
        "--emit",
        action="store_true",
        help="revise: the norms tables, compliance, metrics and report take the active version",
    )
    args = parser.parse_args(argv)
    infra, settings = InfraSettings(), NormsSettings()
    console = Console(stderr=True)
    catalogs = load_catalogs(infra.config_dir)
    catalog = catalogs.get(args.municipality)
    if catalog is None:
        console.print(f"[red]no catalog for {args.municipality}[/red]")
        return 2
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        read = await read_topic(
            infra.kafka_bootstrap, settings.intake_topic, args.municipality, progress
        )
        events = [e for _, e in read]
        highest = max((to_us(e.time) for e in events), default=0)
        now = highest - round(settings.allowed_lateness_seconds * 1_000_000)
        first = _day_start(args.first, catalog)
        last = _day_start(args.last + timedelta(days=1), catalog)
        outcomes = recompute(events, catalog, first, last, now, progress)
    console.print(compliance_table(outcomes, catalog))
    console.print(f"{len(events):,} events read, {len(outcomes):,} outcomes")
    if not args.emit:
        console.print("preview only: add --emit to revise the norms tables, metrics and report")
        return 0
    try:
        revision = await revise(infra, settings, catalogs, args.municipality, args.first, args.last)
    except (RuntimeError, ValueError) as problem:
        console.print(f"[red]not revised: {problem}[/red]")
        return 1
    console.print_json(data=revision)
    return 0


async def revise(
    infra: InfraSettings,
    settings: NormsSettings,
    catalogs: dict[str, NormCatalog],
    municipality: str,
    first: date,
    last: date,
) -> dict[str, Any]:
    """Revise the clocks of the period in the norms service's schema (`DB_SCHEMA`) with the
    active catalog; returns the revision record (as `GET /v1/revisions/{id}` lists it)."""
    pool = await asyncpg.create_pool(infra.database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, settings.db_schema, MIGRATIONS)
        repository = ClockRepository.configured(pool, catalogs, settings)
        return await NormsService(repository).revise(municipality, first, last)
    finally:
        await pool.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
