"""``coldvault ceremony backup`` and ``coldvault drill`` through the real terminal (pexpect,
the one driver): a flat 2-of-3 plan over three SoftHSM backup tokens of its own; shares and
token PINs typed, ``--json`` results; a second backup into the same directory is refused
(exit 2); the drill "s1 lost" restores into a fresh token; its report verifies and is
listed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from coldvault.backup.record import parse_record
from coldvault.crypto import mnemonics
from coldvault.crypto.bip32 import master_fingerprint
from hardware_emulators.ceremony_driver import answer, finish, spawn, spawn_coldvault
from hardware_emulators.softhsm_lab import SoftHsmLab, TokenSpec, softhsm_available

pytestmark = pytest.mark.lab
TOKENS = ("cv-smoke-bk-0", "cv-smoke-bk-1", "cv-smoke-bk-2")
PROD, FRESH = "cv-smoke-prod", "cv-smoke-fresh"
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
        tokens=[TokenSpec(t, SO_PIN, PIN) for t in (*TOKENS, PROD, FRESH)],
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
            hsm.module_path, "--plan", str(plan), "--out", str(out), "--json", "--unsigned",
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
    child.expect(r'\{"[^\r\n]*"ok": true[^\r\n]*\}(?=\r?\n)')
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
    child.expect(r'\{"[^\r\n]*"ok": false[^\r\n]*\}(?=\r?\n)')
    error = json.loads(child.match.group(0))
    assert finish(child) == 2
    assert error["error"] == "backup-output-exists" and "is complete" in error["message"]


def _provisioning(hsm: SoftHsmLab, tmp_path: Path, log: Path) -> Path:
    """The production pool on its own token, by the provision ceremony (its public record)."""
    exports = tmp_path / "exports"
    child = spawn(["provision", "--operator", "O", "--allow-emulated", "--module",
                   hsm.module_path, "--token", PROD, "--template", "bip84",
                   "--template", "bip44-eth", "--pool-size", "1", "--export-dir", str(exports),
                   "--yes",
                   "--transcript", str(tmp_path / "provision.jsonl")], hsm.env, log)  # fmt: skip
    answer(child, [(f"HSM user PIN for token {PROD} .*: ", PIN),
                   ("SLIP-39 share 1: ", SHARES[0]), ("SLIP-39 share 2: ", SHARES[1])])  # fmt: skip
    assert finish(child) == 0
    return exports / "provisioning.json"


def test_drill_on_the_terminal(hsm: SoftHsmLab, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(_plan(hsm))
    out = tmp_path / "backup"
    log = tmp_path / "pexpect.log"
    pins = [(f"User PIN of backup token {t} \\(t{i} at s{i}\\): ", PIN)
            for i, t in enumerate(TOKENS)]  # fmt: skip
    child = spawn(["backup", "--operator", "O", "--allow-emulated", "--module", hsm.module_path,
                   "--plan", str(plan), "--out", str(out), "--yes", "--unsigned",
                   "--transcript", str(tmp_path / "backup.jsonl")], hsm.env, log)  # fmt: skip
    answer(child, [("SLIP-39 share 1: ", SHARES[1]), ("SLIP-39 share 2: ", SHARES[2]),
                   *pins, *pins])  # fmt: skip
    assert finish(child) == 0
    provisioning = _provisioning(hsm, tmp_path, log)
    reports = tmp_path / "drills"

    child = spawn_coldvault(
        ["drill", "run", "--operator", "Lead", "--allow-emulated", "--module", hsm.module_path,
         "--plan", str(plan), "--backup", str(out), "--scenario", "s1 lost", "--unsigned",
         "--reports", str(reports), "--provisioning", str(provisioning),
         "--restore-token", FRESH, "--json"],
        hsm.env, log,
    )  # fmt: skip
    answer(child, [
        (r"Run the drill 's1 lost'\? Type yes to continue: ", "yes"),
        (f"User PIN of the fresh token {FRESH} \\(restore\\): ", PIN),
        pins[0], pins[2],
    ])  # fmt: skip
    child.expect(r'\{"[^\r\n]*"ok": true[^\r\n]*\}(?=\r?\n)')
    result = json.loads(child.match.group(0))
    assert finish(child) == 0
    report = result["report"]
    assert report["passed"] is True, report["reasons"]
    assert report["sites_used"] == ["s0", "s2"]
    assert report["restore"]["token"] == FRESH
    assert report["restore"]["ok"] is True and len(report["restore"]["signatures"]) == 2
    assert all(s["verified_against_production_key"] for s in report["restore"]["signatures"])

    # a report is verified against the roster whose admins signed it (tests/backup/
    # test_signed_records.py); without one, drill verify refuses to say anything
    child = spawn_coldvault(["drill", "verify", "--json", result["report_file"]], hsm.env, log)
    child.expect("--roster")
    assert finish(child) == 2
    child = spawn_coldvault(["drill", "list", "--json", "--reports", str(reports)], hsm.env, log)
    child.expect(r'\{"[^\r\n]*"ok": true[^\r\n]*\}(?=\r?\n)')
    listed = json.loads(child.match.group(0))
    assert finish(child) == 0
    assert len(listed["reports"]) == 1 and listed["overdue"] is False

    # the drill with two sites lost fails (exit 1) and says what is missing
    child = spawn_coldvault(
        ["drill", "run", "--operator", "Lead", "--allow-emulated", "--module", hsm.module_path,
         "--plan", str(plan), "--backup", str(out), "--scenario", "s1, s2 lost", "--yes",
         "--unsigned",
         "--reports", str(reports), "--json"], hsm.env, log,
    )  # fmt: skip
    answer(child, [pins[0]])
    child.expect(r'\{"[^\r\n]*"ok": true[^\r\n]*\}(?=\r?\n)')
    failed = json.loads(child.match.group(0))["report"]
    assert finish(child) == 1
    assert failed["passed"] is False and "Too few shares" in " ".join(failed["reasons"])
    text = log.read_text()
    assert PIN not in text and " ".join(SHARES[1].split()[:4]) not in text


def test_an_unsigned_record_is_an_explicit_choice(tmp_path: Path) -> None:
    """Forgetting --roster would leave a backup record or drill report no check accepts (the
    ceremony held again); it is refused before any prompt or file, unless --unsigned says
    so. Both together contradict each other."""
    from click.testing import CliRunner

    from appliance.cli import main

    plan = tmp_path / "plan.toml"
    plan.write_text("not read: refused first")
    roster = tmp_path / "roster.json"
    roster.write_text("{}")
    base = {
        "ceremony backup": ["ceremony", "backup", "--operator", "O", "--module", "m",
                            "--plan", str(plan), "--out", str(tmp_path / "out")],
        "drill run": ["drill", "run", "--operator", "O", "--module", "m", "--plan", str(plan),
                      "--backup", str(tmp_path), "--scenario", "s1 lost"],
    }  # fmt: skip
    for name, argv in base.items():
        missing = CliRunner().invoke(main, [*argv, "--json"])
        assert missing.exit_code == 2, (name, missing.output)
        assert "not signed by the admin quorum" in missing.output
        assert "--unsigned" in missing.output
        both = CliRunner().invoke(main, [*argv, "--roster", str(roster), "--unsigned"])
        assert both.exit_code == 2 and "--unsigned contradicts" in both.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.toml", "roster.json"]
