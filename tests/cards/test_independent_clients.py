"""Independent clients against the virtual card through the lab's pcscd: OpenSC's
``openpgp-tool`` and GnuPG's ``gpg --card-status`` (scdaemon over PC/SC)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from coldvault.backends.pcsc import PcscConnection, wait_for_removal
from coldvault.cards import CardAlgorithm, OpenPgpSession, Pw, openpgp_v4_fingerprint
from hardware_emulators.openpgp_card.controller import VirtualCard
from hardware_emulators.pcsc_lab import PcscLab
from tests.gpg_card import gpg_generate_on_card

pytestmark = pytest.mark.lab

LIBPCSCLITE = "/usr/lib/x86_64-linux-gnu/libpcsclite.so.1"


def _prepare(card: VirtualCard, reader: str, algorithm: CardAlgorithm, signatures: int) -> bytes:
    with PcscConnection(reader) as conn:
        session = OpenPgpSession(conn)
        session.select()
        session.verify_pin("12345678", Pw.ADMIN)
        session.generate_key(algorithm, timestamp=1_750_000_000)
        session.set_cardholder_name("Approver<<Alice")
        for i in range(signatures):
            session.verify_pin("123456", Pw.SIGN)
            data = hashlib.sha256(bytes([i])).digest()
            session.sign(data)
        return session.application_data().fingerprints[0]


@pytest.fixture
def card_in_reader(pcsc_lab: PcscLab, make_card) -> Iterator[tuple[VirtualCard, str]]:
    card = make_card("independent", 0x2468ACE0)
    card.insert(pcsc_lab.reader_ports[0])
    reader = pcsc_lab.reader_names()[0]
    yield card, reader
    card.remove()
    wait_for_removal(reader, timeout=5)


@pytest.mark.skipif(shutil.which("openpgp-tool") is None, reason="OpenSC is not installed")
@pytest.mark.parametrize(
    "algorithm,name", [(CardAlgorithm.ED25519, "EDDSA"), (CardAlgorithm.NIST_P256, "ECDSA")]
)
def test_openpgp_tool_reads_the_card(card_in_reader, algorithm, name) -> None:
    card, reader = card_in_reader
    fingerprint = _prepare(card, reader, algorithm, signatures=0)
    out = subprocess.run(
        ["openpgp-tool", "--card-info", "--key-info", "--user-info"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    fields = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in out.splitlines())}
    assert fields["Serial number"].upper() == "2468ACE0"
    assert fields["Manufacturer"] == "test card"
    assert fields["Version"] == "3.4"
    assert fields["Sig Algorithm"] == name
    assert fields["Sig Fingerprint"].replace(":", "") == fingerprint.hex()
    assert "Approver" in out


@pytest.fixture
def gnupghome(tmp_path: Path) -> Iterator[dict[str, str]]:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    (home / "scdaemon.conf").write_text(f"disable-ccid\npcsc-driver {LIBPCSCLITE}\n")
    env = dict(os.environ, GNUPGHOME=str(home))
    assert "PCSCLITE_CSOCK_NAME" in env  # scdaemon must reach the lab's pcscd
    yield env
    subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False, timeout=30)


def _gpg_card_status(env: dict[str, str]) -> dict[str, list[list[str]]]:
    try:
        out = subprocess.run(
            ["gpg", "--batch", "--with-colons", "--card-status"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=True,
        ).stdout
    finally:
        # scdaemon keeps the card open; release it before coldvault connects exclusively.
        subprocess.run(["gpgconf", "--kill", "scdaemon"], env=env, check=False, timeout=30)
    records: dict[str, list[list[str]]] = {}
    for line in out.splitlines():
        key, *fields = line.split(":")
        records.setdefault(key, []).append(fields)
    return records


@pytest.mark.skipif(shutil.which("gpg") is None, reason="GnuPG is not installed")
@pytest.mark.parametrize(
    "algorithm,gpg_name",
    [(CardAlgorithm.ED25519, "ed25519"), (CardAlgorithm.NIST_P256, "nistp256")],
)
def test_gpg_card_status(card_in_reader, gnupghome, algorithm, gpg_name) -> None:
    card, reader = card_in_reader
    fingerprint = _prepare(card, reader, algorithm, signatures=2)
    status = _gpg_card_status(gnupghome)
    assert status["serial"][0][0] == "2468ACE0"
    assert status["vendor"][0][1].lower().startswith("test card")
    assert status["version"][0][0] == "0304"
    sig_attr = next(f for f in status["keyattr"] if f[0] == "1")  # keyattr:1:<algo>:<curve>
    assert sig_attr[2].lower().replace(" ", "").replace("-", "") == gpg_name
    assert status["sigcount"][0][0] == "2"
    assert status["fpr"][0][0] == fingerprint.hex().upper()
    assert status["pinretry"][0][:3] == ["3", "0", "3"]
    assert "Approver" in ":".join(status["name"][0])


@pytest.mark.skipif(shutil.which("gpg") is None, reason="GnuPG is not installed")
def test_gpg_generates_on_the_card_and_its_signatures_verify(
    card_in_reader, gnupghome, tmp_path: Path
) -> None:
    """gpg's own key generation on the virtual card (PUT DATA, GENERATE, C7/CE, PSO:CDS
    self-signatures), then a detached signature made by the card and verified by gpg."""
    card, reader = card_in_reader
    (Path(gnupghome["GNUPGHOME"]) / "gpg-agent.conf").write_text("allow-loopback-pinentry\n")
    fingerprint = gpg_generate_on_card(
        gnupghome, name="Card Approver", email="approver@example.org",
        pins=["12345678", "123456", "123456", "123456"], timeout=60,
    )
    assert len(fingerprint) == 40
    document = tmp_path / "approval.txt"
    document.write_text("approve request 42\n")
    gpg = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "123456"]
    subprocess.run(
        [*gpg, "--local-user", fingerprint, "--detach-sign", str(document)],
        env=gnupghome, check=True, capture_output=True, timeout=60,
    )
    verified = subprocess.run(
        ["gpg", "--batch", "--status-fd", "1", "--verify", f"{document}.sig", str(document)],
        env=gnupghome, check=True, capture_output=True, text=True, timeout=60,
    ).stdout
    assert f"VALIDSIG {fingerprint}" in verified
    subprocess.run(["gpgconf", "--kill", "scdaemon"], env=gnupghome, check=False, timeout=30)
    # coldvault's client reads what gpg put on the card, and agrees on the fingerprint
    with PcscConnection(reader) as conn:
        session = OpenPgpSession(conn)
        app = session.select()
        assert app.fingerprints[0].hex().upper() == fingerprint
        assert openpgp_v4_fingerprint(
            CardAlgorithm.ED25519, session.public_key(), app.generation_times[0]
        ).hex().upper() == fingerprint
        assert session.signature_counter() >= 3  # self-signatures + the detached signature
