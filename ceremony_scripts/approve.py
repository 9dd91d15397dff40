"""``approve-document``: the admin quorum approves a policy, a wallet registry or a roster
successor with their cards (:mod:`coldvault.ceremonies.approve`)."""

from __future__ import annotations

from pathlib import Path

import click

from ceremony_scripts.hardware import ReaderCards
from ceremony_scripts.options import common_options, roster_chain_options
from ceremony_scripts.output import emit, json_option
from ceremony_scripts.ui import ConsoleOperator
from coldvault.ceremonies import ApproveDocument, approve_document
from coldvault.ceremonies.proposals import DocumentKind


@click.command("approve-document")
@common_options
@click.option("--kind", required=True, type=click.Choice([k.value for k in DocumentKind]),
              help="What FILE is: a policy, a wallet registry or a roster successor.")  # fmt: skip
@click.option("--version", "version", type=click.IntRange(1), default=None,
              help="Version being approved. Required for wallets (the file has none); "
              "for a policy or roster it must equal the version inside the file.")  # fmt: skip
@click.option(
    "--appliance-id",
    default=None,
    help="Appliance the document is for (default and must be: the roster's).",
)
@roster_chain_options
@click.option("--current", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Policy only: the approved policy FILE replaces; the "
              "address-book entries added, removed or changed are shown.")  # fmt: skip
@click.option("--allow-emulated", is_flag=True, help="Accept virtual (test) cards: lab only.")
@json_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def approve_document_cmd(
    operator_name: str, transcript_path: Path | None, assume_yes: bool, kind: str,
    version: int | None, appliance_id: str | None, roster_paths: tuple[Path, ...],
    genesis_sha256: str, current: Path | None, allow_emulated: bool, file: Path,
) -> None:  # fmt: skip
    """Admins approve a policy, wallet registry or roster successor with their cards;
    writes FILE.approvals.json."""
    params = ApproveDocument(
        actor=operator_name, transcript=transcript_path, kind=DocumentKind(kind), file=file,
        rosters=roster_paths, version=version, appliance_id=appliance_id,
        genesis_sha256=genesis_sha256, current=current,
    )  # fmt: skip
    op = ConsoleOperator(assume_yes=assume_yes)
    emit(approve_document(op, params, ReaderCards(op, allow_emulated=allow_emulated)))


__all__ = ["approve_document_cmd"]
