"""``enrol-cards``: personalise OpenPGP cards and write the admin-signed roster
(:mod:`coldvault.ceremonies.enrol`)."""

from __future__ import annotations

from pathlib import Path

import click

from ceremony_scripts.hardware import ReaderCards
from ceremony_scripts.options import common_options
from ceremony_scripts.output import emit, json_option
from ceremony_scripts.ui import ConsoleOperator
from coldvault.cards import CardAlgorithm
from coldvault.ceremonies import EnrolCards, enrol_cards

ALGORITHMS = [a.value for a in CardAlgorithm]


@click.command("enrol-cards")
@common_options
@click.option("--cards", "count", type=click.IntRange(1, 64), required=True,
              help="Number of cards to enrol.")  # fmt: skip
@click.option("--appliance-id", required=True, help="Appliance the roster belongs to.")
@click.option("--admin-threshold", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--algorithm", type=click.Choice(ALGORITHMS), default="ed25519",
              show_default=True)  # fmt: skip
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("roster.json"), show_default=True)  # fmt: skip
@click.option("--allow-emulated", is_flag=True, help="Accept virtual (test) cards: lab only.")
@json_option
def enrol_cards_cmd(
    operator_name: str, transcript_path: Path | None, assume_yes: bool, count: int,
    appliance_id: str, admin_threshold: int, algorithm: str, out_path: Path,
    allow_emulated: bool,
) -> None:  # fmt: skip
    """Enrol OpenPGP cards (keys generated on card) and write the admin-signed roster."""
    params = EnrolCards(
        actor=operator_name, transcript=transcript_path, count=count,
        appliance_id=appliance_id, admin_threshold=admin_threshold,
        algorithm=CardAlgorithm(algorithm), out=out_path,
    )  # fmt: skip
    op = ConsoleOperator(assume_yes=assume_yes)
    emit(enrol_cards(op, params, ReaderCards(op, allow_emulated=allow_emulated)))


__all__ = ["enrol_cards_cmd"]
