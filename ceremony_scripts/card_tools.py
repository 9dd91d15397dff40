"""``coldvault card status|unblock|change-pin``: a holder's PIN tools at the console, so no
gpg is needed (:mod:`coldvault.ceremonies.card_pins`).

Each command waits for one card in a reader, shows the result while the card is in, then
asks for it back.  PINs are read with hidden prompts (a script types them on the prompt
lines: ``Admin PIN for card <serial>: ``, ``New user PIN for card <serial>: ``, ...).
Errors become output in :mod:`ceremony_scripts.output`: a wrong PIN is one sentence with
the tries left and exit status 2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ceremony_scripts.output import CeremonyGroup, emit, json_option

if TYPE_CHECKING:  # the card stack is imported when a command runs, not for --help
    from ceremony_scripts.hardware import ReaderCards
    from ceremony_scripts.ui import ConsoleOperator


@click.group("card", cls=CeremonyGroup)
def card() -> None:
    """Card PIN tools for holders: status, unblock the user PIN, change a PIN."""


def _card_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = json_option(func)
    return click.option("--allow-emulated", is_flag=True,
                        help="Accept virtual (test) cards: lab only.")(func)  # fmt: skip


def _tools(allow_emulated: bool) -> tuple[ConsoleOperator, ReaderCards]:
    from ceremony_scripts.hardware import ReaderCards
    from ceremony_scripts.ui import ConsoleOperator

    op = ConsoleOperator()
    return op, ReaderCards(op, allow_emulated=allow_emulated)


@card.command("status")
@_card_options
def status_cmd(allow_emulated: bool) -> None:
    """Show a card's serial, holder, PIN tries left and signature key (no PIN asked)."""
    from coldvault.ceremonies.card_pins import card_status

    op, cards = _tools(allow_emulated)
    emit(card_status(op, cards))


@card.command("unblock")
@_card_options
def unblock_cmd(allow_emulated: bool) -> None:
    """Set a new user PIN with the admin PIN; this unblocks a blocked user PIN."""
    from coldvault.ceremonies.card_pins import unblock_user_pin

    op, cards = _tools(allow_emulated)
    emit(unblock_user_pin(op, cards))


@card.command("change-pin")
@click.option("--admin", is_flag=True, help="Change the admin PIN instead of the user PIN.")
@_card_options
def change_pin_cmd(admin: bool, allow_emulated: bool) -> None:
    """Change the user PIN (or, with --admin, the admin PIN) with the current one."""
    from coldvault.ceremonies.card_pins import change_card_pin

    op, cards = _tools(allow_emulated)
    emit(change_card_pin(op, cards, admin=admin))


__all__ = ["card"]
