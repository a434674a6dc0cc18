"""The live summary renders what the run saw: compliance against the goal, surveys, mix, cases."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console

from simulator.dashboard import Dashboard, Endpoints, where_to_look
from simulator.generator import SimulatedMunicipality, SimulationPlan
from simulator.office_hours import AMSTERDAM
from simulator.run import Progress
from simulator.watch import NormTally, Outcomes


def render(renderable: object) -> str:
    console = Console(width=120, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_summary_shows_compliance_against_goal_surveys_mix_and_open_cases() -> None:
    plan = SimulationPlan(
        (SimulatedMunicipality("GM0383", "Castricum", 36_500),),
        datetime(2026, 11, 16, 8, tzinfo=AMSTERDAM),
        7,
        1,
        "dash",
    )
    progress = Progress(plan=plan, sim_now=plan.start + timedelta(days=3.5), posted=4321)
    progress.open_cases["GM0383"] = {"Z-1", "Z-2", "Z-3"}
    outcomes = Outcomes()
    outcomes.norms["email_answered"] = NormTally(goal=0.85, met=90, missed=10, started=120)
    outcomes.norms["phone_answered"] = NormTally(goal=0.8, met=70, missed=30)
    outcomes.surveys.update({"sent": 20, "responded": 5})
    outcomes.scores = [8, 6]
    outcomes.scores_by_municipality["GM0383"] = [8, 6]
    outcomes.suppressed.update({"throttled": 4})
    text = render(
        Dashboard(progress, outcomes, Counter({"phone": 60, "email": 40}), {"GM0383": "Castricum"})
    )
    assert "50%" in text and "4321 events posted" in text
    assert "90% ✓" in text and "70% ✗" in text  # kept 85% goal; missed the 80% goal
    assert "20" in text and "5 (25%)" in text and "7.0" in text and "throttled 4" in text
    assert "phone" in text and "60%" in text
    assert "Castricum" in text and "3" in text


def test_where_to_look_names_every_place() -> None:
    text = render(
        where_to_look(
            Endpoints(maildir=Path(".stack/mail")),
            ledger=Path(".stack/simulator/run.jsonl"),
            report=Path(".stack/reports/now"),
            survey_link="http://127.0.0.1:8082/s/token",
        )
    )
    for place in ("8080/docs", "8083/metrics", "9090", "8025", "/s/token", "run.jsonl", "reports"):
        assert place in text
