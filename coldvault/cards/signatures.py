"""The one check of a card signature: is ``signature`` this card key's signature of ``data``?

Every caller uses :func:`verify_card_signature` (approval tallies, signed configuration,
transcript witnesses, tests of the card itself).  Its contract:

* ``data`` is the bytes being *approved* (a token, a config approval token, a transcript's
  close message), never the card input: :func:`card_input` is what the card is given to
  sign (its PSO:COMPUTE DIGITAL SIGNATURE input) so that the result verifies over ``data``:

  - ``ed25519``: ``data`` itself; the card returns ``R || S`` (RFC 8032), 32-byte key;
  - ``nistp256`` / ``secp256k1``: ``SHA-256(data)``; the card returns ECDSA ``r || s``
    (2 x 32 bytes); the key is a SEC1 point (65 bytes uncompressed as the card exports it,
    or 33 compressed).

* ``algorithm`` is a :class:`~coldvault.cards.algorithms.CardAlgorithm` or its name.
* It returns ``True`` or ``False`` and never raises for untrusted input: a signature of the
  wrong length, a public key that does not decode, an out-of-range ``r`` or ``s`` are all
  ``False``.  Only an unknown algorithm name raises ``ValueError`` (a programming or
  configuration mistake; rosters refuse such names when they are loaded).
* High-S ECDSA signatures are accepted: cards do not normalise S.  Nothing may therefore
  key on signature bytes (approval and token ids are computed from the token and the card
  serial, docs/quorum.md "Replay").
"""

from __future__ import annotations

import hashlib

import nacl.exceptions
import nacl.signing
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from coldvault.cards.algorithms import CardAlgorithm

#: Card key algorithms the roster accepts, in the names GnuPG uses for them.
CARD_ALGORITHMS: tuple[str, ...] = tuple(a.value for a in CardAlgorithm)

SIGNATURE_LENGTH = 64
ED25519_KEY_LENGTH = 32

_CURVES: dict[CardAlgorithm, ec.EllipticCurve] = {
    CardAlgorithm.NIST_P256: ec.SECP256R1(),
    CardAlgorithm.SECP256K1: ec.SECP256K1(),
}


def _algorithm(name: str) -> CardAlgorithm:
    try:
        return CardAlgorithm(name)
    except ValueError:
        raise ValueError(
            f"unknown card algorithm {name!r}; expected one of {CARD_ALGORITHMS}"
        ) from None


def _ec_key(algorithm: CardAlgorithm, public_key: bytes) -> ec.EllipticCurvePublicKey | None:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[algorithm], public_key)
    except ValueError:
        return None


def public_key_length_ok(algorithm: str, public_key: bytes) -> bool:
    """Whether ``public_key`` is a well-formed key for ``algorithm`` (checked at roster load):
    32 bytes for Ed25519, a point on the curve for ECDSA."""
    algo = _algorithm(algorithm)
    if algo is CardAlgorithm.ED25519:
        return len(public_key) == ED25519_KEY_LENGTH
    return _ec_key(algo, public_key) is not None


def card_input(algorithm: str, data: bytes) -> bytes:
    """What the card's PSO:CDS is given so that its signature verifies over ``data``:
    the data itself for Ed25519, ``SHA-256(data)`` for the ECDSA curves."""
    if _algorithm(algorithm) is CardAlgorithm.ED25519:
        return data
    return hashlib.sha256(data).digest()


def verify_card_signature(algorithm: str, public_key: bytes, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the card key ``public_key``'s signature of ``data`` (see the
    module docstring for the whole contract)."""
    algo = _algorithm(algorithm)
    if len(signature) != SIGNATURE_LENGTH:
        return False
    if algo is CardAlgorithm.ED25519:
        if len(public_key) != ED25519_KEY_LENGTH:
            return False
        try:
            nacl.signing.VerifyKey(public_key).verify(data, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
            return False
        return True
    key = _ec_key(algo, public_key)
    if key is None:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if r == 0 or s == 0:
        return False
    try:
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
