"""Two pytest-xdist workers, two labs: no token dir, pcscd socket, vpcd port, card state
file or process is shared, and each worker's PC/SC and PKCS#11 calls reach only its own lab
while both labs are up at the same time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.lab.child_pytest import popen

pytestmark = [pytest.mark.lab, pytest.mark.slow]

CHILD_TEST = '''
import json, os, time
from pathlib import Path

from coldvault.backends.pcsc import PcscConnection
from coldvault.cards.openpgp import OpenPgpSession
from coldvault.keys.keystore import KeyAlgorithm

OUT = Path(os.environ["ISOLATION_OUT"])
SERIALS = {"gw0": "C0DE0001", "gw1": "C0DE0002"}


def _barrier(name, timeout=90):
    (OUT / f"{name}-{os.environ['PYTEST_XDIST_WORKER']}").write_text("")
    deadline = time.monotonic() + timeout
    while len(list(OUT.glob(f"{name}-gw*"))) < 2:
        assert time.monotonic() < deadline, f"the other worker never reached {name}"
        time.sleep(0.05)


def _one_worker(lab, pcsc_lab, card_factory, keystore):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    card = card_factory(SERIALS[worker], 0)
    _barrier("up")  # both labs are up, each with a card in its reader 0
    with PcscConnection(pcsc_lab.reader_names()[0]) as connection:
        session = OpenPgpSession(connection)
        session.select()
        seen = session.serial_hex
    keystore.generate_key(KeyAlgorithm.SECP256K1, b"isolation", "isolation")
    _barrier("keyed")  # both tokens now hold a key with the same id
    same_id = [k for k in keystore.list_keys() if k.key_id == b"isolation"]
    facts = {
        "worker": worker, "pid": os.getpid(), "seen_serial": seen,
        "token_dir": str(lab.softhsm.token_dir), "softhsm_conf": os.environ["SOFTHSM2_CONF"],
        "socket": os.environ["PCSCLITE_CSOCK_NAME"], "ports": pcsc_lab.reader_ports,
        "pcscd": pcsc_lab.pid, "card_state": str(card.state_file), "card_pid": card.pid,
        "keys_with_the_id": len(same_id), "lab_dir": str(lab.state_dir),
    }
    (OUT / f"{worker}.json").write_text(json.dumps(facts))
    _barrier("reported")


def test_worker_a(lab, pcsc_lab, card_factory, keystore):
    _one_worker(lab, pcsc_lab, card_factory, keystore)


def test_worker_b(lab, pcsc_lab, card_factory, keystore):
    _one_worker(lab, pcsc_lab, card_factory, keystore)
'''


def test_two_workers_share_nothing(tmp_path: Path) -> None:
    test_file = tmp_path / "test_child_isolation.py"
    test_file.write_text(CHILD_TEST)
    out = tmp_path / "facts"
    out.mkdir()
    child = popen(test_file, "-n", "2", "--dist", "load", ISOLATION_OUT=str(out))
    try:
        output, _ = child.communicate(timeout=240)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    text = output.decode(errors="replace")
    assert child.returncode == 0, text
    assert "2 passed" in text, text
    a, b = (json.loads((out / f"{w}.json").read_text()) for w in ("gw0", "gw1"))
    assert a["pid"] != b["pid"]
    # each worker saw the card it inserted, though both sat in "reader 0" at the same time
    assert (a["seen_serial"], b["seen_serial"]) == ("C0DE0001", "C0DE0002")
    # each token holds exactly its own key with the shared id
    assert a["keys_with_the_id"] == b["keys_with_the_id"] == 1
    for key in ("token_dir", "softhsm_conf", "socket", "pcscd", "card_state", "card_pid",
                "lab_dir"):
        assert a[key] != b[key], f"both workers share {key}: {a[key]}"
    assert not set(a["ports"]) & set(b["ports"]), "both workers' vpcd readers share ports"
    assert a["socket"].startswith(a["lab_dir"]) and b["socket"].startswith(b["lab_dir"])
    assert a["card_state"] != b["card_state"]
