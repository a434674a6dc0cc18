"""A resident's answer: a score from 1 to 10 (the rapportcijfer), an optional remark and whether
we may contact them about it. Remarks are plain text of bounded length; they are never rendered
as HTML and never leave the feedback service (events only say whether there was one)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

MAX_COMMENT_CHARS = 2000


class InvalidAnswer(ValueError):
    """The form was filled in wrongly; `field` names what to correct."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class Answer:
    score: int
    comment: str | None = None
    may_contact: bool = False

    @property
    def has_comment(self) -> bool:
        return bool(self.comment)


def plain_text(text: str) -> str:
    """Keep letters, marks, punctuation, spaces and line breaks; drop control and format
    characters (which could hide text or break a CSV export), normalise to NFC."""
    cleaned = "".join(
        c
        for c in unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
        if c in "\n\t" or unicodedata.category(c)[0] not in ("C",)
    )
    return cleaned.strip()


def parse_score(raw: str | int | None) -> int:
    try:
        score = int(str(raw).strip())
    except (TypeError, ValueError) as exc:
        raise InvalidAnswer("score", "missing") from exc
    if not 1 <= score <= 10:
        raise InvalidAnswer("score", "out_of_range")
    return score


def parse_answer(score: str | int | None, comment: str | None, may_contact: bool) -> Answer:
    value = parse_score(score)
    text = plain_text(comment or "")
    if len(text) > MAX_COMMENT_CHARS:
        raise InvalidAnswer("comment", "too_long")
    return Answer(score=value, comment=text or None, may_contact=bool(may_contact))
