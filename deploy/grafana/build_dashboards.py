"""Builds the Grafana dashboards (JSON models in deploy/grafana/dashboards/) from one description.

Run `.venv/bin/python deploy/grafana/build_dashboards.py` after a change and commit the JSON; a
test fails when the JSON is stale. Titles are Dutch (what the KCC and management say), the
descriptions English. Every query filters on the `municipality` variable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DASHBOARDS = HERE / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
M = 'municipality=~"$municipality"'
DIGITAL = 'channel=~"email|webform|social_media|chat|public_space_report"'


@dataclass
class Panel:
    title: str
    description: str
    targets: list[tuple[str, str]]  # (expr, legend)
    kind: str = "timeseries"
    unit: str = "short"
    width: int = 8
    height: int = 7
    options: dict[str, Any] = field(default_factory=dict)
    instant: bool = False
    thresholds: list[tuple[float | None, str]] | None = None
    decimals: int | None = None


def stat(title: str, description: str, expr: str, unit: str = "short", **kw: Any) -> Panel:
    return Panel(title, description, [(expr, "")], kind="stat", unit=unit, width=4, height=4, **kw)


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    instant = panel.instant or panel.kind in {"stat", "bargauge", "piechart", "table"}
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.decimals is not None:
        defaults["decimals"] = panel.decimals
    if panel.thresholds:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"value": v, "color": c} for v, c in panel.thresholds],
        }
    body: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": panel.options,
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend or "__auto",
                "instant": instant,
                "range": not instant,
                **({"format": "heatmap"} if panel.options.get("heatmap") else {}),
            }
            for i, (expr, legend) in enumerate(panel.targets)
        ],
    }
    body["options"] = {k: v for k, v in panel.options.items() if k != "heatmap"}
    return body


def dashboard(uid: str, title: str, description: str, panels: list[Panel]) -> dict[str, Any]:
    laid_out = []
    x = y = row_height = 0
    for number, panel in enumerate(panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        laid_out.append(_panel_json(panel, number, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["servicepuls"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "municipality",
                    "label": "Gemeente",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "definition": "label_values(servicepuls_contacts_total, municipality)",
                    "query": {
                        "query": "label_values(servicepuls_contacts_total, municipality)",
                        "refId": "municipality",
                    },
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "sort": 1,
                    "current": {},
                }
            ]
        },
        "annotations": {"list": []},
        "panels": laid_out,
    }


GOOD_IS_HIGH = [(None, "red"), (0.8, "orange"), (0.9, "green")]


def kcc_live() -> dict[str, Any]:
    offered = f"sum(increase(servicepuls_phone_calls_offered_total{{{M}}}[1h]))"
    return dashboard(
        "servicepuls-kcc-live",
        "KCC live — telefoon en balie",
        "Live view of the customer contact centre: phone queue and counter (balie).",
        [
            stat(
                "Aangeboden gesprekken (1 uur)",
                "Inbound calls that reached the queue in the last hour.",
                offered,
            ),
            stat(
                "Servicelevel (1 uur)",
                "Share of offered calls answered within the phone norm, last hour.",
                f"sum(increase(servicepuls_phone_calls_answered_within_norm_total{{{M}}}[1h]))"
                f" / {offered}",
                unit="percentunit",
                thresholds=GOOD_IS_HIGH,
            ),
            stat(
                "Gemiste gesprekken (1 uur)",
                "Share of offered calls abandoned in the queue (missed calls), last hour.",
                f"sum(increase(servicepuls_phone_calls_abandoned_total{{{M}}}[1h])) / {offered}",
                unit="percentunit",
                thresholds=[(None, "green"), (0.05, "orange"), (0.1, "red")],
            ),
            stat(
                "Gemiddelde wachttijd (ASA, 1 uur)",
                "Average speed of answer: mean queue wait of answered calls, last hour.",
                "sum(increase(servicepuls_phone_wait_seconds_sum{"
                + M
                + ',outcome="answered"}[1h])) / sum(increase(servicepuls_phone_wait_seconds_count{'
                + M
                + ',outcome="answered"}[1h]))',
                unit="s",
            ),
            stat(
                "Norm opnemen",
                "The phone norm: answered within this many seconds.",
                "max(servicepuls_phone_answer_norm_seconds)",
                unit="s",
            ),
            stat(
                "Terugbelverzoeken (1 uur)",
                "Calls in which the caller asked to be called back, last hour.",
                f"sum(increase(servicepuls_phone_callbacks_requested_total{{{M}}}[1h]))",
            ),
            Panel(
                "Gesprekken per minuut",
                "Calls offered, answered and abandoned per minute.",
                [
                    (
                        f"sum(rate(servicepuls_phone_calls_offered_total{{{M}}}[$__rate_interval])) * 60",
                        "aangeboden",
                    ),
                    (
                        f"sum(rate(servicepuls_phone_calls_answered_total{{{M}}}[$__rate_interval])) * 60",
                        "beantwoord",
                    ),
                    (
                        f"sum(rate(servicepuls_phone_calls_abandoned_total{{{M}}}[$__rate_interval])) * 60",
                        "gemist",
                    ),
                ],
                width=12,
            ),
            Panel(
                "Wachttijd telefoon (p50 / p90)",
                "Queue wait of answered calls: median and 90th percentile.",
                [
                    (
                        "histogram_quantile(0.5, sum by (le) (rate(servicepuls_phone_wait_seconds_bucket{"
                        + M
                        + ',outcome="answered"}[$__rate_interval])))',
                        "p50",
                    ),
                    (
                        "histogram_quantile(0.9, sum by (le) (rate(servicepuls_phone_wait_seconds_bucket{"
                        + M
                        + ',outcome="answered"}[$__rate_interval])))',
                        "p90",
                    ),
                ],
                unit="s",
                width=12,
            ),
            Panel(
                "Verdeling wachttijd telefoon",
                "All calls since counting began, by queue wait bucket (answered and abandoned).",
                [
                    (
                        f"sum by (le) (servicepuls_phone_wait_seconds_bucket{{{M}}})",
                        "{{le}}",
                    )
                ],
                kind="bargauge",
                options={"heatmap": True, "displayMode": "gradient", "orientation": "vertical"},
                width=12,
            ),
            Panel(
                "Balie: bezoekers per uur",
                "Counter (balie) visits per hour, helped and left before being helped.",
                [
                    (
                        f"sum by (outcome) (increase(servicepuls_desk_visits_total{{{M}}}[1h]))",
                        "{{outcome}}",
                    )
                ],
                width=6,
            ),
            Panel(
                "Balie: wachttijd (p90)",
                "90th percentile of the waiting time at the counter, helped visitors.",
                [
                    (
                        "histogram_quantile(0.9, sum by (le) (servicepuls_desk_wait_seconds_bucket{"
                        + M
                        + ',outcome="helped"}))',
                        "p90",
                    )
                ],
                kind="stat",
                unit="s",
                width=6,
            ),
            Panel(
                "Verwerkingsachterstand (consumer lag)",
                "Records not yet processed per consumer group (Kafka committed vs. end offsets).",
                [
                    (
                        "max by (group) (servicepuls_kafka_consumer_group_lag)",
                        "{{group}}",
                    )
                ],
                width=12,
            ),
            Panel(
                "Dead letters (apart gezet)",
                "Records a consumer could not decode or apply, set aside on the dead-letter topic "
                "in the last hour, by service and reason. They had no effect until re-driven "
                "(`servicepuls deadletters list`).",
                [
                    (
                        "sum by (service, reason) (increase(servicepuls_dead_letters_total[1h]))",
                        "{{service}}: {{reason}}",
                    )
                ],
                width=12,
            ),
        ],
    )


def servicenormen() -> dict[str, Any]:
    met = f'servicepuls_norm_clocks_stopped_total{{{M},outcome="met"}}'
    decided = f'servicepuls_norm_clocks_stopped_total{{{M},outcome=~"met|missed"}}'
    return dashboard(
        "servicepuls-servicenormen",
        "Servicenormen",
        "Service norms: compliance against goal, clocks at risk and breached, lead times.",
        [
            Panel(
                "Naleving per norm (sinds start)",
                "Share of stopped clocks that met the norm (met / (met + missed)), all time.",
                [(f"sum by (norm) ({met}) / sum by (norm) ({decided})", "{{norm}}")],
                kind="bargauge",
                unit="percentunit",
                thresholds=GOOD_IS_HIGH,
                options={"displayMode": "gradient", "orientation": "horizontal"},
                width=8,
            ),
            Panel(
                "Doel per norm",
                "The compliance goal of each norm (from the norm catalog).",
                [
                    (
                        f"max by (norm) (servicepuls_norm_compliance_goal_ratio{{{M}}})",
                        "{{norm}}",
                    )
                ],
                kind="bargauge",
                unit="percentunit",
                width=8,
            ),
            Panel(
                "Naleving min doel",
                "Compliance (all time) minus the goal, per norm: below zero the promise is not kept.",
                [
                    (
                        f"sum by (norm) ({met}) / sum by (norm) ({decided})"
                        f" - on (norm) max by (norm) (servicepuls_norm_compliance_goal_ratio{{{M}}})",
                        "{{norm}}",
                    )
                ],
                kind="bargauge",
                unit="percentunit",
                thresholds=[(None, "red"), (0, "green")],
                width=8,
            ),
            Panel(
                "Naleving laatste 24 uur",
                "Compliance over the last day per norm (recording rule servicepuls:norm_compliance:ratio1d).",
                [
                    (
                        f"servicepuls:norm_compliance:ratio1d{{{M}}}",
                        "{{municipality}} {{norm}}",
                    )
                ],
                unit="percentunit",
                width=12,
            ),
            Panel(
                "Lopende klokken, risico en over tijd",
                "Clocks running now, at risk (past a warning) and overdue (breached, still running).",
                [
                    (f"sum(servicepuls_norm_clocks_running{{{M}}})", "lopend"),
                    (f"sum(servicepuls_norm_clocks_at_risk{{{M}}})", "risico"),
                    (f"sum(servicepuls_norm_clocks_overdue{{{M}}})", "over tijd"),
                ],
                width=12,
            ),
            Panel(
                "Risico nu per norm",
                "Running clocks past a warning threshold and not yet breached, per norm.",
                [(f"sum by (norm) (servicepuls_norm_clocks_at_risk{{{M}}})", "{{norm}}")],
                kind="bargauge",
                thresholds=[(None, "green"), (1, "orange"), (10, "red")],
                width=8,
            ),
            Panel(
                "Overschrijdingen per uur",
                "Clocks that passed their due instant while running, per hour and norm.",
                [
                    (
                        f"sum by (norm) (increase(servicepuls_norm_breaches_total{{{M}}}[1h]))",
                        "{{norm}}",
                    )
                ],
                width=8,
            ),
            Panel(
                "Gestart en gestopt per uur",
                "Norm clocks started and stopped (met, missed, cancelled) per hour.",
                [
                    (
                        f"sum(increase(servicepuls_norm_clocks_started_total{{{M}}}[1h]))",
                        "gestart",
                    ),
                    (
                        f"sum by (outcome) (increase(servicepuls_norm_clocks_stopped_total{{{M}}}[1h]))",
                        "{{outcome}}",
                    ),
                ],
                width=8,
            ),
            Panel(
                "Doorlooptijd in werktijd (p90) per zaaktype",
                "90th percentile of the business time stopped clocks ran, per case type (pauses excluded).",
                [
                    (
                        "histogram_quantile(0.9, sum by (le, case_type) "
                        f"(servicepuls_norm_elapsed_business_seconds_bucket{{{M}}}))",
                        "{{case_type}}",
                    )
                ],
                kind="bargauge",
                unit="s",
                width=12,
            ),
            Panel(
                "Doorlooptijd zaken in werkdagen (p50) per zaaktype",
                "Median lead time from opening to closing counted in working days of the "
                "municipality's calendar (holidays and weekends excluded), per case type.",
                [
                    (
                        "histogram_quantile(0.5, sum by (le, case_type) "
                        f"(servicepuls_case_lead_time_business_seconds_bucket{{{M}}})) / 86400",
                        "{{case_type}}",
                    )
                ],
                kind="bargauge",
                unit="short",
                decimals=1,
                width=12,
            ),
            Panel(
                "Doorlooptijd zaken (p50) per zaaktype",
                "Median calendar lead time from opening to closing, per case type.",
                [
                    (
                        "histogram_quantile(0.5, sum by (le, case_type) "
                        f"(servicepuls_case_lead_time_seconds_bucket{{{M}}}))",
                        "{{case_type}}",
                    )
                ],
                kind="bargauge",
                unit="s",
                width=12,
            ),
            Panel(
                "Open zaken per zaaktype",
                "Cases open now, per case type.",
                [(f"sum by (case_type) (servicepuls_cases_open{{{M}}})", "{{case_type}}")],
                kind="bargauge",
                width=12,
            ),
            Panel(
                "Zaken geopend en gesloten per uur",
                "Cases opened and closed per hour.",
                [
                    (f"sum(increase(servicepuls_cases_opened_total{{{M}}}[1h]))", "geopend"),
                    (f"sum(increase(servicepuls_cases_closed_total{{{M}}}[1h]))", "gesloten"),
                ],
                width=12,
            ),
            Panel(
                "Onbekende zaaktypen per kanaalsysteem (per uur)",
                "Case events whose case type the municipality did not declare "
                "(deploy/config/case_types/), per channel system and hour: counted as "
                'case_type="other". Declare the code or have the channel system fixed '
                "(alert CaseTypesUndeclared).",
                [
                    (
                        "sum by (channel_system) "
                        f"(increase(servicepuls_case_types_undeclared_total{{{M}}}[1h]))",
                        "{{channel_system}}",
                    )
                ],
                width=12,
            ),
        ],
    )


def klanttevredenheid() -> dict[str, Any]:
    return dashboard(
        "servicepuls-klanttevredenheid",
        "Klanttevredenheid (KTO)",
        "Satisfaction surveys: scores (rapportcijfer 1-10), response, suppression, delivery.",
        [
            stat(
                "Gemiddeld rapportcijfer",
                "Mean survey score since counting began.",
                f"sum(servicepuls_survey_score_sum{{{M}}}) / sum(servicepuls_survey_score_count{{{M}}})",
                decimals=1,
                thresholds=[(None, "red"), (6, "orange"), (7, "green")],
            ),
            stat(
                "Respons",
                "Responses per survey sent.",
                f"sum(servicepuls_surveys_responded_total{{{M}}}) / sum(servicepuls_surveys_sent_total{{{M}}})",
                unit="percentunit",
            ),
            stat(
                "Verstuurd",
                "Surveys sent since counting began.",
                f"sum(servicepuls_surveys_sent_total{{{M}}})",
            ),
            stat(
                "Mislukte verzending (24 uur)",
                "Survey deliveries that failed in the last day.",
                f"sum(increase(servicepuls_survey_deliveries_failed_total{{{M}}}[1d]))",
                thresholds=[(None, "green"), (1, "orange"), (10, "red")],
            ),
            stat(
                "Verlopen",
                "Surveys that expired unanswered.",
                f"sum(servicepuls_surveys_expired_total{{{M}}})",
            ),
            stat(
                "Terugbelverzoek na laag cijfer",
                "Low scores with permission to contact (follow-up requested).",
                f"sum(servicepuls_survey_follow_ups_requested_total{{{M}}})",
            ),
            Panel(
                "Cijfer per kanaal",
                "Mean score per channel of the surveyed contact or case.",
                [
                    (
                        f"sum by (channel) (servicepuls_survey_score_sum{{{M}}})"
                        f" / sum by (channel) (servicepuls_survey_score_count{{{M}}})",
                        "{{channel}}",
                    )
                ],
                kind="bargauge",
                decimals=1,
                width=12,
            ),
            Panel(
                "Cijfer per zaaktype",
                "Mean score per case type.",
                [
                    (
                        f"sum by (case_type) (servicepuls_survey_score_sum{{{M}}})"
                        f" / sum by (case_type) (servicepuls_survey_score_count{{{M}}})",
                        "{{case_type}}",
                    )
                ],
                kind="bargauge",
                decimals=1,
                width=12,
            ),
            Panel(
                "Verdeling cijfers 1-10",
                "How many responses gave each score.",
                [(f"sum by (le) (servicepuls_survey_score_bucket{{{M}}})", "{{le}}")],
                kind="bargauge",
                options={"heatmap": True, "displayMode": "gradient", "orientation": "vertical"},
                width=12,
            ),
            Panel(
                "Niet verstuurd, per reden",
                "Surveys suppressed, by reason (consent, opt-out, throttling, exclusions).",
                [
                    (
                        f"sum by (reason) (servicepuls_surveys_suppressed_total{{{M}}})",
                        "{{reason}}",
                    )
                ],
                kind="piechart",
                width=6,
            ),
            Panel(
                "Verstuurd per kanaal",
                "Surveys sent, by delivery channel (e-mail, SMS, letter list, phone list).",
                [
                    (
                        f"sum by (delivery_channel) (servicepuls_surveys_sent_total{{{M}}})",
                        "{{delivery_channel}}",
                    )
                ],
                kind="piechart",
                width=6,
            ),
            Panel(
                "Reacties per uur",
                "Survey responses per hour.",
                [
                    (
                        f"sum(increase(servicepuls_surveys_responded_total{{{M}}}[1h]))",
                        "reacties",
                    )
                ],
                width=12,
            ),
        ],
    )


def kanaalmix() -> dict[str, Any]:
    inbound = f'servicepuls_contacts_total{{{M},direction="inbound"}}'
    return dashboard(
        "servicepuls-kanaalmix",
        "Kanaalmix",
        "Channel mix: contacts per channel and party role, digital share, first-contact resolution.",
        [
            stat(
                "Digitaal aandeel",
                "Share of inbound contacts through digital channels ('digitaal waar het kan').",
                f'sum(servicepuls_contacts_total{{{M},direction="inbound",{DIGITAL}}}) / sum({inbound})',
                unit="percentunit",
            ),
            stat(
                "Contacten (24 uur)",
                "Inbound contacts in the last day.",
                f"sum(increase({inbound}[1d]))",
            ),
            stat(
                "Eerstelijnsoplossing",
                "Share of finished contacts resolved in the first contact (where known).",
                f'sum(servicepuls_first_contact_resolution_total{{{M},outcome="resolved"}})'
                f" / sum(servicepuls_first_contact_resolution_total{{{M}}})",
                unit="percentunit",
                thresholds=GOOD_IS_HIGH,
            ),
            stat(
                "Doorverbonden",
                "Share of inbound contacts forwarded to another department or organisation.",
                f"sum(servicepuls_contacts_forwarded_total{{{M}}}) / sum({inbound})",
                unit="percentunit",
            ),
            stat(
                "Antwoorden en terugbellen",
                "Replies to written contacts and callbacks sent.",
                f"sum(servicepuls_contact_replies_total{{{M}}})",
            ),
            stat(
                "Uitgaande contacten",
                "Outbound contacts (not replies) since counting began.",
                f'sum(servicepuls_contacts_total{{{M},direction="outbound"}})',
            ),
            Panel(
                "Contacten per kanaal",
                "Inbound contacts per channel since counting began.",
                [(f"sum by (channel) ({inbound})", "{{channel}}")],
                kind="piechart",
                width=8,
            ),
            Panel(
                "Contacten per partijrol",
                "Inbound contacts per party role (inwoner, ondernemer, maatschappelijke partner).",
                [(f"sum by (party_role) ({inbound})", "{{party_role}}")],
                kind="piechart",
                width=8,
            ),
            Panel(
                "Eerstelijnsoplossing per kanaal",
                "First-contact resolution per channel.",
                [
                    (
                        f'sum by (channel) (servicepuls_first_contact_resolution_total{{{M},outcome="resolved"}})'
                        f" / sum by (channel) (servicepuls_first_contact_resolution_total{{{M}}})",
                        "{{channel}}",
                    )
                ],
                kind="bargauge",
                unit="percentunit",
                width=8,
            ),
            Panel(
                "Contacten per uur per kanaal",
                "Inbound contacts per hour, per channel.",
                [(f"sum by (channel) (increase({inbound}[1h]))", "{{channel}}")],
                width=24,
            ),
        ],
    )


def klachten() -> dict[str, Any]:
    closed = f"servicepuls_complaints_closed_total{{{M}}}"
    return dashboard(
        "servicepuls-klachten",
        "Klachten",
        "Complaints (Awb chapter 9): received, open, verdicts, handling time.",
        [
            stat(
                "Ontvangen",
                "Complaints received since counting began.",
                f"sum(servicepuls_complaints_received_total{{{M}}})",
            ),
            stat(
                "Open",
                "Complaints open now.",
                f'sum(servicepuls_cases_open{{{M},case_type="klacht"}})',
            ),
            stat(
                "Afgehandeld",
                "Complaints closed since counting began.",
                f"sum({closed})",
            ),
            stat(
                "Aandeel (deels) gegrond",
                "Share of closed complaints found (partly) justified.",
                f'sum(servicepuls_complaints_closed_total{{{M},verdict=~"gegrond|deels_gegrond"}})'
                f" / sum({closed})",
                unit="percentunit",
            ),
            stat(
                "Doorlooptijd klacht (p90)",
                "90th percentile of the calendar time from receiving to closing a complaint.",
                "histogram_quantile(0.9, sum by (le) (servicepuls_case_lead_time_seconds_bucket{"
                + M
                + ',case_type="klacht"}))',
                unit="s",
            ),
            stat(
                "Ontvangen (7 dagen)",
                "Complaints received in the last 7 days.",
                f"sum(increase(servicepuls_complaints_received_total{{{M}}}[7d]))",
            ),
            Panel(
                "Oordeel",
                "Closed complaints by verdict (gegrond, deels gegrond, ongegrond, ...).",
                [(f"sum by (verdict) ({closed})", "{{verdict}}")],
                kind="piechart",
                width=8,
            ),
            Panel(
                "Ontvangen per kanaal",
                "Complaints received per channel.",
                [
                    (
                        f"sum by (channel) (servicepuls_complaints_received_total{{{M}}})",
                        "{{channel}}",
                    )
                ],
                kind="bargauge",
                width=8,
            ),
            Panel(
                "Klachten per dag",
                "Complaints received and closed per day.",
                [
                    (
                        f"sum(increase(servicepuls_complaints_received_total{{{M}}}[1d]))",
                        "ontvangen",
                    ),
                    (f"sum(increase({closed}[1d]))", "afgehandeld"),
                ],
                width=8,
            ),
        ],
    )


BUILDERS = {
    "kcc-live.json": kcc_live,
    "servicenormen.json": servicenormen,
    "klanttevredenheid.json": klanttevredenheid,
    "kanaalmix.json": kanaalmix,
    "klachten.json": klachten,
}


def render() -> dict[str, str]:
    return {
        name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        for name, build in BUILDERS.items()
    }


def main() -> None:
    DASHBOARDS.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (DASHBOARDS / name).write_text(text, encoding="utf-8")
        print(f"wrote {DASHBOARDS / name}")


if __name__ == "__main__":
    main()
