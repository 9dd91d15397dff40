"""``enrol-cards``: personalise OpenPGP cards and produce the roster signed by the admins.

Per card (one at a time in the reader): admin PIN and user PIN changed from their current
(factory) values, cardholder name written, algorithm attributes set (PUT DATA C1) and the
signature key generated ON the card; serial and public key read back.  Holder, role
(approver / admin / backup-custodian) and site are typed by the operator.

Then the roster (``coldvault.quorum.roster``, version 1) is written with its approvals file after
the admin cards just enrolled sign the config approval token (trust on first use; the
appliance pins the genesis roster's SHA-256 at init).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ceremony_scripts.quorum_cards import CardAttemptsExhausted, card_in_reader
from ceremony_scripts.runner import CeremonyRun, default_transcript_path
from ceremony_scripts.seed import common_options
from ceremony_scripts.ui import Operator
from coldvault.cards.openpgp import CardAlgorithm, Pw
from coldvault.cards.signatures import card_input
from coldvault.errors import AuthError, HardwareError, Refused
from coldvault.quorum.documents import SignedDocument, verify_admin_quorum, write_signed_document
from coldvault.quorum.errors import ThresholdNotMet
from coldvault.quorum.roster import CardHolder, Role, Roster
from coldvault.records.transcript import Device

MIN_USER_PIN = 6
MIN_ADMIN_PIN = 8
MAX_ATTEMPTS = 10


class CardAlreadyEnrolled(Refused):
    """A card already listed in the roster was inserted where a blank card was asked for."""

    code = "card-already-enrolled"

    def __init__(self, serial: str, holder: str, roster_version: int) -> None:
        super().__init__(
            f"Card {serial} is already in roster version {roster_version} ({holder}); "
            "nothing was changed on it. Insert a new, blank card."
        )
        self.serial = serial
        self.holder = holder
        self.roster_version = roster_version


def _enrol_one(
    op: Operator,
    run: CeremonyRun,
    number: int,
    algorithm: CardAlgorithm,
    allow_emulated: bool,
    *,
    prompt: str | None = None,
    identity: CardHolder | None = None,
    roster: Roster | None = None,
) -> CardHolder:
    """Personalise one card. ``identity`` (holder, role, site) is used instead of asking
    (replace-card); a card already in ``roster`` is refused before anything is written."""
    with card_in_reader(
        op, prompt or f"Card {number}: insert the blank card.", allow_emulated=allow_emulated
    ) as (session, serial):
        listed = roster.holder(serial) if roster is not None else None
        if roster is not None and listed is not None:
            raise CardAlreadyEnrolled(serial, listed.holder, roster.version)
        op.info(f"Card serial {serial} (check it against the card's printed serial).")
        if identity is None:
            holder = op.ask(f"Card {serial} holder name").strip()
            role = Role(
                op.ask(
                    f"Card {serial} role (approver/admin/backup-custodian)",
                    default="approver",
                ).strip()
            )
            site = op.ask(f"Card {serial} site").strip()
        else:
            holder, role, site = identity.holder, identity.role, identity.site
            op.info(f"Card {serial} is for {holder} ({role}, site {site}).")
        admin_old = op.secret(f"Card {serial} current admin PIN")
        admin_new = op.new_pin(f"New admin PIN for card {serial}", min_length=MIN_ADMIN_PIN)
        user_old = op.secret(f"Card {serial} current user PIN")
        user_new = op.new_pin(f"New user PIN for card {serial}", min_length=MIN_USER_PIN)
        session.change_pin(Pw.ADMIN, admin_old, admin_new)
        session.change_pin(Pw.USER, user_old, user_new)
        session.verify_pin(admin_new, Pw.ADMIN)
        del admin_old, admin_new, user_old, user_new
        session.set_cardholder_name(holder)
        session.set_algorithm(algorithm)  # PUT DATA C1: algorithm attributes
        public_key = session.generate_key(algorithm)
        op.ok(f"Signature key generated on card {serial} ({algorithm.value}).")
        card = CardHolder(serial, holder, role, site, algorithm.value, public_key)
        run.record(
            "card-enrolled",
            {
                "card_serial": serial,
                "holder": holder,
                "role": str(role),
                "site": site,
                "algorithm": algorithm.value,
                "public_key": public_key.hex(),
                "pins_changed": True,
            },
            devices=[Device("card", serial)],
        )
        return card


def _sign_roster(
    op: Operator, run: CeremonyRun, doc: SignedDocument, roster: Roster, allow_emulated: bool
) -> SignedDocument:
    signed: set[str] = set()
    for _ in range(MAX_ATTEMPTS):
        try:
            with card_in_reader(
                op, "Roster approval: insert an admin card.", allow_emulated=allow_emulated
            ) as (session, serial):
                holder = roster.holder(serial)
                if holder is None or holder.role is not Role.ADMIN or serial in signed:
                    op.error(f"Card {serial} is not an admin card that has yet to sign.")
                    continue
                pin = op.secret(f"PIN for card {serial} ({holder.holder})")
                session.verify_pin(pin, Pw.SIGN)
                del pin
                signature = session.sign(card_input(holder.algorithm, doc.token))
        except (AuthError, HardwareError) as err:
            op.error(err.message)
            continue
        doc = doc.with_approval(serial, signature)
        signed.add(serial)
        run.record(
            "roster-approval",
            {"card_serial": serial, "holder": holder.holder, "signature": signature.hex()},
            devices=[Device("card", serial)],
        )
        op.ok(f"{holder.holder} approved the roster.")
        try:
            verify_admin_quorum(doc, roster)
        except ThresholdNotMet:
            continue
        return doc
    raise CardAttemptsExhausted("the roster approvals")


@click.command("enrol-cards")
@common_options
@click.option("--cards", "count", type=click.IntRange(1, 64), required=True,
              help="Number of cards to enrol.")  # fmt: skip
@click.option("--appliance-id", required=True, help="Appliance the roster belongs to.")
@click.option("--admin-threshold", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--algorithm", type=click.Choice([a.value for a in CardAlgorithm]),
              default="ed25519", show_default=True)  # fmt: skip
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("roster.json"), show_default=True)  # fmt: skip
@click.option("--allow-emulated", is_flag=True, help="Accept virtual (test) cards: lab only.")
def enrol_cards(**kw: Any) -> None:
    """Enrol OpenPGP cards (keys generated on card) and write the admin-signed roster."""
    op = Operator(assume_yes=kw["assume_yes"])
    path = kw["transcript_path"] or default_transcript_path(Path("transcripts"), "enrol-cards")
    algorithm = CardAlgorithm(kw["algorithm"])
    params = {
        "cards": kw["count"],
        "appliance_id": kw["appliance_id"],
        "admin_threshold": kw["admin_threshold"],
        "algorithm": algorithm.value,
        "out": str(kw["out_path"]),
    }
    with CeremonyRun(op, "enrol-cards", path, actor=kw["operator_name"], parameters=params) as run:
        holders: list[CardHolder] = []
        for number in range(1, kw["count"] + 1):
            checks = ["the card is new or reset, sealed until now", "the holder is present"]
            op.step(f"Enrol card {number} of {kw['count']}", checks)
            holders.append(_enrol_one(op, run, number, algorithm, kw["allow_emulated"]))
        roster = Roster(1, kw["appliance_id"], tuple(holders), kw["admin_threshold"])
        op.table("Roster v1", [(h.serial, f"{h.holder} / {h.role} / {h.site}") for h in holders])
        op.confirm("Is the roster correct?")
        doc = SignedDocument("roster", 1, kw["appliance_id"], roster.to_bytes())
        op.step("Admins sign the roster", [f"{kw['admin_threshold']} distinct admins sign"])
        doc = _sign_roster(op, run, doc, roster, kw["allow_emulated"])
        write_signed_document(kw["out_path"], doc)
        run.record(
            "roster-written",
            {"file": str(kw["out_path"]), "roster_sha256": doc.sha256.hex(), "version": 1},
        )
        op.ok(f"Roster written: {kw['out_path']} (sha256 {doc.sha256.hex()})")
        run.finish({"roster_sha256": doc.sha256.hex()})


__all__ = ["CardAlreadyEnrolled", "enrol_cards"]
