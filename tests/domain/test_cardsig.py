"""The one card-signature check (``coldvault.cards.signatures``) and its contract: over the
data approved, ``True``/``False`` for anything untrusted, ``ValueError`` only for an unknown
algorithm name.  Software keys stand in for cards (tests/domain/cards.py); the virtual card's
own signatures are checked in tests/cards/test_openpgp_session.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldvault.cards.algorithms import CardAlgorithm
from coldvault.cards.signatures import (
    CARD_ALGORITHMS,
    card_input,
    public_key_length_ok,
    verify_card_signature,
)

from .cards import SECP256K1_N, SoftCard

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

CARDS = {alg: SoftCard(f"T-{alg}", alg, b"cardsig") for alg in CARD_ALGORITHMS}


@pytest.mark.parametrize("alg", CARD_ALGORITHMS)
def test_valid_signature_verifies(alg: str) -> None:
    card = CARDS[alg]
    sig = card.sign(b"approve this")
    assert len(sig) == 64
    assert verify_card_signature(alg, card.public_key, b"approve this", sig) is True


@pytest.mark.parametrize("alg", CARD_ALGORITHMS)
def test_other_data_or_key_fails(alg: str) -> None:
    card = CARDS[alg]
    sig = card.sign(b"approve this")
    assert verify_card_signature(alg, card.public_key, b"approve that", sig) is False
    other = SoftCard("other", alg, b"x")
    assert verify_card_signature(alg, other.public_key, b"approve this", sig) is False


def test_ecdsa_signs_sha256_of_data_and_ed25519_the_data() -> None:
    assert card_input("ed25519", b"abc") == b"abc"
    assert len(card_input("nistp256", b"abc")) == 32
    with pytest.raises(ValueError):
        card_input("rsa2048", b"abc")


def test_high_s_secp256k1_accepted() -> None:
    card = CARDS["secp256k1"]
    sig = card.sign(b"m", high_s=True)
    assert verify_card_signature("secp256k1", card.public_key, b"m", sig)


@pytest.mark.parametrize("alg", CARD_ALGORITHMS)
def test_malformed_inputs_are_false_not_errors(alg: str) -> None:
    card = CARDS[alg]
    assert not verify_card_signature(alg, card.public_key, b"m", b"")
    assert not verify_card_signature(alg, card.public_key, b"m", b"\x00" * 64)
    assert not verify_card_signature(alg, b"\x04" + b"\x01" * 64, b"m", card.sign(b"m"))
    assert not verify_card_signature(alg, b"", b"m", card.sign(b"m"))


def test_unknown_algorithm_is_value_error() -> None:
    with pytest.raises(ValueError):
        verify_card_signature("rsa2048", b"", b"", b"")
    with pytest.raises(ValueError):
        public_key_length_ok("rsa2048", b"")


@settings(max_examples=60, deadline=None)
@given(alg=st.sampled_from(CARD_ALGORITHMS), pos=st.integers(0, 63), bit=st.integers(0, 7))
def test_any_bit_flip_in_signature_fails(alg: str, pos: int, bit: int) -> None:
    card = CARDS[alg]
    sig = bytearray(card.sign(b"payload"))
    sig[pos] ^= 1 << bit
    assert not verify_card_signature(alg, card.public_key, b"payload", bytes(sig))


@pytest.mark.parametrize("alg", ["nistp256", "secp256k1"])
def test_high_s_accepted_on_both_ecdsa_curves(alg: str) -> None:
    card = CARDS[alg]
    low = card.sign(b"token")
    r, s = int.from_bytes(low[:32], "big"), int.from_bytes(low[32:], "big")
    n = SECP256K1_N if alg == "secp256k1" else P256_N
    flipped = r.to_bytes(32, "big") + (n - s).to_bytes(32, "big")
    assert verify_card_signature(alg, card.public_key, b"token", low)
    assert verify_card_signature(alg, card.public_key, b"token", flipped)


@pytest.mark.parametrize("alg", ["nistp256", "secp256k1"])
def test_out_of_range_r_or_s_is_false(alg: str) -> None:
    card = CARDS[alg]
    sig = card.sign(b"token")
    r, s = sig[:32], sig[32:]
    n = (SECP256K1_N if alg == "secp256k1" else P256_N).to_bytes(32, "big")
    for bad in (bytes(32) + s, r + bytes(32), n + s, r + n, b"\xff" * 64):
        assert verify_card_signature(alg, card.public_key, b"token", bad) is False


def test_the_card_algorithm_enum_is_accepted_as_the_name() -> None:
    card = CARDS["ed25519"]
    sig = card.sign(b"m")
    assert verify_card_signature(CardAlgorithm.ED25519, card.public_key, b"m", sig)
    assert card_input(CardAlgorithm.NIST_P256, b"m") == card_input("nistp256", b"m")
    assert CARD_ALGORITHMS == ("ed25519", "nistp256", "secp256k1")


def test_ed25519_key_of_the_wrong_length_is_false_not_an_error() -> None:
    card = CARDS["ed25519"]
    sig = card.sign(b"m")
    assert verify_card_signature("ed25519", card.public_key[:31], b"m", sig) is False
    assert verify_card_signature("ed25519", card.public_key + b"\x00", b"m", sig) is False


def test_compressed_ecdsa_keys_verify() -> None:
    import coincurve

    card = CARDS["secp256k1"]
    compressed = coincurve.PublicKey(card.public_key).format(compressed=True)
    assert public_key_length_ok("secp256k1", compressed)
    assert verify_card_signature("secp256k1", compressed, b"m", card.sign(b"m"))
