"""Signed survey links: genuine ones verify, anything altered is forged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.feedback.domain.answers import InvalidAnswer, parse_answer, plain_text
from services.feedback.domain.tokens import (
    ForgedLink,
    form_token,
    form_token_valid,
    sign_link,
    verify_link,
)

KEY = b"k" * 32
EXPIRES = datetime(2026, 3, 18, 12, 0, tzinfo=UTC)


def test_a_genuine_link_verifies_and_knows_its_expiry() -> None:
    survey = uuid.uuid4()
    claim = verify_link(KEY, sign_link(KEY, survey, EXPIRES))
    assert claim.survey_id == survey
    assert claim.expires_at == EXPIRES
    assert not claim.expired(EXPIRES - timedelta(seconds=1))
    assert claim.expired(EXPIRES)


def test_another_key_does_not_verify() -> None:
    token = sign_link(KEY, uuid.uuid4(), EXPIRES)
    with pytest.raises(ForgedLink):
        verify_link(b"x" * 32, token)


@given(position=st.integers(0, 200), replacement=st.sampled_from("AQgw-_09z."))
def test_changing_any_character_makes_it_forged(position: int, replacement: str) -> None:
    token = sign_link(KEY, uuid.UUID(int=12345), EXPIRES)
    position %= len(token)
    altered = token[:position] + replacement + token[position + 1 :]
    if altered == token:
        return
    with pytest.raises(ForgedLink):
        verify_link(KEY, altered)


@given(st.text(max_size=120))
def test_garbage_is_forged(text: str) -> None:
    with pytest.raises(ForgedLink):
        verify_link(KEY, text)


def test_extended_expiry_is_forged() -> None:
    token = sign_link(KEY, uuid.uuid4(), EXPIRES)
    longer = sign_link(b"other", uuid.uuid4(), EXPIRES + timedelta(days=30))
    with pytest.raises(ForgedLink):
        verify_link(
            KEY, token.split(".")[0][:-2] + longer.split(".")[0][-2:] + "." + token.split(".")[1]
        )


def test_form_token_is_bound_to_the_link() -> None:
    a = sign_link(KEY, uuid.uuid4(), EXPIRES)
    b = sign_link(KEY, uuid.uuid4(), EXPIRES)
    assert form_token_valid(KEY, a, form_token(KEY, a))
    assert not form_token_valid(KEY, b, form_token(KEY, a))
    assert not form_token_valid(KEY, a, "")


def test_answers_are_plain_bounded_text() -> None:
    answer = parse_answer("4", "  Te lang\r\ngewacht\x00\u202e  ", True)
    assert answer.score == 4
    assert answer.comment == "Te lang\ngewacht"
    assert answer.may_contact
    assert parse_answer(10, "   ", False).comment is None
    for score in ("0", "11", "", None, "zeven"):
        with pytest.raises(InvalidAnswer):
            parse_answer(score, None, False)
    with pytest.raises(InvalidAnswer):
        parse_answer(7, "x" * 2001, False)
    assert plain_text("<b>hoi</b>") == "<b>hoi</b>"  # stored as typed; escaped when shown
