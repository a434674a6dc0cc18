"""The simulator's municipalities keep the hours and days of their business calendar
(deploy/config/calendars/, read by the loader norms, metrics and feedback use)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import yaml

from services.common.settings import REPO_ROOT
from simulator.cli import build_plan, parse_args
from simulator.generator import SimEvent, generate
from simulator.office_hours import AMSTERDAM

CONFIG = REPO_ROOT / "deploy" / "config"
WEDNESDAY = date(2026, 11, 18)


def simulated_week(config_dir: Path) -> list[SimEvent]:
    args = parse_args(
        ["--config-dir", str(config_dir), "--municipalities", "GM0383", "--seed", "3",
         "--start", "2026-11-16T08:00:00+01:00", "--days", "4", "--run-id", "calendar",
         "--scale", "0.3"]
    )  # fmt: skip
    plan, _ = build_plan(args)
    return list(generate(plan))


def on(day: date, events: list[SimEvent]) -> list[SimEvent]:
    return [e for e in events if e.at.astimezone(AMSTERDAM).date() == day]


def staffed(events: list[SimEvent]) -> list[SimEvent]:
    """What only people at work produce: phone calls, counter visits, written answers."""
    return [
        e for e in events
        if e.source in ("/buch/telefonie", "/buch/balie")
        or e.data.get("direction") == "outbound"
    ]  # fmt: skip


def test_a_closing_day_in_the_calendar_file_closes_phone_counter_and_back_office(
    tmp_path: Path,
) -> None:
    open_week = simulated_week(CONFIG)
    assert staffed(on(WEDNESDAY, open_week))

    folder = tmp_path / "config"
    shutil.copytree(CONFIG, folder)
    path = folder / "calendars" / "buch.yaml"
    calendar = yaml.safe_load(path.read_text())
    calendar["closing_days"].append(WEDNESDAY)
    path.write_text(yaml.safe_dump(calendar))
    closed_week = simulated_week(folder)

    assert not staffed(on(WEDNESDAY, closed_week))
    assert on(WEDNESDAY, closed_week)  # e-mail, web forms and reports still come in
    for day in (date(2026, 11, 17), date(2026, 11, 19)):
        assert staffed(on(day, closed_week))
