"""``enrol-cards``: personalise OpenPGP cards and produce the roster signed by the admins.

Per card (one at a time in the reader, :func:`enrol_card`): admin PIN and user PIN changed
from their current (factory) values, cardholder name written, algorithm attributes set
(PUT DATA C1) and the signature key generated ON the card; card id and public key read
back.  Holder, role (approver / admin / backup-custodian) and site are typed by the
operator (or given, for a replacement card).

Then the roster (:mod:`coldvault.quorum.roster`, version 1) is written with its approvals
file after the admin cards just enrolled sign its config approval token (trust on first
use; the appliance pins the genesis roster's SHA-256 at init).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coldvault.cards import CardAlgorithm, Pw
from coldvault.ceremonies.hardware import Cards, card_device
from coldvault.ceremonies.operator import Operator, confirm_or_cancel, new_pin
from coldvault.ceremonies.outputs import refuse_existing
from coldvault.ceremonies.params import CeremonyParams, ParameterError, check_int, check_type
from coldvault.ceremonies.run import CeremonyRun, Closed
from coldvault.errors import Refused
from coldvault.quorum.documents import (
    SignedDocument,
    approvals_path,
    verify_admin_quorum,
    write_signed_document,
)
from coldvault.quorum.roster import CardHolder, Role, Roster, RosterInvalid
from coldvault.records.chain import fsync_dir

MIN_USER_PIN = 6
MIN_ADMIN_PIN = 8
MAX_CARDS = 64
#: Cards offered for the roster approvals before the ceremony stops.
MAX_ATTEMPTS = 10
PROGRESS_SUFFIX = ".enrolment.json"
PROGRESS_FORMAT = "coldvault-enrolment/1"
#: What an operator does instead of overwriting a roster.
ROSTER_INSTEAD = (
    "choose another --out. A roster is never replaced: the appliance pins the genesis "
    "roster, and cards are added or swapped with replace-card and approve-document."
)


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


class CardNotBlank(Refused):
    """The card in the reader already holds a signature key: it is not a blank card."""

    code = "card-not-blank"

    def __init__(self, serial: str) -> None:
        super().__init__(
            f"Card {serial} already holds a signature key: it is not blank, and nothing was "
            "changed on it. Insert a new, blank card; a card of the roster is replaced with "
            "replace-card, and a card meant for re-use is factory-reset first by its owner."
        )
        self.serial = serial


class CardEnrolledEarlier(Refused):
    """A card this unfinished enrolment already personalised was inserted again."""

    code = "card-enrolled-earlier"

    def __init__(self, serial: str, number: int, holder: str) -> None:
        super().__init__(
            f"Card {serial} is already card {number} of this enrolment ({holder}); nothing "
            "was changed on it. Insert the next blank card."
        )
        self.serial = serial
        self.number = number


class EnrolmentMismatch(Refused):
    """An unfinished enrolment for ``--out`` was made with other parameters."""

    code = "enrolment-mismatch"

    def __init__(self, path: Path, differs: str) -> None:
        super().__init__(
            f"{path} records an unfinished enrolment with another {differs}; nothing was "
            "changed. Re-run with the same options to continue it, or choose another --out."
        )
        self.path = str(path)
        self.differs = differs


@dataclass(frozen=True, kw_only=True)
class EnrolCards(CeremonyParams):
    """Parameters of ``enrol-cards``: ``count`` cards for ``appliance_id``, all with
    ``algorithm``; ``admin_threshold`` distinct admins sign the roster written to ``out``."""

    count: int
    appliance_id: str
    admin_threshold: int = 2
    algorithm: CardAlgorithm = CardAlgorithm.ED25519
    out: Path = Path("roster.json")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("cards", self.count, 1, MAX_CARDS)
        check_int("admin-threshold", self.admin_threshold, 1, MAX_CARDS)
        check_type("appliance_id", self.appliance_id, str)
        check_type("algorithm", self.algorithm, CardAlgorithm)
        check_type("out", self.out, Path)
        if not self.appliance_id.strip():
            raise ParameterError("appliance-id", "--appliance-id must not be empty.")
        if self.admin_threshold > self.count:
            raise ParameterError(
                "admin-threshold", "--admin-threshold cannot be larger than --cards."
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cards": self.count,
            "appliance_id": self.appliance_id,
            "admin_threshold": self.admin_threshold,
            "algorithm": self.algorithm.value,
            "out": str(self.out),
        }


@dataclass(frozen=True)
class EnrolResult:
    """A completed ``enrol-cards``: the genesis roster and where it was written."""

    closed: Closed
    roster: Roster
    file: Path
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            **self.closed.to_dict(),
            "file": str(self.file),
            "roster_sha256": self.sha256,
            "version": self.roster.version,
            "cards": [
                {
                    "card_serial": h.serial,
                    "holder": h.holder,
                    "role": str(h.role),
                    "site": h.site,
                    "algorithm": h.algorithm,
                    "public_key": h.public_key.hex(),
                }
                for h in self.roster.holders
            ],  # fmt: skip
        }


def enrol_card(
    op: Operator,
    run: CeremonyRun,
    cards: Cards,
    algorithm: CardAlgorithm,
    *,
    prompt: str,
    identity: CardHolder | None = None,
    roster: Roster | None = None,
    enrolled: Sequence[CardHolder] = (),
) -> CardHolder:
    """Personalise one card.  ``identity`` (holder, role, site) is used instead of asking
    (a replacement card).  Refused before anything is written to it: a card already in
    ``roster`` (:class:`CardAlreadyEnrolled`) or among ``enrolled`` of this enrolment
    (:class:`CardEnrolledEarlier`), and a card that holds a signature key
    (:class:`CardNotBlank`)."""
    with cards.in_reader(prompt) as (session, serial):
        listed = roster.holder(serial) if roster is not None else None
        if roster is not None and listed is not None:
            raise CardAlreadyEnrolled(serial, listed.holder, roster.version)
        for number, earlier in enumerate(enrolled, start=1):
            if earlier.serial == serial:
                raise CardEnrolledEarlier(serial, number, earlier.holder)
        app = session.application_data()
        if any(app.fingerprints[0]) or app.generation_times[0]:
            raise CardNotBlank(serial)
        op.info(f"Card serial {serial} (check it against the card's printed serial).")
        if identity is None:
            holder = _ask_filled(op, f"Card {serial} holder name")
            role = _ask_role(op, serial)
            site = _ask_filled(op, f"Card {serial} site")
        else:
            holder, role, site = identity.holder, identity.role, identity.site
            op.info(f"Card {serial} is for {holder} ({role}, site {site}).")
        admin_old = op.secret(f"Card {serial} current admin PIN")
        admin_new = new_pin(op, f"New admin PIN for card {serial}", min_length=MIN_ADMIN_PIN)
        user_old = op.secret(f"Card {serial} current user PIN")
        user_new = new_pin(op, f"New user PIN for card {serial}", min_length=MIN_USER_PIN)
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
            devices=[card_device(serial)],
        )
        return card


def _ask_filled(op: Operator, question: str) -> str:
    """A visible answer, asked again while it is blank."""
    while not (answer := op.ask(question).strip()):
        op.warn("An answer is needed.")
    return answer


def _ask_role(op: Operator, serial: str) -> Role:
    """The card's role, asked again until it is one of the roster's roles."""
    while True:
        answer = op.ask(f"Card {serial} role (approver/admin/backup-custodian)", default="approver")
        try:
            return Role(answer.strip())
        except ValueError:
            op.warn(f"The role must be one of {', '.join(r.value for r in Role)}.")


def sign_roster(
    op: Operator, run: CeremonyRun, cards: Cards, doc: SignedDocument, roster: Roster
) -> SignedDocument:
    """Admin cards of the new ``roster`` sign it until its admin threshold is met (the one
    card-approval loop: a card that cannot count is refused before its PIN)."""
    approvals = cards.admin_signatures(run, roster, doc.token, what="the roster approvals")
    for approval in approvals:
        doc = doc.with_approval(approval.card_serial, approval.signature)
    verify_admin_quorum(doc, roster)
    return doc


def progress_path(out: Path) -> Path:
    """The unfinished enrolment's record beside the roster it will become."""
    return out.with_name(out.name + PROGRESS_SUFFIX)


