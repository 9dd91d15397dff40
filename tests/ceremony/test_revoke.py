"""``revoke-card`` and ``replace-card`` in process, on virtual cards behind the lab's pcscd.

Genesis roster (:mod:`.chain`): admins Dave (Ed25519), Erin (NIST P-256), Carol
(Ed25519), threshold 2; approvers Alice and Bob.  A policy requiring two approvals is
signed by Dave and Erin.

* revoke an approver: the new roster passes ``verify_roster_chain`` and the revoked card
  is then refused by ``ApprovalSession`` (``CardRevoked``); an approver card offered as
  an admin is refused (wrong role);
* revoke an admin: his own card is refused for his own revocation, two other admins sign;
* refusals with their exact reasons, before any card is asked for;
* replace a card: the old card is refused as the "new" card (nothing written on it), then
  a blank card is enrolled for the same holder and can approve a request, the old not.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ceremony_scripts.hardware import ReaderCards
from coldvault.cards import OpenPgpSession, Pw, card_input
from coldvault.ceremonies import CardChange, replace_card, revoke_card
from coldvault.ceremonies.enrol import CardAlreadyEnrolled
from coldvault.ceremonies.revoke import RevocationRefused, check_signers, check_successor
from coldvault.errors import Cancelled
from coldvault.quorum.approvals import ApprovalSession, ApprovalToken
from coldvault.quorum.documents import approvals_path, load_signed_document, verify_roster_chain
from coldvault.quorum.errors import CardRevoked
from coldvault.quorum.roster import CardHolder, CardStatus, Role, Roster
from coldvault.records.transcript import read_entries, verify
from hardware_emulators.demo import parties

from .chain import ADMIN_PIN, CARDS, USER_PIN, Genesis, make_genesis, policy_text
from .support import Answer, CardSlot, ScriptedOperator, files_under, on_card

APPLIANCE = "vault-revoke-1"
INSERT = "Admin approval {n} of 2: insert an admin card."
DAVE, ERIN, CAROL, ALICE, BOB = "C0DE0004", "C0DE0005", "C0DE0003", "C0DE0001", "C0DE0002"
NEW_SERIAL = "C0DE0006"  # the replacement card: not in the lab file, made by the test


@pytest.fixture
def chain(lab_cards: dict[str, Any], pcsc_lab: Any, tmp_path: Path) -> Genesis:
    """Five enrolled cards, roster-1.json and policy.toml (v3, two approvals), both signed
    by Dave and Erin."""
    genesis = make_genesis(tmp_path, APPLIANCE, lab_cards, pcsc_lab, CARDS)
    text = policy_text(APPLIANCE, parties.bitcoin_counterparty("acme-treasury"), min_approvals=2)
    genesis.signed_policy(tmp_path / "policy.toml", text, (DAVE, ERIN))
    return genesis


def change(chain: Genesis, name: str, card: str, versions: int, **kw: Any) -> CardChange:
    return CardChange(
        actor="Olga Operator",
        transcript=chain.directory / "transcripts" / f"{name}.jsonl",
        rosters=tuple(chain.directory / f"roster-{v}.json" for v in range(1, versions + 1)),
        card=card,
        reason=kw.pop("reason", "x"),
        out=chain.directory / f"roster-{versions + 1}.json",
        **kw,
    )


def pin(chain: Genesis, serial: str, holder: str, value: str = USER_PIN) -> tuple[str, Answer]:
    return (f"^User PIN for card {chain.card_id(serial)} \\({holder}\\)$", value)


def refused(chain: Genesis, name: str, card: str, versions: int, **kw: Any) -> str:
    """Run ``revoke-card`` expected to refuse before any card is asked for."""
    op = ScriptedOperator()
    with pytest.raises(RevocationRefused) as error:
        revoke_card(op, change(chain, name, card, versions, **kw), ReaderCards(op))
    path = chain.directory / "transcripts" / f"{name}.jsonl"
    assert verify(path).status == "aborted" and not op.asked
    steps = [e["step"] for e in read_entries(path)]
    assert "admin-approval" not in steps and "card-enrolled" not in steps
    return error.value.message


def approve_request(
    chain: Genesis, roster: Roster, serial: str, pin: str = USER_PIN
) -> ApprovalSession:
    """A sign-request approval for ``roster``: card ``serial`` signs it and
    ``ApprovalSession`` counts it (or raises)."""
    now = int(time.time())
    token = ApprovalToken(
        request_digest=hashlib.sha256(b"request").digest(),
        request_fingerprint="0CB6-098C-78C2",
        wallet="acme-btc",
        client="acme",
        policy_version=3,
        roster_version=roster.version,
        appliance_id=roster.appliance_id,
        session_nonce=os.urandom(16),
        issued_at=now,
        expires_at=now + 900,
        required_approvals=1,
    )
    session = ApprovalSession(roster, token)
    card = chain.card_id(serial)
    algorithm = roster.holder(card).algorithm  # type: ignore[union-attr]

    def sign(s: OpenPgpSession) -> bytes:
        s.verify_pin(pin, Pw.SIGN)
        return s.sign(card_input(algorithm, token.to_bytes()))

    session.add(card, on_card(chain.cards[serial], chain.port, chain.reader, sign))
    return session


@pytest.mark.lab
def test_revoke_approver_then_admin(chain: Genesis, slot: CardSlot, tmp_path: Path) -> None:
    alice, dave, erin = chain.card_id(ALICE), chain.card_id(DAVE), chain.card_id(ERIN)
    policy = tmp_path / "policy.toml"

    # refused before any card: the policy needs two approvers, Bob alone would remain
    assert refused(chain, "r-policy", alice, 1, reason="lost", policy=policy) == (
        f"Card {alice} cannot be revoked: it would leave 1 distinct active "
        "approver(s); policy version 3 requires 2."
    )
    # the policy Dave approved would no longer verify once his card is revoked
    assert refused(chain, "policy-signer", dave, 1, policy=policy) == (
        f"Card {dave} cannot be revoked: the policy {policy} would no longer be "
        f"accepted with roster version 2 (Card {dave} of Dave Admin is revoked in roster "
        "version 2); have it approved again by other admins first."
    )

    # the operator's "no" at the review of the new roster: cancelled, nothing written
    op = ScriptedOperator(
        ("^Is this the card to be revoked\\?$", True), ("^Is roster version 2 the one", False)
    )
    with pytest.raises(Cancelled):
        revoke_card(op, change(chain, "no", alice, 1), ReaderCards(op))
    last = read_entries(tmp_path / "transcripts" / "no.jsonl")[-1]
    assert last["data"] == {"status": "aborted", "reason": "cancelled"}
    assert not (tmp_path / "roster-2.json").exists()
    assert not approvals_path(tmp_path / "roster-2.json").exists()

    # 1. revoke Alice's card (genesis pinned), every prompt answered
    reason = "card lost on 2024-05-01"
    op = ScriptedOperator(
        ("^Is this the card to be revoked\\?$", True),
        ("^Is roster version 2 the one the admins are to approve\\?$", True),
        pin(chain, DAVE, "Dave Admin"),
        pin(chain, ERIN, "Erin Admin"),
        on_info=slot,
    )
    slot.expect(INSERT.format(n=1), chain.cards[ALICE])  # an approver card: wrong role
    slot.expect(INSERT.format(n=1), chain.cards[DAVE]).expect(INSERT.format(n=2), chain.cards[ERIN])
    params = change(
        chain, "revoke-alice", alice, 1, reason=reason, genesis_sha256=chain.genesis.sha256.hex()
    )
    result = revoke_card(op, params, ReaderCards(op, allow_emulated=True))
    assert slot.done() and not op.script
    card_rows = op.table_rows(f"Card {alice}")
    assert (card_rows["holder"], card_rows["reason"]) == ("Alice Approver", reason)
    assert (
        op.table_rows("Changes from roster version 1")[alice] == "CHANGED: status active -> revoked"
    )
    assert f"SHA-256 {result.sha256}" in op.said("info")
    data = result.to_dict()
    assert data["ok"] and data["version"] == 2 and data["holder"] == "Alice Approver"
    assert data["card"] == alice and "new_card" not in data
    assert [a["holder"] for a in data["approvals"]] == ["Dave Admin", "Erin Admin"]

    docs = [load_signed_document(tmp_path / f"roster-{v}.json", "roster") for v in (1, 2)]
    v2 = verify_roster_chain(docs, chain.genesis.sha256)
    assert v2.version == 2 and v2.holder(alice).status is CardStatus.REVOKED  # type: ignore[union-attr]
    assert {h for h in v2.holders if h.serial != alice} == {
        h for h in chain.genesis.holders if h.serial != alice
    }
    # the revoked card can no longer approve a request; Bob's still can
    with pytest.raises(CardRevoked) as revoked:
        approve_request(chain, v2, ALICE)
    assert str(revoked.value) == f"Card {alice} of Alice Approver is revoked in roster version 2."
    assert approve_request(chain, v2, BOB).satisfied
    entries = read_entries(tmp_path / "transcripts" / "revoke-alice.jsonl")
    steps = [e["step"] for e in entries]
    for step in (
        "roster-verified",
        "card-to-be-revoked",
        "roster-proposed",
        "quorum-met",
        "roster-written",
    ):
        assert step in steps
    assert steps.count("admin-approval") == 2
    assert [e["data"]["error"] for e in entries if e["step"] == "approval-refused"] == [
        "wrong-role"
    ]
    assert next(e for e in entries if e["step"] == "card-to-be-revoked")["data"]["reason"] == reason

    # 2. refusals on the chain 1..2, before any card is asked for
    assert refused(chain, "again", alice, 2) == (
        f"Card {alice} cannot be revoked: it is already revoked in roster version 2 "
        "(Alice Approver)."
    )
    assert refused(chain, "unknown", "FFFFDEADBEEF", 2) == (
        "Card FFFFDEADBEEF cannot be revoked: it is not in roster version 2."
    )
    (tmp_path / "roster-3.json").write_text("{}")
    assert "roster-3.json (or its approvals) exists" in refused(chain, "exists", dave, 2)
    assert (tmp_path / "roster-3.json").read_text() == "{}"  # not overwritten
    (tmp_path / "roster-3.json").unlink()

    # 3. revoke Dave (admin): his own card is refused, Erin and Carol sign
    op = ScriptedOperator(
        ("^Is this the card to be revoked\\?$", True),
        ("^Is roster version 3 the one", True),
        pin(chain, ERIN, "Erin Admin"),
        pin(chain, CAROL, "Carol Admin"),
        on_info=slot,
    )
    slot.expect(INSERT.format(n=1), chain.cards[DAVE])
    slot.expect(INSERT.format(n=1), chain.cards[ERIN]).expect(
        INSERT.format(n=2), chain.cards[CAROL]
    )
    result = revoke_card(
        op,
        change(chain, "revoke-dave", dave, 2, reason="left the firm"),
        ReaderCards(op, allow_emulated=True),
    )
    assert result.version == 3 and slot.done()
    assert op.said("error") == [
        f"Card {dave} of Dave Admin is the card being revoked; it cannot approve its own "
        "revocation. Another admin card must sign."
    ]
    docs.append(load_signed_document(tmp_path / "roster-3.json", "roster"))
    v3 = verify_roster_chain(docs, chain.genesis.sha256)
    assert {h.holder for h in v3.active(Role.ADMIN)} == {"Carol Admin", "Erin Admin"}
    entries = read_entries(tmp_path / "transcripts" / "revoke-dave.jsonl")
    assert [e["data"]["error"] for e in entries if e["step"] == "approval-refused"] == [
        "card-being-revoked"
    ]

    # 4. revoking Erin now would leave one admin for a threshold of two
    assert refused(chain, "last-admins", erin, 3) == (
        f"Card {erin} cannot be revoked: it would leave 1 distinct active admin(s), "
        "fewer than the admin threshold 2."
    )


@pytest.fixture
def new_card(pcsc_lab: Any, tmp_path: Path) -> Any:
    """A blank card that is not in the lab file (serial C0DE0006), outside the readers."""
    from hardware_emulators.openpgp_card.controller import VirtualCard

    (tmp_path / "cards").mkdir(exist_ok=True)
    card = VirtualCard(
        state_file=tmp_path / "cards" / f"card-{NEW_SERIAL}.json",
        serial=int(NEW_SERIAL, 16),
        pw1=USER_PIN,
        pw3=ADMIN_PIN,
    )
    yield card
    card.remove()


@pytest.mark.lab
def test_replace_card(chain: Genesis, new_card: Any, slot: CardSlot, tmp_path: Path) -> None:
    alice = chain.card_id(ALICE)
    new_id = f"FFFF{NEW_SERIAL}"  # manufacturer FFFF (test cards) + serial
    insert_new = "Insert the NEW blank card for Alice Approver."

    # a refusal names this ceremony's one change
    op = ScriptedOperator()
    with pytest.raises(RevocationRefused) as unknown:
        replace_card(op, change(chain, "replace-unknown", "FFFFDEADBEEF", 1), ReaderCards(op))
    assert unknown.value.message == (
        "Card FFFFDEADBEEF cannot be replaced: it is not in roster version 1."
    )

    # Alice's enrolled card offered as the "new" card: refused before anything is written
    op = ScriptedOperator(("^Is this the card to be replaced\\?$", True), on_info=slot)
    slot.expect(insert_new, chain.cards[ALICE])
    with pytest.raises(CardAlreadyEnrolled) as enrolled:
        replace_card(
            op, change(chain, "replace-old", alice, 1), ReaderCards(op, allow_emulated=True)
        )
    assert enrolled.value.message == (
        f"Card {alice} is already in roster version 1 (Alice Approver); nothing was changed "
        "on it. Insert a new, blank card."
    )
    assert slot.done() and not op.script
    key = on_card(chain.cards[ALICE], chain.port, chain.reader, lambda s: s.public_key())
    assert key == chain.genesis.holder(alice).public_key  # type: ignore[union-attr]
    assert not (tmp_path / "roster-2.json").exists()

    # replace Alice's card with the blank C0DE0006, every prompt answered
    nid = new_id
    op = ScriptedOperator(
        ("^Is this the card to be replaced\\?$", True),
        (f"^Card {nid} current admin PIN$", ADMIN_PIN),
        (f"^New admin PIN for card {nid}$", "alice-admin-2"),
        (f"^Repeat new admin PIN for card {nid}$", "alice-admin-2"),
        (f"^Card {nid} current user PIN$", USER_PIN),
        (f"^New user PIN for card {nid}$", "alice-pin-2"),
        (f"^Repeat new user PIN for card {nid}$", "alice-pin-2"),
        ("^Is roster version 2 the one the admins are to approve\\?$", True),
        pin(chain, ERIN, "Erin Admin"),
        pin(chain, CAROL, "Carol Admin"),
        on_info=slot,
    )
    slot.expect(insert_new, new_card)
    slot.expect(INSERT.format(n=1), chain.cards[ERIN]).expect(
        INSERT.format(n=2), chain.cards[CAROL]
    )
    params = change(
        chain,
        "replace",
        alice,
        1,
        reason="card worn out",
        genesis_sha256=chain.genesis.sha256.hex(),
    )
    result = replace_card(op, params, ReaderCards(op, allow_emulated=True))
    assert slot.done() and not op.script
    assert f"Card {new_id} is for Alice Approver (approver, site site-a)." in op.said("info")
    assert f"Signature key generated on card {new_id} (ed25519)." in op.said("ok")
    changes = op.table_rows("Changes from roster version 1")
    assert changes[alice] == "CHANGED: status active -> revoked"
    assert changes[new_id] == "ADDED: Alice Approver (approver, site-a)"
    data = result.to_dict()
    assert data["ceremony"] == "replace-card" and data["version"] == 2
    assert data["new_card"]["card_serial"] == new_id

    docs = [load_signed_document(tmp_path / f"roster-{v}.json", "roster") for v in (1, 2)]
    v2 = verify_roster_chain(docs, chain.genesis.sha256)
    added = v2.holder(new_id)
    assert added is not None and added.active and not v2.holder(alice).active  # type: ignore[union-attr]
    assert (added.holder, added.role, added.site) == ("Alice Approver", Role.APPROVER, "site-a")
    assert added.public_key.hex() == data["new_card"]["public_key"]
    # the new card approves a request; the old one is refused
    chain.cards[NEW_SERIAL], chain.ids[NEW_SERIAL] = new_card, new_id
    assert approve_request(chain, v2, NEW_SERIAL, "alice-pin-2").satisfied
    with pytest.raises(CardRevoked):
        approve_request(chain, v2, ALICE)
    steps = [e["step"] for e in read_entries(tmp_path / "transcripts" / "replace.jsonl")]
    assert steps.index("card-to-be-replaced") < steps.index("card-enrolled")
    assert steps.index("card-enrolled") < steps.index("roster-proposed") < steps.index("quorum-met")
    written = files_under(tmp_path, skip=lambda p: p.parent.name == "cards")
    assert b"alice-pin-2" not in written and b"alice-admin-2" not in written


def test_successor_checks_without_cards() -> None:
    """The refusals that need no card, on a 2-of-2 admin roster with one approver."""

    def key(i: int) -> bytes:
        return hashlib.sha256(bytes([i])).digest()  # 32 bytes: an Ed25519 key's length

    holders = [
        CardHolder("A1", "Dave Admin", Role.ADMIN, "site-a", "ed25519", key(1)),
        CardHolder("A2", "Erin Admin", Role.ADMIN, "site-b", "ed25519", key(2)),
        CardHolder("P1", "Alice Approver", Role.APPROVER, "site-a", "ed25519", key(3)),
    ]
    roster = Roster(1, APPLIANCE, tuple(holders), admin_threshold=2)

    def revoked(serial: str) -> list[CardHolder]:
        return [
            replace(h, status=CardStatus.REVOKED) if h.serial == serial else h
            for h in roster.holders
        ]

    alice = roster.holder("P1")
    assert alice is not None
    with pytest.raises(RevocationRefused, match="leave 0 distinct active approver"):
        check_successor(roster, alice, revoked("P1"), None)  # revoking the last approver
    # replacing it is fine: checked without approvers first, then with the new card
    assert check_successor(roster, alice, revoked("P1"), None, approvers_needed=False).version == 2
    new = CardHolder("P2", "Alice Approver", Role.APPROVER, "site-a", "ed25519", key(4))
    assert check_successor(roster, alice, [*revoked("P1"), new], None).version == 2
    # an admin card of a 2-of-2 roster: Erin alone cannot approve Dave's replacement
    with pytest.raises(RevocationRefused) as refused_change:
        check_signers(roster, "A1")
    assert str(refused_change.value) == (
        "Card A1 cannot be changed in the roster: the admin threshold of roster version 1 "
        "is 2 and only 1 other distinct active admin(s) could approve (the card being changed "
        "cannot approve its own change)."
    )
