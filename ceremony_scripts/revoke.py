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
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from ceremony_scripts.approve import check_roster_step, parse_genesis, roster_proposal, run_json
from ceremony_scripts.enrol import _enrol_one
from ceremony_scripts.quorum_cards import collect_admin_signatures
from ceremony_scripts.runner import CeremonyRun, default_transcript_path
from ceremony_scripts.seed import common_options
from ceremony_scripts.ui import Operator
from coldvault.cards.openpgp import CardAlgorithm
from coldvault.errors import QuorumError, Refused
from coldvault.policy import Policy, load_policy
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

    def __init__(self, card: str, reason: str) -> None:
        super().__init__(f"Card {card} cannot be revoked or replaced: {reason}.")
        self.card = card
        self.reason = reason


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


# --------------------------------------------------------------------------- checks
def _target(roster: Roster, card: str) -> CardHolder:
    holder = roster.holder(card)
    if holder is None:
        raise RevocationRefused(card, f"it is not in roster version {roster.version}")
    if not holder.active:
        raise RevocationRefused(
            card, f"it is already revoked in roster version {roster.version} ({holder.holder})"
        )
    return holder


def _check_signers(roster: Roster, card: str) -> None:
    """The other admins of ``roster`` (not ``card``) can meet its threshold."""
    signers = {h.holder_id for h in roster.active(Role.ADMIN) if h.serial != card}
    if len(signers) < roster.admin_threshold:
        raise RevocationRefused(
            card,
            f"the admin threshold of roster version {roster.version} is "
            f"{roster.admin_threshold} and only {len(signers)} other distinct active admin(s) "
            "could approve (the card being changed cannot approve its own change)",
        )


