"""Smart cards in ceremonies: one card at a time in the reader, PIN typed hidden.

* :func:`witness_signers` -- witnesses sign the closed transcript's final hash.
* :func:`collect_admin_signatures` -- admin cards sign given bytes, one at a time, until the
  roster's admin threshold of distinct holders is met (:class:`coldvault.quorum.approvals.Tally`); a
  card that cannot count is refused with the reason before its PIN is asked.
* :func:`collect_admin_quorum` -- admins approve a ceremony (extend-pool, re-initialising
  an appliance) by signing a ceremony approval token with :func:`collect_admin_signatures`.
* :func:`load_roster` -- a roster file plus its approvals, checked against its own admins.

Cards are named by :attr:`coldvault.cards.openpgp.OpenPgpSession.card_id` (manufacturer + serial),
the identity rosters use and the appliance checks (docs/cards.md).

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

from ceremony_scripts.runner import CeremonyRun
from ceremony_scripts.ui import Operator
from coldvault.backends import pcsc
from coldvault.cards.openpgp import OpenPgpSession, Pw
from coldvault.cards.signatures import card_input
from coldvault.errors import AuthError, HardwareError, QuorumError
from coldvault.quorum.approvals import Approval, Tally
from coldvault.quorum.documents import load_signed_document, verify_admin_quorum
from coldvault.quorum.errors import CardRevoked, DuplicateHolder, UnknownCard, WrongRole
from coldvault.quorum.roster import CardHolder, Role, Roster
from coldvault.records.transcript import Device, Signer, WitnessSignature

CEREMONY_TOKEN_PREFIX = b"coldvault/ceremony-approval/v1\x00"
INSERT_TIMEOUT = 300.0
MAX_CARD_ATTEMPTS = 10


class EmulatedCardRefused(HardwareError):
    code = "emulated-card"

    def __init__(self, serial: str) -> None:
        super().__init__(
            f"Card {serial} is an emulated (test) card; ceremonies refuse it without "
            "--allow-emulated."
        )
        self.serial = serial


class CardAttemptsExhausted(QuorumError):
    code = "card-attempts"

    def __init__(self, what: str) -> None:
        super().__init__(f"Too many failed card attempts while collecting {what}.")
        self.what = what


def load_roster(path: Path) -> Roster:
    """Load ``roster.json`` + ``roster.json.approvals.json`` and check its admin quorum."""
    doc = load_signed_document(path, "roster")
    roster = Roster.from_bytes(doc.content)
    verify_admin_quorum(doc, roster)
    return roster


@contextmanager
def card_in_reader(
    op: Operator, prompt: str, *, allow_emulated: bool, reader: str | None = None
) -> Iterator[tuple[OpenPgpSession, str]]:
    """Wait for a card, select the OpenPGP application, yield (session, serial)."""
    op.info(prompt)
    found = pcsc.wait_for_card(reader, timeout=INSERT_TIMEOUT)
    connection = pcsc.PcscConnection(found)
    try:
        session = OpenPgpSession(connection)
        session.select()
        serial = session.card_id
        if pcsc.is_emulated(session):
            if not allow_emulated:
                raise EmulatedCardRefused(serial)
            op.warn(f"Card {serial} is an EMULATED card (lab only).")
        yield session, serial
    finally:
        connection.close()
        op.info("Remove the card.")
        pcsc.wait_for_removal(found, timeout=INSERT_TIMEOUT)


def _witness_signer(
    op: Operator, number: int, roster: Roster | None, allow_emulated: bool
) -> Signer:
    def sign(message: bytes) -> WitnessSignature:
        for _ in range(MAX_CARD_ATTEMPTS):
            try:
                with card_in_reader(
                    op, f"Witness {number}: insert your card.", allow_emulated=allow_emulated
                ) as (session, serial):
                    if roster is not None:
                        holder = roster.holder(serial)
                        if holder is None or not holder.active:
                            op.error(f"Card {serial} is not an active card of the roster.")
                            continue
                        name, role, algorithm = holder.holder, str(holder.role), holder.algorithm
                        public_key = holder.public_key
                    else:
                        name = session.cardholder_name() or f"card {serial}"
                        role, algo = "witness", session.algorithm()
                        if algo is None:
                            op.error(f"Card {serial} has no signature key.")
                            continue
                        algorithm, public_key = algo.value, session.public_key()
                    op.info(f"Card {serial}: {name}. You sign the final transcript hash.")
                    pin = op.secret(f"PIN for card {serial} ({name})")
                    session.verify_pin(pin, Pw.SIGN)
                    del pin
                    signature = session.sign(card_input(algorithm, message))
                    return WitnessSignature(serial, name, role, algorithm, public_key, signature)
            except (AuthError, HardwareError) as err:
                op.error(err.message)
        raise CardAttemptsExhausted(f"witness signature {number}")

    return sign


def witness_signers(
    op: Operator, count: int, roster: Roster | None, allow_emulated: bool = False
) -> list[Signer]:
    return [_witness_signer(op, i, roster, allow_emulated) for i in range(1, count + 1)]


def ceremony_token(ceremony: str, ceremony_id: str, appliance_id: str, params: Any) -> bytes:
    body = {
        "ceremony": ceremony,
        "ceremony_id": ceremony_id,
        "appliance_id": appliance_id,
        "parameters": params,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return CEREMONY_TOKEN_PREFIX + text.encode()


def _countable_admin(tally: Tally, serial: str) -> CardHolder:
    """Refuse, before the PIN, a card that could not count: the exact :class:`QuorumError`."""
    roster = tally.roster
    holder = roster.holder(serial)
    if holder is None:
        raise UnknownCard(serial, roster.version)
    if not holder.active:
        raise CardRevoked(serial, holder.holder, roster.version)
    if holder.role is not Role.ADMIN:
        raise WrongRole(serial, holder.holder, holder.role.value, Role.ADMIN.value)
    for approval in tally.approvals:
        counted = roster.holder(approval.card_serial)
        if counted is not None and counted.holder_id == holder.holder_id:
            raise DuplicateHolder(serial, holder.holder, approval.card_serial)
    return holder


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
    (optional) is called with each countable admin card before its PIN is asked and may
    raise a :class:`QuorumError` to refuse it (e.g. the card a roster change revokes)."""
    tally = Tally(roster, Role.ADMIN, data, roster.admin_threshold)
    attempts = 0
    while not tally.satisfied:
        attempts += 1
        if attempts > MAX_CARD_ATTEMPTS:
            raise CardAttemptsExhausted(what)
        prompt = f"Admin approval {tally.count + 1} of {tally.threshold}: insert an admin card."
        serial = ""
        approval = None
        try:
            with card_in_reader(op, prompt, allow_emulated=allow_emulated) as (session, serial):
                try:
                    holder = _countable_admin(tally, serial)
                    if refuse is not None:
                        refuse(holder)
                    op.info(f"Card {serial}: {holder.holder} (site {holder.site}).")
                    pin = op.secret(f"PIN for card {serial} ({holder.holder})")
                    session.verify_pin(pin, Pw.SIGN)
                    del pin
                    signature = session.sign(card_input(holder.algorithm, data))
                    approval = tally.add(serial, signature)
                except (AuthError, HardwareError, QuorumError) as err:
                    # said while the card is still in the reader, so its holder sees why
                    op.error(err.message)
                    run.record("approval-refused", {"error": err.code, "card_serial": serial})
        except HardwareError as err:  # no card, an emulated card refused, a reader problem
            op.error(err.message)
            run.record("approval-refused", {"error": err.code, "card_serial": serial})
        if approval is None:
            continue
        op.ok(f"Approved by {approval.holder} ({tally.count} of {tally.threshold}).")
        run.record(
            "admin-approval",
            {
                "card_serial": serial,
                "holder": approval.holder,
                "site": approval.site,
                "signature": approval.signature.hex(),
            },
            devices=[Device("card", serial)],
        )
    run.record("quorum-met", {"approvals": tally.count, "threshold": tally.threshold})
    return tally.approvals


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
    "CardAttemptsExhausted",
    "EmulatedCardRefused",
    "card_in_reader",
    "ceremony_token",
    "collect_admin_signatures",
    "collect_admin_quorum",
    "load_roster",
    "witness_signers",
]
