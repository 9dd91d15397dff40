"""``coldvault ceremony backup`` through the real terminal (pexpect, the one driver): a flat
2-of-3 plan over three SoftHSM backup tokens of its own; shares typed, token PINs typed,
``--json`` result; then a second run into the same directory is refused (exit 2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from coldvault.backup.record import parse_record
from coldvault.crypto import mnemonics
from coldvault.crypto.bip32 import master_fingerprint
from hardware_emulators.ceremony_driver import answer, finish, spawn
from hardware_emulators.softhsm_lab import SoftHsmLab, TokenSpec, softhsm_available

pytestmark = pytest.mark.lab
TOKENS = ("cv-smoke-bk-0", "cv-smoke-bk-1", "cv-smoke-bk-2")
SO_PIN, PIN = "lab-so-smoke", "lab-user-smoke"  # TEST ONLY
SECRET = bytes(range(32))  # TEST ONLY
SHARES = mnemonics.split_secret(bytearray(SECRET), 2, 3)
FINGERPRINT = master_fingerprint(SECRET).hex()


@pytest.fixture(scope="module")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmLab]:
    if not softhsm_available():
        pytest.skip("SoftHSM2 is not installed (Debian package softhsm2)")
    lab = SoftHsmLab(
        state_dir=tmp_path_factory.mktemp("smoke-backup-hsm"),
        tokens=[TokenSpec(t, SO_PIN, PIN) for t in TOKENS],
    ).setup()
    yield lab
    lab.destroy()


def _plan(hsm: SoftHsmLab) -> str:
    serials = {s.label: s.serial for s in hsm.status()}
    out = ['format = "coldvault-backup-plan/1"', 'id = "smoke"', "[scheme]", "threshold = 2",
           'members = ["t0", "t1", "t2"]']  # fmt: skip
    for i, label in enumerate(TOKENS):
        out += ["[[sites]]", f'name = "s{i}"', f'location = "room {i}"', f'custodians = ["S{i}"]',
                "[[sites.targets]]", f'id = "t{i}"', 'kind = "hsm"', f'label = "{label}"',
                f'serial = "{serials[label]}"']  # fmt: skip
    return "\n".join(out) + "\n"


def test_ceremony_backup_on_the_terminal(hsm: SoftHsmLab, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(_plan(hsm))
    out = tmp_path / "backup"
    argv = ["backup", "--operator", "Olga Operator", "--allow-emulated", "--module",
            hsm.module_path, "--plan", str(plan), "--out", str(out), "--json",
            "--expect-fingerprint", FINGERPRINT,
            "--transcript", str(tmp_path / "backup.jsonl")]  # fmt: skip
    log = tmp_path / "pexpect.log"
    child = spawn(argv, hsm.env, log)
    dialogue = [
        (r"Is this the approved plan, and is the room prepared\? Type yes to continue: ", "yes"),
        ("SLIP-39 share 1: ", SHARES[2]),
        ("SLIP-39 share 2: ", SHARES[0]),
    ]
    pins = [(f"User PIN of backup token {t} \\(t{i} at s{i}\\): ", PIN)
            for i, t in enumerate(TOKENS)]  # fmt: skip
    dialogue += pins  # enrolment
    dialogue += pins  # read-back
    answer(child, dialogue)
    child.expect(r'\{"[^\r\n]*"ok": true[^\r\n]*\}')
    result = json.loads(child.match.group(0))
    assert finish(child) == 0
    assert result["master_fingerprint"] == FINGERPRINT
    record = parse_record((out / "backup-record.json").read_bytes())
    assert record.sha256 == result["record_sha256"]
    assert sorted(result["blobs"]) == ["t0", "t1", "t2"]
    progress = json.loads((out / "progress.json").read_text())
    assert progress["status"] == "complete"
    text = log.read_text()
    assert "Trial combine" in text
    for share in SHARES:
        assert " ".join(share.split()[:4]) not in text
    assert PIN not in text

    # never over an earlier backup
    child = spawn([*argv[:-2], "--transcript", str(tmp_path / "again.jsonl")], hsm.env, log)
    child.expect(r'\{"[^\r\n]*"ok": false[^\r\n]*\}')
    error = json.loads(child.match.group(0))
    assert finish(child) == 2
    assert error["error"] == "backup-output-exists" and "is complete" in error["message"]
