"""Smart cards in ceremonies: the operator-console adapter to the card-approval loop.

The loop, its pre-PIN check and the witness rules are the library's
(:mod:`coldvault.quorum.collect`); this module words their prompts on the ceremony
:class:`~coldvault.ceremonies.operator.Operator` and writes the transcript entries:

* :func:`witness_signers` -- witnesses sign the closed transcript's final hash, one card each;
  a holder (or, without a roster, a card) witnesses once.
* :func:`collect_admin_signatures` -- admin cards sign given bytes, one at a time, until the
  roster's admin threshold of distinct holders is met; a card that cannot count is refused
  with the reason before its PIN is asked.
* :func:`collect_admin_quorum` -- admins approve a ceremony (extend-pool, re-initialising
  an appliance) by signing a ceremony approval token with :func:`collect_admin_signatures`.
* :func:`card_in_reader` -- one card in the reader for a ceremony step of its own (enrolment).
* :func:`load_roster` -- a roster file plus its approvals, checked against its own admins.

Cards are named by :attr:`coldvault.cards.openpgp.OpenPgpSession.card_id` (manufacturer +
serial), the identity rosters use and the appliance checks (docs/cards.md).

Ceremony approval token (signed by each admin card, after ``card_input``)::

    b"coldvault/ceremony-approval/v1\\x00" || canonical JSON {"ceremony", "ceremony_id",
        "appliance_id", "parameters"}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from coldvault.backends.pcsc import PcscCardAccess
from coldvault.cards.errors import EmulatedCardRefused
from coldvault.cards.openpgp import OpenPgpSession
from coldvault.ceremonies.operator import Operator
from coldvault.ceremonies.run import CeremonyRun
from coldvault.errors import Cancelled, ColdvaultError
from coldvault.quorum.approvals import Approval, Tally
from coldvault.quorum.collect import Signatory, collect_signatures, collect_witness
from coldvault.quorum.documents import load_signed_document, verify_admin_quorum
from coldvault.quorum.roster import CardHolder, Role, Roster
from coldvault.records.transcript import Device, Signer, WitnessSignature

CEREMONY_TOKEN_PREFIX = b"coldvault/ceremony-approval/v1\x00"
INSERT_TIMEOUT = 300.0
MAX_CARD_ATTEMPTS = 10


def load_roster(path: Path) -> Roster:
    """Load ``roster.json`` + ``roster.json.approvals.json`` and check its admin quorum."""
    doc = load_signed_document(path, "roster")
    roster = Roster.from_bytes(doc.content)
    verify_admin_quorum(doc, roster)
    return roster


def _cards(reader: str | None = None) -> PcscCardAccess:
    return PcscCardAccess(reader, timeout=INSERT_TIMEOUT)


@contextmanager
def card_in_reader(
    op: Operator, prompt: str, *, allow_emulated: bool, reader: str | None = None
) -> Iterator[tuple[OpenPgpSession, str]]:
    """Wait for a card, select the OpenPGP application, yield (session, serial); afterwards
    close it and wait for its removal."""
    cards = _cards(reader)
    op.info(prompt)
    found = cards.wait_for_card()
    try:
        with cards.open(found) as session:
            serial = session.card_id
            if cards.is_emulated(session):
                if not allow_emulated:
                    raise EmulatedCardRefused(serial)
                op.warn(f"Card {serial} is an EMULATED card (lab only).")
            yield session, serial
    except ColdvaultError as err:
        # the holder learns what happened (wrong PIN, tries left) while the card is in
        op.error(err.message)
        raise
    finally:
        op.info("Remove the card.")
        cards.wait_for_removal(found)


class _OperatorPrompts:
    """:class:`coldvault.quorum.collect.ApprovalUi` on the ceremony operator console."""

    def __init__(self, op: Operator, what: str) -> None:
        self.op, self.what = op, what

    def show_card(self, who: Signatory, *, emulated: bool) -> None:
        if emulated:
            self.op.warn(f"Card {who.serial} is an EMULATED card (lab only).")
        self.op.info(self.describe(who))

    def describe(self, who: Signatory) -> str:
        return f"Card {who.serial}: {who.holder} (site {who.site})."

    def ask_pin(self, who: Signatory) -> str:
        try:
            return self.op.secret(f"User PIN for card {who.serial} ({who.holder})")
        except click.Abort as exc:
            raise Cancelled(f"Collecting {self.what} was cancelled; nothing was signed.") from exc

    def show_refusal(self, card_serial: str, error: ColdvaultError) -> None:
        self.op.error(error.message)

    def show_approval(self, approval: Approval, count: int, threshold: int) -> None:
        # the result first, while the card is still in the reader; then "Remove the card."
        self.op.ok(f"Approved by {approval.holder} ({count} of {threshold}).")

    def ask_to_remove_card(self) -> None:
        self.op.info("Remove the card.")


class _AdminPrompts(_OperatorPrompts):
    """Admin approvals: each refusal and each counted card goes into the transcript."""

    def __init__(self, op: Operator, what: str, run: CeremonyRun) -> None:
        super().__init__(op, what)
        self.run = run

    def ask_for_card(self, number: int, threshold: int) -> None:
        self.op.info(f"Admin approval {number} of {threshold}: insert an admin card.")

    def show_refusal(self, card_serial: str, error: ColdvaultError) -> None:
        super().show_refusal(card_serial, error)
        self.run.record("approval-refused", {"error": error.code, "card_serial": card_serial})

    def show_approval(self, approval: Approval, count: int, threshold: int) -> None:
        super().show_approval(approval, count, threshold)
        self.run.record(
            "admin-approval",
            {
                "card_serial": approval.card_serial,
                "holder": approval.holder,
                "site": approval.site,
                "signature": approval.signature.hex(),
            },
            devices=[Device("card", approval.card_serial)],
        )


class _WitnessPrompts(_OperatorPrompts):
    """A witness signature (the transcript is closed: nothing is recorded but the signature)."""

    def __init__(self, op: Operator, what: str, number: int) -> None:
        super().__init__(op, what)
        self.number = number

    def ask_for_card(self, number: int, threshold: int) -> None:
        self.op.info(f"Witness {self.number}: insert your card.")

    def describe(self, who: Signatory) -> str:
        return f"Card {who.serial}: {who.holder}. You sign the final transcript hash."

    def show_approval(self, approval: Approval, count: int, threshold: int) -> None:
        # the result first, while the card is still in the reader; then "Remove the card."
        self.op.ok(f"Witness {self.number}: {approval.holder} signed the final transcript hash.")


def witness_signers(
    op: Operator, count: int, roster: Roster | None, allow_emulated: bool = False
) -> list[Signer]:
    """``count`` signers for :meth:`CeremonyRun.finish`: each has one witness card sign the
    close message (an active roster card if ``roster`` is given)."""
    earlier: list[Signatory] = []

    def signer(number: int) -> Signer:
        def sign(message: bytes) -> WitnessSignature:
            what = f"witness signature {number}"
            who, approval = collect_witness(
                _WitnessPrompts(op, what, number), _cards(), message, roster=roster,
                earlier=earlier, what=what, allow_emulated=allow_emulated,
                max_attempts=MAX_CARD_ATTEMPTS,
            )  # fmt: skip
            earlier.append(who)
            return WitnessSignature(
                who.serial, who.holder, str(who.role), who.algorithm, who.public_key,
                approval.signature,
            )  # fmt: skip

        return sign

    return [signer(i) for i in range(1, count + 1)]


def ceremony_token(ceremony: str, ceremony_id: str, appliance_id: str, params: Any) -> bytes:
    body = {
        "ceremony": ceremony,
        "ceremony_id": ceremony_id,
        "appliance_id": appliance_id,
        "parameters": params,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return CEREMONY_TOKEN_PREFIX + text.encode()


def collect_admin_signatures(
    op: Operator,
    run: CeremonyRun,
    roster: Roster,
    data: bytes,
    *,
    what: str,
    allow_emulated: bool = False,
    refuse: Callable[[CardHolder], None] | None = None,
) -> tuple[Approval, ...]:
    """Admin cards sign ``data`` (``card_input`` of it) until ``roster.admin_threshold``
    distinct admins are counted; returns the approvals in signing order.

    Transcript entries: ``admin-approval`` per counted card, ``approval-refused`` (error
    code, card) per refusal, ``quorum-met`` at the end. ``what`` names the approval in the
    :class:`CardAttemptsExhausted` error after :data:`MAX_CARD_ATTEMPTS` cards. ``refuse``
    (optional) is called with each admin card before its PIN is asked (and again before it
    is counted) and may raise a :class:`QuorumError` to refuse it (e.g. the card a roster
    change revokes)."""
    tally = Tally(roster, Role.ADMIN, data, roster.admin_threshold, exclude=refuse)
    approvals = collect_signatures(
        tally, _AdminPrompts(op, what, run), _cards(), what=what,
        allow_emulated=allow_emulated, max_attempts=MAX_CARD_ATTEMPTS,
    )  # fmt: skip
    run.record("quorum-met", {"approvals": tally.count, "threshold": tally.threshold})
    return approvals


def collect_admin_quorum(
    op: Operator,
    run: CeremonyRun,
    roster: Roster,
    ceremony: str,
    params: dict[str, Any],
    *,
    allow_emulated: bool = False,
) -> None:
    """Collect admin card signatures over the ceremony token until the threshold is met."""
    token = ceremony_token(ceremony, run.log.ceremony_id, roster.appliance_id, params)
    op.table("Approve this ceremony", [(k, str(v)) for k, v in params.items()])
    collect_admin_signatures(
        op, run, roster, token, what=f"the admin quorum for {ceremony}",
        allow_emulated=allow_emulated,
    )  # fmt: skip


__all__ = [
    "card_in_reader",
    "ceremony_token",
    "collect_admin_signatures",
    "collect_admin_quorum",
    "load_roster",
    "witness_signers",
]
