"""OpenPGP v4 key fingerprints of card keys, computed as the OpenPGP spec and GnuPG do.

A v4 fingerprint (RFC 4880 §12.2) is the SHA-1 of ``0x99 || two-byte length || the public-key
packet body``, where the body of an ECC key (RFC 6637 §9, RFC 4880bis for EdDSA) is::

    04 || creation time (4 bytes) || algorithm id || OID length || curve OID || MPI(point)

The point of an EdDSA key carries the native-format prefix ``40``.  The card stores this
fingerprint in DO C7 and its creation time in DO CE (written by
:meth:`coldvault.cards.openpgp.OpenPgpSession.generate_key`, as gpg does), so gpg and
openpgp-tool show the same key.  SHA-1 is what the format prescribes; the fingerprint names a
key and is never trusted as a security boundary here.
"""

from __future__ import annotations

import hashlib

from coldvault.cards.algorithms import CardAlgorithm

PUBLIC_KEY_VERSION = 4
EDDSA_NATIVE_PREFIX = b"\x40"


def mpi(value: bytes) -> bytes:
    """An OpenPGP multiprecision integer: bit count (2 bytes) || the value without leading zeros."""
    stripped = value.lstrip(b"\x00")
    bits = len(stripped) * 8 - (8 - stripped[0].bit_length()) if stripped else 0
    return bits.to_bytes(2, "big") + stripped


def public_key_packet_body(algorithm: CardAlgorithm, point: bytes, created: int) -> bytes:
    """The v4 public-key packet body of a card key (``point`` as the card exports it)."""
    if not 0 <= created < 2**32:
        raise ValueError("the creation time must fit in 32 bits")
    if algorithm is CardAlgorithm.ED25519:
        point = EDDSA_NATIVE_PREFIX + point
    oid = algorithm.oid
    return (
        bytes([PUBLIC_KEY_VERSION])
        + created.to_bytes(4, "big")
        + bytes([algorithm.openpgp_algo, len(oid)])
        + oid
        + mpi(point)
    )


def openpgp_v4_fingerprint(algorithm: CardAlgorithm, point: bytes, created: int) -> bytes:
    """The 20-byte v4 fingerprint of the card key ``point`` created at ``created`` (unix s)."""
    body = public_key_packet_body(algorithm, point, created)
    return hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).digest()  # noqa: S324
