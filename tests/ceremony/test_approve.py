"""``approve-document`` in process: admins approve a policy, a wallet registry and a roster
successor with virtual OpenPGP cards behind the lab's pcscd.

One admin card is Ed25519 (signs the config token), the other NIST P-256 (signs its
SHA-256), so both card-input paths are exercised.  Refusals: an approver card (wrong role)
and the same admin twice (counted once), a wrong PIN, a rollback, a document for another
appliance, and the operator's "no" at the review.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from ceremony_scripts.hardware import ReaderCards
from coldvault.ceremonies import ApproveDocument, approve_document
from coldvault.ceremonies.proposals import DocumentKind, DocumentRefused
from coldvault.errors import Cancelled
from coldvault.policy import load_policy
from coldvault.quorum.documents import (
    ConfigRollback,
    approvals_path,
    load_signed_document,
    load_verified_document,
    verify_roster_chain,
)
from coldvault.records.transcript import read_entries, verify
from coldvault.requests.wallets import parse_wallets
from hardware_emulators.demo import parties

from .chain import CARDS, USER_PIN, Genesis, make_genesis, policy_text
from .support import Answer, CardSlot, ScriptedOperator, files_under

pytestmark = pytest.mark.lab

APPLIANCE = "vault-approve-1"
INSERT = "Admin approval {n} of 2: insert an admin card."
DAVE, ERIN, ALICE = "C0DE0004", "C0DE0005", "C0DE0001"


@pytest.fixture
def chain(lab_cards: dict[str, Any], pcsc_lab: Any, tmp_path: Path) -> Genesis:
    """Dave and Erin (admins) and Alice (approver); roster-1.json signed by both admins."""
    cards = [c for c in CARDS if c[0] in (DAVE, ERIN, ALICE)]
    return make_genesis(tmp_path, APPLIANCE, lab_cards, pcsc_lab, cards)


def params(chain: Genesis, name: str, kind: DocumentKind, file: Path, **kw: Any) -> ApproveDocument:
    return ApproveDocument(
        actor="Olga Operator",
        transcript=chain.directory / "transcripts" / f"{name}.jsonl",
        kind=kind,
        file=file,
        rosters=(chain.path,),
        **kw,
    )


def pin(chain: Genesis, serial: str, holder: str, value: str = USER_PIN) -> tuple[str, Answer]:
    return (f"^User PIN for card {chain.card_id(serial)} \\({holder}\\)$", value)


def test_policy_approved_refusals_counted_once(
    chain: Genesis, slot: CardSlot, tmp_path: Path
) -> None:
    dest = parties.bitcoin_counterparty("acme-treasury")
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_text(APPLIANCE, dest))

    # the operator's "no" at the review: cancelled, no card asked for, nothing written
    op = ScriptedOperator(("^Is this the policy document", False))
    with pytest.raises(Cancelled):
        approve_document(op, params(chain, "no", DocumentKind.POLICY, policy), ReaderCards(op))
    last = read_entries(tmp_path / "transcripts" / "no.jsonl")[-1]
    assert last["data"] == {"status": "aborted", "reason": "cancelled"}
    assert not approvals_path(policy).exists()

    op = ScriptedOperator(
        ("^Is this the policy document the admins are to approve\\?$", True),
        pin(chain, DAVE, "Dave Admin"),
        pin(chain, ERIN, "Erin Admin"),
        on_info=slot,
    )
    slot.expect(INSERT.format(n=1), chain.cards[ALICE])  # an approver: refused before its PIN
    slot.expect(INSERT.format(n=1), chain.cards[DAVE])
    slot.expect(INSERT.format(n=2), chain.cards[DAVE])  # the same admin again: refused
    slot.expect(INSERT.format(n=2), chain.cards[ERIN])
    p = params(
        chain, "policy", DocumentKind.POLICY, policy, genesis_sha256=chain.genesis.sha256.hex()
    )
    result = approve_document(op, p, ReaderCards(op, allow_emulated=True))
    assert slot.done() and not op.script

    # the review showed the hash and the summary before anything was signed
    sha = hashlib.sha256(policy.read_bytes()).hexdigest()
    assert f"SHA-256 {sha}" in op.said("info")
    rows = op.table_rows("Policy for wallet acme-btc")
    assert rows[f"destination {dest.label}"] == f"{dest.address}  [proven by an ownership proof]"
    assert rows["limit BTC"] == (
        "1.00000000 BTC (100,000,000 sat) per transaction, "
        "3.00000000 BTC (300,000,000 sat) per day"
    )
    assert rows["max fee"] == "0.00100000 BTC (100,000 sat)"
    errors = op.said("error")
    assert len(errors) == 2
    assert "has role approver; only admin cards" in errors[0]
    assert "Dave Admin already approved with card" in errors[1]
    assert "Approved by Dave Admin (1 of 2)." in op.said("ok")
    # every result (refusal or approval) is shown before the holder is told to remove the card
    shown = [t for k, t in op.lines if k in ("ok", "error", "info")]
    for i, text in enumerate(shown):
        if text.startswith("Approved by") or text in errors:
            assert shown[i + 1] == "Remove the card.", shown[i : i + 2]

    data = result.to_dict()
    assert (
        data["ok"] and data["kind"] == "policy" and data["version"] == 3 and data["sha256"] == sha
    )
    assert [a["holder"] for a in data["approvals"]] == ["Dave Admin", "Erin Admin"]
    loaded = load_policy(policy, roster=chain.genesis)  # the appliance's own start-up check
    assert loaded.version == 3 and list(loaded.wallets) == ["acme-btc"]
    doc = load_signed_document(policy, "policy")
    assert [s for s, _ in doc.approvals] == [chain.card_id(DAVE), chain.card_id(ERIN)]
    transcript = tmp_path / "transcripts" / "policy.jsonl"
    assert verify(transcript).status == "completed"
    entries = read_entries(transcript)
    steps = [e["step"] for e in entries]
    assert steps.count("admin-approval") == 2
    refused = [e["data"]["error"] for e in entries if e["step"] == "approval-refused"]
    assert refused == ["wrong-role", "duplicate-holder"]
    assert {"roster-verified", "document-reviewed", "quorum-met", "document-approved"} <= set(steps)
    assert USER_PIN.encode() not in files_under(tmp_path, skip=lambda p: p.parent.name == "cards")

    # approving version 3 again with other content is a rollback: refused, no card asked
    approved = approvals_path(policy).read_bytes()
    policy.write_text(policy_text(APPLIANCE, dest).replace("max_fee = 100000", "max_fee = 900000"))
    op = ScriptedOperator()
    with pytest.raises(ConfigRollback) as rollback:
        approve_document(op, params(chain, "again", DocumentKind.POLICY, policy), ReaderCards(op))
    assert rollback.value.code == "config-rollback"
    assert verify(tmp_path / "transcripts" / "again.jsonl").status == "aborted"
    assert approvals_path(policy).read_bytes() == approved and not op.asked
    assert "No --genesis-sha256: compare this hash" in " ".join(op.said("warn"))


def test_wallets_and_roster_successor(chain: Genesis, slot: CardSlot, tmp_path: Path) -> None:
    wallets = tmp_path / "wallets.toml"
    wallets.write_text(
        '[[wallet]]\nname = "acme-btc"\nclient = "acme"\nchain = "bitcoin"\nnetwork = "main"\n'
        'template = "bip84"\nmaster_fingerprint = "0a1b2c3d"\naccount_path = "m/84h/0h/0h"\n'
        'descriptor = "wpkh([0a1b2c3d/84h/0h/0h]xpubEXAMPLE/<0;1>/*)"\nmax_index = 19\n'
    )
    op = ScriptedOperator(
        ("^Is this the wallets document", True),
        pin(chain, ERIN, "Erin Admin", "654321"),  # wrong PIN: refused, the card asked again
        pin(chain, ERIN, "Erin Admin"),
        pin(chain, DAVE, "Dave Admin"),
        on_info=slot,
    )
    slot.expect(INSERT.format(n=1), chain.cards[ERIN]).expect(INSERT.format(n=1), chain.cards[ERIN])
    slot.expect(INSERT.format(n=2), chain.cards[DAVE])
    p = params(chain, "wallets", DocumentKind.WALLETS, wallets, version=1)
    result = approve_document(op, p, ReaderCards(op, allow_emulated=True))
    assert result.version == 1 and slot.done()
    assert "rejected the" in op.said("error")[0]
    rows = op.table_rows("Wallet acme-btc")
    assert rows["descriptor"].startswith("wpkh([0a1b2c3d/84h/0h/0h]")
    doc = load_verified_document(wallets, "wallets", chain.genesis)
    assert list(parse_wallets(doc.content)) == ["acme-btc"]

    # roster v2 revokes the approver card: signed by the admins of v1
    v2 = chain.genesis.revoke(chain.card_id(ALICE))
    successor = tmp_path / "roster-2.json"
    successor.write_bytes(v2.to_bytes())
    op = ScriptedOperator(
        ("^Is this the roster document", True),
        pin(chain, DAVE, "Dave Admin"),
        pin(chain, ERIN, "Erin Admin"),
        on_info=slot,
    )
    slot.expect(INSERT.format(n=1), chain.cards[DAVE]).expect(INSERT.format(n=2), chain.cards[ERIN])
    result = approve_document(
        op,
        params(chain, "roster", DocumentKind.ROSTER, successor),
        ReaderCards(op, allow_emulated=True),
    )
    assert result.kind is DocumentKind.ROSTER and result.version == 2
    changes = op.table_rows("Changes from roster version 1")
    assert changes[chain.card_id(ALICE)] == "CHANGED: status active -> revoked"
    docs = [load_signed_document(tmp_path / f"roster-{v}.json", "roster") for v in (1, 2)]
    newest = verify_roster_chain(docs, chain.genesis.sha256)
    assert newest.version == 2 and not newest.holder(chain.card_id(ALICE)).active  # type: ignore[union-attr]

    # a document for another appliance is refused before any card is asked for
    other = tmp_path / "other.toml"
    text = policy_text(APPLIANCE, parties.bitcoin_counterparty("x")).replace(APPLIANCE, "vault-9")
    other.write_text(text)
    op = ScriptedOperator()
    with pytest.raises(DocumentRefused, match="is for appliance vault-9"):
        approve_document(op, params(chain, "other", DocumentKind.POLICY, other), ReaderCards(op))
    assert not op.asked and not approvals_path(other).exists()


def test_policy_successor_shows_its_address_book_changes(
    chain: Genesis, slot: CardSlot, tmp_path: Path
) -> None:
    """``current``: the approved policy being replaced; the admins see every entry the new
    version adds (full address, label, kind, evidence), and the transcript records it."""
    dest = parties.bitcoin_counterparty("acme-treasury")
    current = tmp_path / "current" / "policy.toml"
    current.parent.mkdir()
    chain.signed_policy(current, policy_text(APPLIANCE, dest), (DAVE, ERIN))

    taproot = parties.taproot_counterparty("acme-cold-taproot")
    new = tmp_path / "policy.toml"
    new.write_text(
        policy_text(APPLIANCE, dest).replace("version = 3", "version = 4")
        + f'''
[[wallet.destination]]
address = "{taproot.address}"
chain = "bitcoin"
label = "Acme cold (taproot)"
message = "{taproot.message}"
signature = "{taproot.signature}"
'''
    )
    op = ScriptedOperator(
        ("^Is this the policy document the admins are to approve\\?$", True),
        pin(chain, DAVE, "Dave Admin"),
        pin(chain, ERIN, "Erin Admin"),
        on_info=slot,
    )
    slot.expect(INSERT.format(n=1), chain.cards[DAVE])
    slot.expect(INSERT.format(n=2), chain.cards[ERIN])
    p = params(chain, "v4", DocumentKind.POLICY, new, current=current)
    approve_document(op, p, ReaderCards(op, allow_emulated=True))
    assert slot.done() and not op.script
    added = f"ADDED: {taproot.address} 'Acme cold (taproot)' [proven by an ownership proof]"
    assert op.table_rows("Address book changes from policy version 3") == {"acme-btc": added}
    reviewed = [e for e in read_entries(tmp_path / "transcripts" / "v4.jsonl")
                if e["step"] == "document-reviewed"][0]  # fmt: skip
    assert reviewed["data"]["address_book_changes"] == [f"acme-btc: {added}"]
