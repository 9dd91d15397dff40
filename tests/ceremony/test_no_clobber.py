"""Ceremonies never clobber or orphan, through the real terminal (pexpect driver, SoftHSM
over PKCS#11, virtual cards behind the lab's pcscd):

* an output file that exists is refused, naming it and the option to take instead;
* ``generate-seed`` refuses a token that already holds a key pool, before the dice;
* Ctrl-C (or an error) in the middle of the key import deletes the keys that run made
  (checked by listing the token's objects through PKCS#11 afterwards);
* ``enrol-cards`` refuses a non-blank card, records each card as it is enrolled, resumes
  at the first card not yet recorded and never re-keys an earlier one, and never writes
  over an existing roster; a typo at the role prompt is asked again;
* a ``--no-backup`` transcript records that no shares exist.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

from coldvault.ceremonies import GenerateSeed, generate_seed
from coldvault.ceremonies.backup import BackupFormat, BackupPlan
from coldvault.ceremonies.enrol import progress_path
from coldvault.ceremonies.params import PoolParams
from coldvault.quorum.documents import load_signed_document
from coldvault.quorum.roster import Roster
from coldvault.records.transcript import read_entries, verify
from hardware_emulators.ceremony_driver import (
    DICE_PROMPT,
    answer,
    fair_dice,
    finish,
    pin_prompt,
    spawn,
    use_card,
)
from hardware_emulators.softhsm_lab import SoftHsmLab

from .conftest import LabToken
from .support import Answer, ScriptedOperator
from .test_smoke import FINGERPRINT, SHARES, Slot, args, json_result

pytestmark = pytest.mark.lab

CARD_PIN, CARD_ADMIN_PIN = "123456", "12345678"  # factory PINs of the virtual card
A, B = "C0DE00A1", "C0DE00A2"


#: Lists the token's key objects in a process of its own: SoftHSM caches token objects per
#: process, and this view must not be the test's own (or the ceremony's).
_LIST_OBJECTS = """
import json, sys
from pkcs11 import Attribute, ObjectClass
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
module, label, pin = sys.argv[1:4]
with Pkcs11Keystore.open(module, label, pin, allow_emulated=True) as ks:
    with ks.raw_session("list objects") as session:
        print(json.dumps(sorted(
            [str(cls), bytes(obj[Attribute.ID]).hex()]
            for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY)
            for obj in session.get_objects({Attribute.CLASS: cls})
        )))
