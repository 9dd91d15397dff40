"""What ceremonies are handed by their front end: the HSM token and the card collaborators.

The library never goes looking for hardware.  A front end opens (or names) the devices
and passes objects with these small interfaces:

* :class:`HsmToken` -- one PKCS#11 token, chosen by the front end (module, label, whether
  emulation is allowed).  The ceremony asks for the PIN at the right moment and logs in
  with :func:`log_in`; ``init-appliance`` also changes the token's PINs through it.
* :class:`Cards` -- smart cards one at a time in a reader: a card for enrolment
  (:meth:`Cards.in_reader`), admin approvals collected until a roster's threshold is met
  (:meth:`Cards.admin_signatures`, :meth:`Cards.ceremony_quorum`), and witnesses signing a
  closed transcript (:meth:`Cards.witnesses`).  Each card prompt goes through the same
  :class:`~coldvault.ceremonies.operator.Operator` as the ceremony.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from coldvault.cards import OpenPgpSession
from coldvault.ceremonies.operator import Operator
from coldvault.ceremonies.run import CeremonyRun
from coldvault.keys.keystore import KeyAdmin
from coldvault.quorum.approvals import Approval
from coldvault.quorum.roster import CardHolder, Roster
from coldvault.records.transcript import Device, Signer


class HsmSession(KeyAdmin, Protocol):
    """A logged-in token (e.g. ``Pkcs11Keystore``); closed by the ceremony when done."""

    def close(self) -> None: ...


class HsmToken(Protocol):
    """One HSM token the front end selected; nothing is opened until a ceremony logs in."""

    @property
    def label(self) -> str: ...

    def login(self, user_pin: str) -> HsmSession:
        """Log in as the user; refuses an emulated token unless the front end allowed it."""
        ...

    def change_so_pin(self, old_pin: str, new_pin: str) -> None:
        """C_SetPIN as the security officer."""
        ...

    def init_user_pin(self, so_pin: str, user_pin: str) -> None:
        """C_InitPIN: the security officer sets the user PIN."""
        ...


#: A card in the reader: ``with cards.in_reader(prompt) as (session, card_id):``.
CardInReader = AbstractContextManager[tuple[OpenPgpSession, str]]


class Cards(Protocol):
    """Smart cards, one at a time in a reader, with prompts through the ceremony's operator."""

    def in_reader(self, prompt: str) -> CardInReader:
        """Show ``prompt``, wait for a card, select OpenPGP; yield ``(session, card id)``
        and ask for the card back when the block ends."""
        ...

    def admin_signatures(
        self,
        run: CeremonyRun,
        roster: Roster,
        data: bytes,
        *,
        what: str,
        refuse: Callable[[CardHolder], None] | None = None,
    ) -> tuple[Approval, ...]:
        """Admin cards of ``roster`` sign ``data`` until its admin threshold of distinct
        holders is met; ``refuse`` may raise a ``QuorumError`` for a card before its PIN."""
        ...

    def ceremony_quorum(
        self, run: CeremonyRun, roster: Roster, ceremony: str, parameters: dict[str, Any]
    ) -> None:
        """The admin quorum approves this run of ``ceremony`` with ``parameters``."""
        ...

    def witnesses(self, count: int, roster: Roster | None) -> list[Signer]:
        """``count`` witness cards (active cards of ``roster`` when given) to sign the
        closed transcript."""
        ...


def log_in(op: Operator, token: HsmToken, *, purpose: str) -> HsmSession:
    """Ask for the user PIN (hidden) and log in; an emulated token is announced."""
    pin = op.secret(f"HSM user PIN for token {token.label} ({purpose})")
    try:
        session = token.login(pin)
    finally:
        del pin
    if session.token_info.emulated:
        op.warn(f"Token {token.label} is EMULATED (SoftHSM). Keys made here are for the lab only.")
    op.ok(f"Logged in to token {token.label} (serial {session.token_info.serial}).")
    return session


def witness_signers(cards: Cards | None, count: int, roster: Roster | None) -> list[Signer]:
    """The witnesses' signers (none for ``count`` 0; then no cards are needed)."""
    if not count:
        return []
    if cards is None:
        raise ValueError("witness signatures need the cards")
    return cards.witnesses(count, roster)


def hsm_device(session: HsmSession) -> Device:
    """The transcript's name of a logged-in token."""
    info = session.token_info
    return Device("hsm", f"{info.label}:{info.serial}")


def card_device(card_id: str) -> Device:
    return Device("card", card_id)


__all__ = [
    "CardInReader",
    "Cards",
    "HsmSession",
    "HsmToken",
    "card_device",
    "hsm_device",
    "log_in",
    "witness_signers",
]
