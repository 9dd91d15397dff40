"""One smoke test per ceremony through the real terminal: ``coldvault ceremony ...`` under
pexpect (the one driver, :mod:`hardware_emulators.ceremony_driver`), every prompt typed
(hidden PINs, dice, words), cards inserted into the lab reader when asked for and pulled
when told.

What each ceremony decides is tested in process (test_seed.py, test_cards.py,
test_approve.py, test_revoke.py, test_cli.py); these tests prove the console front end
drives it: prompts, Ctrl-C, exit statuses, ``--json`` output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from coldvault.cards import CardAlgorithm
from coldvault.crypto import mnemonics
from coldvault.crypto.bip32 import master_fingerprint
from coldvault.quorum.documents import load_signed_document, load_verified_document
from coldvault.quorum.roster import Role
from coldvault.records.transcript import read_entries, verify
from hardware_emulators.ceremony_driver import (
    DICE_PROMPT,
    answer,
    fair_dice,
    finish,
    pin_prompt,
    read_and_confirm_words,
    spawn,
    use_card,
)
from hardware_emulators.lab import LabConfig
from hardware_emulators.softhsm_lab import SoftHsmLab, TokenSpec, softhsm_available

from .chain import ADMIN_PIN, USER_PIN, Genesis, make_genesis

pytestmark = pytest.mark.lab

INIT_TOKEN, SEED_TOKEN, POOL_TOKEN = "cv-smoke-init", "cv-smoke-seed", "cv-smoke-pool"
SO_PIN, USER_TOKEN_PIN = "lab-so-smoke", "lab-user-smoke"  # TEST ONLY
APPLIANCE = "vault-smoke-1"
DAVE, ERIN, ALICE, BOB = "C0DE0004", "C0DE0005", "C0DE0001", "C0DE0002"
GENESIS_CARDS = [
    (DAVE, "Dave Admin", Role.ADMIN, "site-a", CardAlgorithm.ED25519),
    (ERIN, "Erin Admin", Role.ADMIN, "site-b", CardAlgorithm.NIST_P256),
    (ALICE, "Alice Approver", Role.APPROVER, "site-a", CardAlgorithm.ED25519),
    (BOB, "Bob Approver", Role.APPROVER, "site-b", CardAlgorithm.ED25519),
]
SECRET = bytes(range(32))  # TEST ONLY: the master secret behind SHARES
SHARES = mnemonics.split_secret(bytearray(SECRET), 2, 3)
FINGERPRINT = master_fingerprint(SECRET).hex()


@pytest.fixture(scope="module")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmLab]:
    if not softhsm_available():
        pytest.skip("SoftHSM2 is not installed (Debian package softhsm2)")
    lab = SoftHsmLab(
        state_dir=tmp_path_factory.mktemp("smoke-hsm"),
        tokens=[TokenSpec(t, SO_PIN, USER_TOKEN_PIN) for t in (INIT_TOKEN, SEED_TOKEN, POOL_TOKEN)],
    ).setup()
    yield lab
    lab.destroy()


@pytest.fixture(scope="module")
def genesis(
    pcsc_lab: Any, lab_config: LabConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Genesis]:
    """Dave and Erin (admins), Alice and Bob (approvers): roster-1.json signed by both admins."""
    from hardware_emulators.openpgp_card.controller import VirtualCard

    directory = tmp_path_factory.mktemp("smoke-cards")
    (directory / "cards").mkdir()
    cards = {
        spec.serial: VirtualCard(
            state_file=directory / "cards" / f"card-{spec.serial}.json",
            serial=int(spec.serial, 16),
            pw1=spec.pin,
            pw3=spec.admin_pin,
        )
        for spec in lab_config.cards
    }
    try:
        yield make_genesis(directory, APPLIANCE, cards, pcsc_lab, GENESIS_CARDS)
    finally:
        for card in cards.values():
            card.remove()


def args(tmp_path: Path, ceremony: str, *extra: str) -> list[str]:
    transcript = str(tmp_path / "transcripts" / f"{ceremony}.jsonl")
    return [ceremony, "--operator", "Olga Operator", "--allow-emulated",
            "--transcript", transcript, *extra]  # fmt: skip


class Slot:
    """The lab readers as the driver's card slot: cards by lab serial."""

    def __init__(self, cards: dict[str, Any], ports: list[int]) -> None:
        self.cards, self.ports = cards, ports
        self.inside: dict[int, Any] = {}

    def insert(self, serial: str, reader: int) -> None:
        self.cards[serial].insert(self.ports[reader])
        self.inside[reader] = self.cards[serial]

    def remove(self, reader: int) -> None:
        card = self.inside.pop(reader, None)
        if card is not None:
            card.remove()


