"""Approvals at the console: one card holder at a time, in the appliance's reader.

For each approval the holder inserts their OpenPGP card, sees the request fingerprint and
their own name from the roster, enters the PIN (hidden), and the card signs the approval
token (PSO: COMPUTE DIGITAL SIGNATURE). The signature is verified against the roster and
counted by :class:`coldvault.quorum.approvals.ApprovalSession`; the holder removes the card and the
next one walks up. Wrong PINs, unknown or revoked cards, duplicate holders and signatures
for another request are refused with their reason and audited; the holder may try again
until ``max_attempts`` is reached.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol

from coldvault.backends import pcsc
from coldvault.cards.openpgp import OpenPgpSession, Pw
from coldvault.errors import AuthError, Cancelled, ColdvaultError, HardwareError, QuorumError
from coldvault.quorum.approvals import ApprovalSession
from coldvault.quorum.errors import CardRevoked, ThresholdNotMet, UnknownCard, WrongRole
from coldvault.quorum.roster import CardHolder, Role, Roster


class EmulatedCardRefused(HardwareError):
    code = "emulated-card"

    def __init__(self, serial: str) -> None:
        super().__init__(
            f"Card {serial} is an emulated (test) card; production refuses it. "
            "A lab run needs allow_emulated_hardware in the configuration and --allow-emulated."
        )
        self.serial = serial


class CardUi(Protocol):
    def info(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def error(self, text: str) -> None: ...

    def secret(self, prompt: str) -> str: ...


def precheck_card(roster: Roster, serial: str) -> CardHolder:
    """Refuse an unknown, revoked or non-approver card before its holder types a PIN."""
    holder = roster.holder(serial)
    if holder is None:
        raise UnknownCard(serial, roster.version)
    if not holder.active:
        raise CardRevoked(serial, holder.holder, roster.version)
    if holder.role is not Role.APPROVER:
        raise WrongRole(serial, holder.holder, holder.role.value, Role.APPROVER.value)
    return holder


def card_message(algorithm: str, token: bytes) -> bytes:
    """What the card is given to sign: Ed25519 signs the token, ECDSA cards its SHA-256."""
    if algorithm.lower() in ("ed25519", "eddsa"):
        return token
    return hashlib.sha256(token).digest()


class CardApprovalCollector:
    """Implements :class:`appliance.session.ApprovalCollector` over PC/SC."""

    def __init__(
        self,
        ui: CardUi,
        *,
        reader: str | None = None,
        insert_timeout: float = 120.0,
        max_attempts: int = 10,
        allow_emulated: bool = False,
    ) -> None:
        self.ui, self.reader = ui, reader
        self.insert_timeout, self.max_attempts = insert_timeout, max_attempts
        self.allow_emulated = allow_emulated

    def collect(
        self,
        approvals: ApprovalSession,
        *,
        on_approved: Callable[[str, str], None],
        on_refused: Callable[[str, ColdvaultError], None],
    ) -> None:
        attempts = 0
        token = approvals.token_bytes
        fingerprint = approvals.token.request_fingerprint
        try:
            while not approvals.satisfied:
                if attempts >= self.max_attempts:
                    raise ThresholdNotMet(
                        f"Request {fingerprint}", len(approvals.approvals), approvals.threshold
                    )
                attempts += 1
                have, need = len(approvals.approvals), approvals.threshold
                self.ui.info(
                    f"Approval {have + 1} of {need} for request {fingerprint}: "
                    f"insert an approver card{f' into {self.reader}' if self.reader else ''}."
                )
                reader = pcsc.wait_for_card(self.reader, timeout=self.insert_timeout)
                connection = None
                serial = "?"
                holder = None
                try:
                    connection = pcsc.PcscConnection(reader)
                    session = OpenPgpSession(connection)
                    session.select()
                    serial = session.card_id
                    if pcsc.is_emulated(session) and not self.allow_emulated:
                        raise EmulatedCardRefused(serial)
                    holder = precheck_card(approvals.roster, serial)
                    self.ui.info(
                        f"Card {serial}: {holder.holder} ({holder.role}, site {holder.site}). "
                        f"You are approving request {fingerprint}."
                    )
                    pin = self.ui.secret(f"PIN for card {serial} ({holder.holder})")
                    session.verify_pin(pin, Pw.SIGN)
                    del pin
                    signature = session.sign(card_message(holder.algorithm, token))
                    approvals.add(serial, signature, signed_token=token)
                except (QuorumError, AuthError, HardwareError) as err:
                    on_refused(serial, err)
                    self.ui.error(err.message)
                else:
                    assert holder is not None
                    on_approved(serial, holder.holder)
                    self.ui.info(
                        f"Approved by {holder.holder} "
                        f"({len(approvals.approvals)} of {approvals.threshold})."
                    )
                finally:
                    if connection is not None:
                        connection.close()
                self.ui.info("Remove the card.")
                pcsc.wait_for_removal(reader, timeout=self.insert_timeout)
        except KeyboardInterrupt as exc:
            raise Cancelled(
                f"Approval collection for request {fingerprint} was cancelled; nothing was signed."
            ) from exc
