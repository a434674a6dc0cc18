"""Erasure on request (AVG art. 17): from the identifier staff hold to the pseudonyms feedback
knows the resident by.

Intake makes a resident's pseudonym from the strongest identifier the channel system sent (BSN,
then its own identifier, then e-mail, then phone), as sent, with white space removed and in lower
case (`services.common.sealing.pseudonym`). Staff may hold another identifier or another spelling,
so every identifier they give is turned into a pseudonym, and a phone number into the spellings a
channel system may have used (0, +31 or 0031 in front; without or with one hyphen). The
identifiers themselves are never stored or logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.common.sealing import pseudonym

_PHONE_PREFIX = re.compile(r"^(\+31|0031|0)")


def phone_spellings(phone: str) -> set[str]:
    """The ways a channel system may have written this Dutch number (white space is ignored by
    the pseudonym anyway)."""
    compact = "".join(phone.split())
    spellings = {compact}
    match = _PHONE_PREFIX.match(compact)
    if match is None:
        return spellings
    national = compact[match.end() :].replace("-", "")
    for prefix in ("0", "+31", "0031"):
        spellings.add(prefix + national)
        spellings.add(prefix + "-" + national)
        for cut in range(1, len(national)):
            spellings.add(f"{prefix}{national[:cut]}-{national[cut:]}")
    return spellings


@dataclass(frozen=True)
class ResidentRefs:
    # Every pseudonym the identifiers may have made: what is searched and erased.
    searched: list[str]
    # The pseudonyms of the identifiers as given: what an opt-out is remembered under when the
    # resident had no record yet.
    as_given: list[str]


def resident_refs(
    pseudonym_key: str,
    *,
    bsn: str | None = None,
    identifier: str | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> ResidentRefs:
    """The pseudonyms the given identifiers may have made, as intake makes them."""
    given = [v for v in (bsn, identifier, email, phone) if v]
    values = set(given) | (phone_spellings(phone) if phone else set())
    return ResidentRefs(
        searched=sorted({pseudonym(pseudonym_key, v) for v in values}),
        as_given=sorted({pseudonym(pseudonym_key, v) for v in given}),
    )
