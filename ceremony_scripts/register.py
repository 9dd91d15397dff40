"""``register-wallet``: a multisig wallet from a coordinator, checked against the HSM and
proposed for the admins' approval (:mod:`coldvault.ceremonies.register`)."""

from __future__ import annotations

from pathlib import Path

import click

from ceremony_scripts.hardware import Pkcs11Token
from ceremony_scripts.options import common_options, hsm_options
from ceremony_scripts.output import emit, json_option
from ceremony_scripts.ui import ConsoleOperator
from coldvault.backends.qr_decode import default_decoder
from coldvault.ceremonies import RegisterWallet, register_wallet


@click.command("register-wallet")
@common_options
@hsm_options
@click.option("--registry", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The active wallet registry (wallets.toml).")  # fmt: skip
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where the proposed registry is written for approve-document.")  # fmt: skip
@click.option("--name", required=True, help="Registry name of the wallet.")
@click.option("--client", required=True, help="Client the wallet belongs to.")
@click.option("--account", default=0, show_default=True, type=click.IntRange(0),
              help="This appliance's BIP-48 account in the wallet (m/48h/0h/ACCOUNTh/2h).")
@click.option("--max-index", default=99, show_default=True, type=click.IntRange(0, 9_999),
              help="Highest address index the appliance searches (the key-pool size - 1).")
@json_option
@click.argument("source", type=click.Path(exists=True, path_type=Path))
def register_wallet_cmd(
    operator_name: str, transcript_path: Path | None, assume_yes: bool,
    module: str, token_label: str, allow_emulated: bool, registry: Path, out: Path, name: str,
    client: str, account: int, max_index: int, source: Path,
) -> None:  # fmt: skip
    """Read a coordinator's multisig wallet (descriptor, Coldcard file, BSMS record, or QR
    images of a crypto-output / BBQr), prove this appliance's key with the HSM, and write
    the registry with the wallet for the admins to approve."""
    params = RegisterWallet(
        actor=operator_name, transcript=transcript_path, source=source, registry=registry,
        out=out, name=name, client=client, account=account, max_index=max_index,
    )  # fmt: skip
    op = ConsoleOperator(assume_yes=assume_yes)
    token = Pkcs11Token(module, token_label, allow_emulated)
    emit(register_wallet(op, params, token, default_decoder()))


__all__ = ["register_wallet_cmd"]
