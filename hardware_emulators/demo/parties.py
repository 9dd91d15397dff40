"""The outside world of the demo: counterparties and an online coordinator.

Everything here stands for software *outside* the appliance and is built with independent
libraries (embit for Bitcoin, eth-account for Ethereum, solders for Solana) -- never with
coldvault's own request code -- so the demo proves interoperability, not self-consistency.

Counterparty keys are derived from fixed labels: they are demo keys holding nothing.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

import nacl.signing
from coincurve import PrivateKey
from embit import bip32
from embit import ec as embit_ec
from embit.descriptor import Descriptor
from embit.psbt import PSBT, DerivationPath
from embit.script import Script, p2tr, p2wpkh, p2wsh
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from coldvault.errors import InputError, Refused
from coldvault.policy import Destination, DestinationKind, Evidence
from coldvault.requests.base import Chain

WHITELIST_MESSAGE = "coldvault whitelist proof: {label} controls {address}"


def _demo_key(label: str) -> bytes:
    return hashlib.sha256(b"coldvault-demo-counterparty/" + label.encode()).digest()


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    return b"\xfd" + n.to_bytes(2, "little")


@dataclass(frozen=True)
class Proof:
    chain: str
    address: str
    label: str
    message: str
    signature: str

    def destination(self) -> Destination:
        """The policy's whitelist entry for this address, with its ownership proof."""
        return Destination(
            self.address, Chain(self.chain), self.label, self.message, self.signature
        )


def bitcoin_counterparty(label: str, network: str = "main") -> Proof:
    """A P2WPKH address with a BIP-137 signed-message ownership proof."""
    from embit.networks import NETWORKS

    key = PrivateKey(_demo_key(label))
    net = NETWORKS["main" if network == "main" else "test"]
    pub = key.public_key.format(compressed=True)
    from embit.ec import PublicKey

    address = p2wpkh(PublicKey.parse(pub)).address(net)
    message = WHITELIST_MESSAGE.format(label=label, address=address)
    data = message.encode()
    digest = hashlib.sha256(
        hashlib.sha256(b"\x18Bitcoin Signed Message:\n" + _varint(len(data)) + data).digest()
    ).digest()
    sig = key.sign_recoverable(digest, hasher=None)  # r || s || recid
    header = 39 + sig[64]  # BIP-137: P2WPKH (bech32)
    signature = base64.b64encode(bytes([header]) + sig[:64]).decode()
    return Proof("bitcoin", address, label, message, signature)


def ethereum_counterparty(label: str) -> Proof:
    """An Ethereum address with an EIP-191 personal_sign ownership proof (eth-account)."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    account = Account.from_key(_demo_key(label))
    message = WHITELIST_MESSAGE.format(label=label, address=account.address)
    signed = Account.sign_message(encode_defunct(text=message), account.key)
    return Proof("ethereum", account.address, label, message, "0x" + signed.signature.hex())


def solana_counterparty(label: str) -> Proof:
    """A Solana address with an Ed25519 ownership proof over the UTF-8 message."""
    from solders.keypair import Keypair  # independent Solana library

    signing = nacl.signing.SigningKey(_demo_key(label))
    keypair = Keypair.from_seed(_demo_key(label))
    address = str(keypair.pubkey())
    message = WHITELIST_MESSAGE.format(label=label, address=address)
    signature = str(keypair.sign_message(message.encode()))
    if bytes(signing.verify_key) != bytes(keypair.pubkey()):
        raise RuntimeError("solders and pynacl disagree on the demo key")
    return Proof("solana", address, label, message, signature)


def _bip322_simple(spk: Script, message: str, sign: Callable[[Transaction], list[bytes]]) -> str:
    """A BIP-322 "simple" proof built with embit: the virtual ``to_spend`` paying ``spk``, the
    ``to_sign`` spending it, and ``sign``'s witness stack, prefixed ``smp`` and base64."""
    tag = hashlib.sha256(b"BIP0322-signed-message").digest()
    message_hash = hashlib.sha256(tag + tag + message.encode()).digest()
    to_spend = Transaction(
        version=0,
        vin=[TransactionInput(bytes(32), 0xFFFFFFFF, Script(b"\x00\x20" + message_hash), 0)],
        vout=[TransactionOutput(0, spk)],
        locktime=0,
    )
    to_sign = Transaction(
        version=0, vin=[TransactionInput(to_spend.txid(), 0, Script(b""), 0)],
        vout=[TransactionOutput(0, Script(b"\x6a"))], locktime=0,
    )  # fmt: skip
    stack = sign(to_sign)
    witness = _varint(len(stack)) + b"".join(_varint(len(item)) + item for item in stack)
    return "smp" + base64.b64encode(witness).decode()


