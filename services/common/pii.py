"""Recognising plaintext personal identifiers: e-mail addresses, Dutch phone numbers, BSNs.

Used by intake to refuse personal data in fields not meant for it, and by logging to scrub.
"""

from __future__ import annotations

import re
from enum import StrEnum

from schemas.common import is_valid_bsn

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# Dutch numbers: 06-12345678, +31 6 1234 5678, 0031201234567, 020-1234567 (10 digits after 0).
PHONE = re.compile(r"(?<![\w])(?:\+31|0031|0)[\s\-]?(?:\d[\s\-]?){9}(?![\w])")
NINE_DIGITS = re.compile(r"(?<!\d)\d{9}(?!\d)")
# What every phone number and BSN contains: nine digits, at most one space or hyphen between
# two of them. With a test for "@" (every e-mail address has one) it rules out almost every
# string at C speed, identifiers such as UUIDs included; a pattern that starts with a character
# class lets the engine skip ahead quickly.
_DIGITS_CANDIDATE = re.compile(r"\d(?:[\s\-]?\d){8}")


class PersonalIdentifier(StrEnum):
    EMAIL = "e-mail address"
    PHONE = "phone number"
    BSN = "BSN"


def find_personal_identifier(text: str) -> PersonalIdentifier | None:
    """The first kind of personal identifier found in `text`, if any."""
    if "@" not in text and _DIGITS_CANDIDATE.search(text) is None:
        return None
    if "@" in text and EMAIL.search(text):
        return PersonalIdentifier.EMAIL
    if PHONE.search(text):
        return PersonalIdentifier.PHONE
    if any(is_valid_bsn(m.group()) for m in NINE_DIGITS.finditer(text)):
        return PersonalIdentifier.BSN
    return None


def redact(text: str) -> str:
    """`text` with every recognised personal identifier replaced by a marker."""
    if not text or len(text) < 9:
        return text
    text = EMAIL.sub("[e-mail]", text)
    text = PHONE.sub("[phone]", text)
    return NINE_DIGITS.sub(lambda m: "[bsn]" if is_valid_bsn(m.group()) else m.group(), text)
