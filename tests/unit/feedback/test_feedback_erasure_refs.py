"""From the identifier staff hold to the pseudonym intake made (services/feedback/domain/erasure.py)."""

from __future__ import annotations

import base64
import secrets

import pytest

from schemas.resident import ResidentIn
from services.common.sealing import pseudonym
from services.feedback.domain.erasure import phone_spellings, resident_refs

KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def intake_ref(**resident: str) -> str:
    """The pseudonym exactly as intake makes it (services/intake/domain/admission.py)."""
    return pseudonym(KEY, ResidentIn(**resident).recognised_by())


@pytest.mark.parametrize(
    ("posted", "held"),
    [
        ({"email": "J.Jansen@Example.org"}, {"email": "j.jansen@example.org"}),
        ({"bsn": "111222333"}, {"bsn": "111222333"}),
        ({"identifier": "KLANT-42"}, {"identifier": "klant-42"}),
        ({"phone": "06-12345678"}, {"phone": "+31 6 1234 5678"}),
        ({"phone": "0612345678"}, {"phone": "06-12345678"}),
        ({"phone": "+31612345678"}, {"phone": "0031 6 12345678"}),
        ({"phone": "020-1234567"}, {"phone": "0201234567"}),
        # The strongest identifier makes the pseudonym: staff holding the BSN find the resident.
        ({"bsn": "111222333", "email": "a@example.org"}, {"bsn": "111222333"}),
    ],
)
def test_the_identifier_staff_hold_finds_the_pseudonym_intake_made(
    posted: dict[str, str], held: dict[str, str]
) -> None:
    assert intake_ref(**posted) in resident_refs(KEY, **held).searched


def test_an_other_identifier_finds_no_one() -> None:
    refs = resident_refs(KEY, email="someone.else@example.org", phone="0687654321")
    assert intake_ref(email="j.jansen@example.org") not in refs.searched
    assert intake_ref(phone="06-12345678") not in refs.searched


def test_the_identifiers_as_given_are_what_an_opt_out_is_kept_under() -> None:
    refs = resident_refs(KEY, email="a@example.org", phone="06-12345678")
    assert refs.as_given == sorted({pseudonym(KEY, "a@example.org"), pseudonym(KEY, "06-12345678")})
    assert set(refs.as_given) <= set(refs.searched)


def test_phone_spellings_keep_the_number() -> None:
    spellings = phone_spellings("06 1234 5678")
    assert {"0612345678", "+31612345678", "0031612345678", "06-12345678"} <= spellings
    assert all(s.replace("-", "").endswith("612345678") for s in spellings)
