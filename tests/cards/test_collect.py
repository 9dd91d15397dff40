"""The one card-approval loop (``coldvault.quorum.collect``) in-process: a scripted operator
and the lab's virtual OpenPGP card (its real APDU state machine, tests/cards/inprocess.py).

Every pre-PIN refusal is asserted three ways: the exact error, no PIN prompt, and no VERIFY
APDU ever reached the card.  The same loop runs through real pcscd in the appliance and
ceremony lab tests (tests/appliance, tests/ceremony).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coldvault.cards import CardAlgorithm, verify_card_signature
from coldvault.cards.errors import EmulatedCardRefused
from coldvault.cards.iso7816 import Ins
from coldvault.errors import Cancelled, ColdvaultError, QuorumError
from coldvault.quorum import ApprovalSession, ApprovalToken, MemoryReplayGuard, Tally
from coldvault.quorum.approvals import Approval
from coldvault.quorum.collect import (
    Signatory,
    UnlistedCard,
    collect_signatures,
    collect_witness,
)
from coldvault.quorum.errors import (
    ApprovalExpired,
    CardAttemptsExhausted,
    CardRevoked,
    DuplicateHolder,
    UnknownCard,
    WrongRole,
)
from coldvault.quorum.roster import CardHolder, CardStatus, Role, Roster

from .inprocess import USER_PIN, InProcessCards, VirtualCardFile

APPLIANCE = "vault-collect-1"
T0 = 1_800_000_000
ED25519, P256, K1 = CardAlgorithm.ED25519, CardAlgorithm.NIST_P256, CardAlgorithm.SECP256K1
APPROVER = Role.APPROVER


@dataclass
class ScriptedUi:
    """Answers PIN prompts from ``pins`` (an exception is raised instead of answering)."""

    pins: list[str | BaseException] = field(default_factory=list)
    events: list[tuple[object, ...]] = field(default_factory=list)
    refusals: list[ColdvaultError] = field(default_factory=list)

    def ask_for_card(self, number: int, threshold: int) -> None:
        self.events.append(("insert", number, threshold))

    def show_card(self, who: Signatory, *, emulated: bool) -> None:
        self.events.append(("card", who.serial, who.holder, emulated))

    def ask_pin(self, who: Signatory) -> str:
        self.events.append(("pin", who.serial))
        answer = self.pins.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def show_refusal(self, card_serial: str, error: ColdvaultError) -> None:
        self.events.append(("refused", card_serial, error.code))
        self.refusals.append(error)

    def show_approval(self, approval: Approval, count: int, threshold: int) -> None:
        self.events.append(("approved", approval.card_serial, count, threshold))

    def ask_to_remove_card(self) -> None:
        self.events.append(("remove",))

    def pin_prompts(self) -> list[object]:
        return [e[1] for e in self.events if e[0] == "pin"]


class Lab:
    """Seven enrolled virtual cards and their roster (version 2: one card revoked)."""

    SPEC = [  # name, serial, algorithm, holder, role, status
        ("alice", 0xC011EC01, ED25519, "Alice Approver", APPROVER, "active"),
        ("bob", 0xC011EC02, P256, "Bob Approver", APPROVER, "active"),
        ("carol", 0xC011EC03, K1, "Carol Approver", APPROVER, "active"),
        ("alice2", 0xC011EC04, P256, " alice  APPROVER", APPROVER, "active"),  # Alice again
        ("dave", 0xC011EC05, ED25519, "Dave Admin", Role.ADMIN, "active"),
        ("erin", 0xC011EC06, P256, "Erin Admin", Role.ADMIN, "active"),
        ("mallory", 0xC011EC07, ED25519, "Mallory Approver", APPROVER, "revoked"),
    ]

    def __init__(self, root: Path) -> None:
        self.card: dict[str, VirtualCardFile] = {}
        holders = []
        for name, serial, algorithm, holder, role, status in self.SPEC:
            card = VirtualCardFile(root / f"{name}.json", serial, algorithm)
            self.card[name] = card
            holders.append(
                CardHolder(card.card_id, holder, role, "hk", algorithm.value, card.public_key,
                           CardStatus(status))  # fmt: skip
            )
        self.outsider = VirtualCardFile(root / "outsider.json", 0xC011EC99, CardAlgorithm.ED25519)
        self.roster = Roster(2, APPLIANCE, tuple(holders), admin_threshold=2)

    def id(self, name: str) -> str:
        return self.card[name].card_id

    def session(self, threshold: int = 2, now: int = T0, ttl: int = 600) -> ApprovalSession:
        review_digest = hashlib.sha256(b"psbt").digest()
        token = ApprovalToken(
            request_digest=review_digest, request_fingerprint="0CB6-098C-78C2",
            wallet="acme-btc", client="acme", policy_version=3, roster_version=2,
            appliance_id=APPLIANCE, session_nonce=bytes(16), issued_at=now, expires_at=now + ttl,
            required_approvals=threshold,
        )  # fmt: skip
        self.clock = now
        return ApprovalSession(
            self.roster, token, guard=MemoryReplayGuard(), now=lambda: self.clock
        )


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return Lab(tmp_path)


def _no_verify_sent(cards: InProcessCards, index: int) -> bool:
    """The ``index``-th opened card never received a VERIFY (no PIN went to it)."""
    return not any(apdu[1] == Ins.VERIFY for apdu in cards.connections[index].sent)


def _collect(quorum, ui, cards, **kw):  # noqa: ANN001, ANN202
    kw.setdefault("what", "the approvals for request 0CB6-098C-78C2")
    kw.setdefault("allow_emulated", True)
    return collect_signatures(quorum, ui, cards, **kw)


def test_threshold_met_by_two_distinct_approvers(lab: Lab) -> None:
    session = lab.session(threshold=2)
    cards = InProcessCards()
    cards.insert(lab.card["alice"])
    cards.insert(lab.card["bob"])
    ui = ScriptedUi(pins=[USER_PIN, USER_PIN])
    approvals = _collect(session, ui, cards)
    assert [a.card_serial for a in approvals] == [lab.id("alice"), lab.id("bob")]
    assert [a.holder for a in approvals] == ["Alice Approver", "Bob Approver"]
    for approval, name in zip(approvals, ("alice", "bob"), strict=True):
        card = lab.card[name]
        assert verify_card_signature(
            card.algorithm, card.public_key, session.token_bytes, approval.signature
        )
        assert card.signature_counter() == 1
    assert ui.events == [
        ("insert", 1, 2), ("card", lab.id("alice"), "Alice Approver", True),
        ("pin", lab.id("alice")), ("approved", lab.id("alice"), 1, 2), ("remove",),
        ("insert", 2, 2), ("card", lab.id("bob"), "Bob Approver", True),
        ("pin", lab.id("bob")), ("approved", lab.id("bob"), 2, 2), ("remove",),
    ]  # fmt: skip
    assert cards.events.count(("removed",)) == 2
    assert session.consume() == approvals


@pytest.mark.parametrize(
    "offered,error",
    [("outsider", UnknownCard), ("mallory", CardRevoked), ("dave", WrongRole)],
)
def test_unknown_revoked_and_wrong_role_cards_are_refused_before_the_pin(
    lab: Lab, offered: str, error: type[QuorumError]
) -> None:
    session = lab.session(threshold=1)
    cards = InProcessCards()
    card = lab.outsider if offered == "outsider" else lab.card[offered]
    cards.insert(card)
    cards.insert(lab.card["carol"])
    ui = ScriptedUi(pins=[USER_PIN])
    approvals = _collect(session, ui, cards)
    assert [a.holder for a in approvals] == ["Carol Approver"]
    assert type(ui.refusals[0]) is error and ui.refusals[0].code == error.code
    assert ui.events[:3] == [("insert", 1, 1), ("refused", card.card_id, error.code), ("remove",)]
    assert card.card_id not in ui.pin_prompts()
    assert _no_verify_sent(cards, 0)
    assert card.tries_left() == 3 and card.signature_counter() == 0


def test_second_card_of_a_holder_who_approved_is_refused_before_the_pin(lab: Lab) -> None:
    session = lab.session(threshold=2)
    cards = InProcessCards()
    for name in ("alice", "alice2", "bob"):
        cards.insert(lab.card[name])
    ui = ScriptedUi(pins=[USER_PIN, USER_PIN])
    approvals = _collect(session, ui, cards)
    assert [a.holder for a in approvals] == ["Alice Approver", "Bob Approver"]
    refused = ui.refusals[0]
    assert isinstance(refused, DuplicateHolder)
    assert (refused.card_serial, refused.counted_card) == (lab.id("alice2"), lab.id("alice"))
    assert "already approved" in refused.message
    assert ui.pin_prompts() == [lab.id("alice"), lab.id("bob")]
    assert _no_verify_sent(cards, 1)
    assert lab.card["alice2"].signature_counter() == 0


def test_the_same_card_twice_is_refused_before_the_pin(lab: Lab) -> None:
    session = lab.session(threshold=2)
    cards = InProcessCards()
    for name in ("alice", "alice", "bob"):
        cards.insert(lab.card[name])
    ui = ScriptedUi(pins=[USER_PIN, USER_PIN])
    _collect(session, ui, cards)
    assert [e for e in ui.events if e[0] == "refused"] == [
        ("refused", lab.id("alice"), "duplicate-holder")
    ]
    assert _no_verify_sent(cards, 1)


def test_a_card_the_caller_excludes_is_refused_before_the_pin(lab: Lab) -> None:
    class OwnCard(QuorumError):
        code = "test-own-card"

    def exclude(holder: CardHolder) -> None:
        if holder.serial == lab.id("dave"):
            raise OwnCard(f"Card {holder.serial} is the card being changed.")

    tally = Tally(lab.roster, Role.ADMIN, b"roster v3 approval token", 2, exclude=exclude)
    cards = InProcessCards()
    for name in ("dave", "erin", "bob"):
        cards.insert(lab.card[name])
    ui = ScriptedUi(pins=[USER_PIN])
    with pytest.raises(CardAttemptsExhausted) as exhausted:
        _collect(tally, ui, cards, what="the approvals of roster version 3", max_attempts=3)
    assert [e[2] for e in ui.events if e[0] == "refused"] == ["test-own-card", "wrong-role"]
    assert ui.pin_prompts() == [lab.id("erin")]
    assert _no_verify_sent(cards, 0) and _no_verify_sent(cards, 2)
    assert (exhausted.value.have, exhausted.value.need) == (1, 2)
    assert exhausted.value.code == "card-attempts"
    assert "the approvals of roster version 3" in exhausted.value.message
    # the exclusion also holds for a signature handed to the tally directly
    with pytest.raises(OwnCard):
        tally.add(lab.id("dave"), bytes(64))


def test_wrong_pin_is_refused_with_the_tries_left_then_the_holder_retries(lab: Lab) -> None:
    session = lab.session(threshold=1)
    cards = InProcessCards()
    cards.insert(lab.card["bob"])
    cards.insert(lab.card["bob"])
    ui = ScriptedUi(pins=["654321", USER_PIN])
    approvals = _collect(session, ui, cards)
    assert [a.holder for a in approvals] == ["Bob Approver"]
    wrong = ui.refusals[0]
    assert wrong.code == "card-wrong-pin"
    assert wrong.to_dict()["attempts_remaining"] == 2
    assert "2 tries left" in wrong.message and "654321" not in wrong.message
    assert lab.card["bob"].tries_left() == 3  # a good PIN resets the counter


def test_card_removed_in_the_middle_of_the_signature(lab: Lab) -> None:
    session = lab.session(threshold=1)
    cards = InProcessCards()
    cards.insert(lab.card["carol"], pull_on=Ins.PSO)
    cards.insert(lab.card["carol"])
    ui = ScriptedUi(pins=[USER_PIN, USER_PIN])
    approvals = _collect(session, ui, cards)
    assert [e for e in ui.events if e[0] == "refused"] == [
        ("refused", lab.id("carol"), "card-removed")
    ]
    assert cards.connections[0].pulled
    assert [a.card_serial for a in approvals] == [lab.id("carol")]
    assert cards.events.count(("removed",)) == 2


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), EOFError(), Cancelled("stop")])
def test_operator_cancels_at_the_pin_prompt(lab: Lab, interrupt: BaseException) -> None:
    session = lab.session(threshold=2)
    cards = InProcessCards()
    cards.insert(lab.card["alice"])
    cards.insert(lab.card["bob"])
    ui = ScriptedUi(pins=[USER_PIN, interrupt])
    with pytest.raises(Cancelled) as cancelled:
        _collect(session, ui, cards)
    assert cancelled.value.code == "cancelled"
    if not isinstance(interrupt, Cancelled):
        assert "0CB6-098C-78C2 was cancelled; nothing was signed" in cancelled.value.message
    assert cards.events[-1] == ("closed", lab.id("bob"))  # the card in hand was closed
    assert _no_verify_sent(cards, 1)
    assert len(session.approvals) == 1 and not session.satisfied


def test_emulated_cards_are_refused_unless_allowed(lab: Lab) -> None:
    session = lab.session(threshold=1)
    cards = InProcessCards(emulated=True)
    cards.insert(lab.card["alice"])
    ui = ScriptedUi()
    with pytest.raises(CardAttemptsExhausted):
        _collect(session, ui, cards, allow_emulated=False, max_attempts=1)
    assert isinstance(ui.refusals[0], EmulatedCardRefused)
    assert ui.refusals[0].code == "emulated-card" and ui.pin_prompts() == []
    assert _no_verify_sent(cards, 0)


def test_an_expired_approval_window_ends_the_collection_before_the_pin(lab: Lab) -> None:
    session = lab.session(threshold=2, ttl=60)
    cards = InProcessCards()
    cards.insert(lab.card["alice"])
    cards.insert(lab.card["bob"])
    ui = ScriptedUi(pins=[USER_PIN])
    original = ui.show_approval

    def approve_then_wait(approval: Approval, count: int, threshold: int) -> None:
        original(approval, count, threshold)
        lab.clock += 61  # the next holder walks up too late

    ui.show_approval = approve_then_wait  # type: ignore[method-assign]
    with pytest.raises(ApprovalExpired):
        _collect(session, ui, cards)
    assert ui.pin_prompts() == [lab.id("alice")]
    assert _no_verify_sent(cards, 1)
    assert ui.events[-2:] == [("refused", lab.id("bob"), "approval-expired"), ("remove",)]
    assert cards.events[-1] == ("removed",)  # asked out of the reader before the loop ends


def test_waiting_for_a_card_that_never_comes_propagates(lab: Lab) -> None:
    from coldvault.cards.errors import CardTimeout

    session = lab.session(threshold=1)
    with pytest.raises(CardTimeout):
        _collect(session, ScriptedUi(), InProcessCards())


def test_witnesses_from_the_roster_each_holder_once(lab: Lab) -> None:
    message = b"coldvault/transcript-close/v1 ..."
    cards = InProcessCards()
    cards.insert(lab.card["alice"])
    ui = ScriptedUi(pins=[USER_PIN, USER_PIN])
    first, approval = collect_witness(
        ui, cards, message, roster=lab.roster, what="witness signature 1", allow_emulated=True
    )
    assert isinstance(first, CardHolder) and first.role is Role.APPROVER
    assert verify_card_signature(first.algorithm, first.public_key, message, approval.signature)
    cards.insert(lab.card["alice2"])  # Alice again, with her other card
    cards.insert(lab.card["dave"])  # any active role may witness
    second, _ = collect_witness(
        ui, cards, message, roster=lab.roster, earlier=[first], what="witness signature 2",
        allow_emulated=True,
    )  # fmt: skip
    assert second.holder == "Dave Admin"
    assert [e for e in ui.events if e[0] == "refused"] == [
        ("refused", lab.id("alice2"), "duplicate-holder")
    ]
    assert ui.pin_prompts() == [lab.id("alice"), lab.id("dave")]


def test_witnesses_without_a_roster_sign_with_their_own_key(lab: Lab) -> None:
    from coldvault.cards.openpgp import OpenPgpSession, Pw

    from .inprocess import ADMIN_PIN, DirectConnection

    named = OpenPgpSession(DirectConnection(lab.outsider.path, lab.outsider.serial))
    named.select()
    named.verify_pin(ADMIN_PIN, Pw.ADMIN)
    named.set_cardholder_name("Witness<<Wendy")
    message = b"close message"
    cards = InProcessCards()
    cards.insert(lab.outsider)
    ui = ScriptedUi(pins=[USER_PIN, USER_PIN])
    who, approval = collect_witness(
        ui, cards, message, roster=None, what="witness signature 1", allow_emulated=True
    )
    assert who == UnlistedCard(
        lab.outsider.card_id, "Witness<<Wendy", "ed25519", lab.outsider.public_key
    )
    assert who.role == "witness"
    assert verify_card_signature("ed25519", who.public_key, message, approval.signature)
    cards.insert(lab.outsider)  # the same card cannot witness twice
    cards.insert(lab.card["bob"])
    second, _ = collect_witness(
        ui, cards, message, roster=None, earlier=[who], what="witness signature 2",
        allow_emulated=True,
    )  # fmt: skip
    assert second.serial == lab.id("bob") and second.holder == f"card {lab.id('bob')}"
    assert [e[2] for e in ui.events if e[0] == "refused"] == ["duplicate-holder"]
    assert _no_verify_sent(cards, 1)


@pytest.mark.lab
def test_the_loop_through_pcscd_with_the_pcsc_card_access(
    pcsc_lab, make_card, tmp_path: Path
) -> None:
    """The same loop, cards inserted into a real pcscd reader when the loop asks for them
    (``coldvault.backends.pcsc.PcscCardAccess``): a wrong PIN, a second card of the same
    holder refused before its PIN, then the threshold."""
    from coldvault.backends.pcsc import PcscCardAccess

    port, reader = pcsc_lab.reader_ports[0], pcsc_lab.reader_names()[0]
    files, processes, holders = {}, {}, []
    for name, serial, algorithm, holder in (
        ("alice", 0xC0117001, ED25519, "Alice Approver"),
        ("alice2", 0xC0117002, P256, "alice approver"),
        ("bob", 0xC0117003, K1, "Bob Approver"),
        ("dave", 0xC0117004, ED25519, "Dave Admin"),
    ):
        processes[name] = make_card(name, serial)
        files[name] = VirtualCardFile(tmp_path / f"{name}.json", serial, algorithm)
        role = Role.ADMIN if name == "dave" else APPROVER
        holders.append(CardHolder(files[name].card_id, holder, role, "hk", algorithm.value,
                                  files[name].public_key))  # fmt: skip
    roster = Roster(2, APPLIANCE, tuple(holders), admin_threshold=1)
    token = ApprovalToken(
        request_digest=bytes(32), request_fingerprint="0CB6-098C-78C2", wallet="w", client="c",
        policy_version=1, roster_version=2, appliance_id=APPLIANCE, session_nonce=bytes(16),
        issued_at=T0, expires_at=T0 + 600, required_approvals=2,
    )  # fmt: skip
    session = ApprovalSession(roster, token, now=lambda: T0)
    order = ["alice", "alice", "alice2", "bob"]
    in_reader: list[str] = []

    class ReaderUi(ScriptedUi):
        def ask_for_card(self, number: int, threshold: int) -> None:
            super().ask_for_card(number, threshold)
            in_reader.append(order.pop(0))
            processes[in_reader[-1]].insert(port)

        def ask_to_remove_card(self) -> None:
            super().ask_to_remove_card()
            processes[in_reader[-1]].remove()

    ui = ReaderUi(pins=["000000", USER_PIN, USER_PIN])
    approvals = collect_signatures(
        session, ui, PcscCardAccess(reader, timeout=10), what="the approvals",
        allow_emulated=True,
    )  # fmt: skip
    assert [a.holder for a in approvals] == ["Alice Approver", "Bob Approver"]
    assert [(e[1], e[2]) for e in ui.events if e[0] == "refused"] == [
        (files["alice"].card_id, "card-wrong-pin"),
        (files["alice2"].card_id, "duplicate-holder"),
    ]
    assert ui.pin_prompts() == [files["alice"].card_id] * 2 + [files["bob"].card_id]
    assert ("card", files["bob"].card_id, "Bob Approver", True) in ui.events
    assert files["alice2"].signature_counter() == 0 and files["alice2"].tries_left() == 3
    session.consume()
