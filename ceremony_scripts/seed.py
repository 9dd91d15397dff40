"""``generate-seed``, ``provision`` and ``extend-pool``: the seed and key-pool ceremonies
(:mod:`coldvault.ceremonies.seed`, :mod:`coldvault.ceremonies.provision`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ceremony_scripts.hardware import Pkcs11Token, ReaderCards
from ceremony_scripts.options import (
    common_options,
    hsm_options,
    load_roster,
    pool_options,
    pool_params,
    stack,
)
from ceremony_scripts.output import emit, json_option
from ceremony_scripts.ui import ConsoleOperator
from coldvault.ceremonies import GenerateSeed, RecoverPool, generate_seed
from coldvault.ceremonies.backup import BackupFormat, BackupPlan
from coldvault.ceremonies.provision import extend_pool, provision_from_backup

FORMATS = [f.value for f in BackupFormat]
F = TypeVar("F", bound=Callable[..., Any])


@click.command("generate-seed")
@common_options
@hsm_options
@pool_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="slip39",
              show_default=True, help="Backup format.")  # fmt: skip
@click.option("--threshold", default=2, show_default=True, type=click.IntRange(1, 16))
@click.option("--shares", default=3, show_default=True, type=click.IntRange(1, 16))
@click.option("--paper-backup", is_flag=True, help="Show the words for writing on paper.")
@click.option("--custodian", "custodians", multiple=True, metavar="NAME",
              help="Who takes each paper share, in share order (once per share); recorded "
                   "in the transcript's custodian table.")  # fmt: skip
@click.option("--no-backup", is_flag=True, help="Accept a seed with no backup (lab only).")
@click.option("--provision/--no-provision", "do_provision", default=True, show_default=True)
@click.option("--witnesses", default=0, show_default=True, type=click.IntRange(0, 16),
              help="Witness cards that sign the closed transcript.")  # fmt: skip
@click.option("--roster", "roster_path", type=click.Path(exists=True, path_type=Path),
              help="Signed roster; witnesses must be active cards in it.")  # fmt: skip
@json_option
def generate_seed_cmd(
    operator_name: str, transcript_path: Path | None, assume_yes: bool,
    module: str, token_label: str, allow_emulated: bool,
    templates: tuple[str, ...], account: int, network: str, eth_chain_id: int,
    sol_cluster: str, client: str, pool_size: int,
    export_dir: Path, fmt: str, threshold: int, shares: int, paper_backup: bool,
    custodians: tuple[str, ...], no_backup: bool, do_provision: bool, witnesses: int,
    roster_path: Path | None,
) -> None:  # fmt: skip
    """Generate a seed from HSM + OS + dice entropy, back it up, provision the key pool."""
    params = GenerateSeed(
        actor=operator_name, transcript=transcript_path,
        backup=BackupPlan(BackupFormat(fmt), threshold, shares, paper_backup, custodians),
        no_backup=no_backup, provision=do_provision,
        pool=pool_params(templates, account, network, client, pool_size, export_dir,
                         eth_chain_id, sol_cluster),
        witnesses=witnesses, roster=load_roster(roster_path),
    )  # fmt: skip
    op = ConsoleOperator(assume_yes=assume_yes)
    token = Pkcs11Token(module, token_label, allow_emulated)
    emit(generate_seed(op, params, token, ReaderCards(op, allow_emulated=allow_emulated)))


def _recovery_options(func: F) -> F:
    return stack(func, [
        click.option("--from", "fmt", type=click.Choice(FORMATS), default="slip39",
                     show_default=True, help="Backup format to type in."),
        click.option("--expect-fingerprint", default="", help="Master fingerprint (hex)."),
        click.option("--witnesses", default=0, show_default=True, type=click.IntRange(0, 16)),
        json_option,
    ])  # fmt: skip


def _recover_params(
    operator_name: str, transcript_path: Path | None, templates: tuple[str, ...],
    account: int, network: str, client: str, pool_size: int, export_dir: Path, fmt: str,
    expect_fingerprint: str, witnesses: int, roster_path: Path | None, eth_chain_id: int,
    sol_cluster: str,
) -> RecoverPool:  # fmt: skip
    return RecoverPool(
        actor=operator_name, transcript=transcript_path,
        pool=pool_params(templates, account, network, client, pool_size, export_dir,
                         eth_chain_id, sol_cluster),
        backup=BackupFormat(fmt), expect_fingerprint=expect_fingerprint,
        witnesses=witnesses, roster=load_roster(roster_path),
    )  # fmt: skip


@click.command("provision")
@common_options
@hsm_options
@pool_options
@_recovery_options
@click.option("--roster", "roster_path", type=click.Path(exists=True, path_type=Path),
              help="Signed roster; witnesses must be active cards in it.")  # fmt: skip
def provision_cmd(
    operator_name: str, transcript_path: Path | None, assume_yes: bool,
    module: str, token_label: str, allow_emulated: bool,
    templates: tuple[str, ...], account: int, network: str, eth_chain_id: int,
    sol_cluster: str, client: str, pool_size: int,
    export_dir: Path, fmt: str, expect_fingerprint: str, witnesses: int,
    roster_path: Path | None,
) -> None:  # fmt: skip
    """Rebuild the seed from its backup and import the key pool (e.g. a new appliance HSM)."""
    params = _recover_params(
        operator_name, transcript_path, templates, account, network, client, pool_size,
        export_dir, fmt, expect_fingerprint, witnesses, roster_path, eth_chain_id, sol_cluster,
    )  # fmt: skip
    op = ConsoleOperator(assume_yes=assume_yes)
    token = Pkcs11Token(module, token_label, allow_emulated)
    emit(provision_from_backup(op, params, token, ReaderCards(op, allow_emulated=allow_emulated)))


@click.command("extend-pool")
@common_options
@hsm_options
@pool_options
@_recovery_options
@click.option("--roster", "roster_path", type=click.Path(exists=True, path_type=Path),
              required=True, help="Signed roster (roster.json + .approvals.json).")  # fmt: skip
def extend_pool_cmd(
    operator_name: str, transcript_path: Path | None, assume_yes: bool,
    module: str, token_label: str, allow_emulated: bool,
    templates: tuple[str, ...], account: int, network: str, eth_chain_id: int,
    sol_cluster: str, client: str, pool_size: int,
    export_dir: Path, fmt: str, expect_fingerprint: str, witnesses: int, roster_path: Path,
) -> None:  # fmt: skip
    """Grow the key pool to --pool-size (admin quorum; seed rebuilt from its shares)."""
    params = _recover_params(
        operator_name, transcript_path, templates, account, network, client, pool_size,
        export_dir, fmt, expect_fingerprint, witnesses, roster_path, eth_chain_id, sol_cluster,
    )  # fmt: skip
    op = ConsoleOperator(assume_yes=assume_yes)
    token = Pkcs11Token(module, token_label, allow_emulated)
    emit(extend_pool(op, params, token, ReaderCards(op, allow_emulated=allow_emulated)))


__all__ = ["extend_pool_cmd", "generate_seed_cmd", "provision_cmd"]
