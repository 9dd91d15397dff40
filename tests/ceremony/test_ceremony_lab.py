"""Scripted ceremonies on the emulated lab: real prompts (pexpect), SoftHSM, OpenSC, embit.

The HSM is a private SoftHSM lab (H4's :class:`SoftHsmLab`) with its own token, because
``init-appliance`` changes the token PINs and must not disturb the session-wide lab token
other suites log in to.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pexpect
import pytest
from embit.descriptor import Descriptor
from embit.networks import NETWORKS

from coldvault.crypto import mnemonics
from coldvault.keys.keystore import AUDIT_KEY_ID, IDENTITY_KEY_ID, KeyAlgorithm
from coldvault.keys.pool import AccountSpec, Template, derive_pool
from coldvault.records.transcript import read_entries, verify
from hardware_emulators.ceremony_driver import (
    DICE_PROMPT,
    fair_dice,
    finish,
    read_and_confirm_words,
    spawn,
)
from hardware_emulators.softhsm_lab import SoftHsmLab, TokenSpec, softhsm_available

pytestmark = pytest.mark.lab

TOKEN = "cv-ceremony-test"
ABORT_TOKEN = "cv-abort-test"
SO_PIN, USER_PIN = "lab-so-ceremony", "lab-user-ceremony"  # TEST ONLY
NEW_SO_PIN, NEW_USER_PIN = "lab-so-new-1", "lab-user-new-1"  # TEST ONLY
POOL = 3


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    if not softhsm_available():
        pytest.skip("SoftHSM2 is not installed (Debian package softhsm2)")
    hsm = SoftHsmLab(
        state_dir=tmp_path_factory.mktemp("ceremony-hsm"),
        tokens=[TokenSpec(TOKEN, SO_PIN, USER_PIN), TokenSpec(ABORT_TOKEN, SO_PIN, USER_PIN)],
    ).setup()
    yield hsm
    hsm.destroy()


def _args(work: Path, ceremony: str, name: str, *extra: str) -> list[str]:
    return [
        ceremony, "--operator", "Olga Operator", "--allow-emulated", "--token", TOKEN,
        "--transcript", str(work / "transcripts" / f"{name}.jsonl"), *extra,
    ]  # fmt: skip


def _init_appliance(lab: SoftHsmLab, work: Path, log: Path) -> None:
    args = _args(work, "init-appliance", "init", "--export-dir", str(work / "x"))
    child = spawn(args, lab.env, log)
    child.expect(f"Current HSM user PIN for token {TOKEN}: ")
    child.sendline(USER_PIN)
    child.expect(f"Current security-officer PIN for token {TOKEN}: ")
    child.sendline(SO_PIN)
    for prompt, pin in (
        ("New security-officer PIN: ", NEW_SO_PIN),
        ("Repeat new security-officer PIN: ", NEW_SO_PIN),
        ("New user PIN: ", "short"),  # refused: too short, asked again
        ("New user PIN: ", NEW_USER_PIN),
        ("Repeat new user PIN: ", NEW_USER_PIN),
    ):
        child.expect(prompt)
        child.sendline(pin)
    assert finish(child) == 0


def _generate_seed(lab: SoftHsmLab, work: Path, log: Path) -> list[str]:
    child = spawn(
        _args(
            work, "generate-seed", "seed", "--paper-backup", "--format", "slip39",
            "--threshold", "2", "--shares", "3", "--pool-size", str(POOL),
            "--export-dir", str(work / "exports"),
        ),
        lab.env,
        log,
    )  # fmt: skip
    child.expect("Is the room prepared as listed\\? Type yes to continue: ")
    child.sendline("yes")
    child.expect(f"HSM user PIN for token {TOKEN} .*: ")
    child.sendline(NEW_USER_PIN)
    child.expect(DICE_PROMPT)
    child.sendline("6" * 120)  # refused: all equal
    child.expect("Every dice roll has the same value")
    child.expect(DICE_PROMPT)
    child.sendline(fair_dice())
    shares = [read_and_confirm_words(child, f"share {i} of 3", f"share {i}") for i in (1, 2, 3)]
    child.expect(r"master fingerprint\s+│\s+([0-9a-f]{8})")
    assert finish(child) == 0
    return shares


def _hsm_keys(lab: SoftHsmLab, monkeypatch: pytest.MonkeyPatch) -> dict[bytes, object]:
    from coldvault.backends.pkcs11.keystore import Pkcs11Keystore

    monkeypatch.setenv("SOFTHSM2_CONF", str(lab.conf_path))
    with Pkcs11Keystore.open(lab.module_path, TOKEN, NEW_USER_PIN, allow_emulated=True) as ks:
        return {k.key_id: k for k in ks.list_keys()}


SPECS = [AccountSpec(t) for t in Template]


def test_full_ceremony(lab: SoftHsmLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "pexpect.log"
    _init_appliance(lab, tmp_path, log)

    # A live appliance cannot be re-initialised without --destroy-existing and a quorum.
    child = spawn(_args(tmp_path, "init-appliance", "reinit"), lab.env, log)
    child.expect(f"Current HSM user PIN for token {TOKEN}: ")
    child.sendline(NEW_USER_PIN)
    child.expect("it is a live appliance")
    assert finish(child) == 2
    reinit = verify(tmp_path / "transcripts" / "reinit.jsonl")
    assert reinit.status == "aborted"

    shares = _generate_seed(lab, tmp_path, log)
    secret = mnemonics.recover_secret([shares[2], shares[0]])
    exports, pool = derive_pool(secret, SPECS, POOL)

    # 1. HSM keys are exactly the derivations, sensitive and not extractable.
    keys = _hsm_keys(lab, monkeypatch)
    assert {IDENTITY_KEY_ID, AUDIT_KEY_ID} <= set(keys)
    assert len(pool) == 3 * POOL * 2  # bip84 + bip48 (receive+change), eth, sol
    for key in pool:
        info = keys[key.key_id]
        assert info.public_key == key.public_key, key.label
        assert info.label == key.label and info.algorithm == key.algorithm
        assert info.sensitive and not info.extractable
    assert sum(1 for k in keys.values() if k.algorithm is KeyAlgorithm.ED25519) == POOL + 1

    # 2. OpenSC's pkcs11-tool, an independent PKCS#11 client, sees the same flags.
    tool = shutil.which("pkcs11-tool")
    if tool is not None:
        out = subprocess.run(
            [tool, "--module", lab.module_path, "--token-label", TOKEN, "--login",
             "--pin", NEW_USER_PIN, "--list-objects", "--type", "privkey"],
            env={"SOFTHSM2_CONF": str(lab.conf_path), "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        blocks = [b for b in out.split("Private Key Object") if "label:" in b]
        assert len(blocks) == len(pool) + 2
        for block in blocks:
            access = block.split("Access:")[1].splitlines()[0]
            flags = {f.strip() for f in access.split(",")}
            assert "sensitive" in flags and "extractable" not in flags, block
            if "coldvault-audit" in block or "coldvault-identity" in block:
                # generated inside the HSM: PKCS#11 can vouch for its whole life
                assert {"always sensitive", "never extractable", "local"} <= flags
            else:
                # imported (C_CreateObject): PKCS#11 sets CKA_NEVER_EXTRACTABLE false for
                # any key that existed outside the token; it is CKA_EXTRACTABLE=false now.
                assert "never extractable" not in flags

    # 3. Exported descriptor: embit derives the HSM keys' addresses.
    export_dir = tmp_path / "exports"
    bip84 = exports[0]
    text = (export_dir / f"{bip84.spec.name}.descriptor.txt").read_text().strip()
    assert text == bip84.descriptor
    desc = Descriptor.from_string(text)
    for key in pool:
        if key.wallet != bip84.spec.name:
            continue
        want = Descriptor.from_string(f"wpkh({keys[key.key_id].public_key.hex()})").address()
        assert (
            desc.derive(key.path[-1], branch_index=key.path[-2]).address(NETWORKS["main"]) == want
        )
    account = json.loads((export_dir / f"{bip84.spec.name}.account.json").read_text())
    assert account["first_addresses"] == list(bip84.first_addresses)
    assert (export_dir / "wallets.proposed.toml").read_text().count("[[wallet]]") == 4

    # 4. The transcript verifies (CLI), and a changed byte fails (CLI exit code 2).
    path = tmp_path / "transcripts" / "seed.jsonl"
    child = spawn(["transcript", "verify", "--json", str(path)], lab.env, log)
    child.expect(r"\{.*\}")
    result = json.loads(child.match.group(0))
    assert finish(child) == 0 and result["status"] == "completed"
    steps = [e["step"] for e in read_entries(path)]
    assert steps[:3] == ["open", "room-checked", "hsm-opened"]
    assert {"dice-rejected", "entropy", "shares-created", "seed-created", "keys-imported",
            "exports-written", "close"} <= set(steps)  # fmt: skip
    html = path.with_suffix(".html").read_text()
    assert "VERIFIED: " in html and html.count("data:image/png;base64,") >= 6
    exported = next(e for e in read_entries(path) if e["step"] == "exports-written")["data"]
    assert exported["ur_account"].startswith("ur:crypto-account/")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x20
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(raw)
    child = spawn(["transcript", "verify", str(bad)], lab.env, log)
    child.expect("Error: Transcript")
    assert finish(child) == 2

    # 5. No secret reached any file: share words, master secret, PINs.
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()
                       and p.name != "pexpect.log")  # fmt: skip
    for share in shares:
        assert " ".join(share.split()[3:8]).encode() not in written
    assert secret.hex().encode() not in written
    assert NEW_USER_PIN.encode() not in written and SO_PIN.encode() not in written

    # 6a. a backup of another seed than expected is refused before any import.
    child = spawn(
        _args(tmp_path, "provision", "wrong-fp", "--from", "slip39", "--pool-size", "9",
              "--expect-fingerprint", "deadbeef", "--yes"),
        lab.env, log,
    )  # fmt: skip
    child.expect(f"HSM user PIN for token {TOKEN} .*: ")
    child.sendline(NEW_USER_PIN)
    for i, share in ((1, shares[0]), (2, shares[1])):
        child.expect(f"SLIP-39 share {i}: ")
        child.sendline(share)
    child.expect("Error: The backup gives master fingerprint")
    assert finish(child) == 2
    assert verify(tmp_path / "transcripts" / "wrong-fp.jsonl").status == "aborted"
    assert len(_hsm_keys(lab, monkeypatch)) == len(pool) + 2

    # 6. provision from two typed shares: existing keys verified, the pool grows by one.
    child = spawn(
        _args(tmp_path, "provision", "provision", "--from", "slip39", "--pool-size",
              str(POOL + 1), "--export-dir", str(tmp_path / "exports2"),
              "--expect-fingerprint", bip84.master_fingerprint.hex(), "--yes"),
        lab.env, log,
    )  # fmt: skip
    child.expect(f"HSM user PIN for token {TOKEN} .*: ")
    child.sendline(NEW_USER_PIN)
    child.expect("SLIP-39 share 1: ")
    child.sendline(shares[1])
    child.expect("SLIP-39 share 2: ")
    child.sendline(shares[2])
    child.expect(r"(\d+) keys imported, (\d+) already present")
    assert child.match.groups() == ("6", str(len(pool)))
    assert finish(child) == 0
    assert len(_hsm_keys(lab, monkeypatch)) == len(pool) + 6 + 2


def test_ctrl_c_aborts_and_leaves_nothing(lab: SoftHsmLab, tmp_path: Path) -> None:
    log = tmp_path / "pexpect.log"
    args = _args(tmp_path, "generate-seed", "abort", "--paper-backup",
                 "--export-dir", str(tmp_path / "exports"))  # fmt: skip
    args[args.index(TOKEN)] = ABORT_TOKEN
    child = spawn(args, lab.env, log)
    child.expect("Type yes to continue: ")
    child.sendline("yes")
    child.expect(f"HSM user PIN for token {ABORT_TOKEN} .*: ")
    child.sendline(USER_PIN)
    child.expect(DICE_PROMPT)
    child.send("1234")  # a few rolls typed, then Ctrl-C
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus != 0
    result = verify(tmp_path / "transcripts" / "abort.jsonl")
    assert result.status == "aborted"
    last = read_entries(tmp_path / "transcripts" / "abort.jsonl")[-1]
    assert last["data"]["reason"] == "interrupted by the operator"
    assert not (tmp_path / "exports").exists()
