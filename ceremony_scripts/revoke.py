"""``revoke-card`` and ``replace-card``: the next roster version, signed by the admins of
the current one (:mod:`coldvault.ceremonies.revoke`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ceremony_scripts.hardware import ReaderCards
from ceremony_scripts.options import common_options, roster_chain_options, stack
from ceremony_scripts.output import emit, json_option
from ceremony_scripts.ui import ConsoleOperator
from coldvault.cards import CardAlgorithm
from coldvault.ceremonies import CardChange, replace_card, revoke_card

F = TypeVar("F", bound=Callable[..., Any])


def _options(func: F) -> F:
    return stack(func, [
        roster_chain_options,
        click.option("--card", "card", required=True,
                     help="Card id (manufacturer + serial, as in the roster) to revoke."),
        click.option("--policy", "policy_path",
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="The active signed policy: enough approvers must remain for its "
                     "highest tier, and its approvals must stay valid."),
        click.option("--out", "out_path", required=True,
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="The new roster file (must not exist); approvals beside it."),
        click.option("--allow-emulated", is_flag=True,
                     help="Accept virtual (test) cards: lab only."),
        json_option,
    ])  # fmt: skip


@click.command("revoke-card")
@common_options
@_options
@click.option("--reason", required=True, help="Why the card is revoked (in the transcript).")
def revoke_card_cmd(
    operator_name: str, transcript_path: Path | None, assume_yes: bool,
    roster_paths: tuple[Path, ...], genesis_sha256: str, card: str, policy_path: Path | None,
    out_path: Path, allow_emulated: bool, reason: str,
) -> None:  # fmt: skip
    """Revoke a card: the next roster version, signed by the admins of the current one."""
    params = CardChange(
        actor=operator_name, transcript=transcript_path, rosters=roster_paths, card=card,
        reason=reason, out=out_path, genesis_sha256=genesis_sha256, policy=policy_path,
    )  # fmt: skip
    op = ConsoleOperator(assume_yes=assume_yes)
    emit(revoke_card(op, params, ReaderCards(op, allow_emulated=allow_emulated)))


@click.command("replace-card")
@common_options
@_options
@click.option("--reason", default="card replaced", show_default=True,
              help="Why the card is replaced (in the transcript).")  # fmt: skip
@click.option("--algorithm", type=click.Choice([a.value for a in CardAlgorithm]), default=None,
              help="Key algorithm of the new card (default: the old card's).")  # fmt: skip
def replace_card_cmd(
    operator_name: str, transcript_path: Path | None, assume_yes: bool,
    roster_paths: tuple[Path, ...], genesis_sha256: str, card: str, policy_path: Path | None,
    out_path: Path, allow_emulated: bool, reason: str, algorithm: str | None,
) -> None:  # fmt: skip
    """Replace a card: revoke it and enrol a new card (key generated on the card) for the
    same holder, role and site, in one roster version signed by the current admins."""
    params = CardChange(
        actor=operator_name, transcript=transcript_path, rosters=roster_paths, card=card,
        reason=reason, out=out_path, genesis_sha256=genesis_sha256, policy=policy_path,
        algorithm=CardAlgorithm(algorithm) if algorithm else None,
    )  # fmt: skip
    op = ConsoleOperator(assume_yes=assume_yes)
    emit(replace_card(op, params, ReaderCards(op, allow_emulated=allow_emulated)))


__all__ = ["replace_card_cmd", "revoke_card_cmd"]
