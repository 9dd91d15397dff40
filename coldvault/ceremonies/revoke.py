"""``revoke-card`` and ``replace-card``: a card leaves the roster, or is swapped for a new one.

Both write the next roster version (``coldvault.quorum.roster.Roster.successor``) signed by the
admin quorum of the roster it replaces, the same way ``approve-document --kind roster``
approves a hand-made successor, but the successor is built here from the verified chain:

* ``revoke-card`` marks ``--card`` revoked (it stays listed so old records still name it);
* ``replace-card`` marks it revoked **and** enrols a new card for the same holder, role and
  site, its signature key generated on the card (``enrol-cards``' per-card routine).

Refused before any card is asked for (:class:`RevocationRefused`, with the reason): a card
not in the roster, a card already revoked, a change that would leave fewer distinct active
admins than the admin threshold, or fewer active approvers than needed (the ``--policy``'s
highest approval tier, else one when the card is an approver), a ``--policy`` whose
approvals would no longer verify, and an existing ``--out``.

**The card being revoked or replaced never counts for its own change** (refused before its
PIN is asked, :class:`OwnCardChange`): a card is revoked because it is lost, stolen or no
longer trusted, and such a card must not be one of the votes that decides what happens to
it. So the quorum must come from the *other* admins, and a change where they cannot meet
the threshold is refused up front.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from coldvault.cards import CardAlgorithm
from coldvault.ceremonies.approve import approvals_list, check_roster_step, check_rosters
from coldvault.ceremonies.enrol import enrol_card
from coldvault.ceremonies.hardware import Cards
from coldvault.ceremonies.operator import Operator, confirm_or_cancel
from coldvault.ceremonies.params import CeremonyParams, ParameterError, check_type
from coldvault.ceremonies.proposals import genesis_hex, roster_proposal
from coldvault.ceremonies.run import CeremonyRun, Closed
from coldvault.errors import QuorumError, Refused
from coldvault.policy import Policy, load_policy
from coldvault.quorum.approvals import Approval
from coldvault.quorum.documents import (
    accept_roster,
    approvals_path,
    load_signed_document,
    verify_admin_quorum,
    verify_roster_chain,
    write_signed_document,
)
from coldvault.quorum.roster import CardHolder, CardStatus, Role, Roster


class RevocationRefused(Refused):
    """The roster change cannot be made as asked (said before any card is asked for)."""

    code = "revocation-refused"

    def __init__(self, card: str, reason: str, change: str = "changed in the roster") -> None:
        super().__init__(f"Card {card} cannot be {change}: {reason}.")
        self.card = card
        self.reason = reason
        self.change = change


@contextmanager
def _worded(verb: str) -> Iterator[None]:
    """A refusal of this ceremony names its one change ("revoked" or "replaced")."""
    try:
        yield
    except RevocationRefused as err:
        if err.change == verb:
            raise
        raise RevocationRefused(err.card, err.reason, verb) from None


class OwnCardChange(QuorumError):
    """The card being revoked or replaced was offered to approve that change."""

    code = "card-being-revoked"

    def __init__(self, card_serial: str, holder: str, change: str) -> None:
        super().__init__(
            f"Card {card_serial} of {holder} is the card being {change}; it cannot approve "
            f"its own {'replacement' if change == 'replaced' else 'revocation'}. Another "
            "admin card must sign."
        )
        self.card_serial = card_serial
        self.holder = holder


def _target(roster: Roster, card: str) -> CardHolder:
    holder = roster.holder(card)
    if holder is None:
        raise RevocationRefused(card, f"it is not in roster version {roster.version}")
    if not holder.active:
        raise RevocationRefused(
            card, f"it is already revoked in roster version {roster.version} ({holder.holder})"
        )
    return holder


def check_signers(roster: Roster, card: str) -> None:
    """The other admins of ``roster`` (not ``card``) can meet its threshold."""
    signers = {h.holder_id for h in roster.active(Role.ADMIN) if h.serial != card}
    if len(signers) < roster.admin_threshold:
        raise RevocationRefused(
            card,
            f"the admin threshold of roster version {roster.version} is "
            f"{roster.admin_threshold} and only {len(signers)} other distinct active admin(s) "
            "could approve (the card being changed cannot approve its own change)",
        )


def check_successor(
    roster: Roster,
    target: CardHolder,
    holders: list[CardHolder],
    policy: Policy | None,
    *,
    approvers_needed: bool = True,
) -> Roster:
    """The successor roster, or the exact reason it may not be made. ``approvers_needed``
    False: the approver count is not checked (a replacement before its new card exists)."""
    card = target.serial
    after = {h.holder_id for h in holders if h.active and h.role is Role.ADMIN}
    if len(after) < roster.admin_threshold:
        raise RevocationRefused(
            card,
            f"it would leave {len(after)} distinct active admin(s), fewer than the admin "
            f"threshold {roster.admin_threshold}",
        )
    approvers = len({h.holder_id for h in holders if h.active and h.role is Role.APPROVER})
    if policy is not None:
        need, why = policy.max_required_approvals(), f"policy version {policy.version} requires"
    else:
        need = 1 if target.role is Role.APPROVER else 0
        why = "without --policy at least"
    if approvers_needed and approvers < need:
        raise RevocationRefused(
            card, f"it would leave {approvers} distinct active approver(s); {why} {need}"
        )
    successor = roster.successor(holders)
    short = policy.unreachable_with(successor) if policy is not None else ""
    if approvers_needed and short:
        raise RevocationRefused(card, f"the policy would be unreachable: {short}")
    return successor


def _check_policy_still_valid(policy_path: Path, new: Roster, card: str) -> None:
    try:
        verify_admin_quorum(load_signed_document(policy_path, "policy"), new)
    except QuorumError as err:
        raise RevocationRefused(
            card,
            f"the policy {policy_path} would no longer be accepted with roster version "
            f"{new.version} ({err.message.rstrip('.')}); have it approved again by other "
            "admins first",
        ) from err


@dataclass(frozen=True, kw_only=True)
class CardChange(CeremonyParams):
    """Parameters of ``revoke-card`` and ``replace-card``.

    ``card`` is the roster's card id (manufacturer + serial); ``reason`` goes into the
    transcript; ``policy`` is the active signed policy (enough approvers must remain for
    its highest tier, and its approvals must stay valid); ``out`` is the new roster file
    (must not exist).  ``algorithm`` is the new card's key algorithm for a replacement
    (default: the old card's)."""

    rosters: tuple[Path, ...]
    card: str
    reason: str
    out: Path
    genesis_sha256: str = ""
    policy: Path | None = None
    algorithm: CardAlgorithm | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_rosters(self.rosters)
        check_type("card", self.card, str)
        check_type("reason", self.reason, str)
        check_type("out", self.out, Path)
        check_type("genesis_sha256", self.genesis_sha256, str)
        if self.policy is not None:
            check_type("policy", self.policy, Path)
        if self.algorithm is not None:
            check_type("algorithm", self.algorithm, CardAlgorithm)
        if not self.card.strip():
            raise ParameterError("card", "--card must name a card id of the roster.")
        if not self.reason.strip():
            raise ParameterError("reason", "--reason must say why the card is changed.")
        object.__setattr__(self, "card", self.card.strip())
        object.__setattr__(self, "genesis_sha256", genesis_hex(self.genesis_sha256))

    def to_dict(self) -> dict[str, Any]:
        return {
            "card": self.card,
            "reason": self.reason,
            "rosters": [str(p) for p in self.rosters],
            "genesis_sha256": self.genesis_sha256,
            "policy": str(self.policy) if self.policy else None,
            "out": str(self.out),
        }


@dataclass(frozen=True)
class CardChanged:
    """A completed ``revoke-card`` or ``replace-card``."""

    closed: Closed
    card: str
    holder: str
    reason: str
    version: int
    file: Path
    approvals_file: Path
    sha256: str
    approvals: tuple[Approval, ...]
    new_card: CardHolder | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ok": True,
            **self.closed.to_dict(),
            "card": self.card,
            "holder": self.holder,
            "reason": self.reason,
            "version": self.version,
            "file": str(self.file),
            "approvals_file": str(self.approvals_file),
            "sha256": self.sha256,
            "approvals": approvals_list(self.approvals),
        }
        if self.new_card is not None:
            data["new_card"] = {
                "card_serial": self.new_card.serial,
                "algorithm": self.new_card.algorithm,
                "public_key": self.new_card.public_key.hex(),
            }
        return data