def taproot_counterparty(label: str) -> Proof:
    """A P2TR (key path) address with a BIP-322 simple ownership proof (embit, Schnorr)."""
    key = embit_ec.PrivateKey(_demo_key(label))
    spk = p2tr(key.get_public_key())
    address = spk.address()
    message = WHITELIST_MESSAGE.format(label=label, address=address)

    def sign(tx: Transaction) -> list[bytes]:
        digest = tx.sighash_taproot(0, [spk], [0])
        return [key.taproot_tweak(b"").schnorr_sign(digest).serialize()]

    return Proof("bitcoin", address, label, message, _bip322_simple(spk, message, sign))


def multisig_counterparty(label: str) -> Proof:
    """A P2WSH 2-of-2 multisig address with a BIP-322 simple ownership proof (embit): both
    cosigners sign the virtual spend."""
    keys = [embit_ec.PrivateKey(_demo_key(f"{label}/{i}")) for i in range(2)]
    script = Script(b"\x52" + b"".join(b"\x21" + k.get_public_key().sec() for k in keys)
                    + b"\x52\xae")  # fmt: skip
    spk = p2wsh(script)
    address = spk.address()
    message = WHITELIST_MESSAGE.format(label=label, address=address)

    def sign(tx: Transaction) -> list[bytes]:
        digest = tx.sighash_segwit(0, script, 0)
        return [b"", *(k.sign(digest).serialize() + b"\x01" for k in keys), script.data]

    return Proof("bitcoin", address, label, message, _bip322_simple(spk, message, sign))


def attested_destination(chain: str, label: str, evidence: Evidence) -> Destination:
    """An address that cannot sign (an exchange deposit address): an attested address-book
    entry carrying ``evidence``. The address is a fresh demo address of ``chain``."""
    if chain == "bitcoin":
        address = bitcoin_counterparty(label).address
    elif chain == "ethereum":
        address = ethereum_counterparty(label).address
    else:
        address = solana_counterparty(label).address
    return Destination(address, Chain(chain), label, kind=DestinationKind.ATTESTED,
                       evidence=evidence)  # fmt: skip


# --------------------------------------------------------------------------- coordinator
def bitcoin_psbt(
    descriptor: str,
    *,
    pay_to: str,
    amount: int,
    fee: int,
    funding: int = 2_000_000,
    receive_index: int = 0,
    change_index: int = 0,
    seed: int = 7,
) -> bytes:
    """A PSBT as an online coordinator (here: embit) would build it for a watch-only
    ``wpkh([fp/84h/0h/0h]xpub/<0;1>/*)`` wallet: one input from a funding transaction
    (with non_witness_utxo and witness_utxo), one payment and one change output."""
    rng = random.Random(seed)  # noqa: S311 - deterministic demo data
    desc = Descriptor.from_string(descriptor)
    recv = desc.derive(receive_index, branch_index=0)
    change = desc.derive(change_index, branch_index=1)
    funding_tx = Transaction(
        version=2,
        vin=[TransactionInput(rng.randbytes(32), 0, Script(b"\x00" * 2), 0xFFFFFFFE)],
        vout=[TransactionOutput(funding, recv.script_pubkey())],
        locktime=0,
    )
    dest = Script.from_address(pay_to)
    tx = Transaction(
        version=2,
        vin=[TransactionInput(funding_tx.txid(), 0, Script(b""), 0xFFFFFFFD)],
        vout=[
            TransactionOutput(amount, dest),
            TransactionOutput(funding - amount - fee, change.script_pubkey()),
        ],
        locktime=0,
    )
    psbt = PSBT(tx)
    psbt.inputs[0].non_witness_utxo = funding_tx
    psbt.inputs[0].witness_utxo = funding_tx.vout[0]
    for target, derived in ((psbt.inputs[0], recv), (psbt.outputs[1], change)):
        target.bip32_derivations = {
            k.get_public_key(): DerivationPath(k.origin.fingerprint, list(k.origin.derivation))
            for k in derived.keys
        }
    return psbt.serialize()


