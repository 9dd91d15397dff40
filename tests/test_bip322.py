"""BIP-322 simple and full signatures against the official test vectors.

Vectors: tests/vectors/bip322_basic.json and bip322_generated.json, copied from bitcoin/bips
(bip-0322/, see tests/vectors/SOURCES.md). Every simple and full signature must verify for
its address and message; every error case and every proof of funds must be refused with
:class:`OwnershipProofInvalid`. Mutated signatures fail cleanly.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from embit import ec, script
from embit.transaction import Transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from coldvault.crypto.hashes import sha256
from coldvault.policy.bip322 import message_hash, to_spend_txid
from coldvault.policy.ownership import OwnershipProofInvalid, verify_ownership
from coldvault.requests.base import Chain

VECTORS = Path(__file__).parent / "vectors"
BASIC = json.loads((VECTORS / "bip322_basic.json").read_text())
GENERATED = json.loads((VECTORS / "bip322_generated.json").read_text())
VALID = [
    (e["type"], e["address"], e["message"], sig)
    for doc in (BASIC, GENERATED)
    for variant in ("simple", "full")
    for e in doc.get(variant, [])
    for sig in e["bip322_signatures"]
]
ERRORS = [(e["description"], e["address"], e["message"], e["signature"])
          for doc in (BASIC, GENERATED) for e in doc["error"]]  # fmt: skip


def test_every_address_type_is_covered() -> None:
    types = {t for t, *_ in VALID}
    assert {"p2pkh", "p2wpkh", "p2sh-p2wpkh", "p2tr", "p2tr-time-lock", "p2wsh-time-lock",
            "p2wsh-multisig-2of2", "p2wsh-multisig-3of3", "p2sh-p2wsh-multisig-2of2",
            "p2sh-multisig-2of2"} <= types  # fmt: skip
    assert len(VALID) == 20 and len(ERRORS) == 36


def test_message_hash_and_transaction_vectors() -> None:
    for e in BASIC["tx_hashes"]:
        spk = script.address_to_scriptpubkey(e["address"]).data
        assert message_hash(e["message"].encode()).hex() == e["message_hash"]
        assert to_spend_txid(spk, e["message"].encode())[::-1].hex() == e["to_spend_tx_hash"]


@pytest.mark.parametrize(("kind", "address", "message", "signature"), VALID)
def test_valid_vectors_verify(kind: str, address: str, message: str, signature: str) -> None:
    verify_ownership(Chain.BITCOIN, address, message, signature)
    with pytest.raises(OwnershipProofInvalid):
        verify_ownership(Chain.BITCOIN, address, message + ".", signature)


@pytest.mark.parametrize(("description", "address", "message", "signature"), ERRORS)
def test_error_vectors_are_refused(
    description: str, address: str, message: str, signature: str
) -> None:
    with pytest.raises(OwnershipProofInvalid) as info:
        verify_ownership(Chain.BITCOIN, address, message, signature)
    assert info.value.reason in ("malformed-signature", "bad-signature", "address-mismatch")


def test_proof_of_funds_is_not_an_ownership_proof() -> None:
    for e in GENERATED["proof_of_funds"]:
        with pytest.raises(OwnershipProofInvalid) as info:
            verify_ownership(Chain.BITCOIN, e["address"], e["message"], e["bip322_signatures"][0])
        assert info.value.reason == "unsupported"


def _full(kind: str) -> tuple[str, str, Transaction]:
    e = next(e for e in GENERATED["full"] if e["type"] == kind)
    raw = base64.b64decode(e["bip322_signatures"][0][3:])
    return e["address"], e["message"], Transaction.parse(raw)


def _ful(tx: Transaction) -> str:
    return "ful" + base64.b64encode(tx.serialize()).decode()


@pytest.mark.parametrize("kind", ["p2wsh-multisig-2of2", "p2tr", "p2sh-multisig-2of2"])
def test_a_tampered_full_signature_fails_the_script(kind: str) -> None:
    address, message, tx = _full(kind)
    verify_ownership(Chain.BITCOIN, address, message, _ful(tx))
    inp = tx.vin[0]
    if inp.witness.items:
        item = bytearray(inp.witness.items[-2 if kind == "p2wsh-multisig-2of2" else 0])
        item[10] ^= 1
        inp.witness.items[-2 if kind == "p2wsh-multisig-2of2" else 0] = bytes(item)
    else:
        data = bytearray(inp.script_sig.data)
        data[10] ^= 1
        inp.script_sig = script.Script(bytes(data))
    with pytest.raises(OwnershipProofInvalid) as info:
        verify_ownership(Chain.BITCOIN, address, message, _ful(tx))
    assert info.value.reason == "bad-signature"


def test_a_changed_lock_time_or_version_breaks_the_signature() -> None:
    address, message, tx = _full("p2wsh-time-lock")
    tx.locktime += 1
    with pytest.raises(OwnershipProofInvalid):
        verify_ownership(Chain.BITCOIN, address, message, _ful(tx))
    address, message, tx = _full("p2wpkh")
    tx.version = 1
    with pytest.raises(OwnershipProofInvalid) as info:
        verify_ownership(Chain.BITCOIN, address, message, _ful(tx))
    assert info.value.reason == "unsupported"


def test_embit_signed_taproot_and_p2wsh_simple_proofs() -> None:
    """Proofs built here with embit (an independent signer), not taken from the vectors."""
    key, key2 = ec.PrivateKey(sha256(b"payee")), ec.PrivateKey(sha256(b"payee 2"))
    message = "coldvault challenge 01"
    pubs = b"".join(b"\x21" + k.get_public_key().sec() for k in (key, key2))
    multisig = script.Script(b"\x52" + pubs + b"\x52\xae")  # 2-of-2
    for spk, witness_script in (
        (script.p2tr(key.get_public_key()), None),
        (script.p2wsh(multisig), multisig),
    ):
        address = spk.address()
        txid = to_spend_txid(spk.data, message.encode())
        tx = Transaction.parse(
            bytes(4) + b"\x01" + txid + bytes(4) + b"\x00" + bytes(4) + b"\x01" + bytes(8)
            + b"\x01\x6a" + bytes(4)
        )  # fmt: skip
        if witness_script is None:
            digest = tx.sighash_taproot(0, [spk], [0])
            items = [key.taproot_tweak(b"").schnorr_sign(digest).serialize()]
        else:
            digest = tx.sighash_segwit(0, witness_script, 0)
            sigs = [k.sign(digest).serialize() + b"\x01" for k in (key, key2)]
            items = [b"", *sigs, witness_script.data]
        stack = bytes([len(items)]) + b"".join(bytes([len(i)]) + i for i in items)
        verify_ownership(Chain.BITCOIN, address, message, "smp" + base64.b64encode(stack).decode())
        with pytest.raises(OwnershipProofInvalid):
            verify_ownership(
                Chain.BITCOIN, address, message + "!", base64.b64encode(stack).decode()
            )




@settings(max_examples=400, deadline=None)
@given(st.sampled_from(VALID), st.integers(0, 10_000), st.integers(1, 255))
def test_mutated_signatures_fail_cleanly(
    vector: tuple[str, str, str, str], where: int, flip: int
) -> None:
    _, address, message, signature = vector
    prefix, body = signature[:3], signature[3:]
    if prefix not in ("smp", "ful"):
        prefix, body = "", signature
    raw = bytearray(base64.b64decode(body))
    raw[where % len(raw)] ^= flip
    mutated = prefix + base64.b64encode(bytes(raw)).decode()
    try:
        verify_ownership(Chain.BITCOIN, address, message, mutated)
    except OwnershipProofInvalid:
        return
