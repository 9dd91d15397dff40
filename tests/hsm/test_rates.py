"""Measured signing rates on SoftHSM (docs/keystore.md). Run with ``-s`` to see the numbers:

.venv/bin/python -m pytest tests/hsm/test_rates.py -s -m slow
"""

from __future__ import annotations

import hashlib
import time

import pytest

from coldvault.keys.keystore import KeyAlgorithm

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def _rate(fn, seconds: float = 1.0) -> float:
    for _ in range(20):
        fn()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def test_signing_rates(keystore, record_property) -> None:
    keystore.generate_key(KeyAlgorithm.SECP256K1, b"rate-k1", "rate-k1")
    keystore.generate_key(KeyAlgorithm.ED25519, b"rate-ed", "rate-ed")
    digest = hashlib.sha256(b"rate").digest()
    ecdsa = _rate(lambda: keystore.sign_ecdsa(b"rate-k1", digest))
    eddsa = _rate(lambda: keystore.sign_ed25519(b"rate-ed", digest))
    record_property("secp256k1_signs_per_s", round(ecdsa))
    record_property("ed25519_signs_per_s", round(eddsa))
    print(f"\nsign_ecdsa secp256k1: {ecdsa:.0f}/s   sign_ed25519: {eddsa:.0f}/s")
    # generous floors: an order of magnitude below what a loaded 2-vCPU VM does
    assert ecdsa > 50
    assert eddsa > 50
