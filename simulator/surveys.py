"""Simulated residents answering their survey e-mails, like a person with a browser without
JavaScript: read the mail in the Maildir the SMTP sink writes, then either click a score link in
the mail (the page opens with that score chosen) and send that form, or open the survey page and
fill in its form.

Only mail to this run's residents is touched (their addresses carry the run tag). Whether a
resident answers and what they give is drawn from a generator seeded by the run's seed and the
address, so a rerun answers the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import random
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import httpx

from simulator.ledger import Ledger

# Dutch report marks (rapportcijfers) as residents give them: mostly 7 and 8, a tail of low ones.
SCORE_WEIGHTS = (2, 1, 2, 3, 6, 10, 22, 28, 16, 10)
# A page that is down or answers 502/503/504 is tried again, like a person whose link did not
# open; at most this many times per mail (at the answering interval of one second).
UNAVAILABLE = frozenset({502, 503, 504})
MAX_TRIES = 60
COMMENTS_NL = ("Snel en vriendelijk geholpen.", "Het duurde te lang.", "Duidelijke uitleg.", "")
_LINK = re.compile(r"https?://[^\s\"'<>]+")


@dataclass(slots=True)
class SurveyMail:
    path: Path
    to: str
    subject: str
    links: list[str]


@dataclass(frozen=True, slots=True)
class Form:
    action: str
    method: str
    fields: dict[str, str]  # hidden and pre-filled inputs, and choices made already (checked)
    choices: dict[str, list[str]]  # radio/select names with their values


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: dict[str, object] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = {
                "action": a.get("action", ""),
                "method": a.get("method", "get").lower(),
                "fields": {},
                "choices": {},
            }
        elif self._current is not None and tag == "input" and a.get("name"):
            fields: dict[str, str] = self._current["fields"]  # type: ignore[assignment]
            choices: dict[str, list[str]] = self._current["choices"]  # type: ignore[assignment]
            kind = a.get("type", "text").lower()
            if kind in ("radio", "checkbox"):
                choices.setdefault(a["name"], []).append(a.get("value", "on"))
                if "checked" in a:  # a browser sends what the page chose already
                    fields[a["name"]] = a.get("value", "on")
            elif kind not in ("submit", "button"):
                fields[a["name"]] = a.get("value", "")
        elif self._current is not None and tag == "select" and a.get("name"):
            self._select = a["name"]
        elif self._current is not None and tag == "option" and self._select:
            choices = self._current["choices"]  # type: ignore[assignment]
            choices.setdefault(self._select, []).append(a.get("value", ""))
        elif self._current is not None and tag == "textarea" and a.get("name"):
            self._current["fields"][a["name"]] = ""  # type: ignore[index]

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "form" and self._current is not None:
            self.forms.append(Form(**self._current))  # type: ignore[arg-type]
            self._current = None


def parse_forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def read_mail(path: Path) -> SurveyMail:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    texts: list[str] = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            try:
                texts.append(part.get_content())  # type: ignore[attr-defined]
            except (LookupError, ValueError):
                continue
    links: list[str] = []
    for text in texts:
        for link in _LINK.findall(text):
            link = link.rstrip(").,;").replace("&amp;", "&")
            if link not in links:
                links.append(link)
    return SurveyMail(path, str(message.get("To", "")), str(message.get("Subject", "")), links)


def one_click_links(links: list[str]) -> dict[int, str]:
    """Score links in the mail (`...?score=8` or `.../8`): each opens the form with its score."""
    found: dict[int, str] = {}
    for link in links:
        parsed = urlparse(link)
        score = parse_qs(parsed.query).get("score", [None])[0]
        if score is None:
            tail = parsed.path.rstrip("/").rsplit("/", 1)[-1]
            score = tail if tail.isdigit() and len(tail) <= 2 else None
        if score is not None and score.isdigit() and 1 <= int(score) <= 10:
            found[int(score)] = link
    return found


def survey_page(links: list[str]) -> str:
    """The survey page itself: a score link without its score, else the first plain link."""
    for link in links:
        parsed = urlparse(link)
        query = parse_qs(parsed.query)
        if "score" in query:
            rest = "&".join(f"{k}={v[0]}" for k, v in query.items() if k != "score")
            return parsed._replace(query=rest).geturl()
    return links[0]


@dataclass(slots=True)
class AnsweringStats:
    mails_seen: int = 0
    answered: int = 0
    declined: int = 0
    failed: int = 0
    retried: int = 0  # tries whose survey page could not be reached (tried again later)
    first_link: str | None = None
    problems: list[str] = field(default_factory=list)


class SurveyAnsweringResidents:
    def __init__(
        self,
        maildir: Path,
        *,
        run_tag: str,
        seed: int,
        ledger: Ledger,
        response_rate: float = 0.45,
        one_click_share: float = 0.6,
        link_prefix: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.maildir = maildir
        self.marker = f".{run_tag}."
        self.seed = seed
        self.ledger = ledger
        self.response_rate = response_rate
        self.one_click_share = one_click_share
        self.link_prefix = link_prefix  # only mail whose links start here (one survey service)
        self.client = client or httpx.AsyncClient(timeout=15.0, follow_redirects=True)
        self.stats = AnsweringStats()
        self._done: set[str] = set()
        self._mails_per_address: dict[str, int] = {}
        self._tries: dict[str, int] = {}  # per mail file: tries whose page was unreachable

    def _files(self) -> list[Path]:
        files: list[Path] = []
        for folder in ("new", "cur"):
            directory = self.maildir / folder
            if directory.is_dir():
                files += [p for p in directory.iterdir() if p.is_file()]
        return sorted(files)

    async def answer_new_mail(self) -> int:
        """Read every mail not seen before; answer the ones to this run's residents."""
        answered = 0
        for path in self._files():
            key = path.name.split(":", 1)[0]  # Maildir flags may be appended when moved to cur/
            if key in self._done:
                continue
            self._done.add(key)
            try:
                # Another run's mail (the sink keeps every mail) is passed over unparsed: the
                # address carrying the run tag is plain ASCII in the To: header. Parsing
                # thousands of them here would hold up the loop that posts the events.
                if self.marker.encode() not in path.read_bytes():
                    continue
                mail = read_mail(path)
            except (OSError, ValueError) as exc:
                self.stats.problems.append(f"unreadable mail {path.name}: {exc}")
                continue
            if self.marker not in mail.to:
                continue
            if self.link_prefix and not any(x.startswith(self.link_prefix) for x in mail.links):
                continue
            self.stats.mails_seen += 1
            if self.stats.first_link is None and mail.links:
                self.stats.first_link = survey_page(mail.links)  # never a score link
            result = await self._maybe_answer(mail)
            if result is None:  # the page could not be reached: this mail is read again later
                self._done.discard(key)
                self.stats.mails_seen -= 1  # counted when it is read for the last time
                continue
            answered += result
        return answered

    async def _maybe_answer(self, mail: SurveyMail) -> int | None:
        """1 when answered, 0 when not (declined, or refused by the page), None when the page
        could not be reached (down, or 502/503/504): the resident tries again later, as a person
        whose link did not open would, up to `MAX_TRIES` times, with the same answer."""
        nth = self._mails_per_address.get(mail.to, 0) + 1
        rng = random.Random(f"{self.seed}:{mail.to}:{nth}")
        if rng.random() >= self.response_rate or not mail.links:
            self._mails_per_address[mail.to] = nth
            self.stats.declined += 1
            return 0
        score = rng.choices(range(1, 11), SCORE_WEIGHTS)[0]
        comment = rng.choice(COMMENTS_NL)
        clicks = one_click_links(mail.links)
        try:
            if clicks and score in clicks and rng.random() < self.one_click_share:
                via, status = "email_one_click", await self._click(clicks[score])
            else:
                via, status = "web", await self._fill_in(survey_page(mail.links), score, comment)
        except httpx.HTTPError as exc:
            return self._unreachable(mail, nth, f"survey page unreachable: {exc!r}")
        if status in UNAVAILABLE:
            return self._unreachable(mail, nth, f"survey page answered HTTP {status}")
        self._mails_per_address[mail.to] = nth
        ok = 200 <= status < 400
        self.ledger.survey_answered(to=mail.to, score=score, via=via, status=status, ok=ok)
        if ok:
            self.stats.answered += 1
            return 1
        self.stats.failed += 1
        self.stats.problems.append(f"survey answer got HTTP {status}")
        return 0

    def _unreachable(self, mail: SurveyMail, nth: int, problem: str) -> int | None:
        key = mail.path.name.split(":", 1)[0]
        tries = self._tries.get(key, 0) + 1
        self._tries[key] = tries
        self.stats.retried += 1
        if tries < MAX_TRIES:
            return None
        self._mails_per_address[mail.to] = nth
        self.stats.failed += 1
        self.stats.problems.append(f"{problem} ({tries} tries)")
        return 0

    async def _click(self, link: str) -> int:
        """Click a score link in the mail. The page opens with that score chosen (opening a link
        records nothing: mail scanners open them all); send it, as a person would."""
        response = await self.client.get(link)
        html = "html" in response.headers.get("content-type", "")
        forms = parse_forms(response.text) if html and response.status_code == 200 else []
        confirm = next(
            (f for f in forms if f.method == "post" and "score" in f.fields and f.fields["score"]),
            None,
        )
        if confirm is not None:
            return await self._submit(response, confirm, dict(confirm.fields))
        return response.status_code

    async def _submit(self, page: httpx.Response, form: Form, data: dict[str, str]) -> int:
        """POST a form as a browser does: to its action, with the page's origin."""
        url = urljoin(str(page.url), form.action or "")
        parsed = urlparse(str(page.url))
        headers = {"Origin": f"{parsed.scheme}://{parsed.netloc}", "Referer": str(page.url)}
        posted = await self.client.post(url, data=data, headers=headers)
        return posted.status_code

    async def _fill_in(self, link: str, score: int, comment: str) -> int:
        response = await self.client.get(link)
        if response.status_code != 200:
            return response.status_code
        forms = [f for f in parse_forms(response.text) if f.method == "post"]
        form = next((f for f in forms if "score" in f.choices or "score" in f.fields), None)
        if form is None:
            return 422
        data = dict(form.fields)
        data["score"] = str(score)
        for name in data:
            if name in ("comment", "opmerking", "toelichting"):
                data[name] = comment
        return await self._submit(response, form, data)

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        while not stop.is_set():
            try:
                await self.answer_new_mail()
            except Exception as exc:  # keep the demo going; the ledger and stats say what failed
                self.stats.problems.append(f"answering failed: {exc!r}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def aclose(self) -> None:
        await self.client.aclose()