@pytest.fixture(scope="module")
def slot(genesis: Genesis, pcsc_lab: Any) -> Slot:
    return Slot(genesis.cards, pcsc_lab.reader_ports)


def admins_sign(child: pexpect.spawn, slot: Slot) -> None:
    for n, (serial, holder) in enumerate(((DAVE, "Dave Admin"), (ERIN, "Erin Admin")), start=1):
        use_card(child, slot, serial, f"Admin approval {n} of 2: insert an admin card.",
                 [(pin_prompt(holder), USER_PIN)])  # fmt: skip


def json_result(child: pexpect.spawn) -> dict[str, Any]:
    child.expect(r'\{"[^\r\n]*"ok": (true|false)[^\r\n]*\}')
    return dict(json.loads(child.match.group(0)))


def test_init_appliance(hsm: SoftHsmLab, tmp_path: Path) -> None:
    log = tmp_path / "pexpect.log"
    # Ctrl-C at the first (hidden) prompt: cancelled, exit 1, the transcript says so
    child = spawn(args(tmp_path, "init-appliance", "--token", INIT_TOKEN), hsm.env, log)
    child.expect(f"Current HSM user PIN for token {INIT_TOKEN}: ")
    child.sendintr()
    child.expect("Error: The operator interrupted the ceremony.")
    assert finish(child) == 1
    last = read_entries(tmp_path / "transcripts" / "init-appliance.jsonl")[-1]
    assert last["data"] == {"status": "aborted", "reason": "cancelled"}

    child = spawn(args(tmp_path, "init-appliance", "--token", INIT_TOKEN, "--transcript",
                       str(tmp_path / "init.jsonl"), "--export-dir", str(tmp_path / "x")),
                  hsm.env, log)  # fmt: skip
    answer(child, [
        (f"Current HSM user PIN for token {INIT_TOKEN}: ", USER_TOKEN_PIN),
        (f"Current security-officer PIN for token {INIT_TOKEN}: ", SO_PIN),
        ("New security-officer PIN: ", "lab-so-new-1"),
        ("Repeat new security-officer PIN: ", "lab-so-new-1"),
        ("New user PIN: ", "short"),
        ("The PIN must have at least 6 characters", None),
        ("New user PIN: ", "lab-user-new-1"),
        ("Repeat new user PIN: ", "lab-user-new-1"),
        ("Appliance initialised.", None),
    ])  # fmt: skip
    assert finish(child) == 0
    keys = json.loads((tmp_path / "x" / "appliance-keys.json").read_text())
    assert len(bytes.fromhex(keys["identity_ed25519"])) == 32
    assert verify(tmp_path / "init.jsonl").status == "completed"


def test_generate_seed(hsm: SoftHsmLab, tmp_path: Path) -> None:
    log = tmp_path / "pexpect.log"
    child = spawn(args(tmp_path, "generate-seed", "--token", SEED_TOKEN, "--paper-backup",
                       "--threshold", "2", "--shares", "3", "--template", "bip84",
                       "--pool-size", "1", "--export-dir", str(tmp_path / "exports")),
                  hsm.env, log)  # fmt: skip
    answer(child, [
        (r"Is the room prepared as listed\? Type yes to continue: ", "yes"),
        (f"HSM user PIN for token {SEED_TOKEN} .*: ", USER_TOKEN_PIN),
        (DICE_PROMPT, "6" * 120),
        ("Every dice roll has the same value", None),
        (DICE_PROMPT, fair_dice()),
    ])  # fmt: skip
    shares = [read_and_confirm_words(child, f"share {i} of 3", f"share {i}") for i in (1, 2, 3)]
    child.expect(r"master fingerprint\s+│\s+([0-9a-f]{8})")
    fingerprint = child.match.group(1)
    child.expect(r"Ceremony complete")
    assert finish(child) == 0
    secret = mnemonics.recover_secret([shares[0], shares[2]])
    assert master_fingerprint(secret).hex() == fingerprint

    # the transcript CLI: verified as JSON, and a changed byte is refused (exit 2)
    path = tmp_path / "transcripts" / "generate-seed.jsonl"
    child = spawn(["transcript", "verify", "--json", str(path)], hsm.env, log)
    assert json_result(child)["status"] == "completed" and finish(child) == 0
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x20
    (tmp_path / "bad.jsonl").write_bytes(raw)
    child = spawn(["transcript", "verify", str(tmp_path / "bad.jsonl")], hsm.env, log)
    child.expect("Error: Transcript")
    assert finish(child) == 2


