"""The ceremony command group: ``ceremony_scripts.cli:ceremony``.

Mounted by the top-level CLI as ``coldvault ceremony ...``; the ``transcript`` sub-group
is also exported on its own (``ceremony_scripts.cli:transcript``) for
``coldvault transcript ...``.  Errors become operator output here and only here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from coldvault.errors import ColdvaultError

EXIT_ERROR = 2


class CeremonyGroup(click.Group):
    """A click group that turns coldvault errors into one red sentence and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ColdvaultError as err:
            Console(stderr=True, highlight=False).print(f"[bold red]Error:[/] {err.message}")
            sys.exit(EXIT_ERROR)


@click.group(cls=CeremonyGroup)
def ceremony() -> None:
    """Offline key ceremonies (each writes a hash-chained transcript)."""


@click.group("transcript", cls=CeremonyGroup)
def transcript() -> None:
    """Verify or print ceremony transcripts."""


@transcript.command("verify")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--roster", "roster_path", type=click.Path(exists=True, path_type=Path),
              help="Require witnesses to be active cards of this signed roster.")  # fmt: skip
@click.option("--min-witnesses", default=0, show_default=True, type=click.IntRange(0))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def transcript_verify(path: Path, roster_path: Path | None, min_witnesses: int, as_json: bool):
    """Check the hash chain, the close entry and every witness signature."""
    from coldvault.records.transcript import verify

    roster = None
    if roster_path is not None:
        from ceremony_scripts.quorum_cards import load_roster

        roster = load_roster(roster_path)
    result = verify(path, roster=roster, min_witnesses=min_witnesses)
    if as_json:
        click.echo(json.dumps({
            "ok": True, "ceremony": result.ceremony, "ceremony_id": result.ceremony_id,
            "entries": result.entries, "status": result.status, "final_hash": result.final_hash,
            "witnesses": [w.get("holder", "") for w in result.witnesses],
        }, sort_keys=True))  # fmt: skip
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
def transcript_render(path: Path, out_path: Path | None) -> None:
    """Write a standalone printable HTML page (with QR codes) of a transcript."""
    from coldvault.records.transcript import render_html

    target = out_path or path.with_suffix(".html")
    target.write_text(render_html(path))
    click.echo(f"Wrote {target}")


def _register() -> None:
    from ceremony_scripts.appliance_init import init_appliance
    from ceremony_scripts.approve import approve_document
    from ceremony_scripts.enrol import enrol_cards
    from ceremony_scripts.revoke import replace_card, revoke_card
    from ceremony_scripts.seed import extend_pool, generate_seed, provision_cmd

    for command in (
        init_appliance, enrol_cards, generate_seed, provision_cmd, extend_pool,
        approve_document, revoke_card, replace_card,
    ):  # fmt: skip
        ceremony.add_command(command)
    ceremony.add_command(transcript)


_register()


def main() -> None:  # pragma: no cover - python -m ceremony_scripts.cli
    ceremony(prog_name="coldvault ceremony")


if __name__ == "__main__":  # pragma: no cover
    main()
