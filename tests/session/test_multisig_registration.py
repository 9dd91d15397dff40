"""Multisig wallets registered from a coordinator, on the lab.

Two 2-of-3 P2WSH wallets whose other two cosigners are made here with embit: one arrives as
a BSMS (BIP-129) record file, one as a ``crypto-output`` QR read through the QR decoder and
the assembler.  Each is checked against the HSM (the appliance's own cosigner key), put into
the wallet registry and approved by the admin cards (``approve-document``, through pcscd);
then the appliance signs a PSBT of each wallet through its card loop, a second cosigner signs
with embit and embit's finalizer completes the transaction.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from embit import bip32, ec
from embit.descriptor import Descriptor
from embit.descriptor.checksum import add_checksum
from embit.finalizer import finalize_psbt
from embit.networks import NETWORKS
from embit.psbt import PSBT, DerivationPath
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from ceremony_scripts.hardware import Pkcs11Token, ReaderCards
from coldvault.backends.qr_decode import default_decoder
from coldvault.ceremonies import ApproveDocument, RegisterWallet, approve_document, register_wallet
from coldvault.ceremonies.proposals import DocumentKind
from coldvault.keys.keystore import held_key
from coldvault.keys.pool import AccountSpec, ProvisioningRecord, Template
from coldvault.policy import AssetLimits, Policy, WalletPolicy, policy_toml
from coldvault.requests.base import Chain
from coldvault.requests.bitcoin.coordinator import (
    CosignerKeyMismatch,
    NotACosigner,
    check_own_key,
    read_multisig,
)
from coldvault.transport import render as qr_render
from coldvault.transport.registry.bitcoin import MultiKey, Output
from coldvault.transport.registry.cbor import ScriptKind
from coldvault.transport.registry.keys import HDKey, Keypath
from coldvault.transport.ur import encode_single
from hardware_emulators.demo import flow as demo
from hardware_emulators.demo import parties
from hardware_emulators.trust_setup import DEFAULT_SPECS, open_appliance_keystore
from tests.ceremony.support import INSERT, ScriptedOperator
from tests.session.console_lab import ConsoleLab, console_lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

APPROVERS = ["C0DE0001", "C0DE0002"]
ADMINS = ["C0DE0004", "C0DE0005"]
VAULTS = {"acme-vault": 0, "acme-vault-qr": 1}  # wallet -> our BIP-48 account
SPECS = (*DEFAULT_SPECS, *(AccountSpec(Template.BIP48_WSH, account=a, client="acme", name=n)
                           for n, a in VAULTS.items()))
DEST = parties.bitcoin_counterparty("acme-treasury")


def vault_policy(record: ProvisioningRecord) -> str:
    policy = demo.demo_policy(record, DEST, parties.ethereum_counterparty("globex-exchange"),
                              parties.solana_counterparty("initech-payroll"))
    vaults = {name: WalletPolicy(
        name=name, client="acme", chain=Chain.BITCOIN, network="main", kinds=frozenset({"psbt"}),
        min_approvals=2, max_fee=100_000, max_fee_rate=200.0,
        limits={"BTC": AssetLimits(per_transaction=100_000_000, per_day=300_000_000)},
        destinations=(DEST.destination(),),
    ) for name in VAULTS}  # fmt: skip
    return policy_toml(Policy(1, policy.appliance_id, policy.chains,
                              {**policy.wallets, **vaults}))


def cosigner_roots(label: str) -> list[bip32.HDKey]:
    rng = random.Random(label)  # noqa: S311 - deterministic test cosigners
    return [bip32.HDKey.from_seed(rng.randbytes(32)) for _ in range(2)]


def key_expression(root: bip32.HDKey, account: int) -> str:
    path = f"m/48h/0h/{account}h/2h"
    xpub = root.derive(path).to_public().to_base58()
    return f"[{root.my_fingerprint.hex()}{path[1:]}]{xpub}"


@dataclasses.dataclass
class Vault:
    name: str
    account: int
    descriptor: Descriptor
    others: list[bip32.HDKey]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, lab_config, softhsm_lab, pcsc_lab
            ) -> Iterator[ConsoleLab]:
    with console_lab(tmp_path_factory.mktemp("multisig"), lab_config, softhsm_lab, pcsc_lab,
                     specs=SPECS, policy_text=vault_policy) as c:
        yield c


def ours(console: ConsoleLab, name: str) -> str:
    account = console.trust.account(name)
    return str(account["key_origin"])


def descriptor_text(console: ConsoleLab, name: str) -> tuple[str, list[bip32.HDKey]]:
    others = cosigner_roots(name)
    keys = [key_expression(r, VAULTS[name]) for r in others] + [ours(console, name)]
    return add_checksum(f"wsh(sortedmulti(2,{','.join(k + '/<0;1>/*' for k in keys)}))"), others


def bsms_record(descriptor: str) -> str:
    first = Descriptor.from_string(descriptor.split("#")[0]).derive(0, branch_index=0)
    return f"BSMS 1.0\n{descriptor}\n/0/*,/1/*\n{first.address(NETWORKS['main'])}\n"


def crypto_output_frames(descriptor: str, directory: Path) -> Path:
    """The coordinator's QR: ``ur:crypto-output`` of the wallet (keys with /0/* children)."""
    desc = Descriptor.from_string(descriptor.split("#")[0])
    keys = tuple(
        HDKey.from_base58(k.key.to_base58(),
                          origin=Keypath.from_path("m" + "".join(
                              f"/{i & 0x7FFFFFFF}{'h' if i & 0x80000000 else ''}"
                              for i in k.origin.derivation), int.from_bytes(
                                  k.origin.fingerprint, "big")),
                          children=Keypath.from_path("0/*"))
        for k in desc.keys
    )
    text = encode_single(Output((ScriptKind.WSH, ScriptKind.SORTED_MULTI), MultiKey(2, keys)
                                ).to_ur())
    directory.mkdir(parents=True)
    (directory / "frame-0000.png").write_bytes(qr_render.render_png(text.upper()))
    return directory


