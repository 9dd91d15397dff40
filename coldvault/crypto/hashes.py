"""Hash functions shared across chains and formats: SHA-256, double SHA-256, HASH160, Keccak-256."""

from __future__ import annotations

import hashlib

from Crypto.Hash import keccak


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256d(data: bytes) -> bytes:
    """Bitcoin's double SHA-256 (txids, sighashes, base58check checksums)."""
    return sha256(sha256(data))


def hash160(data: bytes) -> bytes:
    """RIPEMD-160 of SHA-256 (Bitcoin public-key and script hashes)."""
    return hashlib.new("ripemd160", sha256(data)).digest()


def keccak256(data: bytes) -> bytes:
    """Ethereum's Keccak-256 (the pre-standard SHA-3 padding)."""
    return keccak.new(digest_bits=256, data=data).digest()
