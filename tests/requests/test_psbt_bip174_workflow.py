"""BIP-174 role workflow and signer-check vectors, replayed against coldvault's code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from coincurve import PrivateKey
from embit import bip32, ec

from coldvault.crypto.secp256k1 import EcdsaSignature
from coldvault.requests.bitcoin import parse as pp
from coldvault.requests.bitcoin import request as P
from coldvault.requests.bitcoin.checks import signer_checks
from coldvault.requests.bitcoin.errors import (
    PsbtRefused,
    ScriptMismatch,
    UnsupportedScript,
    WitnessUtxoForNonWitness,
)
from coldvault.requests.bitcoin.locktime import determine_locktime
from coldvault.requests.bitcoin.maps import (
    IN_BIP32_DERIVATION,
    IN_PARTIAL_SIG,
    IN_REDEEM_SCRIPT,
    IN_WITNESS_SCRIPT,
    IN_WITNESS_UTXO,
)
from coldvault.requests.bitcoin.sighash import Sighasher
from coldvault.requests.bitcoin.tx import parse_output, parse_tx

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
DOC = json.loads((VECTORS / "bip174_psbt.json").read_text())
WF = DOC["role_workflow"]
FOUNDATION = json.loads((VECTORS / "foundation_bip174.json").read_text())

SIGNER_CHECKS: dict[str, type[PsbtRefused]] = {
    "A Witness UTXO is provided for a non-witness input": WitnessUtxoForNonWitness,
    "redeemScript with non-witness UTXO does not match the scriptPubKey": ScriptMismatch,
    "redeemScript with witness UTXO does not match the scriptPubKey": ScriptMismatch,
    "witnessScript with witness UTXO does not match the redeemScript": ScriptMismatch,
}


def _psbt(step: str) -> pp.Psbt:
    return pp.parse_psbt(bytes.fromhex(WF[step]["expected_psbt"]["hex"]))


def _as_dicts(p: pp.Psbt) -> list[dict[bytes, bytes]]:
    return [{f.key: f.value for f in m.fields} for m in (p.globals, *p.inputs, *p.outputs)]


def _sighashes(p: pp.Psbt) -> list[bytes]:
    """Input 0 is legacy P2SH 2-of-2, input 1 P2SH-P2WSH 2-of-2 (the BIP's workflow)."""
    h = Sighasher(p, determine_locktime(p))
    wu = parse_output(p.inputs[1].get(IN_WITNESS_UTXO) or b"")
    return [
        h.legacy(0, p.inputs[0].get(IN_REDEEM_SCRIPT) or b""),
        h.segwit_v0(1, p.inputs[1].get(IN_WITNESS_SCRIPT) or b"", wu.amount),
    ]


@pytest.mark.parametrize(
    "step",
    [
        "creator",
        "updater",
        "updater_add_sighash_all",
        "signer_1",
        "signer_2",
        "combiner",
        "finalizer",
    ],
)
def test_every_step_roundtrips(step: str) -> None:
    raw = bytes.fromhex(WF[step]["expected_psbt"]["hex"])
    assert pp.parse_psbt(raw).serialize() == raw
    assert pp.parse_psbt(WF[step]["expected_psbt"]["base64"]).serialize() == raw


def test_workflow_keys_derive_from_master() -> None:
    master = bip32.HDKey.from_string(WF["master_key"]["tprv"])
    for step in ("signer_1", "signer_2"):
        for k in WF[step]["keys"]:
            assert master.derive(k["path"]).key.secret == ec.PrivateKey.from_wif(k["wif"]).secret


@pytest.mark.parametrize("step", ["signer_1", "signer_2"])
def test_our_signer_reproduces_the_workflow_signatures(step: str) -> None:
    """coldvault's sighashes + RFC6979 ECDSA (what the BIP's signer used) + finish_psbt give
    exactly the partial signatures of the expected PSBT, and the same key/value maps."""
    unsigned = _psbt("updater_add_sighash_all")
    expected = _psbt(step)
    digests = _sighashes(unsigned)
    plans, sigs = [], []
    for k in WF[step]["keys"]:
        secret = ec.PrivateKey.from_wif(k["wif"]).secret
        pub = PrivateKey(secret).public_key.format()
        (i,) = [n for n, m in enumerate(unsigned.inputs) if m.get(IN_BIP32_DERIVATION, pub)]
        compact = PrivateKey(secret).sign_recoverable(digests[i], hasher=None)
        sig = EcdsaSignature(
            int.from_bytes(compact[:32], "big"), int.from_bytes(compact[32:64], "big")
        )
        assert expected.inputs[i].get(IN_PARTIAL_SIG, pub) == sig.der + b"\x01"
        plans.append(P.SignPlan(i, pub, digests[i]))
        sigs.append(sig)
    signed = pp.parse_psbt(P.finish_psbt(unsigned, plans, sigs))
    assert _as_dicts(signed) == _as_dicts(expected)


def test_combined_signatures_verify_against_our_sighashes() -> None:
    combined = _psbt("combiner")
    digests = _sighashes(combined)
    count = 0
    for i, m in enumerate(combined.inputs):
        for f in m.all(IN_PARTIAL_SIG):
            assert ec.PublicKey.parse(f.key_data).verify(
                ec.Signature.parse(f.value[:-1]), digests[i]
            )
            count += 1
    assert count == 4


def test_extracted_transaction_spends_the_psbt_inputs() -> None:
    tx = parse_tx(
        bytes.fromhex(WF["extractor"]["expected_tx_hex"]), what="tx", allow_witness=True
    )
    unsigned = _psbt("creator")
    assert [(t.txid, t.vout) for t in tx.inputs] == [(t.txid, t.vout) for t in unsigned.tx_inputs]
    assert tx.outputs == unsigned.tx_outputs and tx.has_witness


def test_workflow_legacy_p2sh_multisig_is_not_signed_by_coldvault() -> None:
    with pytest.raises(UnsupportedScript) as info:
        signer_checks(_psbt("updater_add_sighash_all"))
    assert info.value.input_index == 0


@pytest.mark.parametrize(
    "case",
    [c for c in DOC["cases"] if c["category"] == "fails_signer_checks"],
    ids=lambda c: c["description"][:60],
)
def test_fails_signer_checks_vectors(case: dict) -> None:
    expected = SIGNER_CHECKS[case["description"]]
    psbt = pp.parse_psbt(bytes.fromhex(case["hex"]))  # parses fine
    with pytest.raises(PsbtRefused) as info:
        signer_checks(psbt)
    assert type(info.value) is expected
    with pytest.raises(expected):
        P.prepare_psbt(bytes.fromhex(case["hex"]), wallets={}, lookup_key=lambda k: None)


def test_foundation_signer_check_and_chain_vectors() -> None:
    for case in FOUNDATION["fails-signer-checks"]:
        psbt = pp.parse_psbt(bytes.fromhex(case["as-hex"]))
        with pytest.raises(SIGNER_CHECKS[case["description"].rstrip(".")]):
            signer_checks(psbt)
    chain = FOUNDATION["chain-of-tests"]
    checked = 0
    for step in chain.values():
        if isinstance(step, dict) and "as-hex" in step:
            raw = bytes.fromhex(step["as-hex"])
            if raw.startswith(pp.MAGIC):
                assert pp.parse_psbt(raw).serialize() == raw
                assert pp.parse_psbt(step["as-base64"].replace("&#61;", "=")).serialize() == raw
                checked += 1
    assert checked == 7  # the PSBT steps of the chain (the final step is a raw transaction)


def test_combiner_unknown_keys_vectors_roundtrip() -> None:
    c = WF["combiner_unknown_keys"]
    for item in [*c["inputs"], c["expected_psbt"]]:
        raw = bytes.fromhex(item["hex"])
        assert pp.parse_psbt(raw).serialize() == raw


def test_previous_transaction_txids_including_witness_serialisation() -> None:
    txids = {i["txid"] for i in WF["creator"]["inputs"]}
    forms = set()
    for h in WF["updater"]["previous_transactions"]:
        tx = parse_tx(bytes.fromhex(h), what="previous tx", allow_witness=True)
        assert tx.txid[::-1].hex() in txids
        forms.add(tx.has_witness)
    assert forms == {True, False}
