"""The keystore seam: what the appliance and the ceremonies need from an HSM.

Two protocols, one per kind of caller:

* :class:`Signer` -- what the signing appliance needs: find a key, sign with it.
* :class:`KeyAdmin` -- what the ceremonies need: list, import, generate and delete keys,
  the token's RNG and its identity (:class:`TokenInfo`).

:class:`Keystore` is both; the PKCS#11 implementation
(:class:`coldvault.backends.pkcs11.keystore.Pkcs11Keystore`) is one.  This module defines
only the interfaces and the value types, so domain code never imports a hardware library.

A signer's result is a :data:`Signature`: an
:class:`~coldvault.crypto.secp256k1.EcdsaSignature` (low-S, verified on the host) or an
:class:`~coldvault.crypto.ed25519.Ed25519Signature` (verified on the host).

"Not found" is exactly :class:`KeyNotFound`.  Every other failure of a look-up (a dead
session, a locked token, a key of an unsupported type) is a different error and must
propagate: :func:`held_key` is the one place that turns "not found" into ``None``.

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

from coldvault.crypto.ed25519 import Ed25519Signature
from coldvault.crypto.paths import path_to_str
from coldvault.crypto.secp256k1 import EcdsaSignature
from coldvault.errors import HardwareError

AUDIT_KEY_ID = b"audit"
IDENTITY_KEY_ID = b"identity"

#: What a :class:`Signer` returns: one signature of either algorithm.
Signature = EcdsaSignature | Ed25519Signature


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
class TokenInfo:
    """Public facts about one token, for transcripts, status screens and audits."""

    label: str
    manufacturer: str
    model: str
    serial: str
    #: a software emulation (e.g. SoftHSM) whose keys no hardware protects
    emulated: bool = False


class KeyNotFound(HardwareError):
    """The token holds no private key with the requested id (and nothing else went wrong)."""

    code = "key-not-found"

    def __init__(self, token_label: str, key_id: bytes) -> None:
        super().__init__(f"HSM token {token_label!r} holds no key with id {key_id.hex()!r}.")
        self.token_label = token_label
        self.key_id = key_id.hex()


class ToSign(Protocol):
    """One signature to make (``coldvault.requests.base.SignJob`` is one)."""

    @property
    def key_id(self) -> bytes: ...

    @property
    def algorithm(self) -> KeyAlgorithm: ...

    #: secp256k1: the 32-byte digest; Ed25519: the full message.
    @property
    def payload(self) -> bytes: ...


class Signer(Protocol):
    """What the signing appliance needs from one logged-in token."""

    def find_key(self, key_id: bytes) -> KeyInfo:
        """The key ``key_id``; raise :class:`KeyNotFound` when the token does not hold it,
        and any other :class:`~coldvault.errors.ColdvaultError` when the look-up failed."""
        ...

    def sign_ecdsa(self, key_id: bytes, digest: bytes) -> EcdsaSignature:
        """Sign a 32-byte digest with a secp256k1 key: low-S, verified on the host."""
        ...

    def sign_ed25519(self, key_id: bytes, message: bytes) -> Ed25519Signature:
        """Sign a message with an Ed25519 key, verified on the host."""
        ...

    def sign_all(self, jobs: Sequence[ToSign]) -> list[Signature]:
        """One signature per job, in order, each made and checked as :meth:`sign_ecdsa` or
        :meth:`sign_ed25519` makes it; the first failure is raised and nothing returned."""
        ...


class KeyAdmin(Protocol):
    """What the key ceremonies need from one logged-in token (never the signing appliance)."""

    def list_keys(self) -> list[KeyInfo]: ...

    def find_key(self, key_id: bytes) -> KeyInfo:
        """As :meth:`Signer.find_key`."""
        ...

    def import_private_key(
        self, algorithm: KeyAlgorithm, private_key: bytes | bytearray, key_id: bytes, label: str
    ) -> KeyInfo:
        """Import as sensitive, non-extractable; the caller wipes ``private_key`` after."""
        ...

    def generate_key(self, algorithm: KeyAlgorithm, key_id: bytes, label: str) -> KeyInfo: ...

    def delete_key(self, key_id: bytes) -> None:
        """Destroy the key pair ``key_id`` (ceremonies only, under quorum)."""
        ...

    def random(self, length: int) -> bytes:
        """Bytes from the HSM's RNG."""
        ...

    @property
    def token_info(self) -> TokenInfo:
        """Label, manufacturer, model and serial of the token (for transcripts)."""
        ...


class Keystore(Signer, KeyAdmin, Protocol):
    """A token that is both: one logged-in HSM token. Implementations are not thread-safe;
    use one per process."""


def held_key(signer: Signer, key_id: bytes) -> KeyInfo | None:
    """The key ``key_id``, or ``None`` when the token does not hold it.

    Only :class:`KeyNotFound` means "not held"; any other failure (a closed or logged-out
    session, a removed token, an unsupported key under that id) propagates, so it is
    reported as what it is and never as a missing key.
    """
    try:
        return signer.find_key(key_id)
    except KeyNotFound:
        return None


def derived_key_id(master_fingerprint: bytes, path: Sequence[int]) -> bytes:
    """``CKA_ID`` of a key derived from a seed: see the module docstring."""
    if len(master_fingerprint) != 4:
        raise ValueError("master fingerprint must be 4 bytes")
    return b"K" + master_fingerprint + b"".join(i.to_bytes(4, "big") for i in path)


def derived_key_label(master_fingerprint: bytes, path: Sequence[int]) -> str:
    """``CKA_LABEL`` of a derived key, e.g. ``"d34db33f/84h/0h/0h/0/5"``."""
    return master_fingerprint.hex() + "/" + path_to_str(path, prefix="")
