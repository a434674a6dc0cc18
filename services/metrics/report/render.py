"""The period report as one self-contained HTML file (inline SVG charts, no scripts, nothing
loaded from the network) and as CSV files for spreadsheets."""

from __future__ import annotations

import csv
import html
from pathlib import Path

from jinja2 import Environment
from markupsafe import Markup

from services.metrics.report.figures import PeriodFigures


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def pp(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f} pp"


def bar_chart(
    items: list[tuple[str, float]],
    *,
    maximum: float,
    label: str,
    fmt: str = "pct",
    marks: dict[str, float] | None = None,
) -> Markup:
    """A horizontal bar chart as inline SVG; `marks` draws a goal line per bar."""
    row, left, width = 26, 200, 360
    height = row * len(items) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{left + width + 90}" '
        f'height="{height}" aria-label="{html.escape(label)}">',
        f"<title>{html.escape(label)}</title>",
    ]
    for i, (name, value) in enumerate(items):
        y = 5 + i * row
        w = 0 if maximum <= 0 else max(0.0, min(1.0, value / maximum)) * width
        text = pct(value) if fmt == "pct" else num(value, 1 if fmt == "score" else 0)
        parts.append(
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" font-size="13">'
            f"{html.escape(name)}</text>"
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="#1f5f8b"/>'
            f'<text x="{left + w + 6:.1f}" y="{y + 16}" font-size="13">{html.escape(text)}</text>'
        )
        if marks and name in marks and maximum > 0:
            x = left + min(1.0, marks[name] / maximum) * width
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + row - 2}" '
                'stroke="#c0392b" stroke-width="3"><title>doel / goal</title></line>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


TEMPLATE = """<!doctype html>
<html lang="nl">
<head>
<meta charset="utf-8">
<title>Servicepuls perioderapportage {{ f.name }} {{ f.period }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 960px; margin: 2rem auto; color: #1b1b1b; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border-bottom: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.bad { color: #a61b0f; font-weight: bold; } .good { color: #116b2e; }
.en { color: #555; font-size: 0.9em; }
</style>
</head>
<body>
<h1>Perioderapportage dienstverlening — {{ f.name }} ({{ f.municipality }})</h1>
<p>Periode / period: <strong>{{ f.period }}</strong>; vergeleken met / baseline: {{ f.baseline }}.
<span class="en">Computed from the durable event facts of Servicepuls (each event counted once).</span></p>

<h2>Servicenormen <span class="en">/ service norms</span></h2>
<p class="en">Compliance = met / (met + missed); cancelled clocks do not count. The red line is the goal.</p>
{{ norm_chart }}
<table>
<tr><th>Norm</th><th>Op tijd / met</th><th>Te laat / missed</th><th>Naleving</th><th>Doel</th>
<th>Basisperiode</th><th>Verschil</th></tr>
{% for n in f.norms %}
<tr><td>{{ n.norm }}</td><td>{{ n.met }}</td><td>{{ n.missed }}</td>
<td class="{{ 'good' if n.meets_goal else ('bad' if n.meets_goal is false else '') }}">{{ pct(n.compliance) }}</td>
<td>{{ pct(n.goal) }}</td><td>{{ pct(n.baseline_compliance) }}</td><td>{{ pp(n.change) }}</td></tr>
{% else %}<tr><td colspan="7">Geen normuitkomsten in deze periode / no norm outcomes.</td></tr>
{% endfor %}
</table>

<h2>Klanttevredenheid <span class="en">/ satisfaction</span></h2>
<p>Gemiddeld rapportcijfer: <strong>{{ num(f.overall_score) }}</strong>
(basisperiode {{ num(f.baseline_overall_score) }}); verstuurd {{ f.surveys_sent }},
reacties {{ f.survey_responses }}, respons {{ pct(f.response_rate) }}.</p>
<h3>Per kanaal <span class="en">/ per channel</span></h3>
{{ channel_score_chart }}
<table><tr><th>Kanaal</th><th>Reacties</th><th>Gemiddeld</th><th>Basisperiode</th><th>Aandeel 1–5</th></tr>
{% for s in f.satisfaction_by_channel %}<tr><td>{{ s.group }}</td><td>{{ s.responses }}</td>
<td>{{ num(s.mean) }}</td><td>{{ num(s.baseline_mean) }}</td><td>{{ pct(s.low_share) }}</td></tr>
{% endfor %}</table>
<h3>Per zaaktype <span class="en">/ per case type</span></h3>
{{ case_type_score_chart }}
<table><tr><th>Zaaktype</th><th>Reacties</th><th>Gemiddeld</th><th>Basisperiode</th><th>Aandeel 1–5</th></tr>
{% for s in f.satisfaction_by_case_type %}<tr><td>{{ s.group }}</td><td>{{ s.responses }}</td>
<td>{{ num(s.mean) }}</td><td>{{ num(s.baseline_mean) }}</td><td>{{ pct(s.low_share) }}</td></tr>
{% endfor %}</table>

<h2>Kanaalmix <span class="en">/ channel mix</span></h2>
<p>Digitaal aandeel (digitaal waar het kan): <strong>{{ pct(f.digital_share) }}</strong>
(basisperiode {{ pct(f.baseline_digital_share) }}). Telefoon: {{ f.phone_offered }} gesprekken,
servicelevel {{ pct(f.phone_service_level) }}, gemist {{ f.phone_abandoned }}.</p>
{{ channel_chart }}
<table><tr><th>Kanaal</th><th>Contacten</th><th>Aandeel</th><th>Basisperiode</th></tr>
{% for c in f.channel_mix %}<tr><td>{{ c.channel }}</td><td>{{ c.contacts }}</td>
<td>{{ pct(c.share) }}</td><td>{{ pct(c.baseline_share) }}</td></tr>{% endfor %}</table>

<h2>Klachten <span class="en">/ complaints</span></h2>
<p>Ontvangen: <strong>{{ f.complaints_received.values() | sum }}</strong>
(basisperiode {{ f.baseline_complaints_received }}).</p>
{{ verdict_chart }}
<table><tr><th>Oordeel / verdict</th><th>Aantal</th></tr>
{% for verdict, n in f.complaint_verdicts.items() %}<tr><td>{{ verdict }}</td><td>{{ n }}</td></tr>{% endfor %}
</table>
<table><tr><th>Kanaal / channel</th><th>Ontvangen</th></tr>
{% for channel, n in f.complaints_received.items() %}<tr><td>{{ channel }}</td><td>{{ n }}</td></tr>{% endfor %}
</table>
</body>
</html>
"""


