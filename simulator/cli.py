"""`python -m simulator`: simulate the municipalities' traffic against the running platform.

    python -m simulator --days 7 --speedup 2000 --seed 1
    python -m simulator --municipalities GM0383,GM0450 --days 2 --scale 0.2 --no-live

The period lies in the past (intake refuses events from the future): by default it is the most
recent stretch of `--days` that starts on a Monday at 08:00 and has ended by now.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from services.common.calendar_files import load_calendars
from services.common.config import load_municipalities
from services.common.settings import REPO_ROOT
from simulator.clock import SimulatedClock
from simulator.dashboard import Dashboard, Endpoints, where_to_look
from simulator.generator import SimulatedMunicipality, SimulationPlan, run_tag
from simulator.ledger import Ledger, inbound_channel
from simulator.office_hours import AMSTERDAM
from simulator.open_zaak import OpenZaakRoute
from simulator.poster import DEFAULT_INTAKE_URL, IntakePoster, IntakeUnavailable
from simulator.run import Progress, play
from simulator.surveys import SurveyAnsweringResidents
from simulator.watch import TopicWatcher

STATE_DIR = Path(os.environ.get("SERVICEPULS_STATE", REPO_ROOT / ".stack"))


def default_start(days: float, now: datetime | None = None) -> datetime:
    """The latest Monday 08:00 (Amsterdam) from which `days` have passed by `now`."""
    now = (now or datetime.now(UTC)).astimezone(AMSTERDAM)
    day = now.date() - timedelta(days=now.weekday())
    while True:
        start = datetime.combine(day, time(8, 0), AMSTERDAM)
        if start + timedelta(days=days) <= now:
            return start
        day -= timedelta(days=7)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--municipalities", help="comma-separated CBS codes (default: all configured)"
    )
    parser.add_argument("--days", type=float, default=7.0, help="simulated days (default 7)")
    parser.add_argument("--speedup", type=float, default=2000.0,
                        help="simulated seconds per wall second (default 2000: a week in ~5 min)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="same seed, same stream (default 1)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="volume multiplier on the municipalities' size (default 1.0)")  # fmt: skip
    parser.add_argument("--inhabitants", type=int, help="override every municipality's size")
    parser.add_argument(
        "--start", help="simulated start, ISO 8601 with offset (default: see above)"
    )
    parser.add_argument(
        "--run-id", help="names this run's cases and contacts (default from seed+start)"
    )
    parser.add_argument(
        "--intake-url", default=os.environ.get("SERVICEPULS_INTAKE_URL", DEFAULT_INTAKE_URL)
    )
    parser.add_argument("--config-dir", type=Path, default=Path(os.environ.get("SERVICEPULS_CONFIG_DIR", REPO_ROOT / "deploy" / "config")))  # fmt: skip
    parser.add_argument(
        "--ledger",
        type=Path,
        help="JSONL record of this run (default .stack/simulator/<run>.jsonl)",
    )
    parser.add_argument("--summary-json", type=Path, help="write the final summary here as JSON")
    parser.add_argument("--maildir", type=Path, default=Path(os.environ.get("SERVICEPULS_MAILDIR", STATE_DIR / "mail")))  # fmt: skip
    parser.add_argument(
        "--response-rate", type=float, default=0.45, help="share of surveys answered"
    )
    parser.add_argument(
        "--survey-url", help="answer only mail with links to this survey service (default: any)"
    )
    parser.add_argument("--no-answers", action="store_true", help="residents do not answer surveys")
    parser.add_argument("--no-watch", action="store_true", help="do not read outcomes from Kafka")
    parser.add_argument(
        "--no-live", action="store_true", help="plain log lines instead of the live view"
    )
    parser.add_argument("--run-out", type=float, default=10.0,
                        help="simulated minutes of traffic after the period, so the norms "
                        "watermark passes its end (default 10; norms allows 5 minutes lateness)")  # fmt: skip
    parser.add_argument("--settle", type=float, default=30.0,
                        help="wall seconds to keep watching and answering after the last event")  # fmt: skip
    parser.add_argument(
        "--report", type=Path, help="path of the period report (shown in 'where to look')"
    )
    parser.add_argument("--via-connector", type=float, metavar="SHARE",
                        help="send this share (0-1) of the case system's zaken as Open Zaak "
                        "notifications to a connector run in this process with fake ZGW "
                        "APIs, instead of posting them to intake (docs/simulator.md)")  # fmt: skip
    return parser.parse_args(argv)


def build_plan(args: argparse.Namespace) -> tuple[SimulationPlan, dict[str, str]]:
    served = load_municipalities(args.config_dir)
    configured = served.municipalities
    wanted = (
        {c.strip().upper() for c in args.municipalities.split(",")} if args.municipalities else None
    )
    chosen = [m for m in configured if wanted is None or m.code in wanted]
    if wanted and len(chosen) != len(wanted):
        unknown = sorted(wanted - {m.code for m in chosen})
        raise SystemExit(
            f"unknown municipalities (not in municipalities.yaml): {', '.join(unknown)}"
        )
    # The run-out: traffic goes on a little past the period, so the norms service's event-time
    # watermark (the latest event time minus its allowed lateness) passes the end of the period
    # and every clock due inside it breaches on time. Outcomes are reported for the period.
    run_out_days = args.run_out / (24 * 60)
    start = (
        datetime.fromisoformat(args.start)
        if args.start
        else default_start(args.days + run_out_days)
    )
    if start.tzinfo is None:
        raise SystemExit("--start needs a UTC offset, e.g. 2025-03-03T08:00:00+01:00")
    # The run id names this run's cases and contacts, so a second run is new traffic rather than
    # a repeat that intake's consumers would dedupe. Give --run-id to reproduce a run exactly.
    run_id = (
        args.run_id
        or f"s{args.seed}-{start.astimezone(AMSTERDAM):%Y%m%d}-{datetime.now(UTC):%H%M%S}"
    )
    # Each municipality's business calendar: when its phone and counter close, when its back
    # office works (the files norms, metrics and feedback read).
    calendars = load_calendars(args.config_dir, served)
    plan = SimulationPlan(
        municipalities=tuple(
            SimulatedMunicipality(
                m.code, m.name, args.inhabitants or m.inhabitants, calendars[m.code]
            )
            for m in chosen
        ),
        start=start.astimezone(AMSTERDAM),
        days=args.days + run_out_days,
        seed=args.seed,
        run_id=run_id,
        scale=args.scale,
    )
    return plan, {m.code: m.name for m in chosen}


async def main_async(args: argparse.Namespace) -> int:
    plan, names = build_plan(args)
    tag = run_tag(plan.run_id)
    ledger_path = args.ledger or STATE_DIR / "simulator" / f"{plan.run_id}.jsonl"
    ledger = Ledger(ledger_path)
    ledger.begin(plan, speedup=args.speedup, intake_url=args.intake_url, run_tag=tag)
    console = Console(stderr=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

    watcher: TopicWatcher | None = None
    if not args.no_watch:
        watcher = TopicWatcher(tag)
        try:
            await watcher.start()
        except Exception as exc:
            console.print(f"[yellow]not watching outcomes on Kafka: {exc}[/]")
            watcher = None
    residents: SurveyAnsweringResidents | None = None
    answer_stop = asyncio.Event()
    answering: asyncio.Task[None] | None = None
    if not args.no_answers:
        residents = SurveyAnsweringResidents(
            args.maildir, run_tag=tag, seed=plan.seed, ledger=ledger,
            response_rate=args.response_rate, link_prefix=args.survey_url,
        )  # fmt: skip
        answering = asyncio.create_task(residents.run(answer_stop))

    progress = Progress(plan=plan, sim_now=plan.start)
    channel_mix: Counter[str] = Counter()

    def on_posted(events: list[Any]) -> None:
        for event in events:
            channel = inbound_channel(event.type, event.data)
            if channel:
                channel_mix[channel] += 1

    dashboard = Dashboard(progress, watcher.outcomes if watcher else None, channel_mix, names)
    poster = IntakePoster(ledger, base_url=args.intake_url)
    route: OpenZaakRoute | None = None
    if args.via_connector is not None:
        try:
            route = OpenZaakRoute(args.via_connector, names, args.config_dir, tag, ledger=ledger)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        await route.start()
        if watcher:
            watcher.subjects = route.case_ids
    clock = SimulatedClock(plan.start, args.speedup)
    status = 0
    console.print(
        f"Simulating {', '.join(names.values())}: {plan.days:g} days from "
        f"{plan.start:%a %d %b %Y %H:%M} at {args.speedup:g}x (seed {plan.seed}, run {plan.run_id})"
    )
    live = Live(dashboard, console=console, refresh_per_second=4) if not args.no_live else None
    try:
        with live or contextlib.nullcontext():
            reporter = None if live else asyncio.create_task(_log_progress(progress, console, stop))
            try:
                await play(
                    plan, clock, poster, progress, stop=stop, on_posted=on_posted, route=route
                )
                if route:  # what Open Zaak announced is admitted before the platform settles
                    await route.settle()
            except IntakeUnavailable as exc:
                console.print(f"[red]stopped: {exc}[/]")
                status = 2
            # Let the platform finish: outcomes, survey mails and answers arrive after the last event.
            if not stop.is_set() and args.settle > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=args.settle)
            if reporter:
                reporter.cancel()
    finally:
        answer_stop.set()
        if answering:
            with contextlib.suppress(Exception):
                await answering
        summary = final_summary(
            plan, args.run_out / (24 * 60), progress, poster, watcher, residents, channel_mix,
            ledger_path,
        )  # fmt: skip
        if route:
            summary["via_connector"] = await route.summary()
            await route.aclose()
        ledger.end(**summary)
        ledger.close()
        if args.summary_json:
            args.summary_json.parent.mkdir(parents=True, exist_ok=True)
            args.summary_json.write_text(json.dumps(summary, indent=2, default=str))
        if watcher:
            await watcher.stop()
        await poster.aclose()
        if residents:
            await residents.aclose()
    console.print(dashboard.summary(console.width))
    if route and (route.stats.refused or summary["via_connector"]["dead_letters"]):
        console.print(
            f"[red]via the connector: {route.stats.refused} notifications refused, "
            f"{summary['via_connector']['dead_letters']} dead-lettered[/]"
        )
        status = status or 1
    if poster.stats.rejected:
        console.print(
            f"[red]{poster.stats.rejected} events rejected by intake[/]: {poster.stats.problems[:3]}"
        )
        status = status or 1
    if residents and residents.stats.problems:
        console.print(f"[yellow]survey answering problems: {residents.stats.problems[:3]}[/]")
    console.print(
        where_to_look(
            Endpoints(intake=args.intake_url.rstrip("/"), maildir=args.maildir),
            ledger=ledger_path,
            report=args.report,
            survey_link=residents.stats.first_link if residents else None,
        )
    )
    if stop.is_set():
        console.print("Stopped early (Ctrl-C); everything posted so far is in the ledger.")
    return status


def final_summary(
    plan: SimulationPlan,
    run_out_days: float,
    progress: Progress,
    poster: IntakePoster,
    watcher: TopicWatcher | None,
    residents: SurveyAnsweringResidents | None,
    channel_mix: Counter[str],
    ledger_path: Path,
) -> dict[str, Any]:
    outcomes = watcher.outcomes if watcher else None
    return {
        "run_id": plan.run_id,
        "seed": plan.seed,
        "start": plan.start.isoformat(),
        "end": plan.end.isoformat(),
        "period_end": (plan.start + timedelta(days=plan.days - run_out_days)).isoformat(),
        "simulated_until": progress.sim_now.isoformat(),
        "finished": progress.finished,
        "posted": poster.stats.accepted,
        "rejected": poster.stats.rejected,
        "retries": poster.stats.retries,
        "rate_limited": poster.stats.rate_limited,
        "channel_mix": dict(channel_mix),
        "open_cases": {code: len(cases) for code, cases in progress.open_cases.items()},
        "work_in_progress_after_end": progress.pending_at_end,
        "norms": {
            norm: {
                "goal": t.goal,
                "met": t.met,
                "missed": t.missed,
                "breached": t.breached,
                "warnings": t.warnings,
                "started": t.started,
                "cancelled": t.cancelled,
                "compliance": t.compliance,
            }
            for norm, t in (outcomes.norms.items() if outcomes else [])
        },
        "surveys": dict(outcomes.surveys) if outcomes else {},
        "surveys_suppressed": dict(outcomes.suppressed) if outcomes else {},
        "mean_score": outcomes.mean_score if outcomes else None,
        "answers": {
            "mails_seen": residents.stats.mails_seen,
            "answered": residents.stats.answered,
            "declined": residents.stats.declined,
            "failed": residents.stats.failed,
            "retried": residents.stats.retried,
        }
        if residents
        else None,
        "ledger": str(ledger_path),
    }


async def _log_progress(progress: Progress, console: Console, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(5)
        local = progress.sim_now.astimezone(progress.plan.zone)
        console.print(
            f"{progress.fraction:4.0%}  simulated {local:%a %d %b %H:%M}  {progress.posted} events posted"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
