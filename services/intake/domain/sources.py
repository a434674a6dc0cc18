"""CloudEvents sources as intake accepts them, and the patterns that grant a channel system some.

A source is a URI reference (RFC 3986): `/buch/kcc/email`, `https://zaken.example.nl/api`,
`urn:gm0383:zaaksysteem`. A channel system is granted sources by pattern, and a pattern must not
be escapable: `/buch/kcc/*` may never admit `/buch/kcc/../zaaksysteem`. So sources are matched
segment by segment (split on `/`), and only a source in its plain form is accepted: anything a
consumer, a proxy or a URI library could read as another path — dot segments, empty segments, a
trailing slash, percent-encoded slashes, dots or percent signs, backslashes, control characters
or non-ASCII (an IRI, not a URI) — is refused with a reason, never rewritten. What is left needs
no further normalising: its segments are what it says.

Patterns use the same form, with two wildcards, each a whole segment:
- `*` matches exactly one segment: `/buch/kcc/*` admits `/buch/kcc/email`, not `/buch/kcc`,
  not `/buch/kcc/email/x`;
- `**`, only as the last segment, matches one or more segments: `/buch/**` admits `/buch/kcc`
  and `/buch/kcc/email`, not `/buch`. A pattern that is just `**` admits every source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The scheme and authority marker of an absolute URI (`https://`), kept apart from the path.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
# Printable ASCII but the space: a URI has no other characters.
_PRINTABLE_ASCII = re.compile(r"[!-~]*")
# A percent sign not followed by two hex digits, or one that encodes '.', '/', '\' or '%'.
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ENCODED_DELIMITER = re.compile(r"%(?:2[EeFf]|5[Cc]|25)")

ONE_SEGMENT = "*"
ANY_REST = "**"

# Verdicts on sources seen recently (a channel system posts a handful): the checks run per event.
FORM_MEMO_SIZE = 10_000
_form_verdicts: dict[str, str | None] = {}
_UNSEEN: object = object()


def split_source(text: str) -> tuple[str, tuple[str, ...]]:
    """The root (`/`, `scheme://` or nothing) and the segments after it."""
    scheme = _SCHEME.match(text)
    if scheme:
        root = scheme.group(0)
    elif text.startswith("/"):
        root = "/"
    else:
        root = ""
    return root, tuple(text[len(root) :].split("/"))


def _form_problem(text: str, *, wildcards: bool) -> str | None:
    if not _PRINTABLE_ASCII.fullmatch(text):
        return (
            "contains a space, a control character or a non-ASCII character; a source is a "
            "URI reference (RFC 3986) in printable ASCII"
        )
    if "\\" in text:
        return "contains a backslash; segments are separated by '/' only"
    if _BAD_ESCAPE.search(text):
        return "contains a '%' that is not followed by two hex digits"
    if _ENCODED_DELIMITER.search(text):
        return "contains a percent-encoded '.', '/', '\\' or '%'; write the source plainly"
    _, segments = split_source(text)
    for position, segment in enumerate(segments):
        if segment == "":
            return "has an empty segment ('//', a trailing '/' or nothing after the root)"
        if segment in (".", ".."):
            return f"has a {segment!r} segment; give the source without dot segments"
        if wildcards and "*" in segment:
            if segment == ANY_REST and position != len(segments) - 1:
                return "has '**' before its last segment; '**' may only end a pattern"
            if segment not in (ONE_SEGMENT, ANY_REST):
                return f"has {segment!r}: '*' and '**' stand only for whole segments"
    return None


def source_form_problem(source: str) -> str | None:
    """None when `source` is in the plain form intake accepts, else why not (for a 422)."""
    verdict = _form_verdicts.get(source, _UNSEEN)
    if verdict is _UNSEEN:
        verdict = _form_problem(source, wildcards=False)
        if len(_form_verdicts) >= FORM_MEMO_SIZE:
            _form_verdicts.clear()
        _form_verdicts[source] = verdict
    return verdict  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class SourcePattern:
    """A granted source pattern, parsed once (see the module's docstring for its form)."""

    text: str
    root: str
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> SourcePattern:
        """The pattern, or ValueError saying what is wrong with it (for the config error)."""
        if text == ANY_REST:
            return cls(text, "", (ANY_REST,))
        problem = _form_problem(text, wildcards=True)
        if problem:
            raise ValueError(f"source pattern {text!r} {problem}")
        root, segments = split_source(text)
        return cls(text, root, segments)

    def matches(self, source: str) -> bool:
        """Whether the pattern admits `source`; a source not in plain form matches nothing."""
        if source_form_problem(source) is not None:
            return False
        if self.segments == (ANY_REST,) and not self.root:
            return True
        root, segments = split_source(source)
        if root != self.root:
            return False
        pattern = self.segments
        if pattern[-1] == ANY_REST:
            fixed = pattern[:-1]
            if len(segments) <= len(fixed):
                return False
        elif len(segments) != len(pattern):
            return False
        else:
            fixed = pattern
        return all(p in (ONE_SEGMENT, s) for p, s in zip(fixed, segments, strict=False))
