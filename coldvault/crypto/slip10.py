"""SLIP-10 derivation for secp256k1, nist256p1, ed25519 and curve25519.

Where the work is done:

* secp256k1 and ed25519: bip-utils (``Bip32Slip10Secp256k1``, ``Bip32Slip10Ed25519``).
* nist256p1: our own few lines below, because bip-utils 2.12.3 skips SLIP-10's retry rule
  for child keys (when ``IL >= n`` or the child key is 0, SLIP-10 re-hashes
  ``0x01 || IR || index``; bip-utils does not, and gets the official ``derivation_retry``
  vector wrong).  The point maths is ``cryptography``'s.
* curve25519: not in bip-utils; hardened-only HMAC chain as in SLIP-10, public key by
  ``cryptography``'s X25519.

ed25519 and curve25519 derive hardened children only; asking for a normal child raises
:class:`UnsupportedDerivation`.

Secret hygiene: :class:`Slip10Key.private_key` is a ``bytearray`` the caller wipes with
:meth:`Slip10Key.wipe`.  Intermediate HMAC outputs, Python ``int`` scalars and bip-utils'
internal key objects are immutable copies that cannot be wiped (see
:mod:`coldvault.crypto.memory`).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field

from bip_utils import Bip32Slip10Ed25519, Bip32Slip10Secp256k1, Hash160
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from coldvault.crypto.errors import CryptoInputError
from coldvault.crypto.memory import wipe
from coldvault.crypto.paths import HARDENED

NIST256P1_N = 0xFFFFFFFF_00000000_FFFFFFFF_FFFFFFFF_BCE6FAAD_A7179E84_F3B9CAC2_FC632551


class Curve(enum.StrEnum):
    SECP256K1 = "secp256k1"
    NIST256P1 = "nist256p1"
    ED25519 = "ed25519"
    CURVE25519 = "curve25519"

    @property
    def hardened_only(self) -> bool:
        return self in (Curve.ED25519, Curve.CURVE25519)


class UnsupportedDerivation(CryptoInputError):
    """The path asks for a derivation the curve does not define (normal child on ed25519)."""

    code = "unsupported-derivation"

    def __init__(self, curve: Curve, index: int) -> None:
        super().__init__(
            f"SLIP-10 {curve} derives hardened children only; index {index} is not hardened."
        )
        self.curve = str(curve)
        self.index = index


@dataclass(frozen=True)
class Slip10Key:
    """One derived node. ``private_key`` is secret: wipe it with :meth:`wipe` after use."""

    curve: Curve
    depth: int
    #: fingerprint of the parent (``00000000`` for the master)
    parent_fingerprint: bytes
    child_index: int
    chain_code: bytes
    #: 33 bytes: SEC1 compressed (ECDSA curves) or ``0x00 || 32 bytes`` (25519 curves)
    public_key: bytes
    private_key: bytearray = field(repr=False, compare=False)

    @property
    def fingerprint(self) -> bytes:
        return bytes(Hash160.QuickDigest(self.public_key)[:4])

    @property
    def raw_public_key(self) -> bytes:
        """The key as the chain uses it: 33-byte SEC1, or 32 bytes for ed25519/curve25519."""
        return self.public_key[1:] if self.curve.hardened_only else self.public_key

    def wipe(self) -> None:
        wipe(self.private_key)


def derive(curve: Curve, seed: bytes | bytearray, path: Sequence[int]) -> Slip10Key:
    """Derive the node at ``path`` (indices with hardened bit) from ``seed``."""
    curve = Curve(curve)
    if not 16 <= len(seed) <= 64:
        raise ValueError("a SLIP-10 seed must be 16 to 64 bytes")
    for index in path:
        if not 0 <= index <= 0xFFFF_FFFF:
            raise ValueError(f"child index {index} out of range")
        if curve.hardened_only and not index & HARDENED:
            raise UnsupportedDerivation(curve, index)
    if curve is Curve.NIST256P1:
        return _derive_nist256p1(seed, path)
    if curve is Curve.CURVE25519:
        return _derive_curve25519(seed, path)
    return _derive_bip_utils(curve, seed, path)


# -- bip-utils curves ----------------------------------------------------------------------
def _derive_bip_utils(curve: Curve, seed: bytes | bytearray, path: Sequence[int]) -> Slip10Key:
    cls = Bip32Slip10Secp256k1 if curve is Curve.SECP256K1 else Bip32Slip10Ed25519
    node = cls.FromSeed(bytes(seed))
    for index in path:
        node = node.ChildKey(index)
    return Slip10Key(
        curve=curve,
        depth=int(node.Depth().ToInt()),
        parent_fingerprint=bytes(node.ParentFingerPrint().ToBytes()),
        child_index=int(node.Index().ToInt()),
        chain_code=bytes(node.ChainCode().ToBytes()),
        public_key=bytes(node.PublicKey().RawCompressed().ToBytes()),
        private_key=bytearray(node.PrivateKey().Raw().ToBytes()),
    )


# -- nist256p1 (with the SLIP-10 retry rules) -----------------------------------------------
def _nist_public(k: int) -> bytes:
    key = ec.derive_private_key(k, ec.SECP256R1())
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def _hmac(key: bytes, data: bytes | bytearray) -> bytes:
    return hmac.new(key, bytes(data), hashlib.sha512).digest()


def _derive_nist256p1(seed: bytes | bytearray, path: Sequence[int]) -> Slip10Key:
    i = _hmac(b"Nist256p1 seed", seed)
    while not 0 < int.from_bytes(i[:32], "big") < NIST256P1_N:
        i = _hmac(b"Nist256p1 seed", i)
    k, chain = int.from_bytes(i[:32], "big"), i[32:]
    parent_fp, depth, last = b"\x00" * 4, 0, 0
    for index in path:
        parent_pub = _nist_public(k)
        ser = index.to_bytes(4, "big")
        if index & HARDENED:
            data = b"\x00" + k.to_bytes(32, "big") + ser
        else:
            data = parent_pub + ser
        while True:
            i = _hmac(chain, data)
            il = int.from_bytes(i[:32], "big")
            child = (il + k) % NIST256P1_N
            if il < NIST256P1_N and child != 0:
                break
            data = b"\x01" + i[32:] + ser
        parent_fp = bytes(Hash160.QuickDigest(parent_pub)[:4])
        k, chain, depth, last = child, i[32:], depth + 1, index
    return Slip10Key(
        curve=Curve.NIST256P1,
        depth=depth,
        parent_fingerprint=parent_fp,
        child_index=last,
        chain_code=chain,
        public_key=_nist_public(k),
        private_key=bytearray(k.to_bytes(32, "big")),
    )


# -- curve25519 ----------------------------------------------------------------------------
def _x25519_public(k: bytes | bytearray) -> bytes:
    pub = x25519.X25519PrivateKey.from_private_bytes(bytes(k)).public_key()
    return b"\x00" + pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _derive_curve25519(seed: bytes | bytearray, path: Sequence[int]) -> Slip10Key:
    i = _hmac(b"curve25519 seed", seed)
    k, chain = bytearray(i[:32]), i[32:]
    parent_fp, depth, last = b"\x00" * 4, 0, 0
    for index in path:
        parent_fp = bytes(Hash160.QuickDigest(_x25519_public(k))[:4])
        data = bytearray(b"\x00") + k + index.to_bytes(4, "big")
        i = _hmac(chain, data)
        wipe(data)
        wipe(k)
        k, chain, depth, last = bytearray(i[:32]), i[32:], depth + 1, index
    return Slip10Key(
        curve=Curve.CURVE25519,
        depth=depth,
        parent_fingerprint=parent_fp,
        child_index=last,
        chain_code=chain,
        public_key=_x25519_public(k),
        private_key=k,
    )


__all__ = ["Curve", "Slip10Key", "UnsupportedDerivation", "derive"]
