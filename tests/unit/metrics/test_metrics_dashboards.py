"""The checked-in Grafana boards are what the builder makes, filter on the municipality, and only
use metrics the metrics service (or a recording rule) actually has."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

from services.metrics.domain.definitions import DEFINITIONS, Kind

GRAFANA = Path(__file__).resolve().parents[3] / "deploy" / "grafana"
RULES = GRAFANA.parent / "prometheus" / "rules"


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_dashboards", GRAFANA / "build_dashboards.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _exposed_names() -> set[str]:
    names = {
        "servicepuls_phone_answer_norm_seconds",
        "servicepuls_metrics_exporting",
        "servicepuls_kafka_consumer_group_lag",
        "servicepuls_dead_letters_total",  # every consumer's (services.common.deadletters)
    }
    for d in DEFINITIONS:
        if d.kind is Kind.COUNTER:
            names.add(d.name + "_total")
        elif d.kind is Kind.HISTOGRAM:
            names |= {d.name + "_bucket", d.name + "_sum", d.name + "_count"}
        else:
            names.add(d.name)
    names |= set(re.findall(r"record: (\S+)", "".join(p.read_text() for p in RULES.glob("*.yml"))))
    return names


def test_dashboard_json_is_what_the_builder_makes():
    for name, text in _builder().render().items():
        assert (GRAFANA / "dashboards" / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run .venv/bin/python deploy/grafana/build_dashboards.py"
        )


def test_every_board_has_the_municipality_variable_and_the_provisioned_datasource():
    boards = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert {b.name for b in boards} == {
        "kcc-live.json",
        "servicenormen.json",
        "klanttevredenheid.json",
        "kanaalmix.json",
        "klachten.json",
    }
    for path in boards:
        board = json.loads(path.read_text())
        [variable] = board["templating"]["list"]
        assert variable["name"] == "municipality" and "label_values" in variable["definition"]
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "prometheus"
            assert panel["targets"], panel["title"]


def test_panel_queries_use_existing_metrics_and_filter_on_the_municipality():
    exposed = _exposed_names()
    unfiltered_allowed = {
        "servicepuls_phone_answer_norm_seconds",
        "servicepuls_kafka_consumer_group_lag",
        "servicepuls_dead_letters_total",  # records, not a municipality's business
    }
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                used = set(re.findall(r"servicepuls[:_][a-z0-9_:]+", expr))
                assert used, expr
                assert used <= exposed, f"{path.name}/{panel['title']}: unknown {used - exposed}"
                if not used <= unfiltered_allowed:
                    assert "$municipality" in expr, f"{path.name}/{panel['title']}: {expr}"
