"""Card ceremonies on the lab: enrol virtual OpenPGP cards (keys generated on card), sign
the roster with the admin cards, witness a seed ceremony, approve extend-pool by quorum.

Cards come from the root ``card_factory`` fixture (virtual cards in vpcd readers behind a
private pcscd) and are inserted/removed when the ceremony asks, one at a time.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ceremony_scripts.quorum_cards import load_roster
from coldvault.quorum.roster import Role
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

TOKEN = "cv-cards-test"
SO_PIN, USER_PIN = "lab-so-cards", "lab-user-cards"  # TEST ONLY
CARDS = [  # serial, holder, role, site -- lab cards C0DE0004/5 are admins, C0DE0001 approver
    ("C0DE0004", "Dave Admin", "admin", "site-a"),
    ("C0DE0005", "Erin Admin", "admin", "site-b"),
    ("C0DE0001", "Alice Approver", "approver", "site-a"),
]
NEW_USER = {"C0DE0004": "dave-pin-1", "C0DE0005": "erin-pin-1", "C0DE0001": "alice-pin-1"}


def card_id(serial: str) -> str:
    """The roster identity of a lab card: manufacturer (FFFF, test cards) + serial."""
    return f"FFFF{serial}"


@pytest.fixture
def hsm(tmp_path: Path):
    if not softhsm_available():
        pytest.skip("SoftHSM2 is not installed (Debian package softhsm2)")
    lab = SoftHsmLab(state_dir=tmp_path / "hsm", tokens=[TokenSpec(TOKEN, SO_PIN, USER_PIN)])
    yield lab.setup()
    lab.destroy()


class Reader:
    """Insert a card when the ceremony asks, take it out when it says so."""

    def __init__(self, child, port: int) -> None:
        self.child, self.port = child, port

    def use(self, card, prompt: str, pin_prompts: list[tuple[str, str | None]]) -> None:
        self.child.expect(re.escape(prompt))
        card.insert(self.port)
        for expected, answer in pin_prompts:
            self.child.expect(expected)
            if answer is not None:
                self.child.sendline(answer)
        self.child.expect("Remove the card.")
        card.remove()


def _enrol(child, reader: Reader, cards: dict) -> None:
    for number, (serial, holder, role, site) in enumerate(CARDS, start=1):
        cid = card_id(serial)
        reader.use(
            cards[serial],
            f"Card {number}: insert the blank card.",
            [
                (f"Card {cid} holder name: ", holder),
                (re.escape(f"Card {cid} role (approver/admin/backup-custodian)") + ".*: ", role),
                (f"Card {cid} site: ", site),
                (f"Card {cid} current admin PIN: ", "12345678"),
                (f"New admin PIN for card {cid}: ", f"admin-{serial}"),
                (f"Repeat new admin PIN for card {cid}: ", f"admin-{serial}"),
                (f"Card {cid} current user PIN: ", "123456"),
                (f"New user PIN for card {cid}: ", NEW_USER[serial]),
                (f"Repeat new user PIN for card {cid}: ", NEW_USER[serial]),
            ],
        )


def _pin(serial: str, holder: str) -> list[tuple[str, str]]:
    return [(re.escape(f"PIN for card {card_id(serial)} ({holder}): "), NEW_USER[serial])]


def test_enrol_witness_and_quorum(card_factory, pcsc_lab, hsm: SoftHsmLab, tmp_path: Path) -> None:
    log = tmp_path / "pexpect.log"
    cards = {}
    for i, (serial, *_rest) in enumerate(CARDS):
        cards[serial] = card_factory(serial, i)
        cards[serial].remove()  # start outside the reader; inserted when asked
    port = pcsc_lab.reader_ports[0]
    roster_path = tmp_path / "roster.json"
    transcripts = tmp_path / "transcripts"
    common = ["--operator", "Olga Operator", "--allow-emulated"]

    # 1. enrol-cards: 3 cards, admin threshold 2, roster signed by both admins.
    child = spawn(
        ["enrol-cards", *common, "--cards", "3", "--appliance-id", "vault-test-1",
         "--admin-threshold", "2", "--out", str(roster_path), "--yes",
         "--transcript", str(transcripts / "enrol.jsonl")],
        hsm.env, log,
    )  # fmt: skip
    reader = Reader(child, port)
    _enrol(child, reader, cards)
    # an approver card is refused for the roster approval, then both admins sign
    reader.use(
        cards["C0DE0001"], "Roster approval: insert an admin card.",
        [("is not an admin card", None)],
    )  # fmt: skip
    reader.use(cards["C0DE0004"], "Roster approval: insert an admin card.",
               _pin("C0DE0004", "Dave Admin"))  # fmt: skip
    reader.use(cards["C0DE0005"], "Roster approval: insert an admin card.",
               _pin("C0DE0005", "Erin Admin"))  # fmt: skip
    assert finish(child) == 0
    roster = load_roster(roster_path)
    assert roster.version == 1 and roster.admin_threshold == 2
    assert [h.serial for h in roster.active(Role.ADMIN)] == ["FFFFC0DE0004", "FFFFC0DE0005"]
    alice = roster.holder("FFFFC0DE0001")
    assert alice is not None and alice.role is Role.APPROVER and len(alice.public_key) == 32
    enrol_steps = [e["step"] for e in read_entries(transcripts / "enrol.jsonl")]
    assert enrol_steps.count("card-enrolled") == 3 and enrol_steps.count("roster-approval") == 2

    # 2. generate-seed (BIP-39 paper backup), witnessed by Alice's card.
    child = spawn(
        ["generate-seed", *common, "--token", TOKEN, "--format", "bip39", "--paper-backup",
         "--template", "bip84", "--pool-size", "1", "--witnesses", "1",
         "--roster", str(roster_path), "--export-dir", str(tmp_path / "exports"),
         "--transcript", str(transcripts / "seed.jsonl")],
        hsm.env, log,
    )  # fmt: skip
    child.expect("Type yes to continue: ")
    child.sendline("yes")
    child.expect(f"HSM user PIN for token {TOKEN} .*: ")
    child.sendline(USER_PIN)
    child.expect(DICE_PROMPT)
    child.sendline(fair_dice(3))
    words = read_and_confirm_words(child, "the 24-word mnemonic", "the mnemonic")
    child.expect(r"master fingerprint\s+│\s+([0-9a-f]{8})")
    fingerprint = child.match.group(1)
    Reader(child, port).use(cards["C0DE0001"], "Witness 1: insert your card.",
                            _pin("C0DE0001", "Alice Approver"))  # fmt: skip
    assert finish(child) == 0
    result = verify(transcripts / "seed.jsonl", roster=roster, min_witnesses=1)
    assert [w["holder"] for w in result.witnesses] == ["Alice Approver"]

    # 3. extend-pool needs the admin quorum, then the typed mnemonic.
    child = spawn(
        ["extend-pool", *common, "--token", TOKEN, "--from", "bip39", "--template", "bip84",
         "--pool-size", "2", "--roster", str(roster_path), "--yes",
         "--expect-fingerprint", fingerprint, "--export-dir", str(tmp_path / "exports2"),
         "--transcript", str(transcripts / "extend.jsonl")],
        hsm.env, log,
    )  # fmt: skip
    reader = Reader(child, port)
    reader.use(cards["C0DE0004"], "Admin approval 1 of 2: insert an admin card.",
               _pin("C0DE0004", "Dave Admin"))  # fmt: skip
    reader.use(cards["C0DE0005"], "Admin approval 2 of 2: insert an admin card.",
               _pin("C0DE0005", "Erin Admin"))  # fmt: skip
    child.expect(f"HSM user PIN for token {TOKEN} .*: ")
    child.sendline(USER_PIN)
    child.expect(re.escape("BIP-39 mnemonic (all words, space separated): "))
    child.sendline(words)
    child.expect(r"(\d+) keys imported, (\d+) already present")
    assert child.match.groups() == ("2", "2")
    assert finish(child) == 0
    steps = [e["step"] for e in read_entries(transcripts / "extend.jsonl")]
    assert steps.count("admin-approval") == 2 and "quorum-met" in steps

    # 4. the transcript CLI checks witnesses against the roster
    child = spawn(
        ["transcript", "verify", "--json", "--roster", str(roster_path), "--min-witnesses",
         "1", str(transcripts / "seed.jsonl")],
        hsm.env, log,
    )  # fmt: skip
    child.expect(r"\{.*\}")
    assert json.loads(child.match.group(0))["witnesses"] == ["Alice Approver"]
    assert finish(child) == 0
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*.json*") if p.is_file())
    assert " ".join(words.split()[:6]).encode() not in written
    assert b"alice-pin-1" not in written and b"dave-pin-1" not in written

    # 5. re-initialising the now live token: --destroy-existing plus the admin quorum
    child = spawn(
        ["init-appliance", *common, "--token", TOKEN, "--destroy-existing",
         "--roster", str(roster_path), "--export-dir", str(tmp_path / "exports3"),
         "--transcript", str(transcripts / "reinit.jsonl")],
        hsm.env, log,
    )  # fmt: skip
    child.expect(f"Current HSM user PIN for token {TOKEN}: ")
    child.sendline(USER_PIN)
    reader = Reader(child, port)
    reader.use(cards["C0DE0005"], "Admin approval 1 of 2: insert an admin card.",
               _pin("C0DE0005", "Erin Admin"))  # fmt: skip
    reader.use(cards["C0DE0004"], "Admin approval 2 of 2: insert an admin card.",
               _pin("C0DE0004", "Dave Admin"))  # fmt: skip
    for prompt, pin in (
        (f"Current security-officer PIN for token {TOKEN}: ", SO_PIN),
        ("New security-officer PIN: ", "lab-so-cards-2"),
        ("Repeat new security-officer PIN: ", "lab-so-cards-2"),
        ("New user PIN: ", "lab-user-cards-2"),
        ("Repeat new user PIN: ", "lab-user-cards-2"),
    ):
        child.expect(prompt)
        child.sendline(pin)
    child.expect("4 key\\(s\\) destroyed")
    assert finish(child) == 0
    steps = [e["step"] for e in read_entries(transcripts / "reinit.jsonl")]
    assert steps.index("quorum-met") < steps.index("pins-set") < steps.index("keys-destroyed")
    keys = json.loads((tmp_path / "exports3" / "appliance-keys.json").read_text())
    assert len(bytes.fromhex(keys["identity_ed25519"])) == 32
