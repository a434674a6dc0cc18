"""The resident as a channel system describes them to intake, and the sealed contact details.

Channel systems POST `ResidentIn` (plaintext, over TLS, to intake only). Intake turns it into the
`ResidentRef` that travels on the topics: a pseudonym plus `ContactDetails` sealed for feedback.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from schemas.common import ContactMedium, Contract, Language, is_valid_bsn


class PostalAddress(Contract):
    name: str | None = Field(default=None, max_length=120)
    street: str = Field(min_length=1, max_length=120)
    postal_code: str = Field(pattern=r"^[1-9][0-9]{3} ?[A-Za-z]{2}$")
    city: str = Field(min_length=1, max_length=80)


class ContactDetails(Contract):
    """What only feedback may read: how to reach the resident for a survey."""

    email: str | None = None
    phone: str | None = None
    postal_address: PostalAddress | None = None


class ResidentIn(Contract):
    """A resident as posted to intake. `identifier` is what makes them the same resident across
    cases (BSN, KvK number or a channel system's own customer number); it is never stored."""

    identifier: str | None = Field(default=None, min_length=1, max_length=64)
    bsn: str | None = Field(default=None, description="Burgerservicenummer (9 digits, elfproef)")
    # A pragmatic check (one @, a dot in the domain, no spaces): whether mail arrives is learnt
    # by sending it, and the survey's delivery_failed event reports when it does not.
    email: str | None = Field(
        default=None, max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[A-Za-z]{2,}$"
    )
    phone: str | None = Field(default=None, pattern=r"^(\+31|0031|0)[1-9][0-9 \-]{8,12}$")
    postal_address: PostalAddress | None = None
    survey_consent: bool | None = None
    language: Language = Language.NL

    @field_validator("bsn")
    @classmethod
    def _bsn_passes_elfproef(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_bsn(value):
            raise ValueError("not a valid BSN (9 digits passing the elfproef)")
        return value

    @model_validator(mode="after")
    def _someone_to_recognise(self) -> ResidentIn:
        if not (self.identifier or self.bsn or self.email or self.phone):
            raise ValueError("give at least one of identifier, bsn, email or phone")
        return self

    def reachable_by(self) -> list[ContactMedium]:
        media = []
        if self.email:
            media.append(ContactMedium.EMAIL)
        if self.phone:
            media.append(ContactMedium.SMS)
            media.append(ContactMedium.PHONE)
        if self.postal_address:
            media.append(ContactMedium.LETTER)
        return media

    def recognised_by(self) -> str:
        """The identifier the pseudonym is computed from, strongest first."""
        return next(v for v in (self.bsn, self.identifier, self.email, self.phone) if v)

    def contact_details(self) -> ContactDetails:
        # Built without validating again: each value was validated as part of this model.
        return ContactDetails.model_construct(
            email=str(self.email) if self.email else None,
            phone=self.phone,
            postal_address=self.postal_address,
        )
