from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldvault.cards.signatures import (
    CARD_ALGORITHMS,
    card_input,
    public_key_length_ok,
    verify_card_signature,
)

from .cards import SoftCard

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
