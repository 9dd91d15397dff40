"""The share targets a backup ceremony or a drill reaches through its front end, and the
PIN prompts for them.

The front end hands in a :class:`ShareDevices`: a backup HSM token opened by label with a
user PIN (``Pkcs11ShareKeys`` over ``Pkcs11Keystore``), and a custodian's card in a reader.
The ceremonies ask for every PIN through the :class:`~coldvault.ceremonies.operator.Operator`
(hidden), each custodian typing their own, and never keep it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Protocol

from coldvault.backup.envelope import KeyAgreement
from coldvault.backup.errors import WrongShareTarget
from coldvault.backup.plan import Target, TargetKind
from coldvault.backup.targets import CardTarget, HsmShareKeyAdmin, HsmTarget
from coldvault.cards.openpgp import OpenPgpSession, PinBlocked, Pw, WrongPin
from coldvault.ceremonies.hardware import CardInReader
from coldvault.ceremonies.operator import Operator
from coldvault.errors import AuthError

#: PIN attempts per device before the ceremony gives up on it (a card blocks at 3).
PIN_ATTEMPTS = 3


class BackupToken(HsmShareKeyAdmin, Protocol):
    """A logged-in backup HSM token: share keys, and its random number generator."""

    def random(self, length: int) -> bytes: ...

    def delete(self, key_id: bytes) -> None:
        """Destroy a share key (a retired set's, after a re-sharing)."""
        ...


class ShareDevices(Protocol):
    """Backup HSM tokens and custodian cards, as the front end reaches them."""

    def token(self, label: str, pin: str) -> AbstractContextManager[BackupToken]:
        """Log in to the token ``label`` with its user PIN (raises the token's wrong-PIN
        error, which the ceremony shows and asks again)."""
        ...

    def card(self, card_id: str, prompt: str) -> CardInReader:
        """Show ``prompt`` and yield ``(session, card id)`` of the card put in the reader."""
        ...


def token_pin_question(target: Target) -> str:
    return f"User PIN of backup token {target.label} ({target.id} at {target.site})"


def card_pin_question(card_id: str, pw: Pw) -> str:
    which = "admin PIN" if pw is Pw.ADMIN else "user PIN"
    return f"Card {card_id}: {which}"


def card_prompt(target: Target, purpose: str) -> str:
    return (
        f"Insert the custodian's card for {purpose}: {target.card} ({target.id} at {target.site})."
    )


def verify_card_pin(op: Operator, session: OpenPgpSession, card_id: str, pw: Pw) -> None:
    """The card holder types the PIN (hidden) until the card accepts it.  A blocked PIN,
    or a refusal that leaves one try or none, raises the card's error: the ceremony never
    spends a card's last try by asking again."""
    for attempt in range(1, PIN_ATTEMPTS + 1):
        pin = op.secret(card_pin_question(card_id, pw))
        try:
            session.verify_pin(pin, pw)
            return
        except WrongPin as exc:
            # the last try is never spent by a retry loop: the holder decides about it
            if attempt == PIN_ATTEMPTS or exc.tries_left <= 1:
                raise
            op.warn(exc.message)
        except PinBlocked:
            raise
        finally:
            del pin


def check_card(target: Target, card_id: str) -> None:
    """Refuse another card than the target's before its PIN is asked for."""
    if card_id != target.card:
        raise WrongShareTarget(target.id, f"card {target.card}", f"card {card_id}")


@contextmanager
def open_token(op: Operator, devices: ShareDevices, target: Target) -> Iterator[BackupToken]:
    """The target's token, logged in with the PIN its operator types (three attempts)."""
    with ExitStack() as stack:
        for attempt in range(1, PIN_ATTEMPTS + 1):
            pin = op.secret(token_pin_question(target))
            try:
                keys = stack.enter_context(devices.token(target.label, pin))
            except AuthError as exc:
                if attempt == PIN_ATTEMPTS:
                    raise
                op.warn(exc.message)
                continue
            finally:
                del pin
            yield keys
            return


@contextmanager
def open_target(
    op: Operator, devices: ShareDevices, plan_id: str, target: Target, purpose: str
) -> Iterator[KeyAgreement]:
    """A token or card target ready to open its share: token logged in, or card user PIN
    verified by its holder."""
    if target.kind is TargetKind.HSM:
        with open_token(op, devices, target) as keys:
            yield HsmTarget.for_target(keys, plan_id, target)
        return
    if target.kind is not TargetKind.CARD:
        raise ValueError(f"target {target.id!r} has no device")
    with devices.card(target.card, card_prompt(target, purpose)) as (session, card_id):
        check_card(target, card_id)
        verify_card_pin(op, session, target.card, Pw.USER)
        yield CardTarget(session)


__all__ = [
    "PIN_ATTEMPTS",
    "BackupToken",
    "ShareDevices",
    "card_pin_question",
    "card_prompt",
    "check_card",
    "open_target",
    "open_token",
    "token_pin_question",
    "verify_card_pin",
]
