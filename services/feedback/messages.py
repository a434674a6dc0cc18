"""The words residents read: the survey e-mail and SMS (Dutch at B1 level, with English), rendered
from templates in services/feedback/templates/ (autoescape on for HTML)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"

templates = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def survey_links(base_url: str, token: str) -> dict[str, object]:
    page = f"{base_url.rstrip('/')}/s/{token}"
    return {"page": page, "scores": [(n, f"{page}?score={n}") for n in range(1, 11)]}


def survey_email(
    *,
    to: str,
    sender: str,
    municipality_name: str,
    language: str,
    base_url: str,
    token: str,
    survey_id: str,
) -> EmailMessage:
    context = {
        "municipality": municipality_name,
        "english_first": language == "en",
        "links": survey_links(base_url, token),
    }
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = (
        f"How did we do? | Hoe hebben wij u geholpen? – {municipality_name}"
        if language == "en"
        else f"Hoe hebben wij u geholpen? | How did we do? – {municipality_name}"
    )
    # The same Message-ID for the same survey: a receiving system can recognise a repeat.
    message["Message-ID"] = make_msgid(idstring=survey_id, domain="servicepuls.invalid")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(templates.get_template("email.txt").render(context))
    message.add_alternative(templates.get_template("email.html").render(context), subtype="html")
    return message


def survey_sms(*, municipality_name: str, language: str, base_url: str, token: str) -> str:
    page = survey_links(base_url, token)["page"]
    if language == "en":
        return f"{municipality_name}: how did we do? Give us a score from 1 to 10: {page}"
    return f"Gemeente {municipality_name}: hoe hebben wij u geholpen? Geef een cijfer van 1 tot 10: {page}"
