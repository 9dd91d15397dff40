"""``revoke-card`` and ``replace-card`` on the lab, through their real prompts.

Genesis roster (made with library calls on virtual cards, as in test_approve_lab.py):
admins Dave (Ed25519), Erin (NIST P-256), Carol (Ed25519), threshold 2; approvers Alice and
Bob. A policy requiring two approvals is signed by Dave and Erin.

* revoke an approver: the new roster is accepted by ``verify_roster_chain`` and the revoked
  card is then refused by ``coldvault.quorum.approvals`` (``CardRevoked``); an approver card offered
  as an admin is refused (wrong role);
* revoke an admin: his own card is refused for his own revocation, two other admins sign;
* refusals with their exact reasons, before any card is asked for: unknown card, already
  revoked, fewer admins than the threshold, fewer approvers than the policy needs, a policy
  the revoked card approved, an existing output file;
* replace a card: the old card is refused as the "new" card (nothing written on it), then
  a blank card is enrolled for the same holder and can approve a request, the old one not.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import pytest

from coldvault.cards.openpgp import CardAlgorithm, OpenPgpSession, Pw
from coldvault.cards.signatures import card_input
from coldvault.quorum.approvals import ApprovalSession, ApprovalToken
from coldvault.quorum.documents import (
    SignedDocument,
    load_signed_document,
    verify_roster_chain,
    write_signed_document,
)
from coldvault.quorum.errors import CardRevoked
from coldvault.quorum.roster import CardHolder, CardStatus, Role, Roster
from coldvault.records.transcript import read_entries, verify
from hardware_emulators.ceremony_driver import finish, spawn

from . import test_approve_lab as approve_lab

pytestmark = pytest.mark.lab

APPLIANCE = "vault-revoke-1"
ADMIN_PIN, USER_PIN = approve_lab.ADMIN_PIN, approve_lab.USER_PIN  # TEST ONLY (factory PINs)
CARDS = [  # lab serial, holder, role, site, algorithm
    ("C0DE0004", "Dave Admin", "admin", "site-a", CardAlgorithm.ED25519),
    ("C0DE0005", "Erin Admin", "admin", "site-b", CardAlgorithm.NIST_P256),
    ("C0DE0003", "Carol Admin", "admin", "site-c", CardAlgorithm.ED25519),
    ("C0DE0001", "Alice Approver", "approver", "site-a", CardAlgorithm.ED25519),
    ("C0DE0002", "Bob Approver", "approver", "site-b", CardAlgorithm.NIST_P256),
]
NEW_SERIAL = "C0DE0006"  # the replacement card: not in the lab file, made by the test
INSERT = approve_lab.INSERT


class Lab(approve_lab.Lab):
    """test_approve_lab's card handling, with this test's five cards."""

    def __init__(self, card_factory, pcsc_lab) -> None:  # noqa: ANN001
        self.port = pcsc_lab.reader_ports[0]
        self.reader = pcsc_lab.reader_names()[0]
        self.cards = {}
        for i, (serial, *_rest) in enumerate(CARDS):
            self.cards[serial] = card_factory(serial, i % pcsc_lab.readers)
            self.cards[serial].remove()  # outside the readers until asked for
        self.ids: dict[str, str] = {}

    def sign(self, serial: str, data: bytes) -> bytes:
        algorithm = self.algorithm(serial)

        def sign(session: OpenPgpSession) -> bytes:
            session.verify_pin(USER_PIN, Pw.SIGN)
            return session.sign(card_input(algorithm, data))

        return self.session(serial, sign)

    def algorithm(self, serial: str) -> str:
        holder = self.roster.holder(self.ids[serial])
        return holder.algorithm if holder else CardAlgorithm.ED25519.value


@pytest.fixture
def lab(card_factory, pcsc_lab, tmp_path: Path):
    """Five enrolled cards, roster-1.json (Dave + Erin signed) and policy.toml (v3, two
    approvals, Dave + Erin signed) in tmp_path."""
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
    lab.roster = Roster(1, APPLIANCE, tuple(holders), admin_threshold=2)
    lab.genesis = lab.roster.sha256.hex()
    doc = SignedDocument("roster", 1, APPLIANCE, lab.roster.to_bytes())
    for serial in ("C0DE0004", "C0DE0005"):
        doc = doc.with_approval(lab.ids[serial], lab.sign(serial, doc.token))
    write_signed_document(tmp_path / "roster-1.json", doc)

    text = approve_lab._policy_text(approve_lab.parties.bitcoin_counterparty("acme-treasury"))
    text = text.replace(approve_lab.APPLIANCE, APPLIANCE).replace(
        "min_approvals = 1", "min_approvals = 2"
    )
    policy = SignedDocument("policy", 3, APPLIANCE, text.encode())
    for serial in ("C0DE0004", "C0DE0005"):
        policy = policy.with_approval(lab.ids[serial], lab.sign(serial, policy.token))
    write_signed_document(tmp_path / "policy.toml", policy)
    return lab


def _args(tmp_path: Path, command: str, name: str, card: str, versions: int, *extra: str):
    rosters = []
    for v in range(1, versions + 1):
        rosters += ["--roster", str(tmp_path / f"roster-{v}.json")]
    return [
        command, "--operator", "Olga Operator", "--allow-emulated", "--json", *rosters,
        "--card", card, "--out", str(tmp_path / f"roster-{versions + 1}.json"),
        "--transcript", str(tmp_path / "transcripts" / f"{name}.jsonl"), *extra,
    ]  # fmt: skip


def _panel(text: str) -> str:
    """A regex for ``text`` as an error panel shows it (wrapped between borders)."""
    return r"[\s│]+".join(re.escape(word) for word in text.split())


def _result(child) -> dict:  # noqa: ANN001
    child.expect(r'\{"[^\r\n]*"ok": (true|false)[^\r\n]*\}')
    return json.loads(child.match.group(0))


def _refused(lab: Lab, pcsc_lab, tmp_path: Path, command: str, name: str, card: str,
             versions: int, *extra: str) -> str:  # fmt: skip
    """Run a ceremony expected to refuse before any card is asked for; return the reason."""
    child = spawn(_args(tmp_path, command, name, card, versions, "--yes", *extra),
                  pcsc_lab.env, tmp_path / "pexpect.log")  # fmt: skip
    result = _result(child)
    assert finish(child) == 2
    assert result["ok"] is False
    assert verify(tmp_path / "transcripts" / f"{name}.jsonl").status == "aborted"
    steps = [e["step"] for e in read_entries(tmp_path / "transcripts" / f"{name}.jsonl")]
    assert "admin-approval" not in steps and "card-enrolled" not in steps
    assert not (tmp_path / f"roster-{versions + 1}.json").exists() or name == "exists"
    return f"{result['error']}: {result['message']}"


def _approve_request(lab: Lab, roster: Roster, serial: str, pin: str = USER_PIN) -> ApprovalSession:
    """A sign-request approval token for ``roster``; the card ``serial`` signs it and
    ``coldvault.quorum.approvals.ApprovalSession`` counts it (or raises)."""
    now = int(time.time())
    token = ApprovalToken(
        request_digest=hashlib.sha256(b"request").digest(), request_fingerprint="0CB6-098C-78C2",
        wallet="acme-btc", client="acme", policy_version=3, roster_version=roster.version,
        appliance_id=roster.appliance_id, session_nonce=os.urandom(16), issued_at=now,
        expires_at=now + 900, required_approvals=1,
    )  # fmt: skip
    session = ApprovalSession(roster, token)
    card = lab.ids[serial]
    algorithm = roster.holder(card).algorithm

    def sign(s: OpenPgpSession) -> bytes:
        s.verify_pin(pin, Pw.SIGN)
        return s.sign(card_input(algorithm, token.to_bytes()))

    session.add(card, lab.session(serial, sign))
    return session


def test_revoke_approver_then_admin(lab: Lab, pcsc_lab, tmp_path: Path) -> None:
    log = tmp_path / "pexpect.log"
    alice, dave, erin = lab.ids["C0DE0001"], lab.ids["C0DE0004"], lab.ids["C0DE0005"]
    policy = str(tmp_path / "policy.toml")

    # refused before any card: the policy needs two approvers, Bob alone would remain
    reason = _refused(lab, pcsc_lab, tmp_path, "revoke-card", "r-policy", alice, 1,
                      "--reason", "lost", "--policy", policy)  # fmt: skip
    assert reason == (
        f"revocation-refused: Card {alice} cannot be revoked or replaced: it would leave 1 "
        "distinct active approver(s); policy version 3 requires 2."
    )

    # the policy Dave approved would no longer verify once his card is revoked
    reason = _refused(lab, pcsc_lab, tmp_path, "revoke-card", "policy-signer", dave, 1,
                      "--reason", "x", "--policy", policy)  # fmt: skip
    assert reason == (
        f"revocation-refused: Card {dave} cannot be revoked or replaced: the policy {policy} "
        f"would no longer be accepted with roster version 2 (Card {dave} of Dave Admin is "
        "revoked in roster version 2); have it approved again by other admins first."
    )

    # 1. revoke Alice's card (genesis pinned), every prompt answered
    reason = "card lost on 2024-05-01"
    args = _args(tmp_path, "revoke-card", "revoke-alice", alice, 1, "--reason", reason,
                 "--genesis-sha256", lab.genesis)  # fmt: skip
    child = spawn(args, pcsc_lab.env, log)
    child.expect(r"holder\s+│\s+Alice Approver")
    child.expect(r"reason\s+│\s+card lost on 2024-05-01")
    child.expect(re.escape("Is this the card to be revoked? Type yes to continue: "))
    child.sendline("yes")
    child.expect(re.escape(alice) + r"\s+│\s+CHANGED: status active -> revoked")
    child.expect(r"SHA-256 ([0-9a-f]{64})")
    sha = child.match.group(1)
    child.expect(re.escape("Is roster version 2 the one the admins are to approve? Type yes"))
    child.sendline("yes")
    # Alice's own (approver) card cannot approve a roster: refused before its PIN
    lab.use(child, "C0DE0001", INSERT.format(n=1),
            [(r"has\s+role\s+approver;\s+only\s+admin\s+cards", None)])  # fmt: skip
    lab.use(child, "C0DE0004", INSERT.format(n=1), lab.pin("C0DE0004", "Dave Admin"))
    lab.use(child, "C0DE0005", INSERT.format(n=2), lab.pin("C0DE0005", "Erin Admin"))
    result = _result(child)
    assert finish(child) == 0
    assert result["ok"] and result["version"] == 2 and result["sha256"] == sha
    assert result["holder"] == "Alice Approver" and result["card"] == alice
    assert [a["holder"] for a in result["approvals"]] == ["Dave Admin", "Erin Admin"]

    chain = [load_signed_document(tmp_path / f"roster-{v}.json", "roster") for v in (1, 2)]
    v2 = verify_roster_chain(chain, bytes.fromhex(lab.genesis))
    assert v2.version == 2 and v2.holder(alice).status is CardStatus.REVOKED
    assert {h for h in v2.holders if h.serial != alice} == {
        h for h in lab.roster.holders if h.serial != alice
    }
    # the revoked card can no longer approve a request; Bob's still can
    with pytest.raises(CardRevoked) as refused:
        _approve_request(lab, v2, "C0DE0001")
    assert str(refused.value) == f"Card {alice} of Alice Approver is revoked in roster version 2."
    assert _approve_request(lab, v2, "C0DE0002").satisfied
    transcript = tmp_path / "transcripts" / "revoke-alice.jsonl"
    assert verify(transcript).status == "completed"
    entries = read_entries(transcript)
    steps = [e["step"] for e in entries]
    for step in ("roster-verified", "card-to-be-revoked", "roster-proposed", "quorum-met",
                 "roster-written"):  # fmt: skip
        assert step in steps
    assert steps.count("admin-approval") == 2
    assert [e["data"]["error"] for e in entries if e["step"] == "approval-refused"] == [
        "wrong-role"
    ]
    assert next(e for e in entries if e["step"] == "card-to-be-revoked")["data"]["reason"] == (
        "card lost on 2024-05-01"
    )

    # 2. refusals on the chain 1..2, before any card is asked for
    assert _refused(lab, pcsc_lab, tmp_path, "revoke-card", "again", alice, 2, "--reason", "x") == (
        f"revocation-refused: Card {alice} cannot be revoked or replaced: it is already "
        "revoked in roster version 2 (Alice Approver)."
    )
    reason = _refused(
        lab, pcsc_lab, tmp_path, "revoke-card", "unknown", "FFFFDEADBEEF", 2, "--reason", "x"
    )
    assert reason == (
        "revocation-refused: Card FFFFDEADBEEF cannot be revoked or replaced: it is not in "
        "roster version 2."
    )
    (tmp_path / "roster-3.json").write_text("{}")
    assert "roster-3.json (or its approvals) exists" in _refused(
        lab, pcsc_lab, tmp_path, "revoke-card", "exists", dave, 2, "--reason", "x"
    )
    (tmp_path / "roster-3.json").unlink()

    # 3. revoke Dave (admin): his own card is refused, Erin and Carol sign
    child = spawn(_args(tmp_path, "revoke-card", "revoke-dave", dave, 2,
                        "--reason", "left the firm", "--yes"), pcsc_lab.env, log)  # fmt: skip
    own = f"Card {dave} of Dave Admin is the card being revoked; it cannot approve its own"
    lab.use(child, "C0DE0004", INSERT.format(n=1), [(_panel(own + " revocation."), None)])
    lab.use(child, "C0DE0005", INSERT.format(n=1), lab.pin("C0DE0005", "Erin Admin"))
    lab.use(child, "C0DE0003", INSERT.format(n=2), lab.pin("C0DE0003", "Carol Admin"))
    result = _result(child)
    assert finish(child) == 0 and result["version"] == 3
    chain.append(load_signed_document(tmp_path / "roster-3.json", "roster"))
    v3 = verify_roster_chain(chain, bytes.fromhex(lab.genesis))
    assert {h.holder for h in v3.active(Role.ADMIN)} == {"Carol Admin", "Erin Admin"}
    entries = read_entries(tmp_path / "transcripts" / "revoke-dave.jsonl")
    assert [e["data"]["error"] for e in entries if e["step"] == "approval-refused"] == [
        "card-being-revoked"
    ]

    # 4. revoking Erin now would leave one admin for a threshold of two
    reason = _refused(
        lab, pcsc_lab, tmp_path, "revoke-card", "last-admins", erin, 3, "--reason", "x"
    )
    assert reason == (
        f"revocation-refused: Card {erin} cannot be revoked or replaced: it would leave 1 "
        "distinct active admin(s), fewer than the admin threshold 2."
    )


@pytest.fixture
def new_card(pcsc_lab, tmp_path: Path):
    """A blank card that is not in the lab file (serial C0DE0006), outside the readers."""
    from hardware_emulators.openpgp_card.controller import VirtualCard

    card = VirtualCard(state_file=tmp_path / f"card-{NEW_SERIAL}.json",
                       serial=int(NEW_SERIAL, 16), pw1=USER_PIN, pw3=ADMIN_PIN)  # fmt: skip
    yield card
    card.remove()


def test_replace_card(lab: Lab, new_card, pcsc_lab, tmp_path: Path) -> None:
    log = tmp_path / "pexpect.log"
    alice = lab.ids["C0DE0001"]
    new_id = f"FFFF{NEW_SERIAL}"  # manufacturer FFFF (test cards) + serial
    insert_new = "Insert the NEW blank card for Alice Approver."

    # Alice's enrolled card offered as the "new" card: refused before anything is written
    child = spawn(_args(tmp_path, "replace-card", "replace-old", alice, 1, "--yes"),
                  pcsc_lab.env, log)  # fmt: skip
    lab.use(child, "C0DE0001", insert_new, [])
    result = _result(child)
    assert finish(child) == 2 and result["error"] == "card-already-enrolled"
    assert result["message"] == (
        f"Card {alice} is already in roster version 1 (Alice Approver); nothing was changed "
        "on it. Insert a new, blank card."
    )
    assert lab.session("C0DE0001", lambda s: s.public_key()) == lab.roster.holder(alice).public_key
    assert not (tmp_path / "roster-2.json").exists()

    # replace Alice's card with the blank C0DE0006, every prompt answered
    args = _args(tmp_path, "replace-card", "replace", alice, 1, "--reason", "card worn out",
                 "--genesis-sha256", lab.genesis)  # fmt: skip
    child = spawn(args, pcsc_lab.env, log)
    child.expect(r"holder\s+│\s+Alice Approver")
    child.expect(re.escape("Is this the card to be replaced? Type yes to continue: "))
    child.sendline("yes")
    child.expect(re.escape(insert_new))
    new_card.insert(lab.port)
    child.expect(re.escape(f"Card {new_id} is for Alice Approver (approver, site site-a)."))
    for prompt, answer in (
        (f"Card {new_id} current admin PIN: ", ADMIN_PIN),
        (f"New admin PIN for card {new_id}: ", "alice-admin-2"),
        (f"Repeat new admin PIN for card {new_id}: ", "alice-admin-2"),
        (f"Card {new_id} current user PIN: ", USER_PIN),
        (f"New user PIN for card {new_id}: ", "alice-pin-2"),
        (f"Repeat new user PIN for card {new_id}: ", "alice-pin-2"),
    ):
        child.expect(re.escape(prompt))
        child.sendline(answer)
    child.expect(re.escape(f"Signature key generated on card {new_id} (ed25519)."))
    child.expect("Remove the card.")
    new_card.remove()
    child.expect(re.escape(alice) + r"\s+│\s+CHANGED: status active -> revoked")
    child.expect(re.escape(new_id) + r"\s+│\s+ADDED: Alice Approver \(approver, site-a\)")
    child.expect(re.escape("Is roster version 2 the one the admins are to approve? Type yes"))
    child.sendline("yes")
    lab.use(child, "C0DE0005", INSERT.format(n=1), lab.pin("C0DE0005", "Erin Admin"))
    lab.use(child, "C0DE0003", INSERT.format(n=2), lab.pin("C0DE0003", "Carol Admin"))
    result = _result(child)
    assert finish(child) == 0 and result["ok"] and result["version"] == 2
    assert result["ceremony"] == "replace-card" and result["new_card"]["card_serial"] == new_id

    chain = [load_signed_document(tmp_path / f"roster-{v}.json", "roster") for v in (1, 2)]
    v2 = verify_roster_chain(chain, bytes.fromhex(lab.genesis))
    added = v2.holder(new_id)
    assert added is not None and added.active and not v2.holder(alice).active
    assert (added.holder, added.role, added.site) == ("Alice Approver", Role.APPROVER, "site-a")
    assert added.public_key.hex() == result["new_card"]["public_key"]
    # the new card approves a request; the old one is refused
    lab.cards[NEW_SERIAL], lab.ids[NEW_SERIAL] = new_card, new_id
    assert _approve_request(lab, v2, NEW_SERIAL, "alice-pin-2").satisfied
    with pytest.raises(CardRevoked):
        _approve_request(lab, v2, "C0DE0001")
    transcript = tmp_path / "transcripts" / "replace.jsonl"
    assert verify(transcript).status == "completed"
    steps = [e["step"] for e in read_entries(transcript)]
    assert steps.index("card-to-be-replaced") < steps.index("card-enrolled")
    assert steps.index("card-enrolled") < steps.index("roster-proposed")
    assert steps.index("roster-proposed") < steps.index("quorum-met")
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()
                       and p.name != "pexpect.log" and not p.name.startswith("card-"))  # fmt: skip
    assert b"alice-pin-2" not in written and b"alice-admin-2" not in written


def test_help_lists_every_option(pcsc_lab, tmp_path: Path) -> None:
    for command, extra in (("revoke-card", "--reason"), ("replace-card", "--algorithm")):
        child = spawn([command, "--help"], pcsc_lab.env, tmp_path / "pexpect.log")
        for option in ("--roster", "--genesis-sha256", "--card", "--policy", "--out", "--json",
                       extra):  # fmt: skip
            child.expect(re.escape(option))
        assert finish(child) == 0


def test_successor_checks_without_cards() -> None:
    """The refusals that need no card, on a 2-of-2 admin roster with one approver."""
    from dataclasses import replace

    from ceremony_scripts.revoke import RevocationRefused, _check_signers, _successor

    def key(i: int) -> bytes:
        return hashlib.sha256(bytes([i])).digest()  # 32 bytes: an Ed25519 key's length

    holders = [
        CardHolder("A1", "Dave Admin", Role.ADMIN, "site-a", "ed25519", key(1)),
        CardHolder("A2", "Erin Admin", Role.ADMIN, "site-b", "ed25519", key(2)),
        CardHolder("P1", "Alice Approver", Role.APPROVER, "site-a", "ed25519", key(3)),
    ]
    roster = Roster(1, APPLIANCE, tuple(holders), admin_threshold=2)

    def revoked(serial: str) -> list[CardHolder]:
        return [replace(h, status=CardStatus.REVOKED) if h.serial == serial else h
                for h in roster.holders]  # fmt: skip

    alice = roster.holder("P1")
    with pytest.raises(RevocationRefused, match="leave 0 distinct active approver"):
        _successor(roster, alice, revoked("P1"), None)  # revoking the last approver
    # replacing it is fine: checked without approvers first, then with the new card
    assert _successor(roster, alice, revoked("P1"), None, approvers_needed=False).version == 2
    new = CardHolder("P2", "Alice Approver", Role.APPROVER, "site-a", "ed25519", key(4))
    assert _successor(roster, alice, [*revoked("P1"), new], None).version == 2
    # an admin card of a 2-of-2 roster: Erin alone cannot approve Dave's replacement
    with pytest.raises(RevocationRefused) as refused:
        _check_signers(roster, "A1")
    assert str(refused.value) == (
        "Card A1 cannot be revoked or replaced: the admin threshold of roster version 1 is 2 "
        "and only 1 other distinct active admin(s) could approve (the card being changed "
        "cannot approve its own change)."
    )