def register(console: ConsoleLab, source: Path, name: str, version: int
             ) -> tuple[ScriptedOperator, Any]:
    """``register-wallet`` (the HSM proves our cosigner key), then ``approve-document`` of
    the proposed registry by the admin cards; the appliance then uses that registry."""
    lab, trust = console.lab, console.trust
    out = console.root / f"wallets-{version}.toml"
    pin = lab.config.cards[0].pin
    token = lab.config.appliance_token()
    op = ScriptedOperator(("^HSM user PIN", token.user_pin),
                          ("^Do the policy, every cosigner", True))
    proposed = register_wallet(
        op, RegisterWallet(actor="Olga Operator", transcript_dir=console.root / "transcripts",
                           source=source, registry=trust.wallets_path, out=out, name=name,
                           client="acme", account=VAULTS[name],
                           max_index=trust.record.pool_size - 1),
        Pkcs11Token(lab.softhsm.module_path, token.label, allow_emulated=True),
        default_decoder(),
    )
    assert proposed.version == version and proposed.out == out
    assert any("is this appliance's key" in line for line in op.said("ok"))
    admins = list(ADMINS)

    def cards(text: str) -> None:
        if INSERT.search(text):
            lab.insert(admins.pop(0), 0)
        elif text == "Remove the card.":
            lab.remove(0)

    approver = ScriptedOperator(("^Is this the wallets document", True), ("PIN", pin),
                                ("PIN", pin), on_info=cards)
    params = ApproveDocument(actor="Olga Operator", transcript_dir=console.root / "transcripts",
                             kind=DocumentKind.WALLETS, file=out,
                             rosters=(trust.roster_path,), version=version,
                             genesis_sha256=trust.roster.sha256.hex())
    approved = approve_document(approver, params, ReaderCards(approver, allow_emulated=True))
    assert approved.version == version and not admins
    trust.wallets_path = out  # the appliance's configuration now names the approved registry
    return approver, op


def multisig_psbt(descriptor: str, *, amount: int, seed: int) -> bytes:
    """A coordinator's (embit's) PSBT spending one UTXO of the wallet, with change."""
    rng = random.Random(seed)  # noqa: S311 - deterministic test data
    desc = Descriptor.from_string(descriptor.split("#")[0])
    recv, change = desc.derive(0, branch_index=0), desc.derive(0, branch_index=1)
    funding = Transaction(
        vin=[TransactionInput(rng.randbytes(32), 0, Script(b"\x00\x00"), 0xFFFFFFFE)],
        vout=[TransactionOutput(2_000_000, recv.script_pubkey())],
    )
    tx = Transaction(
        vin=[TransactionInput(funding.txid(), 0, Script(b""), 0xFFFFFFFD)],
        vout=[TransactionOutput(amount, Script.from_address(DEST.address)),
              TransactionOutput(2_000_000 - amount - 3_000, change.script_pubkey())],
    )
    psbt = PSBT(tx)
    psbt.inputs[0].non_witness_utxo = funding
    psbt.inputs[0].witness_utxo = funding.vout[0]
    for scope, derived in ((psbt.inputs[0], recv), (psbt.outputs[1], change)):
        scope.witness_script = derived.witness_script()
        scope.bip32_derivations = {
            k.get_public_key(): DerivationPath(k.origin.fingerprint, list(k.origin.derivation))
            for k in derived.keys
        }
    return psbt.serialize()


