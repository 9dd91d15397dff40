"""secp256k1 in one place: the order, scalar range, low-S and ECDSA signature encodings.

The order and the encodings are checked against independent implementations: libsecp256k1
(coincurve) and OpenSSL (cryptography).
"""

from __future__ import annotations

import hashlib

import coincurve
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given
from hypothesis import strategies as st

from coldvault.crypto import CryptoInputError
from coldvault.crypto.secp256k1 import (
    LOW_S_MAX,
    SECP256K1_N,
    EcdsaSignature,
    InvalidSignature,
    is_scalar,
)

N = SECP256K1_N
SCALARS = st.integers(1, N - 1)


def _sign(secret: bytes, digest: bytes) -> tuple[EcdsaSignature, int, bytes]:
    """(signature, recovery id, compressed public key) from libsecp256k1."""
    key = coincurve.PrivateKey(secret)
    raw = key.sign_recoverable(digest, hasher=None)
    sig = EcdsaSignature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"))
    return sig, raw[64], key.public_key.format()


def test_the_order_is_the_group_order() -> None:
    """(n - 1) G = -G and n is not a valid private key, for libsecp256k1 and OpenSSL."""
    g = coincurve.PrivateKey((1).to_bytes(32, "big")).public_key.format()
    minus_g = coincurve.PrivateKey((N - 1).to_bytes(32, "big")).public_key.format()
    assert minus_g[1:] == g[1:] and {minus_g[0], g[0]} == {2, 3}
    with pytest.raises(ValueError):
        coincurve.PrivateKey(N.to_bytes(32, "big"))
    with pytest.raises(ValueError):
        ec.derive_private_key(N, ec.SECP256K1())
    ec.derive_private_key(N - 1, ec.SECP256K1())
    assert LOW_S_MAX == (N - 1) // 2 and N % 2 == 1


def test_scalar_range() -> None:
    assert [is_scalar(v) for v in (0, 1, N - 1, N, -1, 2**256)] == [
        False, True, True, False, False, False
    ]  # fmt: skip
    assert not is_scalar(True)  # a bool is not an integer here


def test_construction_refuses_out_of_range_values() -> None:
    for r, s in ((0, 1), (1, 0), (N, 1), (1, N), (-1, 1)):
        with pytest.raises(ValueError):
            EcdsaSignature(r, s)
    with pytest.raises(ValueError):
        EcdsaSignature(True, 1)  # type: ignore[arg-type]
    assert EcdsaSignature(N - 1, N - 1).compact == (N - 1).to_bytes(32, "big") * 2


def test_low_s_boundary_and_normalisation() -> None:
    assert EcdsaSignature(1, LOW_S_MAX).is_low_s
    high = EcdsaSignature(1, LOW_S_MAX + 1)
    assert not high.is_low_s
    assert high.low_s() == EcdsaSignature(1, LOW_S_MAX)
    low = EcdsaSignature(5, 7)
    assert low.low_s() is low
    assert EcdsaSignature(5, N - 7).low_s() == low


