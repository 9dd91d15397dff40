"""Interrupting or killing a test run that holds lab fixtures leaves no lab process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hardware_emulators.lab import proc_identity

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]

CHILD_TEST = """
import json, os, time

def test_hold_the_lab(softhsm_lab, pcsc_lab, card_factory):
    card = card_factory("C0DE0002")
    pids = {"pcscd": pcsc_lab.pid, "card": card.pid, "pytest": os.getpid()}
    out = os.environ["LAB_PIDS_OUT"]
    with open(out + ".tmp", "w") as f:
        json.dump(pids, f)
    os.replace(out + ".tmp", out)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    return proc_identity(pid) is not None


def _run_child_pytest(tmp_path: Path) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    test_file = tmp_path / "test_child_lab.py"
    test_file.write_text(CHILD_TEST)
    pids_file = tmp_path / "pids.json"
    env = dict(os.environ, LAB_PIDS_OUT=str(pids_file))
    for key in ("SOFTHSM2_CONF", "PCSCLITE_CSOCK_NAME", "PYTEST_ADDOPTS"):
        env.pop(key, None)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.conftest",
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            str(test_file),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not pids_file.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            out = child.stdout.read().decode() if child.stdout else ""
            child.kill()
            raise AssertionError(f"child pytest did not bring the lab up:\n{out}")
        time.sleep(0.05)
    return child, json.loads(pids_file.read_text())


def _wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return []
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_killing_the_test_process_stops_its_lab(tmp_path: Path, sig: signal.Signals) -> None:
    child, pids = _run_child_pytest(tmp_path)
    try:
        lab_pids = [pids["pcscd"], pids["card"]]
        assert all(_alive(p) for p in lab_pids)
        os.kill(child.pid, sig)
        child.wait(timeout=30)
        assert _wait_gone(lab_pids) == [], f"lab processes survived {sig.name} of their parent"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout:
            child.stdout.close()


CHILD_WORKER_DIES = """
import json, os, signal


def test_dies_holding_the_lab(pcsc_lab, card_factory):
    card = card_factory("C0DE0002")
    pids = {"pcscd": pcsc_lab.pid, "card": card.pid, "worker": os.getpid()}
    out = os.environ["LAB_PIDS_OUT"]
    with open(out + ".tmp", "w") as f:
        json.dump(pids, f)
    os.replace(out + ".tmp", out)
    os.kill(os.getpid(), signal.SIGKILL)


def test_the_other_worker_carries_on(keystore):
    assert keystore.token_info.label == "coldvault-appliance"
"""


def test_a_dead_worker_takes_its_lab_along_and_is_reported(tmp_path: Path) -> None:
    """pytest-xdist: a worker killed mid-test leaves no lab process behind, the run names the
    test that was running, and the other tests still run."""
    from tests.lab.child_pytest import popen

    test_file = tmp_path / "test_child_worker.py"
    test_file.write_text(CHILD_WORKER_DIES)
    pids_file = tmp_path / "pids.json"
    child = popen(test_file, "-n", "2", "--dist", "load", "-rf", LAB_PIDS_OUT=str(pids_file))
    try:
        output, _ = child.communicate(timeout=240)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    text = output.decode(errors="replace")
    pids = json.loads(pids_file.read_text())
    assert _wait_gone([pids["pcscd"], pids["card"], pids["worker"]]) == [], (
        "the dead worker's lab processes survived it"
    )
    assert child.returncode == 1, text
    assert "crashed while running 'test_child_worker.py::test_dies_holding_the_lab'" in text, text
    assert "1 failed, 1 passed" in text, text
