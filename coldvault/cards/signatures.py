"""Verification of approvers' card signatures over the bytes they approve.

The roster and quorum code judge signatures *over the approved data* (a token's bytes);
what a card's PSO:CDS actually signs is :func:`card_input` of that data:

* ``"ed25519"``: the data itself (Ed25519, RFC 8032); 32-byte key, 64-byte signature.
* ``"nistp256"`` and ``"secp256k1"``: ``SHA-256(data)`` (ECDSA); the signature is the card's
  raw 64-byte ``r || s``; the public key a SEC1 point (65 bytes uncompressed as the card
  exports it, or 33 compressed). High-S signatures are accepted (cards do not normalise S);
  nothing keys on signature bytes (docs/quorum.md, "Replay").

There is one verifier: :func:`verify_card_signature` here adapts the card module's
``coldvault.cards.openpgp.verify_card_signature`` (which takes the card input) to "over the data".
It never raises for untrusted input: a malformed key or signature is ``False``. An unknown
algorithm name is a programmer/configuration mistake (``ValueError``).
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric import ec

from coldvault.cards.openpgp import CardAlgorithm
from coldvault.cards.openpgp import verify_card_signature as _verify_card_input

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
    if algorithm not in CARD_ALGORITHMS:
        raise ValueError(f"unknown card algorithm {algorithm!r}; expected one of {CARD_ALGORITHMS}")
    if len(signature) != 64:
        return False
    try:
        return _verify_card_input(
            CardAlgorithm(algorithm), public_key, card_input(algorithm, data), signature
        )
    except ValueError:  # a public key that does not decode
        return False


def card_input(algorithm: str, data: bytes) -> bytes:
    """What the front end sends to the card's PSO:CDS so that the result verifies over ``data``:
    the data itself for Ed25519, ``SHA-256(data)`` for the ECDSA curves."""
    if algorithm == ED25519:
        return data
    if algorithm in _CURVES:
        return hashlib.sha256(data).digest()
    raise ValueError(f"unknown card algorithm {algorithm!r}; expected one of {CARD_ALGORITHMS}")
