"""The period report's figures from facts, and a self-contained rendering."""

from __future__ import annotations

from datetime import date

from services.metrics.report.__main__ import baseline_for
from services.metrics.report.figures import Period, bound_case_types, compute
from services.metrics.report.render import render_html, write_csv

PERIOD = Period(date(2026, 1, 1), date(2026, 3, 31))
BASELINE = Period(date(2025, 10, 1), date(2025, 12, 31))

CURRENT = {
    ("norm_outcome", ("email_answered", "met", "0.8500")): 90.0,
    ("norm_outcome", ("email_answered", "missed", "0.8500")): 10.0,
    ("norm_outcome", ("report_resolved", "met", "0.9100")): 8.0,
    ("norm_outcome", ("report_resolved", "missed", "0.9100")): 2.0,
    ("survey_response", ("email", "aanvraag", "8")): 3.0,
    ("survey_response", ("email", "aanvraag", "4")): 1.0,
    ("survey_response", ("phone", "klacht", "6")): 2.0,
    ("survey_sent", ("email",)): 12.0,
    ("contact", ("phone", "inwoner", "inbound")): 60.0,
    ("contact", ("email", "inwoner", "inbound")): 30.0,
    ("contact", ("webform", "ondernemer", "inbound")): 10.0,
    ("contact", ("phone", "inwoner", "outbound")): 5.0,
    ("complaint_received", ("email",)): 4.0,
    ("complaint_closed", ("gegrond",)): 1.0,
    ("complaint_closed", ("ongegrond",)): 3.0,
    ("phone_call", ("answered_within_norm",)): 45.0,
    ("phone_call", ("answered_late",)): 10.0,
    ("phone_call", ("abandoned",)): 5.0,
}
BEFORE = {
    ("norm_outcome", ("email_answered", "met", "0.8500")): 80.0,
    ("norm_outcome", ("email_answered", "missed", "0.8500")): 20.0,
    ("contact", ("phone", "inwoner", "inbound")): 80.0,
    ("contact", ("email", "inwoner", "inbound")): 20.0,
}


def test_norm_compliance_goal_and_change_against_baseline():
    f = compute("GM0383", "Castricum", PERIOD, BASELINE, CURRENT, BEFORE)
    email = next(n for n in f.norms if n.norm == "email_answered")
    assert (email.met, email.missed, email.compliance, email.goal) == (90, 10, 0.9, 0.85)
    assert email.baseline_compliance == 0.8 and round(email.change, 6) == 10.0
    assert email.meets_goal
    resolved = next(n for n in f.norms if n.norm == "report_resolved")
    assert resolved.compliance == 0.8 and resolved.meets_goal is False
    assert resolved.baseline_compliance is None and resolved.change is None


def test_satisfaction_channel_mix_and_complaints():
    f = compute("GM0383", "Castricum", PERIOD, BASELINE, CURRENT, BEFORE)
    by_channel = {s.group: s for s in f.satisfaction_by_channel}
    assert by_channel["email"].mean == 7.0 and by_channel["email"].low_share == 0.25
    assert {s.group for s in f.satisfaction_by_case_type} == {"aanvraag", "klacht"}
    assert f.overall_score == (3 * 8 + 4 + 2 * 6) / 6
    assert f.response_rate == 6 / 12
    mix = {c.channel: c for c in f.channel_mix}
    assert mix["phone"].share == 0.6 and mix["phone"].baseline_share == 0.8  # outbound excluded
    assert f.digital_share == 0.4 and f.baseline_digital_share == 0.2
    assert f.complaint_verdicts == {"gegrond": 1, "ongegrond": 3}
    assert f.phone_service_level == 0.75


def test_the_report_is_self_contained_html_and_csv(tmp_path):
    f = compute("GM0383", "Castricum <NH>", PERIOD, BASELINE, CURRENT, BEFORE)
    page = render_html(f)
    assert "<svg" in page and "<script" not in page and "src=" not in page
    assert "Castricum &lt;NH&gt;" in page  # escaped
    paths = write_csv(f, tmp_path)
    assert "email_answered,90,10,0.9,0.85,0.8,10.0" in (tmp_path / "norms.csv").read_text()
    assert {p.name for p in paths} >= {"norms.csv", "channel_mix.csv", "summary.csv"}


def test_default_baseline_is_the_equally_long_period_before():
    assert baseline_for(PERIOD, None, None) == Period(
        date(2025, 10, 3), date(2025, 12, 31)
    )  # 90 days


def test_facts_of_undeclared_case_types_stored_before_are_reported_as_other():
    facts = {
        ("case_opened", ("klacht", "email")): 2.0,
        ("case_opened", ("oud-zaaktype", "email")): 3.0,
        ("case_opened", ("nog-een", "email")): 1.0,
        ("survey_response", ("phone", "none", "8")): 1.0,
        ("survey_response", ("webform", "oud-zaaktype", "8")): 4.0,
        ("contact", ("email", "inwoner", "inbound")): 5.0,
    }
    assert bound_case_types(facts, frozenset({"klacht"})) == {
        ("case_opened", ("klacht", "email")): 2.0,
        ("case_opened", ("other", "email")): 4.0,
        ("survey_response", ("phone", "none", "8")): 1.0,
        ("survey_response", ("webform", "other", "8")): 4.0,
        ("contact", ("email", "inwoner", "inbound")): 5.0,
    }
