"""A card holder's PIN tools at the console: status, unblock, change, resetting code (no gpg).

* :func:`card_status` -- serial, holder, tries left for the user PIN, the admin PIN and the
  resetting code, the signature key and its counter.  No PIN is asked, nothing recorded.
* :func:`unblock_user_pin` -- a new user PIN set with RESET RETRY COUNTER, which also
  restores its tries: authorised by the admin PIN (PW3, verified first) or, with
  ``reset_code``, by the card's resetting code (sent with the new PIN in one command; a
  wrong code counts down the code's own 3 tries and leaves the PIN as it was).
* :func:`change_card_pin` -- CHANGE REFERENCE DATA for the user or the admin PIN with the
  current one.
* :func:`set_reset_code` -- PUT DATA D3 with the admin PIN: the code a holder can later use
  to unblock their own user PIN without an admin.

Every PIN and code is asked through :meth:`Operator.secret` (hidden, never kept) and goes to
the card only (:class:`coldvault.cards.OpenPgpSession` wipes its copy).  Each result -- the
new tries left, or the card's refusal with the tries left -- is shown while the card is
still in the reader, before the holder is asked to remove it.

Each change is a ceremony run (:class:`~coldvault.ceremonies.run.CeremonyRun`): a transcript
``card-unblock|card-change-pin|card-set-reset-code-<time>-<id>.jsonl`` with the operator,
the card's serial and holder as read from the card, what was changed and what authorised
it, the counters before and after, and the result (``completed``, or ``aborted`` with the
card's refusal and the counters it left).  Never a PIN or code: field names say
``credential``, and the values are "user PIN", "admin PIN" or "resetting code".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from coldvault.cards import OpenPgpSession, Pw
from coldvault.cards.openpgp import MIN_RESET_CODE_LENGTH, ResetCodeUnusable
from coldvault.ceremonies.enrol import MIN_ADMIN_PIN, MIN_USER_PIN
from coldvault.ceremonies.hardware import Cards
from coldvault.ceremonies.operator import Operator, new_pin
from coldvault.ceremonies.params import CeremonyParams
from coldvault.ceremonies.run import CeremonyRun, Closed
from coldvault.errors import AuthError, HardwareError
from coldvault.records.transcript import Device

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

    def counters(self) -> dict[str, int]:
        """The tries left, as a transcript records them."""
        return {
            "user_pin_tries": self.user_pin_tries,
            "admin_pin_tries": self.admin_pin_tries,
            "reset_code_tries": self.reset_code_tries,
        }

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
        ("reset code", _reset_code_tries(status.reset_code_tries)),
        ("signature key", status.algorithm or "none"),
        ("signatures made", "unknown" if status.signatures is None else str(status.signatures)),
    ])  # fmt: skip


def card_status(op: Operator, cards: Cards) -> CardPinStatus:
    """Show the status of the card put in the reader."""
    with cards.in_reader(INSERT_PROMPT) as (session, serial):
        status = read_status(session, serial)
        show_status(op, status)
        if status.user_pin_tries == 0:
            op.warn(
                f"The user PIN of card {serial} is blocked: coldvault card unblock "
                "(with the admin PIN, or --reset-code with the card's resetting code)."
            )
    return status


USER, ADMIN, RESET_CODE = "user PIN", "admin PIN", "resetting code"


@dataclass(frozen=True)
class CardPinChange:
    """A finished PIN change: the card's status afterwards and the run's transcript."""

    status: CardPinStatus
    closed: Closed

    def to_dict(self) -> dict[str, Any]:
        return {**self.status.to_dict(), **self.closed.to_dict()}


def _run(op: Operator, params: CeremonyParams, ceremony: str, changed: str, by: str) -> CeremonyRun:
    return CeremonyRun(
        op, ceremony, params, parameters={"credential": changed, "authorised_by": by}
    )


@contextmanager
def _card(
    run: CeremonyRun, cards: Cards, changed: str, by: str
) -> Iterator[tuple[OpenPgpSession, str, CardPinStatus]]:
    """The card in the reader, recorded (serial, holder, counters before); a refusal by
    the card is recorded with the counters it left, then raised."""
    with cards.in_reader(INSERT_PROMPT) as (session, serial):
        before = read_status(session, serial)
        run.record(
            "card-presented",
            {"card_serial": serial, "holder": before.holder, "credential": changed,
             "authorised_by": by, "before": before.counters()},
            devices=[Device("card", serial)],
        )  # fmt: skip
        try:
            yield session, serial, before
        except AuthError as err:
            refusal: dict[str, Any] = {"card_serial": serial, "error": err.code,
                                       "message": err.message}  # fmt: skip
            try:
                refusal.update(read_status(session, serial).counters())
            except HardwareError:  # the card went away: the refusal stands without counters
                pass
            run.record("card-refused", refusal)
            raise


def _done(
    run: CeremonyRun, status: CardPinStatus, changed: str, by: str, result: str
) -> dict[str, Any]:
    data = {"card_serial": status.card_serial, "holder": status.holder, "credential": changed,
            "authorised_by": by, "result": result, **status.counters()}  # fmt: skip
    run.record("card-changed", data)
    return data


def unblock_user_pin(
    op: Operator, cards: Cards, params: CeremonyParams, *, reset_code: bool = False
) -> CardPinChange:
    """Set a new user PIN (which unblocks it), authorised by the admin PIN or, with
    ``reset_code``, by the card's resetting code; show the new counters."""
    by = RESET_CODE if reset_code else ADMIN
    with _run(op, params, "card-unblock", USER, by) as run:
        with _card(run, cards, USER, by) as (session, serial, before):
            op.info(
                f"Card {serial} ({before.holder or 'no name'}): user PIN "
                f"{_tries(before.user_pin_tries)}, admin PIN {_tries(before.admin_pin_tries)}, "
                f"resetting code {_reset_code_tries(before.reset_code_tries)}."
            )
            if reset_code:
                _unblock_with_code(op, session, serial, before)
            else:
                _unblock_with_admin(op, session, serial)
            status = read_status(session, serial)
            op.ok(f"Card {serial}: the user PIN is set and unblocked "
                  f"({_tries(status.user_pin_tries)}); authorised by the {by}.")  # fmt: skip
            data = _done(run, status, USER, by, "user PIN set and unblocked")
        closed = run.finish(data)
    return CardPinChange(status, closed)


