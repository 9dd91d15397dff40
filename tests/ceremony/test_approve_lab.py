"""``approve-document`` on the lab, through its real prompts: admins approve a policy, a
wallet registry and a roster successor with virtual OpenPGP cards behind a private pcscd.

The genesis roster is made here with library calls on the cards (keys generated on the
cards; ``enrol-cards`` itself is tested in test_cards_lab.py). One admin card is Ed25519
(signs the config token), the other NIST P-256 (signs its SHA-256), so both card-input
paths are exercised. Refusals: an approver card (wrong role) and the same admin twice
(counted once), a wrong PIN, and documents refused before any card is asked for.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from ceremony_scripts.approve import DocumentRefused
from coldvault.backends import pcsc
from coldvault.backends.pcsc import PcscConnection
from coldvault.cards.openpgp import CardAlgorithm, OpenPgpSession, Pw
from coldvault.cards.signatures import card_input
from coldvault.policy import AssetLimits, Policy, WalletPolicy, load_policy, policy_toml
from coldvault.quorum.documents import (
    SignedDocument,
    load_signed_document,
    load_verified_document,
    verify_roster_chain,
    write_signed_document,
)
from coldvault.quorum.roster import CardHolder, Role, Roster
from coldvault.records.transcript import read_entries, verify
from coldvault.requests.base import Chain
from coldvault.requests.wallets import parse_wallets
from hardware_emulators.ceremony_driver import finish, spawn
from hardware_emulators.demo import parties

pytestmark = pytest.mark.lab

APPLIANCE = "vault-approve-1"
ADMIN_PIN = "12345678"  # TEST ONLY: OpenPGP factory defaults of the virtual cards
USER_PIN = "123456"  # TEST ONLY
CARDS = [  # lab serial, holder, role, site, algorithm
    ("C0DE0004", "Dave Admin", "admin", "site-a", CardAlgorithm.ED25519),
    ("C0DE0005", "Erin Admin", "admin", "site-b", CardAlgorithm.NIST_P256),
    ("C0DE0001", "Alice Approver", "approver", "site-a", CardAlgorithm.ED25519),
]
INSERT = "Admin approval {n} of 2: insert an admin card."


class Lab:
    """The cards of one test, inserted into reader 0 when the ceremony asks."""

    def __init__(self, card_factory, pcsc_lab) -> None:
        self.port = pcsc_lab.reader_ports[0]
        self.reader = pcsc_lab.reader_names()[0]
        self.cards = {}
        for i, (serial, *_rest) in enumerate(CARDS):
            self.cards[serial] = card_factory(serial, i)
            self.cards[serial].remove()  # outside the readers until asked for
        self.ids: dict[str, str] = {}

    def session(self, serial: str, action):
        card = self.cards[serial]
        card.insert(self.port)
        try:
            connection = PcscConnection(self.reader)
            try:
                session = OpenPgpSession(connection)
                session.select()
                return action(session)
            finally:
                connection.close()
        finally:
            card.remove()
            pcsc.wait_for_removal(self.reader, timeout=10)  # before the next card goes in

    def use(self, child, serial: str, prompt: str, answers: list[tuple[str, str | None]]) -> None:
        child.expect(re.escape(prompt))
        self.cards[serial].insert(self.port)
        for expected, answer in answers:
            child.expect(expected)
            if answer is not None:
                child.sendline(answer)
        child.expect("Remove the card.")
        self.cards[serial].remove()

    def pin(self, serial: str, holder: str, pin: str = USER_PIN) -> list[tuple[str, str | None]]:
        return [(re.escape(f"PIN for card {self.ids[serial]} ({holder}): "), pin)]


@pytest.fixture
def lab(card_factory, pcsc_lab, tmp_path: Path):
    """Three enrolled cards and the genesis roster (signed by both admins) in tmp_path."""
    lab = Lab(card_factory, pcsc_lab)
    holders = []
    for serial, holder, role, site, algorithm in CARDS:

        def enrol(session: OpenPgpSession, algorithm=algorithm) -> tuple[str, bytes]:  # noqa: ANN001
            session.verify_pin(ADMIN_PIN, Pw.ADMIN)
            session.set_algorithm(algorithm)
            return session.card_id, session.generate_key(algorithm)

        card_id, public_key = lab.session(serial, enrol)
        lab.ids[serial] = card_id
        holders.append(CardHolder(card_id, holder, Role(role), site, algorithm.value, public_key))
    roster = Roster(1, APPLIANCE, tuple(holders), admin_threshold=2)
    doc = SignedDocument("roster", 1, APPLIANCE, roster.to_bytes())
    token = doc.token
    for serial, *_rest, algorithm in CARDS[:2]:

        def sign(session: OpenPgpSession, algorithm=algorithm) -> bytes:  # noqa: ANN001
            session.verify_pin(USER_PIN, Pw.SIGN)
            return session.sign(card_input(algorithm.value, token))

        doc = doc.with_approval(lab.ids[serial], lab.session(serial, sign))
    write_signed_document(tmp_path / "roster-1.json", doc)
    lab.roster = roster
    return lab


def _args(tmp_path: Path, name: str, kind: str, file: Path, *extra: str) -> list[str]:
    return [
        "approve-document", "--operator", "Olga Operator", "--allow-emulated", "--json",
        "--kind", kind, "--roster", str(tmp_path / "roster-1.json"),
        "--transcript", str(tmp_path / "transcripts" / f"{name}.jsonl"), *extra, str(file),
    ]  # fmt: skip


def _result(child) -> dict:
    child.expect(r'\{"[^\r\n]*"ok": (true|false)[^\r\n]*\}')
    return json.loads(child.match.group(0))


def _policy_text(dest: parties.Proof) -> str:
    wallet = WalletPolicy(
        name="acme-btc", client="acme", chain=Chain.BITCOIN, network="main",
        kinds=frozenset({"psbt"}), min_approvals=1, max_fee=100000,
        limits={"BTC": AssetLimits(per_transaction=100000000, per_day=300000000)},
        destinations=(dest.destination(),),
    )  # fmt: skip
    return policy_toml(Policy(3, APPLIANCE, frozenset({Chain.BITCOIN}), {wallet.name: wallet}))


def test_policy_approved_refusals_counted_once(lab: Lab, pcsc_lab, tmp_path: Path) -> None:
    log = tmp_path / "pexpect.log"
    dest = parties.bitcoin_counterparty("acme-treasury")
    policy = tmp_path / "policy.toml"
    policy.write_text(_policy_text(dest))
    genesis = lab.roster.sha256.hex()
    child = spawn(_args(tmp_path, "policy", "policy", policy, "--genesis-sha256", genesis),
                  pcsc_lab.env, log)  # fmt: skip
    # the review shows the hash and the summary before anything is signed
    child.expect(f"destination {dest.label}")
    child.expect(r"SHA-256 ([0-9a-f]{64})")
    assert child.match.group(1) == hashlib.sha256(policy.read_bytes()).hexdigest()
    child.expect("Is this the policy document the admins are to approve\\? Type yes to continue: ")
    child.sendline("yes")
    # an approver card is refused with the reason, before its PIN is asked
    lab.use(child, "C0DE0001", INSERT.format(n=1),
            [(r"has\s+role\s+approver;\s+only\s+admin\s+cards", None)])  # fmt: skip
    lab.use(child, "C0DE0004", INSERT.format(n=1), lab.pin("C0DE0004", "Dave Admin"))
    child.expect(re.escape("Approved by Dave Admin (1 of 2)."))
    # the same admin again: refused, counted once
    lab.use(child, "C0DE0004", INSERT.format(n=2),
            [(r"Dave\s+Admin\s+already\s+approved\s+with\s+card", None)])  # fmt: skip
    lab.use(child, "C0DE0005", INSERT.format(n=2), lab.pin("C0DE0005", "Erin Admin"))
    result = _result(child)
    assert finish(child) == 0
    assert result["ok"] and result["kind"] == "policy" and result["version"] == 3
    assert [a["holder"] for a in result["approvals"]] == ["Dave Admin", "Erin Admin"]

    loaded = load_policy(policy, roster=lab.roster)  # the appliance's own start-up check
    assert loaded.version == 3 and list(loaded.wallets) == ["acme-btc"]
    doc = load_signed_document(policy, "policy")
    assert [s for s, _ in doc.approvals] == [lab.ids["C0DE0004"], lab.ids["C0DE0005"]]
    transcript = tmp_path / "transcripts" / "policy.jsonl"
    assert verify(transcript).status == "completed"
    entries = read_entries(transcript)
    steps = [e["step"] for e in entries]
    assert steps.count("admin-approval") == 2 and steps.count("approval-refused") == 2
    refused = [e["data"]["error"] for e in entries if e["step"] == "approval-refused"]
    assert refused == ["wrong-role", "duplicate-holder"]
    assert {"roster-verified", "document-reviewed", "quorum-met", "document-approved"} <= set(steps)
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()
                       and p.name != "pexpect.log")  # fmt: skip
    assert USER_PIN.encode() not in written

    # approving version 3 again with other content is a rollback: refused, no card asked
    policy.write_text(_policy_text(dest).replace("max_fee = 100000", "max_fee = 900000"))
    child = spawn(_args(tmp_path, "policy-again", "policy", policy, "--yes"), pcsc_lab.env, log)
    result = _result(child)
    assert finish(child) == 2
    assert result["ok"] is False and result["error"] == "config-rollback"
    assert verify(tmp_path / "transcripts" / "policy-again.jsonl").status == "aborted"


def test_wallets_and_roster_successor(lab: Lab, pcsc_lab, tmp_path: Path) -> None:
    log = tmp_path / "pexpect.log"
    wallets = tmp_path / "wallets.toml"
    wallets.write_text(
        '[[wallet]]\nname = "acme-btc"\nclient = "acme"\nchain = "bitcoin"\nnetwork = "main"\n'
        'template = "bip84"\nmaster_fingerprint = "0a1b2c3d"\naccount_path = "m/84h/0h/0h"\n'
        'descriptor = "wpkh([0a1b2c3d/84h/0h/0h]xpubEXAMPLE/<0;1>/*)"\nmax_index = 19\n'
    )
    # a wallet registry has no version inside: --version is required (usage error, exit 2)
    child = spawn(_args(tmp_path, "w0", "wallets", wallets), pcsc_lab.env, log)
    child.expect("give --version N")
    assert finish(child) == 2

    child = spawn(_args(tmp_path, "wallets", "wallets", wallets, "--version", "1", "--yes"),
                  pcsc_lab.env, log)  # fmt: skip
    child.expect(r"descriptor\s+│\s+wpkh\(\[0a1b2c3d/84h/0h/0h\]")
    lab.use(child, "C0DE0005", INSERT.format(n=1),
            [*lab.pin("C0DE0005", "Erin Admin", "654321"), (r"rejected\s+the", None)])  # fmt: skip
    lab.use(child, "C0DE0005", INSERT.format(n=1), lab.pin("C0DE0005", "Erin Admin"))
    lab.use(child, "C0DE0004", INSERT.format(n=2), lab.pin("C0DE0004", "Dave Admin"))
    result = _result(child)
    assert finish(child) == 0 and result["version"] == 1
    doc = load_verified_document(wallets, "wallets", lab.roster)
    assert list(parse_wallets(doc.content)) == ["acme-btc"]

    # roster v2 revokes the approver card: signed by the admins of v1
    v2 = lab.roster.revoke(lab.ids["C0DE0001"])
    successor = tmp_path / "roster-2.json"
    successor.write_bytes(v2.to_bytes())
    child = spawn(_args(tmp_path, "roster", "roster", successor, "--yes"), pcsc_lab.env, log)
    child.expect(re.escape(f"{lab.ids['C0DE0001']}") + r"\s+│\s+CHANGED: status active -> revoked")
    lab.use(child, "C0DE0004", INSERT.format(n=1), lab.pin("C0DE0004", "Dave Admin"))
    lab.use(child, "C0DE0005", INSERT.format(n=2), lab.pin("C0DE0005", "Erin Admin"))
    result = _result(child)
    assert finish(child) == 0 and result["kind"] == "roster" and result["version"] == 2
    chain = [load_signed_document(tmp_path / f"roster-{v}.json", "roster") for v in (1, 2)]
    newest = verify_roster_chain(chain, lab.roster.sha256)
    assert newest.version == 2 and not newest.holder(lab.ids["C0DE0001"]).active

    # a document for another appliance is refused before any card is asked for
    other = tmp_path / "other.toml"
    other.write_text(_policy_text(parties.bitcoin_counterparty("x")).replace(APPLIANCE, "vault-9"))
    child = spawn(_args(tmp_path, "other", "policy", other, "--yes"), pcsc_lab.env, log)
    result = _result(child)
    assert finish(child) == 2 and result["error"] == DocumentRefused.code
    assert "is for appliance vault-9" in result["message"]


def test_help_lists_every_option(pcsc_lab, tmp_path: Path) -> None:
    child = spawn(["approve-document", "--help"], pcsc_lab.env, tmp_path / "pexpect.log")
    child.expect(r"--kind \[policy\|wallets\|roster\]")
    for option in ("--version", "--appliance-id", "--roster", "--genesis-sha256", "--json"):
        child.expect(re.escape(option))
    assert finish(child) == 0
