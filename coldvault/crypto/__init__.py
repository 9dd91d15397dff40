"""Cryptographic primitives below every other package: no HSM, no card, no request.

The face (import these from ``coldvault.crypto``):

* :class:`CryptoInputError` -- the error family for bad key material, paths, mnemonics and
  signatures from operators, files or devices.
* :func:`wipe` -- zero a ``bytearray`` that held a secret (see :mod:`coldvault.crypto.memory`).
* ``HARDENED``, :func:`parse_path`, :func:`path_to_str`, :class:`InvalidPath` -- BIP-32
  derivation paths (:mod:`coldvault.crypto.paths`).
* ``SECP256K1_N``, :class:`EcdsaSignature`, :class:`InvalidSignature` -- the secp256k1 order
  and a self-validating ECDSA signature with low-S and DER (:mod:`coldvault.crypto.secp256k1`).
* :class:`Ed25519Signature` -- a 64-byte Ed25519 signature (:mod:`coldvault.crypto.ed25519`).

Heavier modules are imported by name where they are needed:

* :mod:`coldvault.crypto.hashes` -- SHA-256, double SHA-256, HASH160, Keccak-256.
* :mod:`coldvault.crypto.bip32` -- BIP-32 secp256k1 extended keys (bip-utils underneath),
  strict import of serialised keys, xpub/tpub export.
* :mod:`coldvault.crypto.slip10` -- SLIP-10 for secp256k1, nist256p1, ed25519, curve25519.
* :mod:`coldvault.crypto.mnemonics` -- BIP-39 (python-mnemonic) and SLIP-39
  (shamir-mnemonic) with domain errors.
* :mod:`coldvault.crypto.descriptors` -- output descriptors the ceremonies export.

This package imports nothing from the rest of coldvault but :mod:`coldvault.errors`.
"""

from __future__ import annotations

from coldvault.crypto.ed25519 import Ed25519Signature
from coldvault.crypto.errors import CryptoInputError
from coldvault.crypto.memory import wipe
from coldvault.crypto.paths import HARDENED, InvalidPath, parse_path, path_to_str
from coldvault.crypto.secp256k1 import SECP256K1_N, EcdsaSignature, InvalidSignature

__all__ = [
    "HARDENED",
    "SECP256K1_N",
    "CryptoInputError",
    "EcdsaSignature",
    "Ed25519Signature",
    "InvalidPath",
    "InvalidSignature",
    "parse_path",
    "path_to_str",
    "wipe",
]
