"""``init-appliance``: the HSM token's PINs and the appliance's own keys
(:mod:`coldvault.ceremonies.appliance`)."""

from __future__ import annotations

from pathlib import Path

import click

from ceremony_scripts.hardware import Pkcs11Token, ReaderCards
from ceremony_scripts.options import common_options, hsm_options, load_roster
from ceremony_scripts.output import emit, json_option
from ceremony_scripts.ui import ConsoleOperator
from coldvault.ceremonies import InitAppliance, init_appliance


@click.command("init-appliance")
@common_options
@hsm_options
@click.option("--destroy-existing", is_flag=True,
              help="Destroy every key on a live token (needs the admin quorum).")  # fmt: skip
@click.option("--roster", "roster_path", type=click.Path(exists=True, path_type=Path),
              help="Signed roster whose admins approve --destroy-existing.")  # fmt: skip
@click.option("--export-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("exports"), show_default=True)  # fmt: skip
@json_option
def init_appliance_cmd(
    operator_name: str, transcript_path: Path | None, assume_yes: bool,
    module: str, token_label: str, allow_emulated: bool,
    destroy_existing: bool, roster_path: Path | None, export_dir: Path,
) -> None:  # fmt: skip
    """Set the appliance HSM's PINs and create its identity and audit keys."""
    params = InitAppliance(
        actor=operator_name, transcript=transcript_path, destroy_existing=destroy_existing,
        roster=load_roster(roster_path), export_dir=export_dir,
    )  # fmt: skip
    op = ConsoleOperator(assume_yes=assume_yes)
    token = Pkcs11Token(module, token_label, allow_emulated)
    emit(init_appliance(op, params, token, ReaderCards(op, allow_emulated=allow_emulated)))


__all__ = ["init_appliance_cmd"]
