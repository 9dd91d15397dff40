"""``coldvault card status|unblock|change-pin|set-reset-code``: a holder's PIN tools at the
console, so no gpg is needed (:mod:`coldvault.ceremonies.card_pins`).

Each command waits for one card in a reader, shows the result while the card is in, then
asks for it back.  PINs are read with hidden prompts (a script types them on the prompt
lines: ``Admin PIN for card <serial>: ``, ``New user PIN for card <serial>: ``, ...).
Errors become output in :mod:`ceremony_scripts.output`: a wrong PIN is one sentence with
the tries left and exit status 2.  Every command that changes the card writes a
transcript (``--operator`` names who ran it; ``--transcript`` or ``--transcript-dir`` say
where), like the ceremonies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ceremony_scripts.output import CeremonyGroup, emit, json_option

if TYPE_CHECKING:  # the card stack is imported when a command runs, not for --help
    from ceremony_scripts.hardware import ReaderCards
    from ceremony_scripts.ui import ConsoleOperator
    from coldvault.ceremonies.params import CeremonyParams


@click.group("card", cls=CeremonyGroup)
def card() -> None:
    """Card PIN tools for holders: status, unblock the user PIN, change a PIN, set the
    resetting code."""


def _card_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = json_option(func)
    return click.option("--allow-emulated", is_flag=True,
                        help="Accept virtual (test) cards: lab only.")(func)  # fmt: skip


def _record_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--operator``, ``--transcript``, ``--transcript-dir``: the change's transcript."""
    func = click.option("--transcript-dir", type=click.Path(file_okay=False, path_type=Path),
                        default=Path("transcripts"), show_default=True,
                        help="Directory of the transcript "
                        "(<command>-<time>-<id>.jsonl).")(func)  # fmt: skip
    func = click.option("--transcript", "transcript_path",
                        type=click.Path(dir_okay=False, path_type=Path),
                        help="Transcript file to create (never overwritten).")(func)  # fmt: skip
    return click.option("--operator", "operator_name", required=True,
                        help="Name of the person running the change.")(func)  # fmt: skip


def _params(
    operator_name: str, transcript_path: Path | None, transcript_dir: Path
) -> CeremonyParams:
    from coldvault.ceremonies.params import CeremonyParams

    return CeremonyParams(
        actor=operator_name, transcript=transcript_path, transcript_dir=transcript_dir
    )


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
@click.option(
    "--reset-code",
    is_flag=True,
    help="Authorise with the card's resetting code instead of the admin PIN.",
)
@_record_options
@_card_options
def unblock_cmd(reset_code: bool, operator_name: str, transcript_path: Path | None,
                transcript_dir: Path, allow_emulated: bool) -> None:  # fmt: skip
    """Set a new user PIN, which unblocks it: with the admin PIN, or with --reset-code."""
    from coldvault.ceremonies.card_pins import unblock_user_pin

    params = _params(operator_name, transcript_path, transcript_dir)
    op, cards = _tools(allow_emulated)
    emit(unblock_user_pin(op, cards, params, reset_code=reset_code))


@card.command("change-pin")
@click.option("--admin", is_flag=True, help="Change the admin PIN instead of the user PIN.")
@_record_options
@_card_options
def change_pin_cmd(admin: bool, operator_name: str, transcript_path: Path | None,
                   transcript_dir: Path, allow_emulated: bool) -> None:  # fmt: skip
    """Change the user PIN (or, with --admin, the admin PIN) with the current one."""
    from coldvault.ceremonies.card_pins import change_card_pin

    params = _params(operator_name, transcript_path, transcript_dir)
    op, cards = _tools(allow_emulated)
    emit(change_card_pin(op, cards, params, admin=admin))


@card.command("set-reset-code")
@_record_options
@_card_options
def set_reset_code_cmd(operator_name: str, transcript_path: Path | None,
                       transcript_dir: Path, allow_emulated: bool) -> None:  # fmt: skip
    """Set the card's resetting code with the admin PIN (the holder can then unblock the
    user PIN with it: coldvault card unblock --reset-code)."""
    from coldvault.ceremonies.card_pins import set_reset_code

    params = _params(operator_name, transcript_path, transcript_dir)
    op, cards = _tools(allow_emulated)
    emit(set_reset_code(op, cards, params))


__all__ = ["card"]