def _verify_admin(op: Operator, session: OpenPgpSession, serial: str) -> None:
    admin = op.secret(f"Admin PIN for card {serial}")
    try:
        session.verify_pin(admin, Pw.ADMIN)
    finally:
        del admin
    op.ok(f"Admin PIN accepted by card {serial}.")


def _unblock_with_admin(op: Operator, session: OpenPgpSession, serial: str) -> None:
    _verify_admin(op, session, serial)
    user = new_pin(op, f"New user PIN for card {serial}", min_length=MIN_USER_PIN)
    try:
        session.reset_pin(user)
    finally:
        del user


def _unblock_with_code(
    op: Operator, session: OpenPgpSession, serial: str, before: CardPinStatus
) -> None:
    if before.reset_code_tries == 0:  # not set or blocked: ask for nothing
        raise ResetCodeUnusable()
    code = op.secret(f"Resetting code for card {serial}")
    try:
        # the card checks the code and sets the new PIN in one command
        user = new_pin(op, f"New user PIN for card {serial}", min_length=MIN_USER_PIN)
        try:
            session.reset_pin_with_code(code, user)
        finally:
            del user
    finally:
        del code


def change_card_pin(
    op: Operator, cards: Cards, params: CeremonyParams, *, admin: bool = False
) -> CardPinChange:
    """Change the user PIN (or with ``admin`` the admin PIN) with the current one."""
    pw = Pw.ADMIN if admin else Pw.USER
    minimum = MIN_ADMIN_PIN if admin else MIN_USER_PIN
    changed, by = pw.label, f"current {pw.label}"
    with _run(op, params, "card-change-pin", changed, by) as run:
        with _card(run, cards, changed, by) as (session, serial, _before):
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
            data = _done(run, status, changed, by, f"{pw.label} changed")
        closed = run.finish(data)
    return CardPinChange(status, closed)


def set_reset_code(op: Operator, cards: Cards, params: CeremonyParams) -> CardPinChange:
    """Set (or replace) the card's resetting code with the admin PIN; its counter becomes 3."""
    with _run(op, params, "card-set-reset-code", RESET_CODE, ADMIN) as run:
        with _card(run, cards, RESET_CODE, ADMIN) as (session, serial, before):
            op.info(f"Card {serial}: setting the resetting code (now "
                    f"{_reset_code_tries(before.reset_code_tries)}).")  # fmt: skip
            _verify_admin(op, session, serial)
            code = new_pin(op, f"New resetting code for card {serial}",
                           min_length=MIN_RESET_CODE_LENGTH)  # fmt: skip
            try:
                session.set_reset_code(code)
            finally:
                del code
            status = read_status(session, serial)
            op.ok(f"Card {serial}: the resetting code is set "
                  f"({_tries(status.reset_code_tries)}).")  # fmt: skip
            data = _done(run, status, RESET_CODE, ADMIN, "resetting code set")
        closed = run.finish(data)
    return CardPinChange(status, closed)


def _reset_code_tries(count: int) -> str:
    return "not set or blocked" if count == 0 else _tries(count)


__all__ = [
    "CardPinChange",
    "CardPinStatus",
    "card_status",
    "change_card_pin",
    "read_status",
    "set_reset_code",
    "show_status",
    "unblock_user_pin",
]
