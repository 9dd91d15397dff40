"""Card ceremonies in process: ``init-appliance``, ``enrol-cards``, a witnessed
``generate-seed``, ``extend-pool`` and re-initialising a live token by admin quorum.

The operator is scripted; the HSM is a private SoftHSM token; the cards are the lab's
virtual OpenPGP cards behind its pcscd, put into reader 0 when the ceremony asks for them
(:class:`CardSlot`) and driven through the front end's :class:`ReaderCards`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ceremony_scripts.hardware import ReaderCards
from ceremony_scripts.quorum_cards import load_roster
from coldvault.backends.pkcs11.errors import WrongPin
from coldvault.cards import CardAlgorithm
from coldvault.ceremonies import (
    EnrolCards,
    GenerateSeed,
    InitAppliance,
    RecoverPool,
    enrol_cards,
    extend_pool,
    generate_seed,
    init_appliance,
)
from coldvault.ceremonies.appliance import LiveApplianceRefused
from coldvault.ceremonies.backup import BackupFormat, BackupPlan
from coldvault.ceremonies.enrol import CardAlreadyEnrolled, enrol_card
from coldvault.ceremonies.params import PoolParams
from coldvault.ceremonies.run import CeremonyRun
from coldvault.errors import Cancelled
from coldvault.keys.keystore import AUDIT_KEY_ID, IDENTITY_KEY_ID
from coldvault.keys.pool import Template
from coldvault.quorum.roster import Role
from coldvault.records.transcript import read_entries, verify
from hardware_emulators.ceremony_driver import fair_dice

from .conftest import LabToken
from .support import Answer, CardSlot, ScriptedOperator, files_under

pytestmark = pytest.mark.lab

OPERATOR = "Olga Operator"
APPLIANCE = "vault-test-1"
CARDS = [  # serial, holder, role, site -- lab cards C0DE0004/5 are admins, C0DE0001 approver
    ("C0DE0004", "Dave Admin", "admin", "site-a"),
    ("C0DE0005", "Erin Admin", "admin", "site-b"),
    ("C0DE0001", "Alice Approver", "approver", "site-a"),
]
NEW_USER = {"C0DE0004": "dave-pin-1", "C0DE0005": "erin-pin-1", "C0DE0001": "alice-pin-1"}
NEW_SO, NEW_USER_PIN = "lab-so-new-1", "lab-user-new-1"  # TEST ONLY


def card_id(serial: str) -> str:
    """The roster identity of a lab card: manufacturer (FFFF, test cards) + serial."""
    return f"FFFF{serial}"


def enrol_script(serial: str, holder: str, role: str, site: str) -> list[tuple[str, Answer]]:
    cid = re.escape(card_id(serial))
    return [
        (f"^Card {cid} holder name$", holder),
        (f"^Card {cid} role \\(approver/admin/backup-custodian\\)$", role),
        (f"^Card {cid} site$", site),
        (f"^Card {cid} current admin PIN$", "12345678"),
        (f"^New admin PIN for card {cid}$", f"admin-{serial}"),
        (f"^Repeat new admin PIN for card {cid}$", f"admin-{serial}"),
        (f"^Card {cid} current user PIN$", "123456"),
        (f"^New user PIN for card {cid}$", NEW_USER[serial]),
        (f"^Repeat new user PIN for card {cid}$", NEW_USER[serial]),
    ]


def pin(serial: str, holder: str, value: str | None = None) -> tuple[str, Answer]:
    return (f"^User PIN for card {card_id(serial)} \\({holder}\\)$", value or NEW_USER[serial])


def init_script(token: LabToken, user_pin: str) -> list[tuple[str, Answer]]:
    return [
        (f"^Current security-officer PIN for token {token.label}$", token.so_pin),
        ("^New security-officer PIN$", NEW_SO),
        ("^Repeat new security-officer PIN$", NEW_SO),
        ("^New user PIN$", "short"),  # refused: too short, asked again
        ("^New user PIN$", user_pin),
        ("^Repeat new user PIN$", user_pin),
    ]


def test_init_appliance_and_live_token_refusal(hsm_token: LabToken, tmp_path: Path) -> None:
    op = ScriptedOperator(
        (f"^Current HSM user PIN for token {hsm_token.label}$", hsm_token.user_pin),
        *init_script(hsm_token, NEW_USER_PIN),
    )
    params = InitAppliance(
        actor=OPERATOR, transcript=tmp_path / "t" / "init.jsonl", export_dir=tmp_path / "x"
    )
    result = init_appliance(op, params, hsm_token.token)
    assert "The PIN must have at least 6 characters." in op.said("warn")
    keys = hsm_token.keys(NEW_USER_PIN)
    assert set(keys) == {IDENTITY_KEY_ID, AUDIT_KEY_ID}
    assert keys[IDENTITY_KEY_ID].public_key == result.identity_ed25519
    assert keys[AUDIT_KEY_ID].public_key == result.audit_secp256k1
    with pytest.raises(WrongPin):
        hsm_token.keys(hsm_token.user_pin)  # the old user PIN is gone
    # generated inside the HSM: PKCS#11 vouches for their whole life (OpenSC's view)
    flags = hsm_token.private_key_flags(NEW_USER_PIN)
    if flags is not None:
        assert set(flags) == {"coldvault-identity", "coldvault-audit"}
        for access in flags.values():
            assert {"sensitive", "always sensitive", "never extractable", "local"} <= access
            assert "extractable" not in access
    exported = json.loads((tmp_path / "x" / "appliance-keys.json").read_text())
    assert exported["audit_secp256k1"] == result.audit_secp256k1.hex()
    steps = [e["step"] for e in read_entries(tmp_path / "t" / "init.jsonl")]
    assert steps == [
        "open",
        "hsm-checked",
        "pins-set",
        "keys-generated",
        "exports-written",
        "close",
    ]
    written = files_under(tmp_path)
    for secret in (NEW_SO, NEW_USER_PIN, hsm_token.so_pin, hsm_token.user_pin):
        assert secret.encode() not in written

    # a live appliance cannot be re-initialised without --destroy-existing and a quorum
    op = ScriptedOperator((f"^Current HSM user PIN for token {hsm_token.label}$", NEW_USER_PIN))
    params = InitAppliance(
        actor=OPERATOR, transcript=tmp_path / "t" / "reinit.jsonl", export_dir=tmp_path / "x2"
    )
    with pytest.raises(LiveApplianceRefused) as refused:
        init_appliance(op, params, hsm_token.token)
    assert refused.value.keys == 2
    assert verify(tmp_path / "t" / "reinit.jsonl").status == "aborted"
    assert set(hsm_token.keys(NEW_USER_PIN)) == {IDENTITY_KEY_ID, AUDIT_KEY_ID}


def test_enrol_witness_extend_and_destroy_by_quorum(
    hsm_token: LabToken, lab_cards: dict[str, Any], slot: CardSlot, tmp_path: Path
) -> None:
    cards = {serial: lab_cards[serial] for serial, *_ in CARDS}
    roster_path = tmp_path / "roster.json"
    transcripts = tmp_path / "transcripts"

    # 1. enrol-cards: 3 cards, admin threshold 2; an approver card is refused for the roster
    # approval, then both admins sign
    op = ScriptedOperator(on_info=slot)
    for number, (serial, holder, role, site) in enumerate(CARDS, start=1):
        slot.expect(f"Card {number}: insert the blank card.", cards[serial])
        op.then(*enrol_script(serial, holder, role, site))
    op.then(("^Is the roster correct\\?$", True))
    first, second = (f"Admin approval {n} of 2: insert an admin card." for n in (1, 2))
    slot.expect(first, cards["C0DE0001"]).expect(first, cards["C0DE0004"])
    slot.expect(second, cards["C0DE0005"])
    op.then(pin("C0DE0004", "Dave Admin"), pin("C0DE0005", "Erin Admin"))
    params = EnrolCards(
        actor=OPERATOR,
        count=3,
        appliance_id=APPLIANCE,
        admin_threshold=2,
        out=roster_path,
        transcript=transcripts / "enrol.jsonl",
    )
    enrolled = enrol_cards(op, params, ReaderCards(op, allow_emulated=True))
    assert slot.done() and not op.script
    assert op.said("error") == [
        f"Card {card_id('C0DE0001')} of Alice Approver has role approver; only admin cards may "
        "approve this."
    ]
    roster = load_roster(roster_path)
    assert (
        roster.sha256.hex() == enrolled.sha256
        and roster.version == 1
        and roster.admin_threshold == 2
    )
    assert [h.serial for h in roster.active(Role.ADMIN)] == ["FFFFC0DE0004", "FFFFC0DE0005"]
    alice = roster.holder("FFFFC0DE0001")
    assert alice is not None and alice.role is Role.APPROVER and len(alice.public_key) == 32
    steps = [e["step"] for e in read_entries(transcripts / "enrol.jsonl")]
    assert steps.count("card-enrolled") == 3 and steps.count("admin-approval") == 2
    assert steps.count("approval-refused") == 1 and "quorum-met" in steps

    # the per-card routine refuses a card already in the roster before writing to it
    op = ScriptedOperator(on_info=slot)
    slot.expect("Insert a blank card.", cards["C0DE0001"])
    params = EnrolCards(
        actor=OPERATOR,
        count=1,
        appliance_id=APPLIANCE,
        admin_threshold=1,
        transcript=transcripts / "again.jsonl",
    )
    with (
        pytest.raises(CardAlreadyEnrolled),
        CeremonyRun(op, "enrol-cards", params, parameters={}) as run,
    ):
        enrol_card(
            op,
            run,
            ReaderCards(op, allow_emulated=True),
            CardAlgorithm.ED25519,
            prompt="Insert a blank card.",
            roster=roster,
        )
    assert slot.done() and not op.asked

    # 2. generate-seed (BIP-39 paper backup, bip84 only), witnessed by Alice's card
    op = ScriptedOperator(
        ("^Is the room prepared", True),
        (f"^HSM user PIN for token {hsm_token.label}", hsm_token.user_pin),
        ("^Dice rolls", fair_dice(3)),
        on_info=slot,
    )
    op.then(*op.check_words("the 24-word mnemonic", "the mnemonic"))
    op.then(pin("C0DE0001", "Alice Approver"))
    slot.expect("Witness 1: insert your card.", cards["C0DE0001"])
    pool = PoolParams(templates=(Template.BIP84,), pool_size=1, export_dir=tmp_path / "exports")
    params = GenerateSeed(
        actor=OPERATOR,
        transcript=transcripts / "seed.jsonl",
        pool=pool,
        backup=BackupPlan(BackupFormat.BIP39, paper=True),
        witnesses=1,
        roster=roster,
    )
    seed = generate_seed(op, params, hsm_token.token, ReaderCards(op, allow_emulated=True))
    assert slot.done()
    words = " ".join(op.words["the 24-word mnemonic"])
    result = verify(transcripts / "seed.jsonl", roster=roster, min_witnesses=1)
    assert [w["holder"] for w in result.witnesses] == ["Alice Approver"]
    # the witness learns the result while the card is in, before "Remove the card."
    said = op.said()
    signed = said.index("Witness 1: Alice Approver signed the final transcript hash.")
    assert said[signed + 1] == "Remove the card."

    # 3. extend-pool: the admin quorum first, then the typed mnemonic
    op = ScriptedOperator(
        pin("C0DE0004", "Dave Admin"),
        pin("C0DE0005", "Erin Admin"),
        (f"^HSM user PIN for token {hsm_token.label}", hsm_token.user_pin),
        ("^BIP-39 mnemonic \\(all words, space separated\\)$", words),
        (f"^Is {seed.master_fingerprint} the fingerprint", True),
        on_info=slot,
    )
    slot.expect("Admin approval 1 of 2: insert an admin card.", cards["C0DE0004"])
    slot.expect("Admin approval 2 of 2: insert an admin card.", cards["C0DE0005"])
    pool = PoolParams(templates=(Template.BIP84,), pool_size=2, export_dir=tmp_path / "exports2")
    params = RecoverPool(
        actor=OPERATOR,
        transcript=transcripts / "extend.jsonl",
        pool=pool,
        backup=BackupFormat.BIP39,
        roster=roster,
        expect_fingerprint=seed.master_fingerprint,
    )
    extended = extend_pool(op, params, hsm_token.token, ReaderCards(op, allow_emulated=True))
    assert (extended.imported, extended.already_present) == (2, 2) and slot.done()
    steps = [e["step"] for e in read_entries(transcripts / "extend.jsonl")]
    assert steps.count("admin-approval") == 2 and steps.index("quorum-met") < steps.index(
        "hsm-opened"
    )
    written = files_under(tmp_path, skip=lambda p: p.parent.name == "cards")
    assert " ".join(words.split()[:6]).encode() not in written
    for secret in NEW_USER.values():
        assert secret.encode() not in written

    # 4. re-initialising the now live token: --destroy-existing plus the admin quorum;
    # an operator's "no" is not asked here, the quorum is the approval
    op = ScriptedOperator(
        (f"^Current HSM user PIN for token {hsm_token.label}$", hsm_token.user_pin),
        pin("C0DE0005", "Erin Admin"),
        pin("C0DE0004", "Dave Admin"),
        *init_script(hsm_token, "lab-user-cards-2"),
        on_info=slot,
    )
    slot.expect("Admin approval 1 of 2: insert an admin card.", cards["C0DE0005"])
    slot.expect("Admin approval 2 of 2: insert an admin card.", cards["C0DE0004"])
    params = InitAppliance(
        actor=OPERATOR,
        transcript=transcripts / "reinit.jsonl",
        destroy_existing=True,
        roster=roster,
        export_dir=tmp_path / "x3",
    )
    reinit = init_appliance(op, params, hsm_token.token, ReaderCards(op, allow_emulated=True))
    assert reinit.destroyed == 4 and "4 key(s) destroyed." in op.said("warn")
    steps = [e["step"] for e in read_entries(transcripts / "reinit.jsonl")]
    assert steps.index("quorum-met") < steps.index("pins-set") < steps.index("keys-destroyed")
    assert set(hsm_token.keys("lab-user-cards-2")) == {IDENTITY_KEY_ID, AUDIT_KEY_ID}


def test_enrol_cancelled_at_the_roster_check(
    lab_cards: dict[str, Any], slot: CardSlot, tmp_path: Path
) -> None:
    serial, holder, role, site = CARDS[0]
    op = ScriptedOperator(
        *enrol_script(serial, holder, role, site),
        ("^Is the roster correct\\?$", False),
        on_info=slot,
    )
    slot.expect("Card 1: insert the blank card.", lab_cards[serial])
    params = EnrolCards(
        actor=OPERATOR,
        count=1,
        appliance_id=APPLIANCE,
        admin_threshold=1,
        out=tmp_path / "roster.json",
        transcript=tmp_path / "t.jsonl",
    )
    with pytest.raises(Cancelled):
        enrol_cards(op, params, ReaderCards(op, allow_emulated=True))
    assert read_entries(tmp_path / "t.jsonl")[-1]["data"] == {
        "status": "aborted",
        "reason": "cancelled",
    }
    assert not (tmp_path / "roster.json").exists()
