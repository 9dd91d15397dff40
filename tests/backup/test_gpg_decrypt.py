"""Independent proof of the virtual card's PSO:DECIPHER: GnuPG generates keys on the card
(through scdaemon and the lab's pcscd), encrypts a message to the card's decryption key, and
decrypts it with the card. cv25519 and NIST P-256."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from coldvault.backends.pcsc import PcscConnection, wait_for_removal
from coldvault.cards.algorithms import CardAlgorithm
from coldvault.cards.decipher import DecryptionCurve, decipher, decryption_public_key
from coldvault.cards.openpgp import OpenPgpSession, Pw
from tests.gpg_card import gpg_generate_on_card

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("gpg") is None, reason="GnuPG is not installed"),
]
LIBPCSCLITE = "/usr/lib/x86_64-linux-gnu/libpcsclite.so.1"
C2 = {"cv25519": DecryptionCurve.CV25519, "nistp256": DecryptionCurve.NIST_P256}


@pytest.fixture
def card_reader(pcsc_lab, tmp_path: Path) -> Iterator[str]:
    from hardware_emulators.openpgp_card.controller import VirtualCard

    card = VirtualCard(state_file=tmp_path / "gpg-card.json", serial=0x6E6E0001)
    card.insert(pcsc_lab.reader_ports[0])
    reader = pcsc_lab.reader_names()[0]
    try:
        yield reader
    finally:
        card.remove()
        wait_for_removal(reader, timeout=5)


@pytest.fixture
def gpg_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    (home / "scdaemon.conf").write_text(f"disable-ccid\npcsc-driver {LIBPCSCLITE}\n")
    (home / "gpg-agent.conf").write_text("allow-loopback-pinentry\n")
    env = dict(os.environ, GNUPGHOME=str(home))
    assert "PCSCLITE_CSOCK_NAME" in env  # scdaemon must reach the lab's pcscd
    yield env
    subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False, timeout=30)


@pytest.mark.parametrize("curve", ["cv25519", "nistp256"])
def test_gpg_decrypts_with_the_virtual_card(card_reader, gpg_env, tmp_path, curve) -> None:
    if curve == "nistp256":  # gpg generates with the card's current key attributes
        with PcscConnection(card_reader) as conn:
            session = OpenPgpSession(conn)
            session.select()
            session.verify_pin("12345678", Pw.ADMIN)
            session.set_algorithm(CardAlgorithm.NIST_P256)
            session.put_data(0xC2, C2[curve].attributes)
            session.put_data(0xC3, CardAlgorithm.NIST_P256.attributes)
    fingerprint = gpg_generate_on_card(
        gpg_env, name="Site Custodian", email="custodian@example.org",
        pins=["12345678", "123456", "123456", "123456"],
    )
    assert len(fingerprint) == 40
    message = tmp_path / "share-envelope-note.txt"
    message.write_text("sealed for the custodian of site B\n")
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--trust-model",
            "always",
            "--recipient",
            fingerprint,
            "--output",
            f"{message}.gpg",
            "--encrypt",
            str(message),
        ],
        env=gpg_env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    decrypted = subprocess.run(
        [
            "gpg",
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "123456",
            "--status-fd",
            "2",
            "--decrypt",
            f"{message}.gpg",
        ],
        env=gpg_env,
        capture_output=True,
        timeout=60,
    )
    assert decrypted.returncode == 0, decrypted.stderr.decode(errors="replace")
    assert decrypted.stdout == message.read_bytes()
    assert b"DECRYPTION_OKAY" in decrypted.stderr
    subprocess.run(["gpgconf", "--kill", "scdaemon"], env=gpg_env, check=False, timeout=30)
    # coldvault's own client sees the key gpg generated, and deciphers with it
    with PcscConnection(card_reader) as conn:
        session = OpenPgpSession(conn)
        app = session.select()
        assert DecryptionCurve.from_attributes(app.algorithm_attributes[1]) is C2[curve]
        assert len(decryption_public_key(session)) == C2[curve].point_length
        session.verify_pin("123456", Pw.USER)
        point = decryption_public_key(session)
        assert len(decipher(session, point)) == 32  # the card agrees with its own key
