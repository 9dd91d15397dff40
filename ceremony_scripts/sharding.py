"""``ceremony backup``: shard the seed to an approved backup plan
(:mod:`coldvault.ceremonies.sharding`), with the lab's or the site's backup HSM tokens and
the custodians' cards in a reader."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from ceremony_scripts import quorum_cards
from ceremony_scripts.hardware import ReaderCards
from ceremony_scripts.options import (
    common_options,
    load_roster,
    require_signers,
    unsigned_option,
)
from ceremony_scripts.output import emit, json_option
from ceremony_scripts.plans import collusion_option, survive_option
from ceremony_scripts.ui import ConsoleOperator
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.backends.pkcs11.shares import Pkcs11ShareKeys
from coldvault.backup.drill import named_scenario
from coldvault.backup.plan import load_plan
from coldvault.ceremonies.hardware import CardInReader
from coldvault.ceremonies.operator import Operator
from coldvault.ceremonies.resharing import ReshareBackup, reshare_backup
from coldvault.ceremonies.sharding import ShardBackup, shard_backup


class ConsoleShareDevices:
    """Backup tokens of one PKCS#11 module by label, and cards in the reader
    (implements :class:`coldvault.ceremonies.devices.ShareDevices`)."""

    def __init__(self, op: Operator, module: str, *, allow_emulated: bool) -> None:
        self._op = op
        self._module = module
        self._allow_emulated = allow_emulated

    @contextmanager
    def token(self, label: str, pin: str) -> Iterator[Pkcs11ShareKeys]:
        with Pkcs11Keystore.open(
            self._module, label, pin, allow_emulated=self._allow_emulated
        ) as keystore:
            if keystore.token_info.emulated:
                self._op.warn(f"Token {label} is EMULATED (SoftHSM): lab only.")
            yield Pkcs11ShareKeys(keystore)

    def card(self, card_id: str, prompt: str) -> CardInReader:
        return quorum_cards.card_in_reader(self._op, prompt, allow_emulated=self._allow_emulated)


def backup_token_options(func):  # type: ignore[no-untyped-def]
    func = click.option(
        "--allow-emulated", is_flag=True,
        help="Accept emulated tokens (SoftHSM) and virtual cards. Lab and CI only.",
    )(func)  # fmt: skip
    return click.option(
        "--module", envvar="COLDVAULT_PKCS11_MODULE", required=True,
        help="PKCS#11 module of the backup HSM tokens (env COLDVAULT_PKCS11_MODULE).",
    )(func)  # fmt: skip


@click.command("backup")
@common_options
@backup_token_options
@click.option("--plan", "plan_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The admin-approved backup plan (TOML).")  # fmt: skip
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="New or empty backup directory (record, progress, site envelopes).")  # fmt: skip
@click.option("--seed", "source", type=click.Choice(["slip39", "bip39", "generate"]),
              default="slip39", show_default=True,
              help="Type the seed's shares or mnemonic, or generate a seed.")  # fmt: skip
@click.option("--passphrase", "use_passphrase", is_flag=True,
              help="Protect the shares with a SLIP-39 passphrase (asked for, hidden).")  # fmt: skip
@click.option("--expect-fingerprint", default="", help="The seed's master fingerprint (hex).")
@collusion_option
@survive_option
@click.option("--witnesses", default=0, show_default=True, type=click.IntRange(0, 16))
@click.option("--roster", "roster_path", type=click.Path(exists=True, path_type=Path),
              help="Signed roster: its admin quorum signs the record; witnesses "
                   "must be active cards in it.")  # fmt: skip
@unsigned_option
@json_option
def backup_cmd(
    operator_name: str, transcript_path: Path | None, assume_yes: bool, module: str,
    allow_emulated: bool, plan_path: Path, out: Path, source: str, use_passphrase: bool,
    expect_fingerprint: str, collusion: int, survive: int, witnesses: int,
    roster_path: Path | None, unsigned: bool,
) -> None:  # fmt: skip
    """Shard the seed to a backup plan: seal each share to its token or card, read every
    share back, write the public backup record (signed by the admin quorum of --roster)."""
    require_signers("backup record", given=roster_path is not None, unsigned=unsigned)
    params = ShardBackup(
        actor=operator_name, transcript=transcript_path, plan=load_plan(plan_path), out=out,
        source=source, use_passphrase=use_passphrase, expect_fingerprint=expect_fingerprint,
        collusion=collusion, survive=survive, witnesses=witnesses,
        roster=load_roster(roster_path),
    )  # fmt: skip
    op = ConsoleOperator(assume_yes=assume_yes)
    devices = ConsoleShareDevices(op, module, allow_emulated=allow_emulated)
    emit(shard_backup(op, params, devices, ReaderCards(op, allow_emulated=allow_emulated)))


@click.command("reshare")
@common_options
@backup_token_options
@click.option("--old-plan", "old_plan_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The plan of the backup being replaced.")  # fmt: skip
@click.option("--old", "old_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The backup directory being replaced (its record and envelopes).")  # fmt: skip
@click.option("--lost", required=True,
              help="Who or what is lost or departed: 'FFFFC0DE0002 lost', 'site-b lost'.")
@click.option("--plan", "plan_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The new admin-approved plan (its own id).")  # fmt: skip
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="New or empty directory for the new share set.")  # fmt: skip
@click.option("--passphrase", "use_passphrase", is_flag=True,
              help="Protect the new shares with a SLIP-39 passphrase (asked for, hidden).")
@collusion_option
@survive_option
@click.option("--witnesses", default=0, show_default=True, type=click.IntRange(0, 16))
@click.option("--roster", "roster_path", required=True,
              type=click.Path(exists=True, path_type=Path),
              help="Signed roster: its admin quorum approves and signs.")  # fmt: skip
@json_option
def reshare_cmd(
    operator_name: str, transcript_path: Path | None, assume_yes: bool, module: str,
    allow_emulated: bool, old_plan_path: Path, old_dir: Path, lost: str, plan_path: Path,
    out: Path, use_passphrase: bool, collusion: int, survive: int, witnesses: int,
    roster_path: Path,
) -> None:  # fmt: skip
    """Replace a lost or departed custodian's share: a new share set of the same seed to
    the new plan, approved by the admin quorum; the old set is retired and wiped where
    reachable."""
    old_plan = load_plan(old_plan_path)
    params = ReshareBackup(
        actor=operator_name, transcript=transcript_path, plan=load_plan(plan_path), out=out,
        use_passphrase=use_passphrase, collusion=collusion, survive=survive,
        witnesses=witnesses, roster=load_roster(roster_path), old_plan=old_plan,
        old_dir=old_dir, lost=named_scenario(old_plan, lost),
    )  # fmt: skip
    op = ConsoleOperator(assume_yes=assume_yes)
    devices = ConsoleShareDevices(op, module, allow_emulated=allow_emulated)
    emit(reshare_backup(op, params, devices, ReaderCards(op, allow_emulated=allow_emulated)))


__all__ = ["ConsoleShareDevices", "backup_cmd", "backup_token_options", "reshare_cmd"]
