"""The simulated resident reading a survey e-mail and answering like a browser without JS."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import httpx

from simulator.ledger import Ledger, read_ledger
from simulator.surveys import (
    SurveyAnsweringResidents,
    one_click_links,
    parse_forms,
    read_mail,
    survey_page,
)

PAGE = """<!doctype html><html lang="nl"><body>
<form method="post" action="/s/TOKEN">
  <input type="hidden" name="csrf" value="abc">
  <fieldset><legend>Welk cijfer geeft u?</legend>
  <input type="radio" name="score" value="1" id="s1"><label for="s1">1</label>
  <input type="radio" name="score" value="10" id="s10"><label for="s10">10</label>
  </fieldset>
  <textarea name="comment"></textarea>
  <input type="checkbox" name="may_contact" value="yes">
  <button type="submit">Verstuur</button>
</form></body></html>"""


def mail(to: str, body: str) -> bytes:
    message = EmailMessage()
    message["To"] = to
    message["From"] = "gemeente@example.nl"
    message["Subject"] = "Hoe hebben wij u geholpen?"
    message.set_content(body)
    message.add_alternative(f"<p>{body}</p>", subtype="html")
    return bytes(message)


def test_forms_are_read_with_their_hidden_fields_and_choices() -> None:
    (form,) = parse_forms(PAGE)
    assert form.method == "post" and form.action == "/s/TOKEN"
    assert form.fields == {"csrf": "abc", "comment": ""}
    assert form.choices == {"score": ["1", "10"], "may_contact": ["yes"]}


def test_one_click_links_are_recognised_by_query_or_path() -> None:
    links = [
        "http://127.0.0.1:8082/s/TOKEN",
        "http://127.0.0.1:8082/s/TOKEN?score=7",
        "http://127.0.0.1:8082/s/TOKEN/score/9",
        "http://127.0.0.1:8082/s/TOKEN?score=11",
    ]
    assert one_click_links(links) == {7: links[1], 9: links[2]}
    assert survey_page(links[1:]) == "http://127.0.0.1:8082/s/TOKEN"
    assert survey_page(["http://x/s/T?lang=en&score=3"]) == "http://x/s/T?lang=en"


def test_links_are_found_in_the_mail(tmp_path: Path) -> None:
    path = tmp_path / "m1"
    path.write_bytes(
        mail(
            "inwoner.gm0383.abc.1@example.nl",
            "Geef een cijfer: http://x/s/T?score=8 of http://x/s/T",
        )
    )
    read = read_mail(path)
    assert read.to == "inwoner.gm0383.abc.1@example.nl"
    assert read.links == ["http://x/s/T?score=8", "http://x/s/T"]


async def test_residents_answer_only_their_own_mail_through_the_page(tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    (maildir / "new").mkdir(parents=True)
    (maildir / "cur").mkdir()
    for n in range(30):
        (maildir / "new" / f"{n}.eml").write_bytes(
            mail(f"inwoner.gm0383.run1.{n}@example.nl", f"Uw mening: http://feedback/s/T{n}")
        )
    (maildir / "new" / "other.eml").write_bytes(mail("someone@example.org", "http://feedback/s/X"))
    posted: list[dict[str, str]] = []

    def feedback(request: httpx.Request) -> httpx.Response:
        assert "/s/X" not in request.url.path  # never another run's mail
        if request.method == "POST":
            assert request.headers["Origin"] == "http://feedback"  # like a browser
        if request.url.path == "/s/bedankt":
            return httpx.Response(200, text="Bedankt")
        if request.method == "GET":
            return httpx.Response(200, text=PAGE, headers={"content-type": "text/html"})
        form = dict(httpx.QueryParams(request.content.decode()))
        posted.append(form)
        return httpx.Response(303, headers={"Location": "/s/bedankt"})

    ledger = Ledger(tmp_path / "ledger.jsonl")
    residents = SurveyAnsweringResidents(
        maildir,
        run_tag="run1",
        seed=5,
        ledger=ledger,
        response_rate=0.5,
        client=httpx.AsyncClient(transport=httpx.MockTransport(feedback)),
    )
    answered = await residents.answer_new_mail()
    assert await residents.answer_new_mail() == 0  # each mail once
    ledger.close()
    assert residents.stats.mails_seen == 30
    assert 5 < answered < 25 and answered == len(posted)
    assert all(p["csrf"] == "abc" and 1 <= int(p["score"]) <= 10 for p in posted)
    answers = read_ledger(tmp_path / "ledger.jsonl").survey_answers
    assert [a["score"] for a in answers] == [int(p["score"]) for p in posted]


def test_a_checked_choice_is_sent_like_a_browser_sends_it():
    page = """<form method="post" action="/s/tok">
      <input type="hidden" name="csrf" value="abc">
      <input type="radio" name="score" value="7">
      <input type="radio" name="score" value="8" checked>
      <input type="checkbox" name="contact_me" value="yes">
      <button type="submit">Verstuur</button></form>"""
    (form,) = parse_forms(page)
    assert form.fields == {"csrf": "abc", "score": "8"}  # not the unchecked box
    assert form.choices == {"score": ["7", "8"], "contact_me": ["yes"]}


async def test_a_resident_whose_page_was_down_tries_again_with_the_same_answer(
    tmp_path: Path,
) -> None:
    """A page that is unreachable or answers 503 (a restart) is tried again on the next pass,
    and the resident gives the answer they would have given at once: a run with faults then
    answers exactly as a run without."""

    async def answers(down_for: int) -> list[dict[str, str]]:
        maildir = tmp_path / f"mail{down_for}"
        (maildir / "new").mkdir(parents=True)
        for n in range(20):
            (maildir / "new" / f"{n}.eml").write_bytes(
                mail(f"inwoner.gm0383.run1.{n}@example.nl", f"Uw mening: http://feedback/s/T{n}")
            )
        posted: list[dict[str, str]] = []
        calls = 0

        def feedback(request: httpx.Request) -> httpx.Response:
            nonlocal calls
            calls += 1
            if calls <= down_for:
                if calls % 2:
                    raise httpx.ConnectError("connection refused", request=request)
                return httpx.Response(503, headers={"Retry-After": "1"})
            if request.url.path == "/s/bedankt":
                return httpx.Response(200, text="Bedankt")
            if request.method == "GET":  # each mail's own page (its form posts to it)
                page = PAGE.replace("/s/TOKEN", request.url.path)
                return httpx.Response(200, text=page, headers={"content-type": "text/html"})
            posted.append({"to": request.url.path, **httpx.QueryParams(request.content.decode())})
            return httpx.Response(303, headers={"Location": "/s/bedankt"})

        residents = SurveyAnsweringResidents(
            maildir, run_tag="run1", seed=5, ledger=Ledger(tmp_path / f"l{down_for}.jsonl"),
            client=httpx.AsyncClient(transport=httpx.MockTransport(feedback)),
        )  # fmt: skip
        for _ in range(5):
            await residents.answer_new_mail()
        assert residents.stats.failed == 0 and residents.stats.mails_seen == 20
        assert (residents.stats.retried > 0) == (down_for > 0)
        return sorted(posted, key=lambda p: p["to"])

    undisturbed = await answers(0)
    assert undisturbed
    assert await answers(6) == undisturbed
