"""PSO:DECIPHER on the virtual card (state machine and coldvault's client), in process.

The shared secret is checked against the host's own ECDH (cryptography) with the card's
public key: the card is right only if both agree for cv25519 and NIST P-256."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from coldvault.cards.decipher import (
    DecipherRejected,
    DecryptionCurve,
    KeyOrigin,
    NoDecryptionKey,
    decipher,
    decryption_curve,
    decryption_key_fingerprint,
    decryption_key_origin,
    decryption_public_key,
    generate_decryption_key,
)
from coldvault.cards.openpgp import PinBlocked, PinRequired, Pw, WrongPin
from tests.backup.conftest import ADMIN_PIN, USER_PIN

CREATED = 1_750_000_000


def _host_ecdh(curve: DecryptionCurve, card_point: bytes) -> tuple[bytes, bytes]:
    """(ephemeral point, shared secret) computed on the host only."""
    if curve is DecryptionCurve.CV25519:
        eph = x25519.X25519PrivateKey.generate()
        point = eph.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return point, eph.exchange(x25519.X25519PublicKey.from_public_bytes(card_point))
    p = ec.generate_private_key(ec.SECP256R1())
    point = p.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), card_point)
    return point, p.exchange(ec.ECDH(), peer)


@pytest.fixture
def card(direct_card):
    return direct_card(0xC0DE0001)


@pytest.mark.parametrize("curve", list(DecryptionCurve))
def test_decipher_agrees_with_the_host(card, curve: DecryptionCurve) -> None:
    card.verify_pin(ADMIN_PIN, Pw.ADMIN)
    point = generate_decryption_key(card, curve, timestamp=CREATED)
    assert len(point) == curve.point_length
    assert decryption_curve(card) is curve
    assert decryption_public_key(card) == point
    assert decryption_key_origin(card) is KeyOrigin.GENERATED
    app = card.application_data()
    assert app.fingerprints[1] == decryption_key_fingerprint(curve, point, CREATED)
    assert app.generation_times[1] == CREATED
    card.verify_pin(USER_PIN, Pw.USER)
    for _ in range(3):  # PW1 in mode 82 stays verified (unlike a signature PIN)
        ephemeral, expected = _host_ecdh(curve, point)
        secret = decipher(card, ephemeral)
        assert isinstance(secret, bytearray)
        assert bytes(secret) == expected


def test_decipher_needs_the_user_pin_in_mode_82(card) -> None:
    card.verify_pin(ADMIN_PIN, Pw.ADMIN)
    point = generate_decryption_key(card, DecryptionCurve.CV25519)
    ephemeral, _ = _host_ecdh(DecryptionCurve.CV25519, point)
    with pytest.raises(PinRequired):
        decipher(card, ephemeral)
    card.verify_pin(USER_PIN, Pw.SIGN)  # mode 81 is for one signature, not for decryption
    with pytest.raises(PinRequired):
        decipher(card, ephemeral)


def test_no_decryption_key(card) -> None:
    card.verify_pin(USER_PIN, Pw.USER)
    with pytest.raises(NoDecryptionKey) as info:
        decipher(card, bytes(32))
    assert info.value.sw == 0x6A88
    with pytest.raises(NoDecryptionKey):
        decryption_public_key(card)
    assert decryption_key_origin(card) is KeyOrigin.ABSENT


@pytest.mark.parametrize(
    "curve,bad",
    [
        (DecryptionCurve.CV25519, bytes(32)),  # low-order point: no shared secret
        (DecryptionCurve.CV25519, b"\x04" + bytes(64)),  # a P-256-sized point
        (DecryptionCurve.NIST_P256, b"\x04" + bytes(64)),  # not on the curve
        (DecryptionCurve.NIST_P256, bytes(32)),
    ],
)
def test_bad_points_are_refused(card, curve: DecryptionCurve, bad: bytes) -> None:
    card.verify_pin(ADMIN_PIN, Pw.ADMIN)
    generate_decryption_key(card, curve)
    card.verify_pin(USER_PIN, Pw.USER)
    with pytest.raises(DecipherRejected) as info:
        decipher(card, bad)
    assert info.value.sw == 0x6A80


def test_wrong_pin_counts_down_to_lockout(card) -> None:
    card.verify_pin(ADMIN_PIN, Pw.ADMIN)
    generate_decryption_key(card, DecryptionCurve.NIST_P256)
    for tries in (2, 1):
        with pytest.raises(WrongPin) as info:
            card.verify_pin("999999", Pw.USER)
        assert info.value.tries_left == tries
    with pytest.raises(PinBlocked):
        card.verify_pin("999999", Pw.USER)
    with pytest.raises(PinBlocked):  # even the right PIN no longer opens it
        card.verify_pin(USER_PIN, Pw.USER)


def _raw(card, apdu: str) -> int:
    return card.connection.send_and_receive(bytes.fromhex(apdu))[1]


def test_the_cipher_do_is_parsed_strictly(card) -> None:
    card.verify_pin(ADMIN_PIN, Pw.ADMIN)
    point = generate_decryption_key(card, DecryptionCurve.CV25519)
    card.verify_pin(USER_PIN, Pw.USER)
    good = "A6257F4922862" + "0" + point.hex()
    assert _raw(card, f"002A8086{len(bytes.fromhex(good)):02X}{good}00") == 0x9000
    assert _raw(card, "002A8086" + "03" + "A60100" + "00") == 0x6A80  # no 7F49
    assert _raw(card, "002A8086" + "0A" + "7F4907860520202020" + "2000") == 0x6A80  # no A6
    assert _raw(card, "002A8086" + "05" + "A6037F49" + "00") == 0x6A80  # truncated
    assert _raw(card, "002A8086" + "01" + "00" + "00") == 0x6A80  # RSA padding indicator
    assert _raw(card, "002A8087" + "01" + "00" + "00") == 0x6A86  # wrong P1-P2
    # OpenPGP's 0x40-prefixed Curve25519 point is accepted too
    prefixed = "A6267F4923862140" + point.hex()
    assert _raw(card, f"002A808628{prefixed}00") == 0x9000
