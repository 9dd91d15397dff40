"""Read-only checks against a REAL OpenPGP card (YubiKey 5, Nitrokey 3, ...), opt-in.

Runs only when COLDVAULT_REAL_CARD_SERIAL names the card's serial (8 hex digits as gpg
prints it, or manufacturer+serial).  Nothing destructive is ever sent: no key generation,
no PUT DATA, no PIN change, no wrong PINs.  With COLDVAULT_REAL_CARD_PIN also set, one
signature is made (it increments the card's signature counter) and verified on the host.

Run it in its own pytest process, without the lab (libpcsclite keeps the first pcscd):

    COLDVAULT_REAL_CARD_SERIAL=12345678 .venv/bin/python -m pytest -m realcard tests/cards
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from coldvault.cards import OpenPgpSession, Pw, card_input, verify_card_signature
from coldvault.cards.errors import NoKey

SERIAL = os.environ.get("COLDVAULT_REAL_CARD_SERIAL", "").strip().upper()
pytestmark = [
    pytest.mark.realcard,
    pytest.mark.skipif(not SERIAL, reason="set COLDVAULT_REAL_CARD_SERIAL to test a real card"),
]


@pytest.fixture(scope="module")
def real_session() -> Iterator[OpenPgpSession]:
    if os.environ.get("PCSCLITE_CSOCK_NAME"):
        pytest.skip("the lab's pcscd is active in this process; run real-card tests alone")
    from coldvault.backends.pcsc import PcscConnection, is_emulated, list_readers

    for reader in list_readers():
        try:
            conn = PcscConnection(reader)
        except Exception:  # noqa: BLE001 - empty or busy readers are simply skipped
            continue
        session = OpenPgpSession(conn)
        try:
            session.select()
        except Exception:  # noqa: BLE001 - not an OpenPGP card
            conn.close()
            continue
        if SERIAL in (session.serial_hex, session.card_id):
            assert not is_emulated(session), "COLDVAULT_REAL_CARD_SERIAL names a test card"
            yield session
            conn.close()
            return
        conn.close()
    pytest.fail(f"No OpenPGP card with serial {SERIAL} is inserted.")


def test_identity_and_status(real_session: OpenPgpSession) -> None:
    app = real_session.application_data()
    assert app.version[0] >= 2
    assert len(app.extended_capabilities) >= 10 or app.version[0] < 3
    status = real_session.pin_status()
    assert 0 <= status.tries_pw1 <= 15 and 0 <= status.tries_pw3 <= 15
    assert real_session.signature_counter() >= 0
    real_session.cardholder_name()
    assert real_session.pin_verified(Pw.USER) in (True, False)  # costs no try


def test_signature_key(real_session: OpenPgpSession) -> None:
    algorithm = real_session.algorithm()
    if algorithm is None:
        pytest.skip("the card's signature key is not Ed25519, P-256 or secp256k1")
    try:
        public_key = real_session.public_key()
    except NoKey:
        pytest.skip("the card has no signature key")
    pin = os.environ.get("COLDVAULT_REAL_CARD_PIN")
    if not pin:
        pytest.skip("set COLDVAULT_REAL_CARD_PIN to also make one signature")
    data = b"coldvault real-card check"
    before = real_session.signature_counter()
    real_session.verify_pin(pin, Pw.SIGN)
    signature = real_session.sign(card_input(algorithm, data))
    assert verify_card_signature(algorithm, public_key, data, signature)
    assert real_session.signature_counter() == before + 1