def _successor(
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
    return roster.successor(holders)


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


# --------------------------------------------------------------------------- options
def _options(func: Any) -> Any:
    for option in reversed([
        click.option("--roster", "roster_paths", multiple=True, required=True,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Signed roster file, repeatable: the chain, genesis first. The "
                     "newest roster's admins approve the change."),
        click.option("--genesis-sha256", default="",
                     help="Pinned genesis roster SHA-256 (hex), as in the appliance "
                     "configuration. Without it the first --roster is trusted and its hash "
                     "shown to check."),
        click.option("--card", "card", required=True,
                     help="Card id (manufacturer + serial, as in the roster) to revoke."),
        click.option("--policy", "policy_path",
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="The active signed policy: enough approvers must remain for its "
                     "highest tier, and its approvals must stay valid."),
        click.option("--out", "out_path", required=True,
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="The new roster file (must not exist); approvals beside it."),
        click.option("--allow-emulated", is_flag=True,
                     help="Accept virtual (test) cards: lab only."),
        click.option("--json", "as_json", is_flag=True,
                     help="Print the result (or the error) as one JSON line at the end."),
    ]):  # fmt: skip
        func = option(func)
    return func


@click.command("revoke-card")
@common_options
@_options
@click.option("--reason", required=True, help="Why the card is revoked (in the transcript).")
def revoke_card(**kw: Any) -> None:
    """Revoke a card: the next roster version, signed by the admins of the current one."""
    genesis = parse_genesis(kw["genesis_sha256"])
    run_json(kw["as_json"], lambda: _change(kw, genesis, replace_card=False))


@click.command("replace-card")
@common_options
@_options
@click.option("--reason", default="card replaced", show_default=True,
              help="Why the card is replaced (in the transcript).")  # fmt: skip
@click.option("--algorithm", type=click.Choice([a.value for a in CardAlgorithm]), default=None,
              help="Key algorithm of the new card (default: the old card's).")  # fmt: skip
def replace_card(**kw: Any) -> None:
    """Replace a card: revoke it and enrol a new card (key generated on the card) for the
    same holder, role and site, in one roster version signed by the current admins."""
    genesis = parse_genesis(kw["genesis_sha256"])
    run_json(kw["as_json"], lambda: _change(kw, genesis, replace_card=True))


# --------------------------------------------------------------------------- ceremony
def _change(kw: dict[str, Any], genesis_hex: str, *, replace_card: bool) -> dict[str, Any]:
    ceremony = "replace-card" if replace_card else "revoke-card"
    verb = "replaced" if replace_card else "revoked"
    op = Operator(assume_yes=kw["assume_yes"])
    out: Path = kw["out_path"]
    transcript = kw["transcript_path"] or default_transcript_path(Path("transcripts"), ceremony)
    params = {
        "card": kw["card"],
        "reason": kw["reason"],
        "rosters": [str(p) for p in kw["roster_paths"]],
        "genesis_sha256": genesis_hex,
        "policy": str(kw["policy_path"]) if kw["policy_path"] else None,
        "out": str(out),
    }
    with CeremonyRun(op, ceremony, transcript, actor=kw["operator_name"], parameters=params) as run:
        chain = check_roster_step(op, run, kw["roster_paths"], genesis_hex)
        roster, docs = chain
        card = kw["card"]
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
            ("reason", kw["reason"]),
        ])  # fmt: skip
        policy = None
        if kw["policy_path"] is not None:
            policy = load_policy(kw["policy_path"], roster=roster)
        revoked = [replace(h, status=CardStatus.REVOKED) if h.serial == card else h
                   for h in roster.holders]  # fmt: skip
        # every refusal comes before any card is touched
        without = _successor(roster, target, revoked, policy, approvers_needed=not replace_card)
        _check_signers(roster, card)
        if kw["policy_path"] is not None:
            _check_policy_still_valid(kw["policy_path"], without, card)
        run.record(f"card-to-be-{verb}", {
            "card_serial": card, "holder": target.holder, "role": str(target.role),
            "site": target.site, "reason": kw["reason"],
        })  # fmt: skip
        op.confirm(f"Is this the card to be {verb}?")

        new, new_card = without, None
        if replace_card:
            algorithm = CardAlgorithm(kw["algorithm"] or target.algorithm)
            op.step(f"Enrol the new card for {target.holder}", [
                "the new card is new or reset, sealed until now", "the holder is present",
            ])  # fmt: skip
            new_card = _enrol_one(
                op, run, 1, algorithm, kw["allow_emulated"], identity=target, roster=roster,
                prompt=f"Insert the NEW blank card for {target.holder}.",
            )  # fmt: skip
            new = _successor(roster, target, [*revoked, new_card], policy)

        op.step(f"Review roster version {new.version}", [
            f"card {card} of {target.holder} is {verb}, and nothing else changes",
        ])  # fmt: skip
        content = new.to_bytes()
        proposal = roster_proposal(content, roster, None)
        doc = proposal.doc
        for title, rows in proposal.tables:
            op.table(title, rows)
        op.info(f"SHA-256 {doc.sha256.hex()}")
        run.record("roster-proposed", {
            "version": doc.version, "sha256": doc.sha256.hex(),
            "token_sha256": hashlib.sha256(doc.token).hexdigest(), **proposal.facts,
        })  # fmt: skip
        op.confirm(f"Is roster version {new.version} the one the admins are to approve?")

        op.step("Admins sign the new roster", [
            f"{roster.admin_threshold} distinct admins of roster version {roster.version}, "
            f"not card {card}",
            f"each admin checks the SHA-256 {doc.sha256.hex()[:16]}... before typing the PIN",
        ])  # fmt: skip

        def refuse(holder: CardHolder) -> None:
            if holder.serial == card:
                raise OwnCardChange(holder.serial, holder.holder, verb)

        approvals = collect_admin_signatures(
            op, run, roster, doc.token, what=f"the approvals of roster version {new.version}",
            allow_emulated=kw["allow_emulated"], refuse=refuse,
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
        final_hash = run.finish({"version": doc.version, "sha256": doc.sha256.hex()})
    op.ok(f"Card {card} of {target.holder} is {verb} in roster version {doc.version}.")
    result: dict[str, Any] = {
        "ok": True,
        "ceremony": ceremony,
        "card": card,
        "holder": target.holder,
        "reason": kw["reason"],
        "version": doc.version,
        "file": str(out),
        "approvals_file": str(written),
        "sha256": doc.sha256.hex(),
        "approvals": [
            {"card_serial": a.card_serial, "holder": a.holder, "site": a.site} for a in approvals
        ],
        "transcript": str(transcript),
        "final_hash": final_hash,
    }
    if new_card is not None:
        result["new_card"] = {"card_serial": new_card.serial, "algorithm": new_card.algorithm,
                              "public_key": new_card.public_key.hex()}  # fmt: skip
    return result


__all__ = ["OwnCardChange", "RevocationRefused", "replace_card", "revoke_card"]