def finalize_psbt(signed: bytes) -> tuple[str, int]:
    """Validate every partial signature against embit's BIP-143 sighash, then let embit's
    finalizer build the final transaction; returns (raw tx hex, inputs)."""
    from embit.finalizer import finalize_psbt as embit_finalize

    psbt = PSBT.parse(signed)
    verify_p2wpkh_signatures(psbt)
    tx = embit_finalize(psbt)
    if tx is None:
        raise RuntimeError("embit could not finalize the signed PSBT")
    for i, vin in enumerate(tx.vin):
        if not vin.witness.items:
            raise RuntimeError(f"input {i} has no witness after finalization")
    return tx.serialize().hex(), len(psbt.inputs)


def verify_p2wpkh_signatures(psbt: PSBT) -> None:
    """Check every partial signature with libsecp256k1 against embit's BIP-143 sighash."""
    from coincurve import PublicKey as CPub

    for i, inp in enumerate(psbt.inputs):
        for pub, sig in inp.partial_sigs.items():
            spk = inp.witness_utxo.script_pubkey
            script_code = Script(b"\x76\xa9\x14" + spk.data[2:] + b"\x88\xac")
            sighash = psbt.tx.sighash_segwit(i, script_code, inp.witness_utxo.value)
            if sig[-1] != 1:
                raise RuntimeError("signature is not SIGHASH_ALL")
            if not CPub(pub.sec()).verify(sig[:-1], sighash, hasher=None):
                raise RuntimeError(f"input {i}: the signature does not verify")


class CoordinatorInputError(InputError):
    """A PSBT the lab's coordinator cannot read."""

    code = "lab-psbt-unreadable"


class SignedTransactionDiffers(Refused):
    """The signed response is not the transaction the coordinator asked for, or does not
    finalize: the coordinator does not broadcast it."""

    code = "lab-signed-differs"


@dataclass(frozen=True)
class CoordinatorView:
    """What the coordinator's wallet shows before broadcasting: every output in full, the
    fee, and the final transaction embit built from the signatures."""

    txid: str
    outputs: tuple[tuple[str, int], ...]  # (address, satoshi)
    fee: int
    raw_tx: str


def _read_psbt(data: bytes, what: str) -> PSBT:
    try:
        return PSBT.parse(data)
    except Exception as exc:  # noqa: BLE001 - embit raises many kinds for bad bytes
        raise CoordinatorInputError(f"The {what} is not a PSBT embit can read ({exc}).") from exc


def coordinator_check(request: bytes, signed: bytes, network: str = "main") -> CoordinatorView:
    """The online coordinator's side of a signing (embit, not coldvault): the signed PSBT
    must hold exactly the requested transaction, every signature must verify against
    embit's own sighash, and embit's finalizer must complete it."""
    from embit.networks import NETWORKS

    asked, got = _read_psbt(request, "request"), _read_psbt(signed, "signed response")
    if asked.tx.txid() != got.tx.txid():
        raise SignedTransactionDiffers(
            f"The signed transaction {got.tx.txid().hex()} is not the requested "
            f"{asked.tx.txid().hex()}: do not broadcast it."
        )
    try:
        raw, _ = finalize_psbt(signed)
    except (RuntimeError, ValueError) as exc:
        raise SignedTransactionDiffers(f"The signed PSBT does not finalize: {exc}.") from exc
    net = NETWORKS[network]
    outputs = tuple((out.script_pubkey.address(net), out.value) for out in got.tx.vout)
    spent = sum(inp.witness_utxo.value for inp in got.inputs)
    return CoordinatorView(got.tx.txid().hex(), outputs, spent - sum(v for _, v in outputs), raw)


def bitcoin_demo_root() -> bip32.HDKey:  # pragma: no cover - convenience for docs
    return bip32.HDKey.from_seed(_demo_key("bitcoin-root"))
