"""Multisig wallets registered from a coordinator, on the lab.

2-of-3 P2WSH wallets whose other two cosigners are made here with embit arrive in every
coordinator format: a BSMS (BIP-129) record file, a ``crypto-output`` QR, BBQr QR images of
a BSMS record and of a Coldcard multisig file, a Coldcard file, a BIP-380 descriptor file.
Each is checked against the HSM (the appliance's own cosigner key), put into the wallet
registry and approved by the admin cards (``approve-document``, through pcscd); then the
appliance signs a PSBT of each wallet through its card loop, a second cosigner signs with
embit and embit's finalizer completes the transaction.  The last four formats, and the bad
inputs (a BBQr set with a part missing, a Coldcard file without this appliance, a descriptor
with a wrong or no checksum), go through ``coldvault ceremony register-wallet`` itself on a
terminal (the pexpect driver): its prompts, its JSON result and its exit status.
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

from ceremony_scripts.hardware import Pkcs11Token
from coldvault.backends.qr_decode import default_decoder
from coldvault.ceremonies import RegisterWallet, register_wallet
from coldvault.ceremonies.proposals import DocumentKind, previous_approval
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
from coldvault.transport.formats import TransportFormat
from coldvault.transport.registry.bitcoin import MultiKey, Output
from coldvault.transport.registry.cbor import ScriptKind
from coldvault.transport.registry.keys import HDKey, Keypath
from coldvault.transport.reply import encode_reply
from coldvault.transport.ur import encode_single
from hardware_emulators.ceremony_driver import answer, finish, json_document, spawn
from hardware_emulators.demo import flow as demo
from hardware_emulators.demo import parties
from hardware_emulators.trust_setup import DEFAULT_SPECS, open_appliance_keystore
from tests.ceremony.support import ScriptedOperator, approve_with_admin_cards
from tests.session.console_lab import ConsoleLab, console_lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

APPROVERS = ["C0DE0001", "C0DE0002"]
#: coordinator formats registered through the ceremony's terminal front end
FORMATS = ("bbqr-bsms", "bbqr-coldcard", "coldcard-file", "descriptor-file")
VAULTS = {"acme-vault": 0, "acme-vault-qr": 1,  # wallet -> our BIP-48 account
          **{f"acme-{fmt}": account for account, fmt in enumerate(FORMATS, start=2)}}
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
                     specs=SPECS, policy_text=vault_policy, pool_size=2) as c:
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


def next_version(console: ConsoleLab) -> int:
    """The version the next approved registry gets (the active one's plus one)."""
    previous = previous_approval(console.trust.wallets_path, "wallets")
    return (previous.version if previous else 0) + 1


def register(console: ConsoleLab, source: Path, name: str
             ) -> tuple[ScriptedOperator, ScriptedOperator]:
    """``register-wallet`` (the HSM proves our cosigner key), then ``approve-document`` of
    the proposed registry by the admin cards; the appliance then uses that registry."""
    lab, trust = console.lab, console.trust
    version = next_version(console)
    out = console.root / f"wallets-{version}.toml"
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
    return approve(console, out, version), op


def approve(console: ConsoleLab, out: Path, version: int) -> ScriptedOperator:
    """The admin cards approve the proposed registry ``out``; the appliance then uses it."""
    approver = approve_with_admin_cards(console.lab, console.trust, DocumentKind.WALLETS, out,
                                        version=version,
                                        transcripts=console.root / "transcripts")
    console.trust.wallets_path = out  # the appliance's configuration now names it
    return approver


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
    op, registrar = register(console, record, "acme-vault")
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
    _, registrar = register(console, frames, "acme-vault-qr")
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


# --------------------------------------------------------------------------- the terminal
def coldcard_file(descriptor: str, name: str) -> str:
    """The wallet as a Coldcard multisig setup file (a Derivation line before each key)."""
    lines = ["# Coldcard Multisig setup file (exported by a coordinator)", f"Name: {name}",
             "Policy: 2 of 3", "Format: P2WSH", ""]  # fmt: skip
    for key in Descriptor.from_string(descriptor.split("#")[0]).keys:
        path = "m" + "".join(f"/{i & 0x7FFFFFFF}{chr(39) if i & 0x80000000 else ''}"
                             for i in key.origin.derivation)  # fmt: skip
        lines += [f"Derivation: {path}", f"{key.origin.fingerprint.hex().upper()}: "
                  f"{key.key.to_base58()}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def bbqr_frames(text: str, directory: Path, *, drop: int | None = None) -> Path:
    """The coordinator's animated BBQr of a wallet text, one PNG per part (part ``drop``
    never shown)."""
    frames = encode_reply(TransportFormat.BBQR, "text", text.encode(),
                          max_fragment_len=120).frames(None)  # fmt: skip
    assert len(frames) > 2 and all(f.startswith("B$") for f in frames)
    directory.mkdir(parents=True)
    for i, frame in enumerate(frames):
        if i != drop:
            (directory / f"frame-{i:04d}.png").write_bytes(qr_render.render_png(frame))
    return directory


def coordinator_export(fmt: str, descriptor: str, name: str, directory: Path) -> Path:
    """What the coordinator hands over in format ``fmt`` (see FORMATS)."""
    match fmt:
        case "bbqr-bsms":
            return bbqr_frames(bsms_record(descriptor), directory)
        case "bbqr-coldcard":
            return bbqr_frames(coldcard_file(descriptor, name), directory)
        case "coldcard-file":
            path = directory.with_suffix(".txt")
            path.write_text(coldcard_file(descriptor, name))
            return path
        case "descriptor-file":
            path = directory.with_suffix(".txt")
            path.write_text(descriptor + "\n")
            return path
    raise ValueError(fmt)


@dataclasses.dataclass
class Terminal:
    status: int
    result: dict[str, Any]
    screen: str
    out: Path


def register_on_terminal(console: ConsoleLab, source: Path, name: str, *, hsm: bool = True,
                         confirm: bool = True) -> Terminal:  # fmt: skip
    """``coldvault ceremony register-wallet --json SOURCE`` on a pty: the HSM user PIN typed
    at its prompt (when ``hsm``), ``yes`` at the confirmation (when ``confirm``)."""
    lab, trust = console.lab, console.trust
    token = lab.config.appliance_token()
    work = console.root / "terminal" / source.stem  # one run per coordinator export
    out = console.root / f"wallets-{source.stem}.toml"
    stdout, log = work / "stdout.json", work / "console.log"
    child = spawn([
        "register-wallet", "--operator", "Olga Operator", "--allow-emulated",
        "--transcript", str(work / "register-wallet.jsonl"),
        "--module", str(lab.softhsm.module_path), "--token", token.label,
        "--registry", str(trust.wallets_path), "--out", str(out), "--name", name,
        "--client", "acme", "--account", str(VAULTS.get(name, 0)),
        "--max-index", str(trust.record.pool_size - 1), "--json", str(source),
    ], lab.softhsm.env, log, stdout=stdout)  # fmt: skip
    if hsm:
        answer(child, [(r"HSM user PIN for token \S+ \(check this appliance's cosigner key\)",
                        token.user_pin)])  # fmt: skip
    if confirm:
        answer(child, [(r"Do the policy, every cosigner and the first addresses match the "
                        r"coordinator\? Type yes to continue", "yes")])  # fmt: skip
    status = finish(child)
    return Terminal(status, json_document(stdout.read_text(), "register-wallet"),
                    log.read_text(), out)


SHOWN_AS = {"bbqr-bsms": "bsms", "bbqr-coldcard": "coldcard", "coldcard-file": "coldcard",
            "descriptor-file": "descriptor"}  # fmt: skip


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_coordinator_format_registers_on_the_terminal_and_signs(
    console: ConsoleLab, fmt: str
) -> None:
    name = f"acme-{fmt}"
    descriptor, others = descriptor_text(console, name)
    source = coordinator_export(fmt, descriptor, name, console.root / f"coordinator-{fmt}")
    version = next_version(console)
    done = register_on_terminal(console, source, name)
    assert done.status == 0, done.screen
    assert done.result["ok"] is True and done.result["version"] == version
    assert done.result["descriptor"] == descriptor and len(done.result["cosigners"]) == 3
    screen = " ".join(done.screen.split())  # table cells may wrap on the terminal
    assert f"Wallet {name} ({SHOWN_AS[fmt]})" in screen
    for root in others:  # every cosigner's fingerprint and xpub is on the screen
        assert root.my_fingerprint.hex() in screen
        assert root.derive(f"m/48h/0h/{VAULTS[name]}h/2h").to_public().to_base58() in screen
    first = Descriptor.from_string(descriptor.split("#")[0]).derive(0, branch_index=0)
    assert first.address(NETWORKS["main"]) in screen
    assert "is this appliance's key" in screen
    approve(console, done.out, version)
    sign_and_finalize(console, descriptor, others[FORMATS.index(fmt) % 2],
                      seed=10 + FORMATS.index(fmt))


def bad_export(console: ConsoleLab, case: str) -> Path:
    directory = console.root / f"bad-{case}"
    descriptor, _ = descriptor_text(console, "acme-vault")
    match case:
        case "bbqr-missing-part":
            return bbqr_frames(bsms_record(descriptor), directory, drop=1)
        case "coldcard-not-a-cosigner":
            roots = cosigner_roots("strangers") + cosigner_roots("more-strangers")[:1]
            keys = ",".join(key_expression(r, 0) + "/<0;1>/*" for r in roots)
            text = coldcard_file(add_checksum(f"wsh(sortedmulti(2,{keys}))"), "not-ours")
        case "descriptor-wrong-checksum":
            body, checksum = descriptor.split("#")
            text = f"{body}#{checksum[::-1]}"
        case "descriptor-without-checksum":
            text = descriptor.split("#")[0]
    path = directory.with_suffix(".txt")
    path.write_text(text + "\n")
    return path


BAD = {  # case: (error code, part of the reason, whether the HSM PIN is asked first)
    "bbqr-missing-part": ("wallet-qr-incomplete", "some parts are missing", False),
    "coldcard-not-a-cosigner": ("not-a-cosigner", "not a cosigner of the wallet", True),
    "descriptor-wrong-checksum": ("coordinator-wallet-invalid", "checksum is wrong", False),
    "descriptor-without-checksum": ("coordinator-wallet-invalid", "has no #checksum", False),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_coordinator_input_is_refused_on_the_terminal_and_nothing_is_written(
    console: ConsoleLab, case: str
) -> None:
    code, reason, hsm = BAD[case]
    registry = console.trust.wallets_path
    before = registry.read_bytes()
    done = register_on_terminal(console, bad_export(console, case), "acme-refused", hsm=hsm,
                                confirm=False)
    assert done.status == 2, done.screen  # bad input
    assert done.result["ok"] is False and done.result["error"] == code
    assert reason in done.result["message"]
    assert not done.out.exists() and not done.out.with_name(done.out.name + ".tmp").exists()
    assert console.trust.wallets_path == registry and registry.read_bytes() == before
