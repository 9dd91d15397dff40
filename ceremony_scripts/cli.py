"""The ceremony command group: ``ceremony_scripts.cli:ceremony``.

Mounted by the top-level CLI as ``coldvault ceremony ...``; the ``transcript`` sub-group
is also exported on its own (``ceremony_scripts.cli:transcript``) for
``coldvault transcript ...``.  Each command parses its options into the ceremony's
parameters, opens the hardware and calls :mod:`coldvault.ceremonies`; results and errors
become output in :mod:`ceremony_scripts.output` only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from ceremony_scripts.options import load_roster
from ceremony_scripts.output import CeremonyGroup, emit, json_mode, json_option
from coldvault.ceremonies.outputs import refuse_existing, write_new
from coldvault.records.transcript import VerifyResult, verify


@click.group(cls=CeremonyGroup)
def ceremony() -> None:
    """Offline key ceremonies (each writes a hash-chained transcript)."""


@click.group("transcript", cls=CeremonyGroup)
def transcript() -> None:
    """Verify or print ceremony transcripts."""


@dataclass(frozen=True)
class _Verified:
    result: VerifyResult

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "ok": True, "ceremony": r.ceremony, "ceremony_id": r.ceremony_id,
            "entries": r.entries, "status": r.status, "final_hash": r.final_hash,
            "witnesses": [w.get("holder", "") for w in r.witnesses],
        }  # fmt: skip


@transcript.command("verify")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--roster", "roster_path", type=click.Path(exists=True, path_type=Path),
              help="Require witnesses to be active cards of this signed roster.")  # fmt: skip
@click.option("--min-witnesses", default=0, show_default=True, type=click.IntRange(0))
@json_option
def transcript_verify(path: Path, roster_path: Path | None, min_witnesses: int) -> None:
    """Check the hash chain, the close entry and every witness signature."""
    result = verify(path, roster=load_roster(roster_path), min_witnesses=min_witnesses)
    if json_mode():
        emit(_Verified(result))
        return
    console = Console(highlight=False)
    console.print(
        f"[green]VERIFIED[/] {path}: ceremony {result.ceremony} ({result.ceremony_id}), "
        f"{result.entries} entries, status {result.status}"
    )
    if result.final_hash:
        console.print(f"final hash {result.final_hash}")
    for w in result.witnesses:
        console.print(f"witness {w.get('holder')} card {w.get('card_serial')}: signature OK")


@transcript.command("render")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the printable record as PDF here (never overwrites).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the printable record as HTML here (never overwrites).")
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Same as --html. Without any of these: PATH with .html.")
@click.option("--roster", "roster_path", type=click.Path(exists=True, path_type=Path),
              help="Require witnesses to be active cards of this signed roster.")
@json_option
def transcript_render(path: Path, pdf_path: Path | None, html_path: Path | None,
                      out_path: Path | None, roster_path: Path | None) -> None:
    """Write the printable record of a ceremony transcript: PDF and/or HTML.

    The record shows the ceremony id and page numbers on every page, participants with
    signature lines, equipment serials, tamper-evident bags, the custodian table of a backup,
    a summary, QR codes of every public value, the verification result, and a diagonal mark
    on aborted, unfinished or unverifiable ceremonies (docs/transcripts.md)."""
    from ceremony_scripts import printing
    from coldvault.records.page import render_html
    from coldvault.records.printable import transcript_record

    if html_path is not None and out_path is not None:
        raise click.UsageError("give --html or -o/--out, not both")
    html_target = html_path or out_path
    if pdf_path is None and html_target is None:
        html_target = path.with_suffix(".html")
    record = transcript_record(path, roster=load_roster(roster_path))
    outputs: list[tuple[Path, bytes]] = []
    if pdf_path is not None:
        outputs.append((pdf_path, printing.render_pdf(record)))
    if html_target is not None:
        outputs.append((html_target, render_html(record).encode()))
    instead = "name a new file with --pdf/--html."
    refuse_existing([target for target, _ in outputs], instead)
    for target, data in outputs:
        write_new(target, data, instead)
    files = [str(t) for t, _ in outputs]
    if json_mode():
        click.echo(json.dumps({"ok": True, "files": files, "file": files[0],
                               "ceremony_id": record.ceremony_id, "status": record.status,
                               "mark": record.mark}, sort_keys=True))
    else:
        for name in files:
            click.echo(f"Wrote {name}" + (f" (marked {record.mark})" if record.mark else ""))



def _register() -> None:
    from ceremony_scripts.appliance_init import init_appliance_cmd
    from ceremony_scripts.approve import approve_document_cmd
    from ceremony_scripts.enrol import enrol_cards_cmd
    from ceremony_scripts.plans import backup
    from ceremony_scripts.register import register_wallet_cmd
    from ceremony_scripts.revoke import replace_card_cmd, revoke_card_cmd
    from ceremony_scripts.seed import extend_pool_cmd, generate_seed_cmd, provision_cmd
    from ceremony_scripts.sharding import backup_cmd, reshare_cmd

    for command in (
        init_appliance_cmd, enrol_cards_cmd, generate_seed_cmd, provision_cmd, extend_pool_cmd,
        approve_document_cmd, register_wallet_cmd, revoke_card_cmd, replace_card_cmd,
        backup_cmd,
    ):  # fmt: skip
        ceremony.add_command(command)
    ceremony.add_command(transcript)
    backup.add_command(reshare_cmd)


_register()


def main() -> None:  # pragma: no cover - python -m ceremony_scripts.cli
    ceremony(prog_name="coldvault ceremony")


if __name__ == "__main__":  # pragma: no cover
    main()
