"""Verification of signatures made by approvers' OpenPGP cards (PSO:COMPUTE DIGITAL SIGNATURE).

One function, :func:`verify_card_signature`, with the behaviour the OpenPGP card module
(``coldvault.openpgp``) also promises, so the quorum code has exactly one verifier:

* ``"ed25519"``: Ed25519 (RFC 8032) over ``data`` itself; 32-byte public key, 64-byte signature.
* ``"nistp256"`` and ``"secp256k1"``: ECDSA over ``SHA-256(data)``; the signature is the card's
  raw 64-byte ``r || s``; the public key is a SEC1 point (65 bytes uncompressed, as the card
  exports it, or 33 bytes compressed). High-S signatures are accepted: cards do not
  normalise S, and the approval layer never keys anything on signature bytes (see
  docs/quorum.md, "Replay").

The function never raises for untrusted input: a malformed key or signature is simply
``False``. An unknown algorithm name is a programmer/configuration mistake (``ValueError``).
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

ED25519 = "ed25519"
NISTP256 = "nistp256"
SECP256K1 = "secp256k1"

#: Card key algorithms the roster accepts, in the names GnuPG uses for them.
CARD_ALGORITHMS: tuple[str, ...] = (ED25519, NISTP256, SECP256K1)

_CURVES: dict[str, ec.EllipticCurve] = {NISTP256: ec.SECP256R1(), SECP256K1: ec.SECP256K1()}


def public_key_length_ok(algorithm: str, public_key: bytes) -> bool:
    """Whether ``public_key`` has a plausible encoding for ``algorithm`` (used at roster load)."""
    if algorithm == ED25519:
        return len(public_key) == 32
    if algorithm in _CURVES:
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[algorithm], public_key)
        except ValueError:
            return False
        return True
    raise ValueError(f"unknown card algorithm {algorithm!r}; expected one of {CARD_ALGORITHMS}")


def verify_card_signature(algorithm: str, public_key: bytes, data: bytes, signature: bytes) -> bool:
    """Return whether ``signature`` is the card's valid signature of ``data``."""
    if algorithm == ED25519:
        if len(public_key) != 32 or len(signature) != 64:
            return False
        try:
            VerifyKey(public_key).verify(data, signature)
        except (BadSignatureError, ValueError):
            return False
        return True
    curve = _CURVES.get(algorithm)
    if curve is None:
        raise ValueError(f"unknown card algorithm {algorithm!r}; expected one of {CARD_ALGORITHMS}")
    if len(signature) != 64:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if r == 0 or s == 0:
        return False
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(curve, public_key)
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def card_input(algorithm: str, data: bytes) -> bytes:
    """What the front end sends to the card's PSO:CDS so that the result verifies over ``data``:
    the data itself for Ed25519, ``SHA-256(data)`` for the ECDSA curves."""
    if algorithm == ED25519:
        return data
    if algorithm in _CURVES:
        return hashlib.sha256(data).digest()
    raise ValueError(f"unknown card algorithm {algorithm!r}; expected one of {CARD_ALGORITHMS}")