def sign_and_finalize(console: ConsoleLab, descriptor: str, other: bip32.HDKey,
                      seed: int) -> Transaction:
    out = console.run(multisig_psbt(descriptor, amount=150_000, seed=seed), "crypto-psbt",
                      APPROVERS)
    assert out.error is None, out.error
    signed = PSBT.parse(out.result.response)
    assert len(signed.inputs[0].partial_sigs) == 1  # the appliance's signature
    assert signed.sign_with(other) == 1  # the second cosigner, with embit
    tx = finalize_psbt(signed)
    assert tx is not None, "embit could not finalize the 2-of-3 spend"
    witness = tx.vin[0].witness.items
    assert len(witness) == 4 and witness[0] == b""  # CHECKMULTISIG dummy, 2 sigs, script
    script_code = signed.inputs[0].witness_script
    sighash = signed.tx.sighash_segwit(0, script_code, 2_000_000)
    sigs = signed.inputs[0].partial_sigs
    assert len(sigs) == 2
    for pub, sig in sigs.items():  # both signatures, checked by embit over BIP-143
        assert sig[-1] == 1 and pub.verify(ec.Signature.parse(sig[:-1]), sighash)
    return tx


def test_bsms_record_registers_and_signs(console: ConsoleLab) -> None:
    descriptor, others = descriptor_text(console, "acme-vault")
    record = console.root / "coordinator.bsms"
    record.write_text(bsms_record(descriptor))
    op, registrar = register(console, record, "acme-vault", version=2)
    assert "Wallet acme-vault (bsms)" in [title for title, _ in registrar.tables]
    rows = op.table_rows("Wallet acme-vault")
    shown = " ".join(rows.values())
    for root in others:  # every cosigner's fingerprint and xpub is shown to the admins
        assert root.my_fingerprint.hex() in shown
        assert root.derive("m/48h/0h/0h/2h").to_public().to_base58() in shown
    first = Descriptor.from_string(descriptor.split("#")[0]).derive(0, branch_index=0)
    assert rows["address 0/0"] == first.address(NETWORKS["main"])
    sign_and_finalize(console, descriptor, others[0], seed=1)


def test_descriptor_qr_registers_and_signs(console: ConsoleLab) -> None:
    descriptor, others = descriptor_text(console, "acme-vault-qr")
    frames = crypto_output_frames(descriptor, console.root / "coordinator-qr")
    _, registrar = register(console, frames, "acme-vault-qr", version=3)
    assert "Wallet acme-vault-qr (crypto-output)" in [title for title, _ in registrar.tables]
    assert f"Descriptor: {descriptor}" in registrar.said("info")
    sign_and_finalize(console, descriptor, others[1], seed=2)


def test_a_wallet_without_this_appliance_is_refused(console: ConsoleLab) -> None:
    roots = cosigner_roots("strangers") + cosigner_roots("more-strangers")[:1]
    keys = ",".join(key_expression(r, 0) + "/<0;1>/*" for r in roots)
    setup = read_multisig(add_checksum(f"wsh(sortedmulti(2,{keys}))"))
    with open_appliance_keystore(console.lab) as ks, pytest.raises(NotACosigner) as err:
        check_own_key(setup, master_fingerprint=console.trust.record.master_fingerprint,
                      lookup_key=lambda key_id: held_key(ks, key_id))
    assert console.trust.record.master_fingerprint.hex() in err.value.message


def test_our_fingerprint_with_a_foreign_xpub_is_refused(console: ConsoleLab) -> None:
    fp = console.trust.record.master_fingerprint.hex()
    impostor = cosigner_roots("impostor")[0]
    forged = re.sub(r"^\[[0-9a-f]{8}", f"[{fp}", key_expression(impostor, 0))
    others = [key_expression(r, 0) for r in cosigner_roots("acme-vault")]
    keys = ",".join(k + "/<0;1>/*" for k in [*others, forged])
    setup = read_multisig(add_checksum(f"wsh(sortedmulti(2,{keys}))"))
    with open_appliance_keystore(console.lab) as ks, pytest.raises(CosignerKeyMismatch):
        check_own_key(setup, master_fingerprint=console.trust.record.master_fingerprint,
                      lookup_key=lambda key_id: held_key(ks, key_id))
