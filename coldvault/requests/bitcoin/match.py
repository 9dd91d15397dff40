"""Matching a PSBT to one registered wallet: every input's key derivation, proven change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from coldvault.crypto.paths import path_to_str
from coldvault.requests.base import Chain
from coldvault.requests.bitcoin import parse as pp
from coldvault.requests.bitcoin.checks import InputSpend
from coldvault.requests.bitcoin.errors import (
    ChangeIndexOutOfRange,
    ChangeNotProven,
    ForeignInput,
    IndexOutOfRange,
    KeyNotHeld,
    MixedWallets,
    NothingToSign,
    NotWalletScript,
)
from coldvault.requests.bitcoin.maps import IN_BIP32_DERIVATION, OUT_BIP32_DERIVATION, KvMap
from coldvault.requests.bitcoin.tx import TxOut
from coldvault.requests.bitcoin.wallet import Derived, WalletScripts
from coldvault.requests.wallets import Wallet


@dataclass(frozen=True)
class OurInput:
    """An input of the chosen wallet: what it spends and our re-derived key and script."""

    spend: InputSpend
    derived: Derived


def _path(value: bytes) -> tuple[int, ...]:
    return tuple(int.from_bytes(value[j : j + 4], "little") for j in range(4, len(value), 4))


def _wallet_scripts(psbt: pp.Psbt, wallets: Mapping[str, Wallet]) -> list[WalletScripts]:
    fps = {f.value[:4].hex() for m in psbt.inputs for f in m.all(IN_BIP32_DERIVATION)}
    out = []
    for w in wallets.values():
        # a multisig account provisioned but not yet registered with its cosigners has no
        # descriptor: it signs nothing until the admins register the wallet
        if w.chain is Chain.BITCOIN and w.descriptor and w.master_fingerprint.lower() in fps:
            out.append(WalletScripts(w))
    return out


def _match_input(
    spend: InputSpend, m: KvMap, scripts: list[WalletScripts]
) -> list[tuple[WalletScripts, OurInput]]:
    i, found = spend.index, []
    for ws in scripts:
        for f in m.all(IN_BIP32_DERIVATION):
            path = _path(f.value)
            if f.value[:4] != ws.fingerprint or not ws.under_account(path):
                continue
            loc = ws.locate(path)
            if loc is None:
                raise IndexOutOfRange(
                    f"input {i}'s key path {path_to_str(path)} is not <account>/<0|1>/<index>"
                    f" of wallet {ws.wallet.name!r}",
                    input_index=i,
                )
            if loc[1] > ws.wallet.max_index:
                raise IndexOutOfRange(
                    f"input {i} uses index {loc[1]}, beyond wallet {ws.wallet.name!r}'s"
                    f" max_index {ws.wallet.max_index}",
                    input_index=i,
                )
            derived = ws.derive(*loc)
            if derived.script_pubkey != spend.script_pubkey:
                raise NotWalletScript(
                    f"input {i} claims path {path_to_str(path)} of wallet {ws.wallet.name!r},"
                    " but the wallet's descriptor derives a different script there",
                    input_index=i,
                )
            if f.key_data != derived.our_pubkey:
                raise KeyNotHeld(
                    f"input {i}'s public key for {path_to_str(path)} is not the wallet's key",
                    input_index=i,
                )
            found.append((ws, OurInput(spend, derived)))
    return found


def assign_wallet(
    psbt: pp.Psbt, spends: Sequence[InputSpend], wallets: Mapping[str, Wallet]
) -> tuple[WalletScripts, list[OurInput]]:
    scripts = _wallet_scripts(psbt, wallets)
    chosen: WalletScripts | None = None
    ours: list[OurInput] = []
    for spend in spends:
        found = _match_input(spend, psbt.inputs[spend.index], scripts)
        if not found:
            raise ForeignInput(
                f"input {spend.index} has no key derivation of a registered wallet (foreign"
                " fingerprint or account): every input must belong to the wallet being spent",
                input_index=spend.index,
            )
        if len(found) != 1:
            names = sorted({ws.wallet.name for ws, _ in found})
            raise MixedWallets(
                f"input {spend.index} matches {len(found)} key derivations of registered"
                f" wallet(s) {', '.join(names)}: the owner of the input is ambiguous",
                input_index=spend.index,
            )
        ws = found[0][0]
        if chosen is None:
            chosen = ws
        elif ws is not chosen:
            raise MixedWallets(
                f"input {spend.index} belongs to wallet {ws.wallet.name!r} but earlier inputs"
                f" to {chosen.wallet.name!r}: a request may spend from one wallet only",
                input_index=spend.index,
            )
        ours.append(found[0][1])
    if chosen is None:
        raise NothingToSign("the PSBT has no inputs, so there is nothing to sign")
    return chosen, ours


def classify_output(i: int, out: TxOut, m: KvMap, ws: WalletScripts) -> Derived | None:
    ours = [_path(f.value) for f in m.all(OUT_BIP32_DERIVATION) if f.value[:4] == ws.fingerprint]
    derived = None
    for path in (p for p in ours if ws.under_account(p)):
        loc = ws.locate(path)
        if loc is None:
            raise ChangeNotProven(
                f"output {i} claims path {path_to_str(path)}, which is not <account>/<0|1>/<index>",
                output_index=i,
            )
        if loc[1] > ws.wallet.max_index:
            raise ChangeIndexOutOfRange(
                f"output {i} claims change index {loc[1]}, beyond wallet {ws.wallet.name!r}'s"
                f" max_index {ws.wallet.max_index}",
                output_index=i,
            )
        derived = ws.derive(*loc)
        if derived.script_pubkey != out.script:
            raise ChangeNotProven(
                f"output {i} claims to be change at {path_to_str(path)}, but the wallet derives a"
                " different script there",
                output_index=i,
            )
    return derived
