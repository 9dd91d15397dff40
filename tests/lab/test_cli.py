"""``coldvault-lab`` end to end via subprocess, in a private lab dir with runtime-chosen ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hardware_emulators.lab import proc_identity, read_registry, stop_daemon

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]


def _lab(
    lab_dir: Path, *args: str, check: bool = True, bound_to: int | None = None
) -> subprocess.CompletedProcess[str]:
    # Bind any daemon to this pytest process: even a SIGKILLed test run leaves no lab behind.
    env = dict(
        os.environ,
        COLDVAULT_LAB_DIR=str(lab_dir),
        COLDVAULT_LAB_BOUND_TO=str(bound_to or os.getpid()),
    )
    for key in ("SOFTHSM2_CONF", "PCSCLITE_CSOCK_NAME"):
        env.pop(key, None)
    proc = subprocess.run(
        [sys.executable, "-m", "hardware_emulators.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"coldvault-lab {' '.join(args)} failed: {proc.stderr}")
    return proc


def _alive(pid: int) -> bool:
    return proc_identity(pid) is not None


def _wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


@pytest.fixture
def lab_dir(tmp_path: Path):
    path = tmp_path / "lab"
    yield path
    # never leave a daemon behind, even when an assertion failed half-way
    if read_registry(path):
        stop_daemon(path)


def test_help_for_every_command() -> None:
    for cmd in ([], ["up"], ["status"], ["down"], ["insert"], ["remove"], ["env"]):
        out = _lab(Path("/nonexistent"), *cmd, "--help")
        assert "Usage:" in out.stdout
    assert "--json" in _lab(Path("/x"), "status", "--help").stdout
    epilog = " ".join(_lab(Path("/x"), "--help").stdout.split())
    assert "Exit status: 0 done 1 refused or cancelled" in epilog
    assert "2 bad input or usage 3 internal error" in epilog


def test_up_status_insert_remove_down(lab_dir: Path) -> None:
    up = json.loads(_lab(lab_dir, "up", "--json").stdout)  # one document, nothing else
    assert up["ok"] is True and up["state_dir"] == str(lab_dir)
    labels = {t["label"]: t for t in up["softhsm"]["tokens"]}
    assert set(labels) == {"coldvault-appliance", "backup-site-a", "backup-site-b", "backup-site-c"}
    assert labels["coldvault-appliance"]["role"] == "appliance"
    assert all(len(t["serial"]) == 16 for t in labels.values())
    pcsc = up["pcsc"]
    assert pcsc["running"] and _alive(pcsc["pid"])
    assert Path(pcsc["socket"]).is_socket()
    assert [r["card"] for r in pcsc["readers"]] == [None, None, None]
    supervisor = up["daemon"]
    assert _alive(supervisor)

    # idempotent: a second up keeps the same lab and tokens
    again = json.loads(_lab(lab_dir, "up", "--json").stdout)
    assert again["daemon"] == supervisor
    assert {t["serial"] for t in again["softhsm"]["tokens"]} == {
        t["serial"] for t in labels.values()
    }

    _lab(lab_dir, "insert", "C0DE0001", "0")
    _lab(lab_dir, "insert", "C0DE0004", "Coldvault vpcd 1 00 00")
    busy = _lab(lab_dir, "insert", "C0DE0002", "0", check=False)
    assert busy.returncode == 2 and busy.stdout == ""
    assert "Reader 0 already holds card C0DE0001; remove it first." in busy.stderr
    unknown = _lab(lab_dir, "insert", "FFFFFFFF", "1", check=False)
    assert unknown.returncode == 2 and "no card with serial 'FFFFFFFF'" in unknown.stderr

    status = json.loads(_lab(lab_dir, "status", "--json").stdout)
    readers = status["pcsc"]["readers"]
    assert [r["card"] for r in readers] == ["C0DE0001", None, "C0DE0004"]
    cards = {c["serial"]: c for c in status["cards"]}
    assert cards["C0DE0001"]["reader"] == 0 and cards["C0DE0004"]["reader"] == 2
    assert cards["C0DE0001"]["holder"] == "Alice Approver"
    assert cards["C0DE0001"]["enrolled"] is False  # cards start blank (factory state)
    assert cards["C0DE0003"] == {
        "serial": "C0DE0003",
        "holder": "Carol Approver",
        "role": "approver",
        "site": "site-c",
        "reader": None,
        "enrolled": False,
        "signature_counter": 0,
    }

    registry = read_registry(lab_dir)
    assert registry is not None
    children = {name: entry["pid"] for name, entry in registry["children"].items()}
    assert set(children) == {"pcscd", "card:C0DE0001", "card:C0DE0004"}
    assert all(_alive(pid) for pid in children.values())

    # env prints export lines another shell can eval
    env_lines = _lab(lab_dir, "env").stdout.splitlines()
    exports = dict(line.removeprefix("export ").split("=", 1) for line in env_lines)
    assert exports["SOFTHSM2_CONF"] == str(lab_dir / "softhsm" / "softhsm2.conf")
    assert exports["PCSCLITE_CSOCK_NAME"] == status["pcsc"]["socket"]

    # an independent PC/SC client sees the inserted cards through the private socket
    listing = subprocess.run(
        ["opensc-tool", "--list-readers"],
        env=dict(os.environ, PCSCLITE_CSOCK_NAME=exports["PCSCLITE_CSOCK_NAME"]),
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    present = [line for line in listing.splitlines() if "Coldvault vpcd" in line]
    assert len(present) >= 3
    assert sum(" Yes " in line for line in present) == 2

    removed = _lab(lab_dir, "remove", "0").stdout
    assert "removed C0DE0001" in removed
    assert _wait_gone([children["card:C0DE0001"]]) == []

    out = _lab(lab_dir, "down").stdout
    assert str(supervisor) in out
    every = [supervisor, *children.values()]
    assert _wait_gone(every) == [], "lab processes survived 'down'"
    assert read_registry(lab_dir) is None
    assert "no lab running" in _lab(lab_dir, "down").stdout
    # tokens survive down (state), and status works without the supervisor
    offline = json.loads(_lab(lab_dir, "status", "--json").stdout)
    assert offline["daemon"] is None and not offline["pcsc"]["running"]
    assert len(offline["softhsm"]["tokens"]) == 4
    assert _lab(lab_dir, "insert", "C0DE0001", "0", check=False).returncode == 2
    _lab(lab_dir, "down", "--purge")
    assert not lab_dir.exists()


def test_down_never_kills_a_process_it_did_not_start(lab_dir: Path) -> None:
    """A registry naming a foreign PID (or a reused PID) must not get it killed."""
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ident = proc_identity(victim.pid)
        assert ident is not None
        lab_dir.mkdir(parents=True)
        fake = {
            "supervisor": {"pid": victim.pid, "cmdline": ident[0], "start": "1"},  # wrong start
            "children": {"pcscd": {"pid": victim.pid, "cmdline": ["pcscd"], "start": ident[1]}},
        }
        (lab_dir / "lab.json").write_text(json.dumps(fake))
        assert stop_daemon(lab_dir) == []
        time.sleep(0.2)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_daemon_bound_to_a_process_stops_when_it_dies(lab_dir: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        status = json.loads(_lab(lab_dir, "up", "--json", bound_to=holder.pid).stdout)
        pids = [status["daemon"], status["pcsc"]["pid"]]
        assert all(_alive(p) for p in pids)
        holder.kill()
        holder.wait()
        assert _wait_gone(pids) == [], "a bound lab outlived its holder"
        assert read_registry(lab_dir) is None
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_cli_errors_are_one_sentence_and_exit_2(lab_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[pcsc]\nreaders = 99\n")
    out = _lab(lab_dir, "--lab-file", str(bad), "up", check=False)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith(f"coldvault-lab: The lab file '{bad}' is invalid:")
    assert out.stderr.count("\n") == 1
    assert not (lab_dir / "lab.json").exists()
    as_json = _lab(lab_dir, "--lab-file", str(bad), "up", "--json", check=False)
    assert as_json.returncode == 2
    document = json.loads(as_json.stdout)  # the whole of stdout is one JSON document
    assert document["ok"] is False and document["error"] == "lab-file"
    assert document["path"] == str(bad)
    assert as_json.stderr == out.stderr
    for args in (["insert", "C0DE0001", "0"], ["remove", "0"]):
        res = _lab(lab_dir, *args, check=False)
        assert res.returncode == 2 and res.stdout == ""
        assert res.stderr.strip() == (
            f"coldvault-lab: No lab is running in '{lab_dir}'; run 'coldvault-lab up'."
        )
    offline = _lab(lab_dir, "status", "--json", "--bogus", check=False)
    assert offline.returncode == 2 and offline.stdout == ""
    assert "No such option '--bogus'" in offline.stderr
