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
from coldvault.records.transcript import VerifyResult, render_html, verify


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
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Output HTML file (default: PATH with .html).")  # fmt: skip
@json_option
def transcript_render(path: Path, out_path: Path | None) -> None:
    """Write a standalone printable HTML page (with QR codes) of a transcript."""
    target = out_path or path.with_suffix(".html")
    target.write_text(render_html(path))
    if json_mode():
        click.echo(json.dumps({"ok": True, "file": str(target)}, sort_keys=True))
    else:
        click.echo(f"Wrote {target}")


def _register() -> None:
    from ceremony_scripts.appliance_init import init_appliance_cmd
    from ceremony_scripts.approve import approve_document_cmd
    from ceremony_scripts.enrol import enrol_cards_cmd
    from ceremony_scripts.register import register_wallet_cmd
    from ceremony_scripts.revoke import replace_card_cmd, revoke_card_cmd
    from ceremony_scripts.seed import extend_pool_cmd, generate_seed_cmd, provision_cmd
    from ceremony_scripts.sharding import backup_cmd

    for command in (
        init_appliance_cmd, enrol_cards_cmd, generate_seed_cmd, provision_cmd, extend_pool_cmd,
        approve_document_cmd, register_wallet_cmd, revoke_card_cmd, replace_card_cmd,
        backup_cmd,
    ):  # fmt: skip
        ceremony.add_command(command)
    ceremony.add_command(transcript)


_register()


def main() -> None:  # pragma: no cover - python -m ceremony_scripts.cli
    ceremony(prog_name="coldvault ceremony")


if __name__ == "__main__":  # pragma: no cover
    main()
