"""One conformance suite for ``coldvault.cards.openpgp.OpenPgpSession``, run against every card
we have: the virtual card driven in-process ("direct": the card's state machine behind a
``send_and_receive`` function) and the same card through real pcscd + vpcd + pyscard
("pcsc", lab).  Real cards get the read-only contract in tests/conformance/test_card.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coldvault.cards import (
    CardAlgorithm,
    OpenPgpSession,
    Pw,
    WrongPin,
    card_input,
    openpgp_v4_fingerprint,
    verify_card_signature,
)
from coldvault.cards.errors import NoKey, UnsupportedAlgorithm
from coldvault.cards.openpgp import Do, PinBlocked, PinFormatError, PinRequired

from .inprocess import DirectConnection

USER, ADMIN = "123456", "12345678"
BRAINPOOL_P256 = bytes.fromhex("132B2403030208010107")


@pytest.fixture(params=["direct", pytest.param("pcsc", marks=pytest.mark.lab)])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenPgpSession]:
    if request.param == "direct":
        s = OpenPgpSession(DirectConnection(tmp_path / "direct.json", 0x5E55101))
        s.select()
        yield s
        return
    from coldvault.backends.pcsc import PcscConnection, wait_for_removal

    lab = request.getfixturevalue("pcsc_lab")
    card = request.getfixturevalue("make_card")("conformance", 0x5E55101)
    card.insert(lab.reader_ports[0])
    reader = lab.reader_names()[0]
    try:
        with PcscConnection(reader) as conn:
            s = OpenPgpSession(conn)
            s.select()
            yield s
    finally:
        card.remove()
        wait_for_removal(reader, timeout=5)


def test_select_reads_identity(session: OpenPgpSession) -> None:
    assert session.serial == 0x5E55101
    assert session.serial_hex == "05E55101"
    assert session.manufacturer == 0xFFFF and session.is_test_card
    assert session.card_id == "FFFF05E55101"
    app = session.application_data()
    assert app.version == (3, 4)
    assert app.signature_algorithm is CardAlgorithm.ED25519
    assert session.pin_status().tries_pw1 == 3


@pytest.mark.parametrize("algorithm", list(CardAlgorithm))
def test_generate_sign_verify(session: OpenPgpSession, algorithm: CardAlgorithm) -> None:
    session.verify_pin(ADMIN, Pw.ADMIN)
    public_key = session.generate_key(algorithm, timestamp=1_700_000_000)
    assert session.algorithm() is algorithm
    assert session.public_key() == public_key
    app = session.application_data()
    assert app.generation_times[0] == 1_700_000_000
    assert app.fingerprints[0] == openpgp_v4_fingerprint(algorithm, public_key, 1_700_000_000)
    token = b"approval token"
    session.verify_pin(USER, Pw.SIGN)
    signature = session.sign(card_input(algorithm, token))
    assert verify_card_signature(algorithm, public_key, token, signature)
    assert not verify_card_signature(algorithm, public_key, b"x", signature)
    tampered = signature[:-1] + bytes([signature[-1] ^ 1])
    assert not verify_card_signature(algorithm, public_key, token, tampered)
    assert session.signature_counter() == 1


def test_signature_pin_is_single_use(session: OpenPgpSession) -> None:
    session.verify_pin(ADMIN, Pw.ADMIN)
    session.generate_key(CardAlgorithm.ED25519)
    session.verify_pin(USER, Pw.SIGN)
    session.sign(b"one")
    with pytest.raises(PinRequired) as err:
        session.sign(b"two")
    assert err.value.sw == 0x6982
    assert session.signature_counter() == 1


def test_sign_without_key(session: OpenPgpSession) -> None:
    session.verify_pin(USER, Pw.SIGN)
    with pytest.raises(NoKey):
        session.sign(b"m")
    with pytest.raises(NoKey):
        session.public_key()


def test_long_message_uses_command_chaining(session: OpenPgpSession) -> None:
    session.verify_pin(ADMIN, Pw.ADMIN)
    public_key = session.generate_key(CardAlgorithm.ED25519)
    session.verify_pin(USER, Pw.SIGN)
    message = bytes(range(256)) * 3
    signature = session.sign(message)
    assert verify_card_signature(CardAlgorithm.ED25519, public_key, message, signature)


def test_wrong_pin_down_to_lockout_then_admin_unblocks(session: OpenPgpSession) -> None:
    with pytest.raises(WrongPin) as first:
        session.verify_pin("000000", Pw.SIGN)
    assert first.value.tries_left == 2 and first.value.pw is Pw.SIGN
    assert "000000" not in str(first.value)
    with pytest.raises(WrongPin) as second:
        session.verify_pin("000000", Pw.USER)
    assert second.value.tries_left == 1
    with pytest.raises(PinBlocked):
        session.verify_pin("000000", Pw.SIGN)
    with pytest.raises(PinBlocked):
        session.verify_pin(USER, Pw.SIGN)  # blocked even with the right PIN
    assert session.tries_left(Pw.USER) == 0
    with pytest.raises(PinRequired):
        session.reset_pin("654321")  # needs the admin PIN first
    session.verify_pin(ADMIN, Pw.ADMIN)
    session.reset_pin("654321")
    assert session.tries_left(Pw.USER) == 3
    session.verify_pin("654321", Pw.SIGN)
    assert session.pin_verified(Pw.SIGN)


def test_admin_pin_lockout(session: OpenPgpSession) -> None:
    for left in (2, 1):
        with pytest.raises(WrongPin) as err:
            session.verify_pin("00000000", Pw.ADMIN)
        assert err.value.tries_left == left
    with pytest.raises(PinBlocked) as blocked:
        session.verify_pin("00000000", Pw.ADMIN)
    assert blocked.value.pw is Pw.ADMIN


def test_pin_format_checked_before_the_card(session: OpenPgpSession) -> None:
    with pytest.raises(PinFormatError):
        session.verify_pin("123", Pw.USER)
    with pytest.raises(PinFormatError):
        session.verify_pin("123456", Pw.ADMIN)
    assert session.tries_left(Pw.USER) == 3 and session.tries_left(Pw.ADMIN) == 3


def test_change_pin(session: OpenPgpSession) -> None:
    session.change_pin(Pw.USER, USER, "24680246")
    with pytest.raises(WrongPin):
        session.verify_pin(USER, Pw.USER)
    session.verify_pin("24680246", Pw.USER)
    with pytest.raises(WrongPin) as err:
        session.change_pin(Pw.ADMIN, "87654321", "11112222")
    assert err.value.tries_left == 2


def test_unsupported_curve_is_a_clear_error(session: OpenPgpSession) -> None:
    session.verify_pin(ADMIN, Pw.ADMIN)
    with pytest.raises(UnsupportedAlgorithm) as err:
        session.put_data(Do.ALGO_SIG, BRAINPOOL_P256)
    assert err.value.sw == 0x6A80
    assert "does not support" in str(err.value)
    assert session.algorithm() is CardAlgorithm.ED25519


def test_algorithm_change_needs_admin(session: OpenPgpSession) -> None:
    with pytest.raises(PinRequired):
        session.set_algorithm(CardAlgorithm.NIST_P256)


def test_cardholder_name(session: OpenPgpSession) -> None:
    session.verify_pin(ADMIN, Pw.ADMIN)
    session.set_cardholder_name("Approver<<Alice")
    assert session.cardholder_name() == "Approver<<Alice"


def test_private_data_objects(session: OpenPgpSession) -> None:
    with pytest.raises(PinRequired):
        session.write_private_do(1, b"site=HK")
    session.verify_pin(USER, Pw.USER)
    session.write_private_do(1, b"site=HK")
    session.write_private_do(3, b"user secret")
    assert session.read_private_do(1) == b"site=HK"
    assert session.read_private_do(3) == b"user secret"
    with pytest.raises(PinRequired):
        session.write_private_do(2, b"x")
    with pytest.raises(PinRequired):
        session.read_private_do(4)
    session.verify_pin(ADMIN, Pw.ADMIN)
    session.write_private_do(4, b"admin secret")
    assert session.read_private_do(4) == b"admin secret"
    with pytest.raises(ValueError):
        session.read_private_do(5)
