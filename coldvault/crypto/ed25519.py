"""Ed25519 signatures (RFC 8032) as a value: 64 bytes ``R || S``, checked with PyNaCl."""

from __future__ import annotations

from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

#: Length of an Ed25519 signature and of a public key.
SIGNATURE_LENGTH = 64
PUBLIC_KEY_LENGTH = 32


@dataclass(frozen=True)
class Ed25519Signature:
    """A 64-byte Ed25519 signature (the length is checked on construction)."""

    raw: bytes

    def __post_init__(self) -> None:
        if type(self.raw) is not bytes or len(self.raw) != SIGNATURE_LENGTH:
            raise ValueError("an Ed25519 signature is 64 bytes")

    def verify(self, public_key: bytes, message: bytes) -> bool:
        """Whether this signature verifies for the 32-byte ``public_key`` over ``message``."""
        if len(public_key) != PUBLIC_KEY_LENGTH:
            raise ValueError("an Ed25519 public key is 32 bytes")
        try:
            nacl.signing.VerifyKey(public_key).verify(message, self.raw)
        except (nacl.exceptions.BadSignatureError, ValueError):
            return False
        return True