def test_provision(hsm: SoftHsmLab, tmp_path: Path) -> None:
    child = spawn(args(tmp_path, "provision", "--token", POOL_TOKEN, "--template", "bip84",
                       "--pool-size", "2", "--account", "7", "--export-dir", str(tmp_path / "e"),
                       "--expect-fingerprint", FINGERPRINT, "--json"),
                  hsm.env, tmp_path / "pexpect.log")  # fmt: skip
    answer(child, [
        (f"HSM user PIN for token {POOL_TOKEN} .*: ", USER_TOKEN_PIN),
        ("SLIP-39 share 1: ", SHARES[1]),
        ("SLIP-39 share 2: ", SHARES[0]),
        (f"Is {FINGERPRINT} the fingerprint recorded at seed generation\\? Type yes to "
         "continue: ", "yes"),
    ])  # fmt: skip
    result = json_result(child)
    assert finish(child) == 0
    assert (result["master_fingerprint"], result["imported"], result["keys"]) == (FINGERPRINT, 4, 4)


def test_enrol_cards(pcsc_lab: Any, tmp_path: Path) -> None:
    from hardware_emulators.openpgp_card.controller import VirtualCard

    card = VirtualCard(state_file=tmp_path / "card.json", serial=0xC0DE0003, pw1=USER_PIN,
                       pw3=ADMIN_PIN)  # fmt: skip
    slot = Slot({"C0DE0003": card}, pcsc_lab.reader_ports)
    cid = "FFFFC0DE0003"
    child = spawn(args(tmp_path, "enrol-cards", "--cards", "1", "--appliance-id", APPLIANCE,
                       "--admin-threshold", "1", "--out", str(tmp_path / "roster.json")),
                  pcsc_lab.env, tmp_path / "pexpect.log")  # fmt: skip
    use_card(child, slot, "C0DE0003", "Card 1: insert the blank card.", [
        (f"Card {cid} holder name: ", "Carol Admin"),
        (re.escape(f"Card {cid} role (approver/admin/backup-custodian)") + ".*: ", "admin"),
        (f"Card {cid} site: ", "site-c"),
        (f"Card {cid} current admin PIN: ", ADMIN_PIN),
        (f"New admin PIN for card {cid}: ", "carol-admin-1"),
        (f"Repeat new admin PIN for card {cid}: ", "carol-admin-1"),
        (f"Card {cid} current user PIN: ", USER_PIN),
        (f"New user PIN for card {cid}: ", "carol-pin-1"),
        (f"Repeat new user PIN for card {cid}: ", "carol-pin-1"),
    ])  # fmt: skip
    answer(child, [(r"Is the roster correct\? Type yes to continue: ", "yes")])
    use_card(child, slot, "C0DE0003", "Admin approval 1 of 1: insert an admin card.",
             [(pin_prompt("Carol Admin"), "carol-pin-1")])  # fmt: skip
    assert finish(child) == 0
    doc = load_signed_document(tmp_path / "roster.json", "roster")
    assert [a for a, _ in doc.approvals] == [cid]


def test_extend_pool(hsm: SoftHsmLab, genesis: Genesis, slot: Slot, tmp_path: Path) -> None:
    child = spawn(args(tmp_path, "extend-pool", "--token", POOL_TOKEN, "--template", "bip84",
                       "--pool-size", "1", "--account", "9", "--roster", str(genesis.path),
                       "--expect-fingerprint", FINGERPRINT, "--export-dir", str(tmp_path / "e"),
                       "--yes"),
                  hsm.env, tmp_path / "pexpect.log")  # fmt: skip
    admins_sign(child, slot)
    answer(child, [
        (f"HSM user PIN for token {POOL_TOKEN} .*: ", USER_TOKEN_PIN),
        ("SLIP-39 share 1: ", SHARES[2]),
        ("SLIP-39 share 2: ", SHARES[1]),
        (r"(\d+) keys imported, (\d+) already present", None),
    ])  # fmt: skip
    assert child.match.groups() == ("2", "0")
    assert finish(child) == 0
    steps = [e["step"] for e in read_entries(tmp_path / "transcripts" / "extend-pool.jsonl")]
    assert steps.count("admin-approval") == 2 and "quorum-met" in steps


