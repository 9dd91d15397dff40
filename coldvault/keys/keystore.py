"""The keystore seam: what the appliance and ceremonies need from an HSM.

The PKCS#11 implementation lives in :mod:`coldvault.backends.pkcs11.keystore`; this module
only defines the interface and the value types, so domain code never imports a hardware
library.

Key identifiers (``CKA_ID``) follow one documented scheme (docs/keystore.md):

* derived signing keys: ``b"K" + master fingerprint (4 bytes) + each path element as a
  big-endian uint32 (hardened bit included)``; label ``"<fp hex>/<path with h>"``, e.g.
  ``"d34db33f/84h/0h/0h/0/5"`` (see :func:`derived_key_id`).
* appliance keys: ``b"audit"`` (audit-seal key, secp256k1) and ``b"identity"``
  (appliance identity, Ed25519).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

HARDENED = 0x8000_0000

AUDIT_KEY_ID = b"audit"
IDENTITY_KEY_ID = b"identity"


class KeyAlgorithm(enum.StrEnum):
    """Key types the appliance signs with."""

    SECP256K1 = "secp256k1"
    ED25519 = "ed25519"


@dataclass(frozen=True)
class KeyInfo:
    """Public description of one HSM-resident private key."""

    key_id: bytes
    label: str
    algorithm: KeyAlgorithm
    #: 33-byte compressed SEC1 point for secp256k1, 32 bytes for Ed25519.
    public_key: bytes
    sensitive: bool = True
    extractable: bool = False


@dataclass(frozen=True)
class EcdsaSignature:
    """A low-S secp256k1 ECDSA signature, already verified on the host."""

    r: int
    s: int

    @property
    def compact(self) -> bytes:
        """64 bytes ``r || s``."""
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big")

    @property
    def der(self) -> bytes:
        """Strict DER encoding (BIP-66)."""

        def _int(v: int) -> bytes:
            raw = v.to_bytes(32, "big").lstrip(b"\x00") or b"\x00"
            if raw[0] & 0x80:
                raw = b"\x00" + raw
            return b"\x02" + bytes([len(raw)]) + raw

        body = _int(self.r) + _int(self.s)
        return b"\x30" + bytes([len(body)]) + body


class Keystore(Protocol):
    """One logged-in HSM token. Implementations are not thread-safe; use one per process."""

    def list_keys(self) -> list[KeyInfo]: ...

    def find_key(self, key_id: bytes) -> KeyInfo:
        """Raise :class:`coldvault.errors.HardwareError` subclass ``KeyNotFound`` if absent."""
        ...

    def import_private_key(
        self, algorithm: KeyAlgorithm, private_key: bytes | bytearray, key_id: bytes, label: str
    ) -> KeyInfo:
        """Import as sensitive, non-extractable; the caller wipes ``private_key`` after."""
        ...

    def generate_key(self, algorithm: KeyAlgorithm, key_id: bytes, label: str) -> KeyInfo: ...

    def sign_ecdsa(self, key_id: bytes, digest: bytes) -> EcdsaSignature:
        """Sign a 32-byte digest with a secp256k1 key: low-S, verified on the host."""
        ...

    def sign_ed25519(self, key_id: bytes, message: bytes) -> bytes:
        """Sign a message with an Ed25519 key: 64 bytes, verified on the host."""
        ...

    def random(self, length: int) -> bytes:
        """Bytes from the HSM's RNG."""
        ...

    def delete_key(self, key_id: bytes) -> None:
        """Destroy the key pair ``key_id`` (ceremonies only, under quorum)."""
        ...

    @property
    def token_info(self) -> object:
        """Label, manufacturer, model and serial of the token (for transcripts)."""
        ...


def derived_key_id(master_fingerprint: bytes, path: Sequence[int]) -> bytes:
    """``CKA_ID`` of a key derived from a seed: see the module docstring."""
    if len(master_fingerprint) != 4:
        raise ValueError("master fingerprint must be 4 bytes")
    return b"K" + master_fingerprint + b"".join(i.to_bytes(4, "big") for i in path)


def path_to_str(path: Sequence[int], *, prefix: str = "m") -> str:
    """``[84|H, 0|H, 0|H, 0, 5]`` -> ``"m/84h/0h/0h/0/5"``."""
    parts = [prefix] if prefix else []
    for i in path:
        parts.append(f"{i & ~HARDENED}h" if i & HARDENED else str(i))
    return "/".join(parts)


def derived_key_label(master_fingerprint: bytes, path: Sequence[int]) -> str:
    """``CKA_LABEL`` of a derived key, e.g. ``"d34db33f/84h/0h/0h/0/5"``."""
    return master_fingerprint.hex() + "/" + path_to_str(path, prefix="")