"""


def token_objects(token: LabToken) -> list[tuple[str, bytes]]:
    """(class, CKA_ID) of every key object on the token, through PKCS#11."""
    out = subprocess.run(
        [sys.executable, "-c", _LIST_OBJECTS, token.token.module, token.label, token.user_pin],
        env={**os.environ, "SOFTHSM2_CONF": str(token.conf)},
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    return [(cls, bytes.fromhex(kid)) for cls, kid in json.loads(out)]


def object_files(lab: SoftHsmLab) -> int:
    """Objects in SoftHSM's file store (one file each), of every token of the lab."""
    return sum(1 for _ in lab.token_dir.glob("*/*.object"))


def provision_args(tmp_path: Path, token: str, name: str, export_dir: Path) -> list[str]:
    return args(tmp_path, "provision", "--token", token, "--template", "bip84",
                "--pool-size", "1", "--export-dir", str(export_dir), "--transcript",
                str(tmp_path / f"{name}.jsonl"), "--expect-fingerprint", FINGERPRINT,
                "--json")  # fmt: skip


def test_exports_and_a_second_seed_are_refused(
    softhsm_lab: SoftHsmLab, hsm_token: LabToken, tmp_path: Path
) -> None:
    log, env, label = tmp_path / "pexpect.log", softhsm_lab.env, hsm_token.label
    exports = tmp_path / "e"
    child = spawn(provision_args(tmp_path, label, "p1", exports), env, log)
    answer(child, [
        (f"HSM user PIN for token {label} .*: ", hsm_token.user_pin),
        ("SLIP-39 share 1: ", SHARES[1]),
        ("SLIP-39 share 2: ", SHARES[0]),
        (f"Is {FINGERPRINT} the fingerprint .* Type yes to continue: ", "yes"),
    ])  # fmt: skip
    assert json_result(child)["imported"] == 2 and finish(child) == 0
    before = token_objects(hsm_token)
    account = exports / "house-bip84-main-0.account.json"
    written = account.read_bytes()

    # the same export directory again: refused before any prompt, naming file and option
    child = spawn(provision_args(tmp_path, label, "p2", exports), env, log)
    result = json_result(child)
    assert finish(child) == 1
    assert result["error"] == "output-exists"
    assert str(account) in result["message"] and "--export-dir" in result["message"]
    assert account.read_bytes() == written and not (tmp_path / "p2.jsonl").exists()

    # generate-seed on a token with a pool: refused after the PIN, before any dice
    child = spawn(args(tmp_path, "generate-seed", "--token", label, "--no-backup",
                       "--template", "bip84", "--pool-size", "1", "--export-dir",
                       str(tmp_path / "e2"), "--yes", "--json"), env, log)  # fmt: skip
    answer(child, [(f"HSM user PIN for token {label} .*: ", hsm_token.user_pin)])
    index = child.expect([DICE_PROMPT, r'\{"[^\r\n]*"ok": false[^\r\n]*\}'])
    assert index == 1, "generate-seed asked for dice on a token holding a pool"
    refused = json.loads(child.match.group(0))
    assert finish(child) == 1
    assert refused["error"] == "pool-exists"
    assert f"2 keys of seed {FINGERPRINT}" in refused["message"]
    assert "extend-pool" in refused["message"] and "--destroy-existing" in refused["message"]
    assert token_objects(hsm_token) == before
    assert not (tmp_path / "e2").exists()


def test_ctrl_c_in_the_import_deletes_its_keys(
    softhsm_lab: SoftHsmLab, hsm_token: LabToken, tmp_path: Path
) -> None:
    log, label = tmp_path / "pexpect.log", hsm_token.label
    transcript = tmp_path / "seed.jsonl"
    before = token_objects(hsm_token)
    child = spawn(args(tmp_path, "generate-seed", "--token", label, "--no-backup",
                       "--pool-size", "400", "--export-dir", str(tmp_path / "e"),
                       "--transcript", str(transcript), "--yes"), softhsm_lab.env, log)  # fmt: skip
    answer(child, [
        (f"HSM user PIN for token {label} .*: ", hsm_token.user_pin),
        (DICE_PROMPT, fair_dice()),
    ])  # fmt: skip
    child.expect(r"master fingerprint\s+│\s+([0-9a-f]{8})")
    fingerprint = bytes.fromhex(child.match.group(1))
    files = object_files(softhsm_lab)
    child.expect(r"Derive and import 2400 keys into the HSM")
    # Ctrl-C once SoftHSM's store holds new key objects: watched as files, since a second
    # PKCS#11 client on the token meanwhile can invalidate the ceremony's object handles.
    # 20 key pairs of the 2400 keys: well inside the import, and every one imported must be
    # deleted again (waiting for more only costs SoftHSM work on both ways)
    while object_files(softhsm_lab) - files < 40:
        assert child.expect([pexpect.TIMEOUT, "Error: .*"], timeout=0.1) == 0, child.after
    child.sendintr()
    child.expect("Error: The operator interrupted the ceremony.")
    assert finish(child) == 1

    after = token_objects(hsm_token)
    assert [kid for _, kid in after if kid[1:5] == fingerprint] == []
    assert after == before
    entries = read_entries(transcript)
    rolled = [e["data"] for e in entries if e["step"] == "import-rolled-back"]
    assert len(rolled) == 1 and rolled[0]["imported"] > 0
    assert rolled[0]["deleted"] == rolled[0]["imported"] and rolled[0]["left"] == []
    assert entries[-1]["data"] == {"status": "aborted", "reason": "cancelled"}
    assert not any(e["step"] == "shares-created" for e in entries)  # --no-backup: none exist
    assert [e["data"] for e in entries if e["step"] == "no-backup"] == [
        {"word_count": 0, "share_count": 0}
    ]
    assert not (tmp_path / "e").exists()


def enrol_args(tmp_path: Path, out: Path, name: str) -> list[str]:
    return args(tmp_path, "enrol-cards", "--cards", "2", "--appliance-id", "vault-noclob",
                "--admin-threshold", "1", "--out", str(out), "--transcript",
                str(tmp_path / f"{name}.jsonl"))  # fmt: skip


def enrol_dialogue(cid: str, role: str, holder: str) -> list[tuple[str, str | None]]:
    pin = holder.split()[0].lower()
    return [
        (f"Card {cid} holder name: ", holder),
        (re.escape(f"Card {cid} role (approver/admin/backup-custodian)") + ".*: ", role),
        (f"Card {cid} site: ", "site-x"),
        (f"Card {cid} current admin PIN: ", CARD_ADMIN_PIN),
        (f"New admin PIN for card {cid}: ", f"{pin}-admin-1"),
        (f"Repeat new admin PIN for card {cid}: ", f"{pin}-admin-1"),
        (f"Card {cid} current user PIN: ", CARD_PIN),
        (f"New user PIN for card {cid}: ", f"{pin}-pin-1"),
        (f"Repeat new user PIN for card {cid}: ", f"{pin}-pin-1"),
    ]


def test_enrolment_resumes_and_never_rekeys(pcsc_lab: Any, tmp_path: Path) -> None:
    from hardware_emulators.openpgp_card.controller import VirtualCard

    cards = {
        s: VirtualCard(
            state_file=tmp_path / f"card-{s}.json",
            serial=int(s, 16),
            pw1=CARD_PIN,
            pw3=CARD_ADMIN_PIN,
        )  # fmt: skip
        for s in (A, B)
    }
    slot = Slot(cards, pcsc_lab.reader_ports)
    cid_a, cid_b = f"FFFF{A}", f"FFFF{B}"
    out = tmp_path / "roster.json"
    log = tmp_path / "pexpect.log"
    try:
        # run 1: a typo at the role prompt is asked again; card 1 enrolled; Ctrl-C at card 2
        child = spawn(enrol_args(tmp_path, out, "run1"), pcsc_lab.env, log)
        dialogue = enrol_dialogue(cid_a, "admn", "Carol Admin")
        dialogue[2:2] = [
            ("The role must be one of approver, admin, backup-custodian", None),
            (re.escape(f"Card {cid_a} role (approver/admin/backup-custodian)") + ".*: ",
             "admin"),
        ]  # fmt: skip
        use_card(child, slot, A, "Card 1: insert the blank card.", dialogue)
        child.expect(re.escape("Card 2: insert the blank card."))
        child.sendintr()
        child.expect("Error: The operator interrupted the ceremony.")
        assert finish(child) == 1
        recorded = json.loads(progress_path(out).read_text())["cards"]
        assert [c["serial"] for c in recorded] == [cid_a] and not out.exists()
        key_a = recorded[0]["public_key"]

        # run 2: continues at card 2; card 1 offered again is refused, nothing changed on it
        child = spawn(enrol_args(tmp_path, out, "run2"), pcsc_lab.env, log)
        child.expect("Continue the enrolment: 1 of 2 cards done")
        use_card(child, slot, A, "Card 2: insert the blank card.")
        child.expect(f"Error: Card {cid_a} is already card 1 of this enrolment")
        assert finish(child) == 1

        # run 3: card 2 enrolled, card 1 (not re-keyed) signs the roster as the admin
        child = spawn(enrol_args(tmp_path, out, "run3"), pcsc_lab.env, log)
        child.expect("Continue the enrolment: 1 of 2 cards done")
        use_card(child, slot, B, "Card 2: insert the blank card.",
                 enrol_dialogue(cid_b, "approver", "Dan Approver"))  # fmt: skip
        answer(child, [(r"Is the roster correct\? Type yes to continue: ", "yes")])
        use_card(child, slot, A, "Admin approval 1 of 1: insert an admin card.",
                 [(pin_prompt("Carol Admin"), "carol-pin-1")])  # fmt: skip
        assert finish(child) == 0
        roster = Roster.from_bytes(load_signed_document(out, "roster").content)
        assert [h.serial for h in roster.holders] == [cid_a, cid_b]
        assert roster.holders[0].public_key.hex() == key_a  # card 1 was never re-keyed
        assert verify(tmp_path / "run3.jsonl").status == "completed"
        pinned = out.read_bytes()

        # run 4: over the written roster -- refused before any card is asked for
        child = spawn(enrol_args(tmp_path, out, "run4"), pcsc_lab.env, log)
        child.expect(f"Error: The file {re.escape(str(out))} already exists")
        child.expect("choose another --out")
        assert finish(child) == 1
        assert out.read_bytes() == pinned

        # a card that holds a key is not blank: refused before any PIN is asked
        other = tmp_path / "other.json"
        child = spawn(enrol_args(tmp_path, other, "run5"), pcsc_lab.env, log)
        use_card(child, slot, B, "Card 1: insert the blank card.")
        child.expect(f"Error: Card {cid_b} already holds a signature key")
        assert finish(child) == 1
        assert not progress_path(other).exists()
    finally:
        for card in cards.values():
            card.remove()


class FailingAt(ScriptedOperator):
    """A console that fails while the import shows its progress at ``at`` keys done."""

    def __init__(self, at: int, *script: tuple[str, Answer]) -> None:
        super().__init__(*script)
        self.at = at

    def progress(self, done: int, total: int) -> None:
        super().progress(done, total)
        if done == self.at:
            raise OSError("the console went away")


def test_an_error_mid_import_deletes_its_keys(hsm_token: LabToken, tmp_path: Path) -> None:
    before = token_objects(hsm_token)
    op = FailingAt(
        7,
        (r"^Is the room prepared as listed\?$", True),
        (f"^HSM user PIN for token {hsm_token.label} \\(", hsm_token.user_pin),
        (r"^Dice rolls", fair_dice()),
    )  # fmt: skip
    params = GenerateSeed(
        actor="Olga Operator", transcript=tmp_path / "seed.jsonl",
        backup=BackupPlan(BackupFormat.SLIP39, paper=False), no_backup=True,
        pool=PoolParams(pool_size=5, export_dir=tmp_path / "e"),
    )  # fmt: skip
    with pytest.raises(OSError, match="the console went away"):
        generate_seed(op, params, hsm_token.token)
    assert token_objects(hsm_token) == before  # the 7 keys made are gone again
    rolled = [e["data"] for e in read_entries(tmp_path / "seed.jsonl")
              if e["step"] == "import-rolled-back"]  # fmt: skip
    assert rolled == [{"imported": 7, "deleted": 7, "left": []}]
    assert not (tmp_path / "e").exists()
