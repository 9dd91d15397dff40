"""The OpenPGP card contract (:class:`coldvault.cards.openpgp.OpenPgpSession` over a
``CardConnection``), asserted identically on every card backend: the virtual card in
process, the same card through pcscd + vpcd + pyscard, and -- opt-in, read-only -- a real
card (``COLDVAULT_REAL_CARD_SERIAL``, plus ``COLDVAULT_REAL_CARD_PIN`` for the PIN and
signature checks; run it alone: ``pytest -m realcard tests/conformance``).

Emulated cards start enrolled (an Ed25519 signature key generated on the card).  Signatures
are verified with PyNaCl / ``cryptography``, not with coldvault's own check.  The deeper
protocol (key generation per algorithm, PIN lockout and reset, private DOs) is in
tests/cards/test_openpgp_session.py, which never runs on a real card.
"""

from __future__ import annotations

import hashlib

import nacl.exceptions
import nacl.signing
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from coldvault.cards.algorithms import CardAlgorithm
from coldvault.cards.errors import CardRemoved
from coldvault.cards.fingerprints import openpgp_v4_fingerprint
from coldvault.cards.openpgp import Pw, WrongPin
from tests.conformance.backends import CardBackend

_CURVES = {CardAlgorithm.NIST_P256: ec.SECP256R1(), CardAlgorithm.SECP256K1: ec.SECP256K1()}


def _independently_verified(
    algorithm: CardAlgorithm, public_key: bytes, data: bytes, signature: bytes
) -> bool:
    if algorithm is CardAlgorithm.ED25519:
        try:
            nacl.signing.VerifyKey(public_key).verify(data, signature)
        except nacl.exceptions.BadSignatureError:
            return False
        return True
    point = ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[algorithm], public_key)
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                               int.from_bytes(signature[32:], "big"))
    try:
        point.verify(der, data, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return False
    return True


def _signing_key(card: CardBackend) -> tuple[CardAlgorithm, bytes]:
    algorithm = card.session.algorithm()
    if algorithm is None:
        pytest.skip(f"{card.name}: the signature key is not Ed25519, P-256 or secp256k1")
    return algorithm, card.session.public_key()


def _need_pin(card: CardBackend) -> str:
    if card.pin is None:
        pytest.skip(f"{card.name}: set COLDVAULT_REAL_CARD_PIN to verify the PIN and sign")
    return card.pin


def _never_on_a_real_card(card: CardBackend, what: str) -> None:
    if card.read_only:
        pytest.skip(f"{card.name} is read-only: this test would {what}")


def test_select_identifies_the_card(card: CardBackend) -> None:
    session = card.session
    app = session.application_data()
    assert card.serial in (session.serial_hex, session.card_id)
    assert session.serial_hex == f"{app.serial:08X}" == app.serial_hex
    assert session.card_id == f"{app.manufacturer:04X}{app.serial:08X}"
    assert app.aid[:6] == bytes.fromhex("D27600012401")  # the OpenPGP application
    assert int.from_bytes(app.aid[8:10], "big") == app.manufacturer
    assert int.from_bytes(app.aid[10:14], "big") == app.serial
    assert app.version >= (2, 0)
    if not card.read_only:
        assert session.is_test_card and app.version == (3, 4)


def test_fingerprint_is_the_v4_fingerprint_of_the_signature_key(card: CardBackend) -> None:
    algorithm, public_key = _signing_key(card)
    app = card.session.application_data()
    created = app.generation_times[0]
    assert created > 0
    assert app.fingerprints[0] == openpgp_v4_fingerprint(algorithm, public_key, created)
    if not card.read_only:
        assert (algorithm, created) == (CardAlgorithm.ED25519, 1_700_000_000)


def test_pin_status_agrees_with_the_tries_left(card: CardBackend) -> None:
    status = card.session.pin_status()
    assert status.tries_pw1 == card.session.tries_left(Pw.USER)
    assert status.tries_pw3 == card.session.tries_left(Pw.ADMIN)
    assert status.tries_pw1 > 0, f"{card.name}: the user PIN is blocked"
    if not card.read_only:
        assert (status.tries_pw1, status.tries_pw3) == (3, 3)
    assert card.session.pin_verified(Pw.SIGN) is False  # nothing verified since select


def test_verified_pin_signs_once_and_the_signature_verifies(card: CardBackend) -> None:
    pin = _need_pin(card)
    algorithm, public_key = _signing_key(card)
    session = card.session
    message = b"coldvault conformance approval token"
    data = message if algorithm is CardAlgorithm.ED25519 else hashlib.sha256(message).digest()
    counter = session.signature_counter()
    session.verify_pin(pin, Pw.SIGN)
    assert session.pin_verified(Pw.SIGN) is True
    signature = session.sign(data)
    assert len(signature) == 64
    assert _independently_verified(algorithm, public_key, data, signature)
    assert not _independently_verified(algorithm, public_key, data[:-1] + b"?", signature)
    assert session.signature_counter() == counter + 1
    if session.pin_status().pw1_single_signature:
        assert session.pin_verified(Pw.SIGN) is False  # one PIN entry, one signature


def test_wrong_pin_counts_down_and_a_right_one_restores(card: CardBackend) -> None:
    _never_on_a_real_card(card, "present a wrong PIN")
    session = card.session
    for left in (2, 1):
        with pytest.raises(WrongPin) as err:
            session.verify_pin("000000", Pw.SIGN)
        assert (err.value.tries_left, err.value.pw) == (left, Pw.SIGN)
        assert "000000" not in str(err.value)
        assert session.tries_left(Pw.USER) == left
    session.verify_pin(card.pin, Pw.SIGN)
    assert session.tries_left(Pw.USER) == 3


def test_a_pulled_card_is_card_removed(card: CardBackend) -> None:
    if card.pull is None:
        pytest.skip(f"{card.name}: a person would have to pull the card")
    card.session.application_data()
    card.pull()
    with pytest.raises(CardRemoved):
        card.session.select()