def render_html(f: PeriodFigures) -> str:
    env = Environment(autoescape=True)
    env.globals.update(pct=pct, num=num, pp=pp)
    verdicts = sum(f.complaint_verdicts.values())
    return env.from_string(TEMPLATE).render(
        f=f,
        norm_chart=bar_chart(
            [(n.norm, n.compliance or 0.0) for n in f.norms],
            maximum=1.0,
            label="Naleving per norm / compliance per norm",
            marks={n.norm: n.goal for n in f.norms if n.goal is not None},
        ),
        channel_score_chart=bar_chart(
            [(s.group, s.mean or 0.0) for s in f.satisfaction_by_channel],
            maximum=10,
            label="Rapportcijfer per kanaal",
            fmt="score",
        ),
        case_type_score_chart=bar_chart(
            [(s.group, s.mean or 0.0) for s in f.satisfaction_by_case_type],
            maximum=10,
            label="Rapportcijfer per zaaktype",
            fmt="score",
        ),
        channel_chart=bar_chart(
            [(c.channel, c.share) for c in f.channel_mix], maximum=1.0, label="Kanaalmix"
        ),
        verdict_chart=bar_chart(
            [(v, n / verdicts) for v, n in f.complaint_verdicts.items()] if verdicts else [],
            maximum=1.0,
            label="Oordeel klachten",
        ),
    )


def write_csv(f: PeriodFigures, out: Path) -> list[Path]:
    def write(name: str, header: list[str], rows: list[list[object]]) -> Path:
        path = out / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    def r(value: float | None, digits: int = 4) -> object:
        return "" if value is None else round(value, digits)

    return [
        write(
            "norms.csv",
            ["norm", "met", "missed", "compliance", "goal", "baseline_compliance", "change_pp"],
            [
                [
                    n.norm,
                    n.met,
                    n.missed,
                    r(n.compliance),
                    r(n.goal),
                    r(n.baseline_compliance),
                    r(n.change, 2),
                ]
                for n in f.norms
            ],
        ),
        write(
            "satisfaction_by_channel.csv",
            ["channel", "responses", "mean_score", "baseline_mean_score", "share_1_to_5"],
            [
                [s.group, s.responses, r(s.mean, 2), r(s.baseline_mean, 2), r(s.low_share)]
                for s in f.satisfaction_by_channel
            ],
        ),
        write(
            "satisfaction_by_case_type.csv",
            ["case_type", "responses", "mean_score", "baseline_mean_score", "share_1_to_5"],
            [
                [s.group, s.responses, r(s.mean, 2), r(s.baseline_mean, 2), r(s.low_share)]
                for s in f.satisfaction_by_case_type
            ],
        ),
        write(
            "channel_mix.csv",
            ["channel", "contacts", "share", "baseline_share"],
            [[c.channel, c.contacts, r(c.share), r(c.baseline_share)] for c in f.channel_mix],
        ),
        write(
            "complaints.csv",
            ["kind", "key", "count"],
            [["received", k, v] for k, v in f.complaints_received.items()]
            + [["verdict", k, v] for k, v in f.complaint_verdicts.items()],
        ),
        write(
            "summary.csv",
            ["figure", "value"],
            [
                ["municipality", f.municipality],
                ["period_from", f.period.start.isoformat()],
                ["period_to", f.period.end.isoformat()],
                ["baseline_from", f.baseline.start.isoformat()],
                ["baseline_to", f.baseline.end.isoformat()],
                ["digital_share", r(f.digital_share)],
                ["baseline_digital_share", r(f.baseline_digital_share)],
                ["mean_score", r(f.overall_score, 2)],
                ["baseline_mean_score", r(f.baseline_overall_score, 2)],
                ["surveys_sent", f.surveys_sent],
                ["survey_responses", f.survey_responses],
                ["response_rate", r(f.response_rate)],
                ["phone_offered", f.phone_offered],
                ["phone_service_level", r(f.phone_service_level)],
                ["phone_abandoned", f.phone_abandoned],
                ["complaints_received", sum(f.complaints_received.values())],
                ["baseline_complaints_received", f.baseline_complaints_received],
            ],
        ),
    ]
