"""Fake residents: valid-looking but nobody real.

E-mail addresses are at example.nl / example.org (reserved, never delivered), phone numbers are
06 numbers drawn at random, and BSNs are drawn from the 99xxxxxxx range (not issued to people,
used for test persons) and pass the elfproef, as intake demands. Each resident is recognisable
across cases by their BSN, so a returning resident is throttled by the survey policy like a real
one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from schemas.common import Channel, PartyRole, is_valid_bsn

STREETS = (
    "Dorpsstraat", "Kerkweg", "Stationsweg", "Molenweg", "Duinweg", "Zeeweg", "Schoolstraat",
    "Julianalaan", "Beatrixstraat", "Eikenlaan", "Kastanjelaan", "Torenstraat", "Zandweg",
)  # fmt: skip

# The four-digit postal code areas of the demo municipalities (elsewhere: a plausible one).
POSTAL_AREAS: dict[str, tuple[int, int, str]] = {
    "GM0373": (1861, 1865, "Bergen"),
    "GM0450": (1911, 1911, "Uitgeest"),
    "GM0383": (1901, 1902, "Castricum"),
    "GM0399": (1851, 1852, "Heiloo"),
}


def fake_bsn(rng: random.Random) -> str:
    """A 9-digit number starting with 99 that passes the elfproef (weights 9..2 and -1)."""
    while True:
        digits = [9, 9, *(rng.randrange(10) for _ in range(6))]
        total = sum(d * w for d, w in zip(digits, (9, 8, 7, 6, 5, 4, 3, 2), strict=True))
        check = total % 11
        if check < 10:
            bsn = "".join(map(str, digits)) + str(check)
            assert is_valid_bsn(bsn)
            return bsn


@dataclass(frozen=True, slots=True)
class FakeResident:
    number: int
    municipality: str
    bsn: str
    email: str | None
    phone: str | None
    street: str
    house_number: int
    postal_code: str
    city: str
    survey_consent: bool | None
    language: str
    party_role: PartyRole

    def as_posted_by(self, channel: Channel) -> dict[str, Any] | None:
        """What a channel system knows of this resident (a `schemas.resident.ResidentIn`).

        The phone platform has the caller's number and, from the customer system, often the
        BSN; the counter checks an ID; a letter has a postal address; social media and chat
        identify nobody.
        """
        if channel in (Channel.SOCIAL_MEDIA, Channel.CHAT):
            return None
        posted: dict[str, Any] = {"language": self.language}
        if self.survey_consent is not None:
            posted["survey_consent"] = self.survey_consent
        address = {
            "street": f"{self.street} {self.house_number}",
            "postal_code": self.postal_code,
            "city": self.city,
        }
        if channel in (Channel.COUNTER, Channel.LETTER, Channel.WEBFORM, Channel.PHONE):
            posted["bsn"] = self.bsn
        else:
            posted["identifier"] = f"sim-{self.municipality.lower()}-{self.number}"
        if self.email and channel != Channel.LETTER:
            posted["email"] = self.email
        if self.phone and channel in (Channel.PHONE, Channel.COUNTER, Channel.PUBLIC_SPACE_REPORT):
            posted["phone"] = self.phone
        if channel in (Channel.LETTER, Channel.COUNTER):
            posted["postal_address"] = address
        if not (posted.get("email") or posted.get("phone") or posted.get("bsn")):
            posted["identifier"] = f"sim-{self.municipality.lower()}-{self.number}"
        return posted


class ResidentPool:
    """The residents of one municipality the simulation has met so far; some come back."""

    def __init__(self, municipality: str, rng: random.Random, run_tag: str) -> None:
        self.municipality = municipality
        self.rng = rng
        self.run_tag = run_tag
        self.known: list[FakeResident] = []

    def next(self, *, returning: float, consent_yes: float, consent_no: float,
             english: float, ondernemer: float) -> FakeResident:  # fmt: skip
        if self.known and self.rng.random() < returning:
            return self.rng.choice(self.known)
        rng = self.rng
        number = len(self.known) + 1
        low, high, city = POSTAL_AREAS.get(self.municipality, (1000, 9999, "Middelburg"))
        letters = "".join(rng.choice("ABCDEGHJKLMNPRSTVWXZ") for _ in range(2))
        draw = rng.random()
        consent = True if draw < consent_yes else False if draw < consent_yes + consent_no else None
        domain = "example.nl" if rng.random() < 0.7 else "example.org"
        resident = FakeResident(
            number=number,
            municipality=self.municipality,
            bsn=fake_bsn(rng),
            email=(
                f"inwoner.{self.municipality.lower()}.{self.run_tag}.{number}@{domain}"
                if rng.random() < 0.8
                else None
            ),
            phone=f"06-{rng.randrange(10_000_000, 99_999_999)}" if rng.random() < 0.75 else None,
            street=rng.choice(STREETS),
            house_number=rng.randrange(1, 180),
            postal_code=f"{rng.randint(low, high)} {letters}",
            city=city,
            survey_consent=consent,
            language="en" if rng.random() < english else "nl",
            party_role=PartyRole.ONDERNEMER if rng.random() < ondernemer else PartyRole.INWONER,
        )
        self.known.append(resident)
        return resident