def test_approve_document(genesis: Genesis, slot: Slot, tmp_path: Path) -> None:
    wallets = tmp_path / "wallets.toml"
    wallets.write_text(
        '[[wallet]]\nname = "acme-btc"\nclient = "acme"\nchain = "bitcoin"\nnetwork = "main"\n'
        'template = "bip84"\nmaster_fingerprint = "0a1b2c3d"\naccount_path = "m/84h/0h/0h"\n'
        'descriptor = "wpkh([0a1b2c3d/84h/0h/0h]xpubEXAMPLE/<0;1>/*)"\nmax_index = 19\n'
    )
    child = spawn(args(tmp_path, "approve-document", "--kind", "wallets", "--version", "1",
                       "--roster", str(genesis.path), "--json", str(wallets)),
                  {}, tmp_path / "pexpect.log")  # fmt: skip
    child.expect(r"descriptor\s+│\s+wpkh\(\[0a1b2c3d/84h/0h/0h\]")
    answer(child, [(r"Is this the wallets document the admins are to approve\? Type yes to "
                    "continue: ", "yes")])  # fmt: skip
    admins_sign(child, slot)
    result = json_result(child)
    assert finish(child) == 0
    assert result["kind"] == "wallets" and [a["holder"] for a in result["approvals"]] == [
        "Dave Admin", "Erin Admin"
    ]  # fmt: skip
    load_verified_document(wallets, "wallets", genesis.genesis)


def test_revoke_card(genesis: Genesis, slot: Slot, tmp_path: Path) -> None:
    bob = genesis.card_id(BOB)
    child = spawn(args(tmp_path, "revoke-card", "--roster", str(genesis.path), "--card", bob,
                       "--reason", "left", "--out", str(tmp_path / "roster-2.json"), "--json"),
                  {}, tmp_path / "pexpect.log")  # fmt: skip
    answer(child, [
        (r"holder\s+│\s+Bob Approver", None),
        (re.escape("Is this the card to be revoked? Type yes to continue: "), "yes"),
        (re.escape(bob) + r"\s+│\s+CHANGED: status active -> revoked", None),
        (re.escape("Is roster version 2 the one the admins are to approve? Type yes"), "yes"),
    ])  # fmt: skip
    admins_sign(child, slot)
    result = json_result(child)
    assert finish(child) == 0 and result["version"] == 2 and result["card"] == bob

    # a refusal before any card: exit 1 (refused), the error once, as JSON
    child = spawn(args(tmp_path, "revoke-card", "--roster", str(genesis.path), "--card",
                       "FFFFDEADBEEF", "--reason", "x", "--out", str(tmp_path / "r.json"),
                       "--json", "--transcript", str(tmp_path / "refused.jsonl")),
                  {}, tmp_path / "pexpect.log")  # fmt: skip
    result = json_result(child)
    assert finish(child) == 1
    assert result["error"] == "revocation-refused"
    assert result["message"].endswith("it is not in roster version 1.")


def test_replace_card(genesis: Genesis, slot: Slot, tmp_path: Path) -> None:
    from hardware_emulators.openpgp_card.controller import VirtualCard

    alice = genesis.card_id(ALICE)
    new = VirtualCard(state_file=tmp_path / "card.json", serial=0xC0DE0006, pw1=USER_PIN,
                      pw3=ADMIN_PIN)  # fmt: skip
    nid = "FFFFC0DE0006"
    slot.cards["C0DE0006"] = new
    child = spawn(args(tmp_path, "replace-card", "--roster", str(genesis.path), "--card", alice,
                       "--out", str(tmp_path / "roster-2.json"), "--yes", "--json"),
                  {}, tmp_path / "pexpect.log")  # fmt: skip
    try:
        use_card(child, slot, "C0DE0006", "Insert the NEW blank card for Alice Approver.", [
            (re.escape(f"Card {nid} is for Alice Approver (approver, site site-a)."), None),
            (f"Card {nid} current admin PIN: ", ADMIN_PIN),
            (f"New admin PIN for card {nid}: ", "alice-admin-2"),
            (f"Repeat new admin PIN for card {nid}: ", "alice-admin-2"),
            (f"Card {nid} current user PIN: ", USER_PIN),
            (f"New user PIN for card {nid}: ", "alice-pin-2"),
            (f"Repeat new user PIN for card {nid}: ", "alice-pin-2"),
        ])  # fmt: skip
        child.expect(re.escape(nid) + r"\s+│\s+ADDED: Alice Approver \(approver, site-a\)")
        admins_sign(child, slot)
        result = json_result(child)
        assert finish(child) == 0
    finally:
        new.remove()
    assert result["ceremony"] == "replace-card" and result["new_card"]["card_serial"] == nid
