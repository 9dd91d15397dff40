"""A card holder's PIN tools at the console: status, unblock, change (no gpg needed).

* :func:`card_status` -- serial, holder, tries left for the user PIN, the admin PIN and the
  resetting code, the signature key and its counter.  No PIN is asked.
* :func:`unblock_user_pin` -- the admin PIN (PW3) is verified first, then a new user PIN
  is set with RESET RETRY COUNTER, which also restores its tries.
* :func:`change_card_pin` -- CHANGE REFERENCE DATA for the user or the admin PIN with the
  current one.

Every PIN is asked through :meth:`Operator.secret` (hidden, never kept) and goes to the
card only (:class:`coldvault.cards.OpenPgpSession` wipes its copy).  Each result -- the new
tries left, or the card's refusal with the tries left -- is shown while the card is still
in the reader, before the holder is asked to remove it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coldvault.cards import OpenPgpSession, Pw
from coldvault.ceremonies.enrol import MIN_ADMIN_PIN, MIN_USER_PIN
from coldvault.ceremonies.hardware import Cards
from coldvault.ceremonies.operator import Operator, new_pin
from coldvault.errors import HardwareError

INSERT_PROMPT = "Insert the card into the reader."


@dataclass(frozen=True)
class CardPinStatus:
    """What ``coldvault card status`` shows (public data only)."""

    card_serial: str
    holder: str
    user_pin_tries: int
    admin_pin_tries: int
    reset_code_tries: int
    algorithm: str | None
    signatures: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "card_serial": self.card_serial,
            "holder": self.holder,
            "user_pin_tries": self.user_pin_tries,
            "admin_pin_tries": self.admin_pin_tries,
            "reset_code_tries": self.reset_code_tries,
            "user_pin_blocked": self.user_pin_tries == 0,
            "admin_pin_blocked": self.admin_pin_tries == 0,
            "algorithm": self.algorithm,
            "signatures": self.signatures,
        }


def _tries(count: int) -> str:
    if count == 0:
        return "BLOCKED (0 tries left)"
    return f"{count} {'try' if count == 1 else 'tries'} left"


def read_status(session: OpenPgpSession, serial: str) -> CardPinStatus:
    """The card's PIN counters and signature key, read without any PIN."""
    pins = session.pin_status()
    algorithm = session.algorithm()
    try:
        signatures: int | None = session.signature_counter()
    except HardwareError:  # an optional data object: the status stands without it
        signatures = None
    return CardPinStatus(
        serial, session.cardholder_name(), pins.tries_pw1, pins.tries_pw3, pins.tries_rc,
        algorithm.value if algorithm else None, signatures,
    )  # fmt: skip


def show_status(op: Operator, status: CardPinStatus) -> None:
    op.table(f"Card {status.card_serial}", [
        ("holder", status.holder or "(no name on the card)"),
        ("user PIN", _tries(status.user_pin_tries)),
        ("admin PIN", _tries(status.admin_pin_tries)),
        ("reset code", "not set" if status.reset_code_tries == 0
         else _tries(status.reset_code_tries)),
        ("signature key", status.algorithm or "none"),
        ("signatures made", "unknown" if status.signatures is None else str(status.signatures)),
    ])  # fmt: skip


def card_status(op: Operator, cards: Cards) -> CardPinStatus:
    """Show the status of the card put in the reader."""
    with cards.in_reader(INSERT_PROMPT) as (session, serial):
        status = read_status(session, serial)
        show_status(op, status)
        if status.user_pin_tries == 0:
            op.warn(f"The user PIN of card {serial} is blocked: coldvault card unblock.")
    return status


def unblock_user_pin(op: Operator, cards: Cards) -> CardPinStatus:
    """Verify the admin PIN, set a new user PIN (which unblocks it); show the new counters."""
    with cards.in_reader(INSERT_PROMPT) as (session, serial):
        before = read_status(session, serial)
        op.info(
            f"Card {serial} ({before.holder or 'no name'}): user PIN "
            f"{_tries(before.user_pin_tries)}, admin PIN {_tries(before.admin_pin_tries)}."
        )
        admin = op.secret(f"Admin PIN for card {serial}")
        try:
            session.verify_pin(admin, Pw.ADMIN)
        finally:
            del admin
        op.ok(f"Admin PIN accepted by card {serial}.")
        user = new_pin(op, f"New user PIN for card {serial}", min_length=MIN_USER_PIN)
        try:
            session.reset_pin(user)
        finally:
            del user
        status = read_status(session, serial)
        op.ok(f"Card {serial}: the user PIN is set and unblocked "
              f"({_tries(status.user_pin_tries)}).")  # fmt: skip
    return status


def change_card_pin(op: Operator, cards: Cards, *, admin: bool = False) -> CardPinStatus:
    """Change the user PIN (or with ``admin`` the admin PIN) with the current one."""
    pw = Pw.ADMIN if admin else Pw.USER
    minimum = MIN_ADMIN_PIN if admin else MIN_USER_PIN
    with cards.in_reader(INSERT_PROMPT) as (session, serial):
        op.info(f"Card {serial}: changing the {pw.label}.")
        current = op.secret(f"Current {pw.label} for card {serial}")
        try:
            session.verify_pin(current, pw)  # a wrong PIN is told before a new one is asked
            new = new_pin(op, f"New {pw.label} for card {serial}", min_length=minimum)
            session.change_pin(pw, current, new)
            del new
        finally:
            del current
        status = read_status(session, serial)
        tries = status.admin_pin_tries if admin else status.user_pin_tries
        op.ok(f"Card {serial}: the {pw.label} is changed ({_tries(tries)}).")
    return status


__all__ = [
    "CardPinStatus",
    "card_status",
    "change_card_pin",
    "read_status",
    "show_status",
    "unblock_user_pin",
]