class _Progress:
    """``<out>.enrolment.json``: the parameters and every card personalised so far
    (public facts only), rewritten atomically after each card."""

    def __init__(self, params: EnrolCards) -> None:
        self.path = progress_path(params.out)
        self.params = params
        self.cards: list[CardHolder] = []

    def load(self) -> None:
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text())
            recorded = data["parameters"]
            cards = [CardHolder.from_json(c) for c in data["cards"]]
        except (OSError, ValueError, KeyError, TypeError, RosterInvalid) as exc:
            reason = f"format (it is unreadable: {type(exc).__name__})"
            raise EnrolmentMismatch(self.path, reason) from None
        wanted = self.params.to_dict()
        for key in ("appliance_id", "cards", "admin_threshold", "algorithm"):
            if recorded.get(key) != wanted[key]:
                raise EnrolmentMismatch(self.path, f"--{key.replace('_', '-')}")
        self.cards = cards

    def add(self, card: CardHolder) -> None:
        self.cards.append(card)
        body = {
            "format": PROGRESS_FORMAT,
            "parameters": self.params.to_dict(),
            "cards": [c.to_json() for c in self.cards],
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as fh:
            fh.write(json.dumps(body, indent=2, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)


def enrol_cards(op: Operator, params: EnrolCards, cards: Cards) -> EnrolResult:
    """Run ``enrol-cards``.

    Never over an existing roster (the genesis roster is pinned by the appliance): an
    existing ``--out`` or its approvals file is refused before any card is touched.  Each
    card is recorded in ``<out>.enrolment.json`` as soon as its key is made; a re-run with
    the same options continues at the first card not yet recorded, and refuses a card
    already enrolled instead of re-keying it."""
    refuse_existing([params.out, approvals_path(params.out)], ROSTER_INSTEAD)
    progress = _Progress(params)
    progress.load()
    with CeremonyRun(op, "enrol-cards", params, parameters=params.to_dict()) as run:
        if progress.cards:
            done = progress.cards
            op.step(f"Continue the enrolment: {len(done)} of {params.count} cards done")
            op.table("Cards enrolled earlier", [
                (h.serial, f"{h.holder} / {h.role} / {h.site}") for h in done
            ])  # fmt: skip
            run.record("enrolment-resumed", {
                "progress_file": str(progress.path),
                "cards": [h.serial for h in done],
            })  # fmt: skip
        for number in range(len(progress.cards) + 1, params.count + 1):
            checks = ["the card is new or reset, sealed until now", "the holder is present"]
            op.step(f"Enrol card {number} of {params.count}", checks)
            card = enrol_card(
                op, run, cards, params.algorithm,
                prompt=f"Card {number}: insert the blank card.", enrolled=progress.cards,
            )  # fmt: skip
            progress.add(card)
        holders = list(progress.cards)
        roster = Roster(1, params.appliance_id, tuple(holders), params.admin_threshold)
        op.table("Roster v1", [(h.serial, f"{h.holder} / {h.role} / {h.site}") for h in holders])
        confirm_or_cancel(op, "Is the roster correct?")
        doc = SignedDocument("roster", 1, params.appliance_id, roster.to_bytes())
        op.step("Admins sign the roster", [f"{params.admin_threshold} distinct admins sign"])
        doc = sign_roster(op, run, cards, doc, roster)
        refuse_existing([params.out, approvals_path(params.out)], ROSTER_INSTEAD)
        write_signed_document(params.out, doc)
        run.record(
            "roster-written",
            {"file": str(params.out), "roster_sha256": doc.sha256.hex(), "version": 1},
        )
        op.ok(f"Roster written: {params.out} (sha256 {doc.sha256.hex()})")
        closed = run.finish({"roster_sha256": doc.sha256.hex()})
    return EnrolResult(closed, roster, params.out, doc.sha256.hex())


__all__ = [
    "CardAlreadyEnrolled",
    "CardEnrolledEarlier",
    "CardNotBlank",
    "EnrolmentMismatch",
    "EnrolCards",
    "EnrolResult",
    "enrol_card",
    "enrol_cards",
    "progress_path",
    "sign_roster",
]
