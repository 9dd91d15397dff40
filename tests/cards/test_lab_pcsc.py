"""Hardware-path tests: real pcscd + vpcd + virtual card processes + pyscard.

Insertion, removal, swaps, pulled cards, empty and missing readers, persistence across
reinsertion, and the lab's own process hygiene.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coldvault.backends.pcsc import (
    PcscConnection,
    is_emulated,
    list_readers,
    wait_for_card,
    wait_for_removal,
)
from coldvault.cards import (
    CardAlgorithm,
    CardRemoved,
    OpenPgpSession,
    Pw,
    WrongPin,
    card_input,
    verify_card_signature,
)
from coldvault.cards.errors import CardBusy, CardTimeout, NoCard, ReaderNotFound
from hardware_emulators.pcsc_lab import PcscLab

pytestmark = pytest.mark.lab


def _session(reader: str) -> tuple[PcscConnection, OpenPgpSession]:
    conn = PcscConnection(reader)
    session = OpenPgpSession(conn)
    session.select()
    return conn, session


def test_lab_readers_are_private(pcsc_lab: PcscLab) -> None:
    assert list_readers()[:3] == pcsc_lab.reader_names()
    assert pcsc_lab.socket_path.is_socket()
    assert Path(os.environ["PCSCLITE_CSOCK_NAME"]) == pcsc_lab.socket_path
    assert len(set(pcsc_lab.reader_ports)) == 3
    # the lab's pcscd never touches the host's /run/pcscd
    assert not Path("/run/pcscd/pcscd.pid").exists() or pcsc_lab.pid != int(
        Path("/run/pcscd/pcscd.pid").read_text().strip() or 0
    )


def test_emulated_card_is_recognised(inserted) -> None:
    card, reader = inserted
    conn, session = _session(reader)
    with conn:
        assert session.serial == card.serial
        assert is_emulated(session)


def test_reader_without_card(pcsc_lab: PcscLab) -> None:
    with pytest.raises(NoCard) as err:
        PcscConnection(pcsc_lab.reader_names()[1])
    assert err.value.reader == pcsc_lab.reader_names()[1]


def test_unknown_reader(pcsc_lab: PcscLab) -> None:
    with pytest.raises(ReaderNotFound):
        PcscConnection("No Such Reader 00 00")


def test_wait_for_card_times_out_on_empty_reader(pcsc_lab: PcscLab) -> None:
    started = time.monotonic()
    with pytest.raises(CardTimeout):
        wait_for_card(pcsc_lab.reader_names()[1], timeout=0.5)
    assert time.monotonic() - started < 3


def test_exclusive_connection_keeps_others_out(inserted) -> None:
    _card, reader = inserted
    with PcscConnection(reader):
        with pytest.raises(CardBusy):
            PcscConnection(reader)


def test_card_pulled_mid_session(inserted) -> None:
    card, reader = inserted
    conn, session = _session(reader)
    with conn:
        session.verify_pin("12345678", Pw.ADMIN)
        card.pull()  # SIGKILL: the card vanishes between two APDUs
        with pytest.raises(CardRemoved) as err:
            session.generate_key(CardAlgorithm.ED25519)
        assert err.value.reader == reader
        with pytest.raises(CardRemoved):
            session.pin_status()
    wait_for_removal(reader, timeout=5)


def test_swap_two_cards_in_one_reader(pcsc_lab: PcscLab, make_card) -> None:
    reader, port = pcsc_lab.reader_names()[0], pcsc_lab.reader_ports[0]
    alice, bob = make_card("alice", 0xA11CE), make_card("bob", 0xB0B)
    alice.insert(port)
    conn, session = _session(wait_for_card(reader, timeout=5))
    with conn:
        assert session.serial == 0xA11CE
    alice.remove()
    wait_for_removal(reader, timeout=5)
    bob.insert(port)
    conn, session = _session(wait_for_card(reader, timeout=5))
    with conn:
        assert session.serial_hex == "00000B0B"
    bob.remove()
    wait_for_removal(reader, timeout=5)


def test_state_persists_across_removal_and_reinsertion(pcsc_lab: PcscLab, make_card) -> None:
    card = make_card("persistent")
    card.insert(pcsc_lab.reader_ports[0])
    conn, session = _session(pcsc_lab.reader_names()[0])
    with conn:
        session.verify_pin("12345678", Pw.ADMIN)
        public_key = session.generate_key(CardAlgorithm.NIST_P256)
        approved = b"approve request 1"
        session.verify_pin("123456", Pw.SIGN)
        signature = session.sign(card_input(CardAlgorithm.NIST_P256, approved))
        with pytest.raises(WrongPin):
            session.verify_pin("000000", Pw.USER)
    card.remove()
    wait_for_removal(pcsc_lab.reader_names()[0], timeout=5)
    # reinsert into a different reader
    card.insert(pcsc_lab.reader_ports[2])
    conn, session = _session(pcsc_lab.reader_names()[2])
    with conn:
        assert session.public_key() == public_key
        assert session.signature_counter() == 1
        assert session.tries_left(Pw.USER) == 2
        assert verify_card_signature(CardAlgorithm.NIST_P256, public_key, approved, signature)
    card.remove()
    wait_for_removal(pcsc_lab.reader_names()[2], timeout=5)


def test_card_removed_then_wait_for_removal(inserted) -> None:
    card, reader = inserted
    card.remove()
    wait_for_removal(reader, timeout=5)
    with pytest.raises(NoCard):
        PcscConnection(reader)


_ORPHAN_SCRIPT = """
import sys, time
from pathlib import Path
from hardware_emulators.pcsc_lab import PcscLab
from hardware_emulators.openpgp_card.controller import VirtualCard
lab = PcscLab(state_dir=Path(sys.argv[1]), readers=1).start()
card = VirtualCard(state_file=Path(sys.argv[1]) / "c.json", serial=5)
card.insert(lab.reader_ports[0])
print(lab.pid, card.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_children_die_when_the_controller_is_killed(tmp_path: Path) -> None:
    """SIGKILL the controlling process: PDEATHSIG must take pcscd and the card with it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        pcscd_pid, card_pid = (int(x) for x in line.split())
        assert _alive(pcscd_pid) and _alive(card_pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (_alive(pcscd_pid) or _alive(card_pid)):
        time.sleep(0.05)
    assert not _alive(pcscd_pid)
    assert not _alive(card_pid)


def test_lab_stop_leaves_nothing_running(tmp_path: Path) -> None:
    lab = PcscLab(state_dir=tmp_path / "lab", readers=2)
    with lab:
        pid = lab.pid
        assert pid is not None and _alive(pid)
        ports = lab.reader_ports
    assert not _alive(pid)
    assert not lab.running()
    assert len(ports) == 2


def test_card_pulled_in_the_middle_of_a_signature(pcsc_lab: PcscLab, make_card) -> None:
    """The card is yanked while it computes PSO:CDS (the card stalls 3 s on INS 2A)."""
    import threading

    card = make_card("stalling")
    card.stall = (0x2A, 3.0)
    card.insert(pcsc_lab.reader_ports[1])
    reader = pcsc_lab.reader_names()[1]
    conn, session = _session(reader)
    with conn:
        session.verify_pin("12345678", Pw.ADMIN)
        session.generate_key(CardAlgorithm.ED25519)
        session.verify_pin("123456", Pw.SIGN)
        timer = threading.Timer(0.5, card.pull)
        timer.start()
        started = time.monotonic()
        with pytest.raises(CardRemoved):
            session.sign(b"approval")
        timer.join()
        assert time.monotonic() - started < 3.0
    wait_for_removal(reader, timeout=5)


def test_one_card_cannot_sit_in_two_readers(pcsc_lab: PcscLab, make_card, tmp_path) -> None:
    from hardware_emulators.openpgp_card.controller import VirtualCard
    from hardware_emulators.pcsc_lab import LabError

    card = make_card("single", 0x51)
    card.insert(pcsc_lab.reader_ports[0])
    twin = VirtualCard(state_file=card.state_file, serial=0x51, log_file=tmp_path / "twin.log")
    with pytest.raises(LabError, match="already inserted"):
        twin.insert(pcsc_lab.reader_ports[1], timeout=5)
    assert not twin.inserted
    card.remove()
    wait_for_removal(pcsc_lab.reader_names()[0], timeout=5)


def test_wait_for_card_in_any_reader(pcsc_lab: PcscLab, make_card) -> None:
    card = make_card("anywhere")
    card.insert(pcsc_lab.reader_ports[2])
    assert wait_for_card(timeout=5) == pcsc_lab.reader_names()[2]
    card.remove()
    wait_for_removal(pcsc_lab.reader_names()[2], timeout=5)


def test_taken_reader_port_is_reported(tmp_path: Path) -> None:
    import socket

    from hardware_emulators.pcsc_lab import LabError, find_free_port_run

    base = find_free_port_run(2)
    with socket.socket() as squatter:
        squatter.bind(("0.0.0.0", base + 1))
        squatter.listen()
        lab = PcscLab(state_dir=tmp_path / "busy", readers=2, base_port=base, start_timeout=5)
        with pytest.raises(LabError, match="port was taken"):
            lab.start()
        assert not lab.running()
