"""Signed survey links: which survey, until when, and proof that feedback issued the link.

A token is `<payload>.<signature>`, both base64url without padding: the payload is the survey's
UUID (16 bytes) and the expiry (Unix seconds, 4 bytes); the signature is HMAC-SHA256 over a
purpose label and the payload, cut to 16 bytes. Anyone changing a character gets a token that
does not verify (a plain 404). Single use is not the token's job: the survey's state in the
database decides whether it was answered already.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

_PURPOSE = b"servicepuls survey link v1\x1f"
_FORM_PURPOSE = b"servicepuls survey form v1\x1f"
_SIGNATURE_BYTES = 16


class ForgedLink(ValueError):
    """The token was not issued by feedback (or was altered)."""


@dataclass(frozen=True)
class LinkClaim:
    survey_id: uuid.UUID
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if not text or len(text) > 64 or not all(c.isalnum() or c in "-_" for c in text):
        raise ForgedLink("malformed token")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ForgedLink("malformed token") from exc


def _mac(key: bytes, purpose: bytes, message: bytes) -> bytes:
    return hmac.new(key, purpose + message, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def sign_link(key: bytes, survey_id: uuid.UUID, expires_at: datetime) -> str:
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must carry a timezone")
    seconds = int(expires_at.timestamp())
    if not 0 < seconds < 2**32:
        raise ValueError("expiry out of range")
    payload = survey_id.bytes + struct.pack(">I", seconds)
    return f"{_b64(payload)}.{_b64(_mac(key, _PURPOSE, payload))}"


def verify_link(key: bytes, token: str) -> LinkClaim:
    """The claim of a genuine token; raises `ForgedLink` for anything else. Expiry is checked by
    the caller (an expired link is genuine: it gets a friendly 410, not a 404)."""
    payload_text, dot, signature_text = token.partition(".")
    if not dot:
        raise ForgedLink("malformed token")
    payload, signature = _unb64(payload_text), _unb64(signature_text)
    # Re-encoding must give the same text: no second spelling of one token.
    if len(payload) != 20 or _b64(payload) != payload_text or _b64(signature) != signature_text:
        raise ForgedLink("malformed token")
    if not hmac.compare_digest(signature, _mac(key, _PURPOSE, payload)):
        raise ForgedLink("bad signature")
    (seconds,) = struct.unpack(">I", payload[16:])
    return LinkClaim(uuid.UUID(bytes=payload[:16]), datetime.fromtimestamp(seconds, UTC))


def form_token(key: bytes, link_token: str) -> str:
    """The hidden field a survey form must post back (CSRF): only a page feedback rendered for
    this link carries it; another site cannot compute it."""
    return _b64(_mac(key, _FORM_PURPOSE, link_token.encode()))


def form_token_valid(key: bytes, link_token: str, posted: str) -> bool:
    return hmac.compare_digest(form_token(key, link_token).encode(), posted.encode())