def revoke_card(op: Operator, params: CardChange, cards: Cards) -> CardChanged:
    """Run ``revoke-card``: the next roster version with ``params.card`` revoked."""
    if params.algorithm is not None:
        raise ValueError("a revocation enrols no card: algorithm must be None")
    return _change(op, params, cards, replace_card=False)


def replace_card(op: Operator, params: CardChange, cards: Cards) -> CardChanged:
    """Run ``replace-card``: ``params.card`` revoked and a new card enrolled for the same
    holder, role and site, in one roster version signed by the current admins."""
    return _change(op, params, cards, replace_card=True)


def _change(op: Operator, params: CardChange, cards: Cards, *, replace_card: bool) -> CardChanged:
    ceremony = "replace-card" if replace_card else "revoke-card"
    verb = "replaced" if replace_card else "revoked"
    out, card = params.out, params.card
    with CeremonyRun(op, ceremony, params, parameters=params.to_dict()) as run, _worded(verb):
        chain = check_roster_step(op, run, params.rosters, params.genesis_sha256)
        roster, docs = chain
        if out.exists() or approvals_path(out).exists():
            raise RevocationRefused(card, f"the output file {out} (or its approvals) exists")

        op.step(f"The card to be {verb}", [
            "the holder below is the person whose card this is",
            "the reason is the one in the change request",
        ])  # fmt: skip
        target = _target(roster, card)
        op.table(f"Card {card}", [
            ("holder", target.holder), ("role", str(target.role)), ("site", target.site),
            ("algorithm", target.algorithm), ("status", str(target.status)),
            ("reason", params.reason),
        ])  # fmt: skip
        policy = None
        if params.policy is not None:
            policy = load_policy(params.policy, roster=roster)
        revoked = [replace(h, status=CardStatus.REVOKED) if h.serial == card else h
                   for h in roster.holders]  # fmt: skip
        # every refusal comes before any card is touched
        without = check_successor(
            roster, target, revoked, policy, approvers_needed=not replace_card
        )
        check_signers(roster, card)
        if params.policy is not None:
            _check_policy_still_valid(params.policy, without, card)
        run.record(f"card-to-be-{verb}", {
            "card_serial": card, "holder": target.holder, "role": str(target.role),
            "site": target.site, "reason": params.reason,
        })  # fmt: skip
        confirm_or_cancel(op, f"Is this the card to be {verb}?")

        new, new_card = without, None
        if replace_card:
            algorithm = params.algorithm or CardAlgorithm(target.algorithm)
            op.step(f"Enrol the new card for {target.holder}", [
                "the new card is new or reset, sealed until now", "the holder is present",
            ])  # fmt: skip
            new_card = enrol_card(
                op, run, cards, algorithm, identity=target, roster=roster,
                prompt=f"Insert the NEW blank card for {target.holder}.",
            )  # fmt: skip
            new = check_successor(roster, target, [*revoked, new_card], policy)

        op.step(f"Review roster version {new.version}", [
            f"card {card} of {target.holder} is {verb}, and nothing else changes",
        ])  # fmt: skip
        proposal = roster_proposal(new.to_bytes(), roster, None)
        doc = proposal.doc
        for title, rows in proposal.tables:
            op.table(title, rows)
        op.info(f"SHA-256 {doc.sha256.hex()}")
        run.record("roster-proposed", {
            "version": doc.version, "sha256": doc.sha256.hex(),
            "token_sha256": hashlib.sha256(doc.token).hexdigest(), **proposal.facts,
        })  # fmt: skip
        confirm_or_cancel(op, f"Is roster version {new.version} the one the admins are to approve?")

        op.step("Admins sign the new roster", [
            f"{roster.admin_threshold} distinct admins of roster version {roster.version}, "
            f"not card {card}",
            f"each admin checks the SHA-256 {doc.sha256.hex()[:16]}... before typing the PIN",
        ])  # fmt: skip

        def refuse(holder: CardHolder) -> None:
            if holder.serial == card:
                raise OwnCardChange(holder.serial, holder.holder, verb)

        approvals = cards.admin_signatures(
            run, roster, doc.token, what=f"the approvals of roster version {new.version}",
            refuse=refuse,
        )  # fmt: skip
        for approval in approvals:
            doc = doc.with_approval(approval.card_serial, approval.signature)
        accept_roster(doc, current=roster)

        op.step("Write and check the new roster")
        write_signed_document(out, doc)
        verify_roster_chain([*docs, load_signed_document(out, "roster")], docs[0].sha256)
        written = approvals_path(out)
        run.record("roster-written", {
            "file": str(out), "approvals_file": str(written), "version": doc.version,
            "sha256": doc.sha256.hex(), "approved_by": [a.card_serial for a in approvals],
            "card": card, "new_card": new_card.serial if new_card else None,
        })  # fmt: skip
        op.ok(f"Roster written: {out} and {written}; the chain verifies from the genesis.")
        closed = run.finish({"version": doc.version, "sha256": doc.sha256.hex()})
    op.ok(f"Card {card} of {target.holder} is {verb} in roster version {doc.version}.")
    return CardChanged(
        closed, card, target.holder, params.reason, doc.version, out, written,
        doc.sha256.hex(), approvals, new_card,
    )  # fmt: skip


__all__ = [
    "CardChange",
    "CardChanged",
    "OwnCardChange",
    "RevocationRefused",
    "check_signers",
    "check_successor",
    "replace_card",
    "revoke_card",
]
