"""Contact details sealed for the feedback service, and pseudonymous resident keys.

Intake holds only the feedback service's public key: it can seal but never open. The sealed box is
X25519 key agreement with an ephemeral key, HKDF-SHA256 and ChaCha20-Poly1305, so each envelope
is independent and tamper-evident. The resident's pseudonym is an HMAC of their identifier under
a key intake and feedback share, so throttling and opt-out need no personal data.
"""

from __future__ import annotations

import base64
import functools
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"servicepuls sealed contact v1"


class SealError(ValueError):
    """A sealed envelope that cannot be opened: wrong key, truncated or altered."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=_INFO
    ).derive(shared)


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class Sealer:
    """Seals for one recipient. The ephemeral key pair is reused for up to `rotate_after`
    envelopes (each with its own random 96-bit nonce, far below ChaCha20-Poly1305's limits), so a
    busy intake does one key agreement per thousands of residents instead of one per event. Every
    envelope still carries its ephemeral public key and opens on its own."""

    def __init__(self, public_key: str, rotate_after: int = 10_000) -> None:
        self._recipient = X25519PublicKey.from_public_bytes(_unb64(public_key))
        self._recipient_raw = _raw_public(self._recipient)
        self._rotate_after = rotate_after
        self._used = rotate_after

    def _rotate(self) -> None:
        ephemeral = X25519PrivateKey.generate()
        self._ephemeral_raw = _raw_public(ephemeral.public_key())
        shared = ephemeral.exchange(self._recipient)
        self._cipher = ChaCha20Poly1305(_key(shared, self._ephemeral_raw, self._recipient_raw))
        self._used = 0

    def seal(self, plaintext: bytes) -> str:
        if self._used >= self._rotate_after:
            self._rotate()
        self._used += 1
        nonce = os.urandom(12)
        return _b64(self._ephemeral_raw + nonce + self._cipher.encrypt(nonce, plaintext, None))


def seal(public_key: str, plaintext: bytes) -> str:
    """Seal one envelope with a fresh ephemeral key."""
    return Sealer(public_key, rotate_after=1).seal(plaintext)


def open_sealed(private_key: str, sealed: str) -> bytes:
    try:
        raw = _unb64(sealed)
        ephemeral_raw, nonce, ciphertext = raw[:32], raw[32:44], raw[44:]
        recipient = X25519PrivateKey.from_private_bytes(_unb64(private_key))
        shared = recipient.exchange(X25519PublicKey.from_public_bytes(ephemeral_raw))
        key = _key(shared, ephemeral_raw, _raw_public(recipient.public_key()))
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, None)
    except Exception as exc:  # any malformed input is the same failure to the caller
        raise SealError("sealed contact details cannot be opened") from exc


def pseudonym(key: str, identifier: str) -> str:
    """Stable pseudonymous key of a resident: HMAC-SHA256 of the normalised identifier."""
    normalised = "".join(identifier.split()).lower()
    return hmac.digest(_key_bytes(key), normalised.encode(), "sha256").hex()


@functools.lru_cache(maxsize=16)
def _key_bytes(key: str) -> bytes:
    return _unb64(key)


@dataclass(frozen=True)
class Keys:
    sealing_public: str
    sealing_private: str | None
    pseudonym: str


def generate_keys() -> Keys:
    private = X25519PrivateKey.generate()
    return Keys(
        sealing_public=_b64(_raw_public(private.public_key())),
        sealing_private=_b64(
            private.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        ),
        pseudonym=_b64(secrets.token_bytes(32)),
    )


def load_keys(state_dir: Path) -> Keys:
    """Keys from the environment (production), else from `state_dir/keys` (development: created
    on first use, so a local stack works without set-up)."""
    env = os.environ
    if env.get("SERVICEPULS_SEALING_PUBLIC_KEY") and env.get("SERVICEPULS_PSEUDONYM_KEY"):
        return Keys(
            sealing_public=env["SERVICEPULS_SEALING_PUBLIC_KEY"],
            sealing_private=env.get("SERVICEPULS_SEALING_PRIVATE_KEY"),
            pseudonym=env["SERVICEPULS_PSEUDONYM_KEY"],
        )
    folder = state_dir / "keys"
    files = {name: folder / name for name in ("sealing.pub", "sealing.key", "pseudonym.key")}
    if not all(path.exists() for path in files.values()):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = generate_keys()
        for name, value in zip(
            files, (fresh.sealing_public, fresh.sealing_private, fresh.pseudonym), strict=True
        ):
            tmp = files[name].with_suffix(".tmp")
            tmp.write_text(value or "")
            tmp.chmod(0o600)
            if not files[name].exists():  # another process may have won the race
                tmp.replace(files[name])
            else:
                tmp.unlink()
    return Keys(
        sealing_public=files["sealing.pub"].read_text().strip(),
        sealing_private=files["sealing.key"].read_text().strip(),
        pseudonym=files["pseudonym.key"].read_text().strip(),
    )
