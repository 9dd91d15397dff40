"""Files a provisioning ceremony writes: public exports only (docs/ceremonies.md).

Per account ``<name>``:

* ``<name>.account.json``   xpub with key origin, descriptor, first addresses, pool size
* ``<name>.descriptor.txt`` the ``wpkh(...)`` descriptor (bip84)
* ``<name>.cosigner.json``  cosigner export for a multisig coordinator (bip48)
* ``<name>.ur.txt`` + ``<name>.ur.png``   the account's UR text and its QR code:
  ``ur:crypto-output`` (Bitcoin), ``ur:crypto-hdkey`` of the account xpub (Ethereum, as
  MetaMask's Keystone reader takes it), ``ur:crypto-multi-accounts`` with this account's
  keys only (Solana, as Solflare's Keystone reader takes it)
* ``<name>.descriptor.png`` QR of the descriptor

For the whole run: ``crypto-account.ur.txt``/``.png`` (all Bitcoin accounts),
``crypto-multi-accounts.ur.txt``/``.png`` (Keystone-style: the Ethereum account xpubs and the
Solana keys, each with its derivation path, for readers that sort keys by coin type such as
Keystone's SDK; single-chain wallets take the per-account file),
``provisioning.json`` (every pool key: path, CKA_ID, label, public key) and
``wallets.proposed.toml`` (``[[wallet]]`` entries; they become active only when the admin
quorum signs the registry).  Every file is written atomically and fsynced, then hashed
for the transcript.  An existing file is never replaced: :func:`check_exports_free` refuses
the run before any key is imported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from coldvault.ceremonies.outputs import refuse_existing, write_new
from coldvault.keys.pool import (
    AccountSpec,
    ProvisioningRecord,
    Template,
    ur_account,
    ur_multi_accounts,
    ur_output,
    ur_wallet_account,
)
from coldvault.records.chain import fsync_dir
from coldvault.transport.render import render_png

#: What an operator does instead of overwriting an export.
EXPORTS_INSTEAD = "choose a new or empty --export-dir (the files there are from an earlier run)."
_ACCOUNT_FILES = (".account.json", ".descriptor.txt", ".descriptor.png", ".cosigner.json",
                  ".ur.txt", ".ur.png")  # fmt: skip
_RUN_FILES = ("crypto-account.ur.txt", "crypto-account.ur.png",
              "crypto-multi-accounts.ur.txt", "crypto-multi-accounts.ur.png",
              "provisioning.json", "wallets.proposed.toml")  # fmt: skip


def export_paths(specs: Sequence[AccountSpec], directory: Path) -> list[Path]:
    """Every file :func:`write_exports` may write for ``specs``."""
    names = [s.name + suffix for s in specs for suffix in _ACCOUNT_FILES]
    return [directory / n for n in (*names, *_RUN_FILES)]


def check_exports_free(specs: Sequence[AccountSpec], directory: Path) -> None:
    """Refuse (:class:`~coldvault.ceremonies.outputs.OutputExists`) before any key is
    imported if an export of this run would replace a file in ``directory``."""
    refuse_existing(export_paths(specs, directory), EXPORTS_INSTEAD)


def _write(path: Path, data: bytes) -> Path:
    return write_new(path, data, EXPORTS_INSTEAD)


def _json(obj: object) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def write_exports(record: ProvisioningRecord, directory: Path) -> dict[str, str]:
    """Write every export file; returns ``{file name: sha256 hex}`` for the transcript."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for account in record.accounts:
        name = account.spec.name
        written.append(_write(directory / f"{name}.account.json", _json(account.to_dict())))
        if account.descriptor:
            text = account.descriptor
            written.append(_write(directory / f"{name}.descriptor.txt", (text + "\n").encode()))
            written.append(_write(directory / f"{name}.descriptor.png", render_png(text)))
        if account.spec.template is Template.BIP48_WSH:
            written.append(_write(directory / f"{name}.cosigner.json", _json(account.cosigner())))
        ur = ur_output(account) or ur_wallet_account(account)
        if ur:
            written.append(_write(directory / f"{name}.ur.txt", (ur + "\n").encode()))
            written.append(_write(directory / f"{name}.ur.png", render_png(ur.upper())))
    for kind, ur_text in (
        ("crypto-account", ur_account(record.accounts)),
        ("crypto-multi-accounts", ur_multi_accounts(record.accounts)),
    ):
        if ur_text:
            written.append(_write(directory / f"{kind}.ur.txt", (ur_text + "\n").encode()))
            written.append(_write(directory / f"{kind}.ur.png", render_png(ur_text.upper())))
    written.append(_write(directory / "provisioning.json", _json(record.to_dict())))
    written.append(
        _write(directory / "wallets.proposed.toml", record.wallet_registry_toml().encode())
    )
    fsync_dir(directory)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in written}


__all__ = ["EXPORTS_INSTEAD", "check_exports_free", "export_paths", "write_exports"]