def test_high_and_low_twins_verify_for_openssl_only_low_for_libsecp256k1() -> None:
    digest = hashlib.sha256(b"coldvault").digest()
    sig, _, public = _sign(b"\x11" * 32, digest)
    assert sig.is_low_s  # libsecp256k1 signs low-S
    high = EcdsaSignature(sig.r, N - sig.s)
    openssl = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), public)
    for twin in (sig, high):  # OpenSSL accepts both halves
        openssl.verify(twin.der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    assert sig.verify(public, digest)
    assert not high.verify(public, digest)  # libsecp256k1 refuses high-S
    assert high.low_s().verify(public, digest)
    assert not sig.verify(public, hashlib.sha256(b"other").digest())
    with pytest.raises(ValueError):
        sig.verify(public, b"\x00" * 31)


@given(SCALARS, SCALARS)
def test_der_and_compact_round_trip_like_openssl(r: int, s: int) -> None:
    sig = EcdsaSignature(r, s)
    assert sig.der == encode_dss_signature(r, s)
    assert decode_dss_signature(sig.der) == (r, s)
    assert EcdsaSignature.from_der(sig.der) == sig
    assert EcdsaSignature.from_compact(sig.compact) == sig
    assert len(sig.der) <= 72


@pytest.mark.parametrize(
    ("der", "problem"),
    [
        (b"", "a DER signature is 8 to 72 bytes"),
        (b"\x30\x06\x02\x01\x01\x02\x01\x01" + b"\x00" * 65, "a DER signature is 8 to 72 bytes"),
        (b"\x31\x06\x02\x01\x01\x02\x01\x01", "the DER sequence header is wrong"),
        (b"\x30\x07\x02\x01\x01\x02\x01\x01", "the DER sequence header is wrong"),
        (b"\x30\x06\x03\x01\x01\x02\x01\x01", "r is not a DER INTEGER"),
        (b"\x30\x06\x02\x00\x02\x02\x01\x01", "r has a bad length"),
        (b"\x30\x06\x02\x01\x81\x02\x01\x01", "r is negative"),
        (b"\x30\x07\x02\x02\x00\x01\x02\x01\x01", "r has excess leading zero bytes"),
        (b"\x30\x06\x02\x01\x00\x02\x01\x01", "r is not in 1..n-1"),
        (b"\x30\x06\x02\x01\x01\x02\x01\x00", "s is not in 1..n-1"),
        (b"\x30\x06\x02\x01\x01\x02\x02\x01", "s has a bad length"),
        (b"\x30\x08\x02\x01\x01\x02\x01\x01\x05\x00", "bytes follow the DER sequence"),
        (
            b"\x30\x26\x02\x21\x00" + N.to_bytes(32, "big") + b"\x02\x01\x01",
            "r is not in 1..n-1",
        ),
    ],
)
def test_der_flaws_are_refused_by_name(der: bytes, problem: str) -> None:
    with pytest.raises(InvalidSignature) as err:
        EcdsaSignature.from_der(der)
    assert err.value.problem == problem
    assert isinstance(err.value, CryptoInputError) and err.value.code == "ecdsa-signature-malformed"


def test_compact_flaws_are_refused_by_name() -> None:
    cases = {
        bytes(63): "it is 63 bytes, not 64 (r || s)",
        bytes(64): "r is not in 1..n-1",
        (1).to_bytes(32, "big") + N.to_bytes(32, "big"): "s is not in 1..n-1",
    }
    for data, problem in cases.items():
        with pytest.raises(InvalidSignature) as err:
            EcdsaSignature.from_compact(data)
        assert err.value.problem == problem


def test_recovery_id_matches_libsecp256k1() -> None:
    for i in range(16):
        digest = hashlib.sha256(i.to_bytes(2, "big")).digest()
        sig, recid, public = _sign(hashlib.sha256(b"key" + bytes([i])).digest(), digest)
        assert sig.recovery_id(public, digest) == recid
        other = coincurve.PrivateKey(b"\x22" * 32).public_key.format()
        assert sig.recovery_id(other, digest) is None


def test_a_verified_answer_is_reused_only_for_the_same_key_and_digest() -> None:
    """The keystore and the response builder ask the same question about one signature; the
    second answer is remembered -- for exactly that key and digest, never another."""
    digest = hashlib.sha256(b"memo").digest()
    sig, _, ours = _sign(b"\x07" * 32, digest)
    _, _, theirs = _sign(b"\x08" * 32, digest)
    assert sig.verify(ours, digest)
    assert sig.verify(ours, digest)  # remembered
    assert not sig.verify(theirs, digest)
    assert not sig.verify(ours, hashlib.sha256(digest).digest())
    assert sig.verify(ours, digest)
    # what was remembered is no part of the value
    fresh = EcdsaSignature(sig.r, sig.s)
    assert fresh == sig and hash(fresh) == hash(sig) and repr(fresh) == repr(sig)
    # a high-S twin is not verified by libsecp256k1, and nothing about it is remembered
    twin = EcdsaSignature(sig.r, N - sig.s)
    assert not twin.verify(ours, digest) and not twin.verify(ours, digest)
