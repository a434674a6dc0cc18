"""Recognising personal identifiers: the fast pre-check never hides one the full check finds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.common import is_valid_bsn
from services.common.pii import (
    EMAIL,
    NINE_DIGITS,
    PHONE,
    PersonalIdentifier,
    find_personal_identifier,
    redact,
)


def full_check(text: str) -> PersonalIdentifier | None:
    """The three patterns without the pre-check: what `find_personal_identifier` must equal."""
    if EMAIL.search(text):
        return PersonalIdentifier.EMAIL
    if PHONE.search(text):
        return PersonalIdentifier.PHONE
    if any(is_valid_bsn(m.group()) for m in NINE_DIGITS.finditer(text)):
        return PersonalIdentifier.BSN
    return None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bewoner@example.nl", PersonalIdentifier.EMAIL),
        ("mail j.de.vries@gemeente.nl graag", PersonalIdentifier.EMAIL),
        ("06-12345678", PersonalIdentifier.PHONE),
        ("+31 6 1234 5678", PersonalIdentifier.PHONE),
        ("0031201234567", PersonalIdentifier.PHONE),
        ("bel 020-1234567 terug", PersonalIdentifier.PHONE),
        ("111222333", PersonalIdentifier.BSN),
        ("123456789", None),  # nine digits failing the eleven test are no BSN
        ("Z-2026-000123", None),
        ("3f2a1b4c-9d8e-4f00-8a1b-2c3d4e5f6a7b", None),
        ("afval", None),
        ("", None),
    ],
)
def test_known_values(text: str, expected: PersonalIdentifier | None) -> None:
    assert find_personal_identifier(text) is expected
    assert full_check(text) is expected


# Strings dense in what the patterns look for: digits, separators, "@", dots, plus signs.
dense = st.text(alphabet="0123456789 -+@.abnlZT", max_size=40)


@settings(max_examples=3000)
@given(dense)
def test_the_pre_check_changes_no_answer(text: str) -> None:
    assert find_personal_identifier(text) is full_check(text)


@settings(max_examples=500)
@given(st.text(max_size=60))
def test_the_pre_check_changes_no_answer_on_any_text(text: str) -> None:
    assert find_personal_identifier(text) is full_check(text)


def test_redact_replaces_every_kind() -> None:
    text = "mail a@b.nl of bel 06-12345678, bsn 111222333, zaak Z-123"
    assert redact(text) == "mail [e-mail] of bel [phone], bsn [bsn], zaak Z-123"
