"""prepare_psbt / finish end to end on seeded wallets, checked with embit (independent)."""

from __future__ import annotations

import base64
import dataclasses
import json
import random
from pathlib import Path

import psbt_fixtures as fx
import pytest
from embit import ec
from embit.finalizer import finalize_psbt
from embit.psbt import PSBT
from embit.script import Script
from embit.transaction import Transaction, TransactionOutput

from coldvault.crypto.ed25519 import Ed25519Signature
from coldvault.crypto.hashes import hash160
from coldvault.crypto.secp256k1 import SECP256K1_N, EcdsaSignature
from coldvault.errors import ColdvaultError, Refused
from coldvault.keys.keystore import KeyAlgorithm, KeyInfo
from coldvault.requests.base import Chain, MovementKind
from coldvault.requests.bitcoin import parse as pp
from coldvault.requests.bitcoin import request as P
from coldvault.requests.bitcoin.errors import (
    AlreadyFinalized,
    AlreadySigned,
    BadHsmSignature,
    ChangeIndexOutOfRange,
    ChangeNotProven,
    DuplicateInput,
    ForeignInput,
    IndexOutOfRange,
    KeyNotHeld,
    MixedWallets,
    NegativeFee,
    NothingToSign,
    NotWalletScript,
    PsbtBadLocktime,
    PsbtRefused,
    SighashRefused,
    UtxoDisagrees,
    UtxoMissing,
    UtxoTxidMismatch,
)
from coldvault.requests.bitcoin.locktime import LocktimeUndeterminable
from coldvault.requests.bitcoin.maps import (
    IN_FINAL_SCRIPTWITNESS,
    IN_PARTIAL_SIG,
    IN_SIGHASH_TYPE,
    PROPRIETARY,
)
from coldvault.requests.bitcoin.wallet import TaprootRefused, WalletDescriptorError, WalletScripts

RNG_SEED = 7
P_BIP174 = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "bip174_psbt.json").read_text()
)["cases"]


def standard(kind: str, **kw: object) -> tuple[fx.WalletFixture, bytes]:
    wf = fx.make_wallet(kind)
    rng = random.Random(RNG_SEED)
    args: dict = {
        "inputs": [(0, 1, 120_000), (1, 3, 80_000)],
        "external": [(fx.external_script(rng), 150_000), (fx.external_script(rng, "p2tr"), 20_000)],
        "change": [(1, 4, 28_500)],
    }
    args.update(kw)
    return wf, fx.build_psbt(wf, **args)


def prepare(wf: fx.WalletFixture, raw: bytes, *extra: fx.WalletFixture, ks=None, wallet=None):
    ks = ks or fx.SoftwareKeystore(wf.root)
    wallets = {w.wallet.name: w.wallet for w in (wf, *extra)}
    if wallet is not None:
        wallets[wallet.name] = wallet
    return P.prepare_psbt(raw, wallets=wallets, lookup_key=ks.lookup_key), ks


# ------------------------------------------------------------------ independent checking


def _vsize(tx: Transaction) -> int:
    full = len(tx.serialize())
    stripped = Transaction(tx.version, tx.vin, tx.vout, tx.locktime)
    saved = [i.witness for i in tx.vin]
    for i in tx.vin:
        i.witness = type(saved[0])([])
    base = len(stripped.serialize())
    for i, w in zip(tx.vin, saved, strict=True):
        i.witness = w
    return (3 * base + full + 3) // 4


def verify_final_tx(tx: Transaction, utxos: list[TransactionOutput]) -> int:
    """Check every signature in a finalized transaction with embit's own sighash code.
    Returns the number of signatures checked."""
    checked = 0
    for i, vin in enumerate(tx.vin):
        spk = utxos[i].script_pubkey
        items = list(vin.witness.items)
        if spk.script_type() == "p2pkh":
            d = vin.script_sig.data
            sig, pub = d[1 : 1 + d[0]], d[2 + d[0] :]
            h = tx.sighash_legacy(i, spk)
            pairs = [(sig, pub)]
        elif len(items) == 2:  # p2wpkh / p2sh-p2wpkh
            sig, pub = items
            code = Script(b"\x76\xa9\x14" + hash160(pub) + b"\x88\xac")
            h = tx.sighash_segwit(i, code, utxos[i].value)
            pairs = [(sig, pub)]
        else:  # multisig: 0 <sig>... <witness script>
            ws = items[-1]
            h = tx.sighash_segwit(i, Script(ws), utxos[i].value)
            m, n = ws[0] - 0x50, ws[-2] - 0x50
            pubs = [ws[1 + 34 * k + 1 : 1 + 34 * (k + 1)] for k in range(n)]
            sigs = items[1:-1]
            assert len(sigs) == m and items[0] == b""
            k, pairs = 0, []
            for s in sigs:  # CHECKMULTISIG order
                while not ec.PublicKey.parse(pubs[k]).verify(ec.Signature.parse(s[:-1]), h):
                    k += 1
                pairs.append((s, pubs[k]))
                k += 1
        for sig, pub in pairs:
            assert sig[-1] == 1
            assert ec.PublicKey.parse(pub).verify(ec.Signature.parse(sig[:-1]), h)
            checked += 1
    return checked


def sign_and_finalize(wf: fx.WalletFixture, signed: bytes) -> tuple[Transaction, list]:
    p = PSBT.parse(signed)
    for c in wf.cosigners[:1]:
        assert p.sign_with(c) == len(p.inputs)
    tx = finalize_psbt(p)
    assert tx is not None
    return tx, [p.utxo(i) for i in range(len(p.inputs))]


# ------------------------------------------------------------------ positive paths


@pytest.mark.parametrize("kind", fx.KINDS)
def test_sign_verify_finalize(kind: str) -> None:
    wf, raw = standard(kind)
    req, ks = prepare(wf, raw)
    r = req.review
    assert r.chain is Chain.BITCOIN and r.network == "test" and r.kind == "psbt"
    assert r.wallet == wf.wallet.name and r.client == "client-a"
    assert r.fee == 200_000 - 150_000 - 20_000 - 28_500 == 1_500
    kinds = [m.kind for m in r.movements]
    assert kinds == [MovementKind.EXTERNAL, MovementKind.EXTERNAL, MovementKind.CHANGE]
    assert r.total_external == 170_000
    assert r.movements[1].destination.startswith("tb1p")
    assert ("locktime", "0 (none)") in r.details
    # exact, in whole units and base units, like every other amount on the review screen
    assert ("input total", "0.00200000 BTC (200,000 sat)") in r.details
    assert len(r.request_digest) == 32
    assert [j.purpose for j in req.jobs] == ["input 0", "input 1"]
    assert all(j.algorithm is KeyAlgorithm.SECP256K1 for j in req.jobs)
    assert req.response_type == "crypto-psbt"
    # sighashes agree with embit's own computation
    embit_psbt = PSBT.parse(raw)
    assert [j.payload for j in req.jobs] == [embit_psbt.sighash(i) for i in range(2)]

    signed = req.finish(ks.sign_jobs(req.jobs))
    # every original field is kept byte-exact; exactly one partial sig added per input
    before, after = pp.parse_psbt(raw), pp.parse_psbt(signed)
    assert after.globals == before.globals and after.outputs == before.outputs
    for b, a in zip(before.inputs, after.inputs, strict=True):
        assert a.fields[: len(b.fields)] == b.fields
        (added,) = a.fields[len(b.fields) :]
        assert added.key_type == IN_PARTIAL_SIG and added.value[-1] == 1

    tx, utxos = sign_and_finalize(wf, signed)
    n_sigs = verify_final_tx(tx, utxos)
    assert n_sigs == 2 * (2 if wf.cosigners else 1)
    # the vsize estimate is within a byte per signature of the real size
    actual = _vsize(tx)
    est = int(dict(r.details)["estimated vsize"].split()[0])
    assert abs(est - actual) <= n_sigs, (est, actual)
    assert r.fee_rate == round(1_500 / est, 2)


def test_base64_text_and_digest_binding() -> None:
    wf, raw = standard("wpkh")
    text = base64.b64encode(raw).decode()
    req_b, _ = prepare(wf, raw)
    req_t, _ = prepare(wf, text)  # type: ignore[arg-type]
    assert [j.payload for j in req_b.jobs] == [j.payload for j in req_t.jobs]
    assert req_b.review.request_digest != req_t.review.request_digest  # bytes as received
    ks = fx.SoftwareKeystore(wf.root)
    req = P.prepare_psbt(raw, wallets={wf.wallet.name: wf.wallet}, lookup_key=ks.lookup_key,
                         request_digest=b"\x11" * 32)  # fmt: skip
    assert req.review.request_digest == b"\x11" * 32


def test_unknown_and_proprietary_fields_survive() -> None:
    wf, raw = standard("wsh")
    p = pp.parse_psbt(raw)
    g = p.globals.with_field(PROPRIETARY, b"\x05cvtst\x01", b"global-extra")
    ins = [m.with_field(0x99, b"\x01\x02", b"unknown-in") for m in p.inputs]
    outs = [m.with_field(0xFC, b"\x03abc\x00", b"prop-out") for m in p.outputs]
    raw2 = pp.MAGIC + b"".join(x.serialize() for x in [g, *ins, *outs])
    req, ks = prepare(wf, raw2)
    signed = req.finish(ks.sign_jobs(req.jobs))
    after = pp.parse_psbt(signed)
    assert after.globals.get(PROPRIETARY, b"\x05cvtst\x01") == b"global-extra"
    assert all(m.get(0x99, b"\x01\x02") == b"unknown-in" for m in after.inputs)
    assert all(m.get(0xFC, b"\x03abc\x00") == b"prop-out" for m in after.outputs)
    assert signed.startswith(raw2[:10]) and len(signed) > len(raw2)


def test_psbt_v2_signs_and_stays_v2() -> None:
    wf, raw0 = standard("wpkh", locktime=123_456)
    raw2 = fx.to_v2(raw0, height_locks=[123_456, 100_000])
    req0, _ = prepare(wf, raw0)
    req2, ks = prepare(wf, raw2)
    assert [j.payload for j in req2.jobs] == [j.payload for j in req0.jobs]
    assert ("locktime", "123456 (block height)") in req2.review.details
    assert ("PSBT version", "2") in req2.review.details
    signed = req2.finish(ks.sign_jobs(req2.jobs))
    assert pp.parse_psbt(signed).version == 2
    tx, utxos = sign_and_finalize(wf, fx.to_v0(signed, 123_456))
    assert tx.locktime == 123_456 and verify_final_tx(tx, utxos) == 2


def test_psbt_v2_fallback_and_time_locktime() -> None:
    wf, raw0 = standard("sh-wpkh", locktime=1_700_000_000)
    raw2 = fx.to_v2(raw0, fallback_locktime=5, time_locks=[1_600_000_000, 1_700_000_000])
    req0, _ = prepare(wf, raw0)
    req2, _ = prepare(wf, raw2)
    assert [j.payload for j in req2.jobs] == [j.payload for j in req0.jobs]
    assert ("locktime", "1700000000 (unix time)") in req2.review.details
    wf, raw0 = standard("wpkh", locktime=5)
    req0, _ = prepare(wf, raw0)
    req2, _ = prepare(wf, fx.to_v2(raw0, fallback_locktime=5, modifiable=3))
    assert [j.payload for j in req2.jobs] == [j.payload for j in req0.jobs]
    assert any("modifiable" in w for w in req2.review.warnings)


def test_witness_utxo_only_allowed_by_wallet_option() -> None:
    wf, raw = standard("wpkh", prev_tx=False)
    with pytest.raises(UtxoMissing, match="2020 segwit fee attack"):
        prepare(wf, raw)
    lenient = dataclasses.replace(wf.wallet, require_non_witness_utxo=False)
    req, _ = prepare(wf, raw, wallet=lenient)
    assert req.review.fee == 1_500
    assert any("witness UTXO only" in w for w in req.review.warnings)


def test_change_on_receive_branch_warns() -> None:
    wf, raw = standard("wpkh", change=[(0, 7, 28_500)])
    req, _ = prepare(wf, raw)
    assert req.review.movements[-1].kind is MovementKind.CHANGE
    assert any("receive address" in w for w in req.review.warnings)


def test_our_script_without_derivation_is_external() -> None:
    wf = fx.make_wallet("wpkh")
    raw = fx.build_psbt(wf, inputs=[(0, 0, 10_000)], external=[(wf.script(1, 2), 9_000)])
    req, _ = prepare(wf, raw)
    assert [m.kind for m in req.review.movements] == [MovementKind.EXTERNAL]


# ------------------------------------------------------------------ refusals


def _embit_mutate(raw: bytes, fn) -> bytes:
    p = PSBT.parse(raw)
    fn(p)
    return p.serialize()


def _add_input_field(raw: bytes, i: int, key_type: int, key_data: bytes, value: bytes) -> bytes:
    p = pp.parse_psbt(raw)
    inputs = list(p.inputs)
    inputs[i] = inputs[i].with_field(key_type, key_data, value)
    return dataclasses.replace(p, inputs=tuple(inputs)).serialize()


def test_taproot_input_field_refused() -> None:
    wf, raw = standard("wpkh")
    bad = _add_input_field(raw, 1, 0x17, b"", b"\x02" * 32)  # PSBT_IN_TAP_INTERNAL_KEY
    with pytest.raises(TaprootRefused, match="PKCS#11 has no BIP-340 Schnorr mechanism") as info:
        prepare(wf, bad)
    assert isinstance(info.value, Refused) and info.value.reason.startswith("PKCS#11")


def test_taproot_witness_utxo_refused() -> None:
    wf = fx.make_wallet("wpkh")
    raw = fx.build_psbt(wf, inputs=[(0, 0, 10_000)], prev_tx=False)

    def tap(p: PSBT) -> None:
        p.inputs[0].witness_utxo = TransactionOutput(10_000, Script(b"\x51\x20" + b"\x07" * 32))

    with pytest.raises(TaprootRefused):
        prepare(wf, _embit_mutate(raw, tap))


def test_taproot_wallet_refused() -> None:
    wf = fx.make_wallet("wpkh")
    key = wf.wallet.descriptor.split("(", 1)[1].rstrip(")")  # type: ignore[union-attr]
    tr = dataclasses.replace(wf.wallet, descriptor=f"tr({key})")
    with pytest.raises(TaprootRefused):
        WalletScripts(tr)


@pytest.mark.parametrize("sighash", [2, 3, 0x81, 0x82, 0x83, 0])
def test_non_all_sighash_refused(sighash: int) -> None:
    wf, raw = standard("wsh")
    bad = _add_input_field(raw, 0, IN_SIGHASH_TYPE, b"", sighash.to_bytes(4, "little"))
    with pytest.raises(SighashRefused) as info:
        prepare(wf, bad)
    assert info.value.input_index == 0


def test_explicit_sighash_all_accepted() -> None:
    wf, raw = standard("wpkh")
    req, _ = prepare(
        wf, _add_input_field(raw, 0, IN_SIGHASH_TYPE, b"", (1).to_bytes(4, "little"))
    )
    assert len(req.jobs) == 2


@pytest.mark.parametrize("kind", ["wpkh", "sh-wsh", "pkh"])
def test_missing_non_witness_utxo(kind: str) -> None:
    wf, raw = standard(kind, prev_tx=False)
    with pytest.raises(UtxoMissing):
        prepare(wf, raw)


def test_missing_utxo_for_legacy_even_when_lenient() -> None:
    wf, raw = standard("pkh", prev_tx=False)
    lenient = dataclasses.replace(wf.wallet, require_non_witness_utxo=False)
    with pytest.raises(UtxoMissing):
        prepare(wf, raw, wallet=lenient)


def test_non_witness_utxo_txid_mismatch() -> None:
    wf, raw = standard("pkh")

    def swap(p: PSBT) -> None:
        p.inputs[0].non_witness_utxo = p.inputs[1].non_witness_utxo

    with pytest.raises(UtxoTxidMismatch):
        prepare(wf, _embit_mutate(raw, swap))


def test_witness_utxo_amount_disagrees() -> None:
    wf, raw = standard("wpkh")

    def inflate(p: PSBT) -> None:
        p.inputs[1].witness_utxo.value += 1

    with pytest.raises(UtxoDisagrees, match="fee attack"):
        prepare(wf, _embit_mutate(raw, inflate))


def test_duplicate_inputs() -> None:
    wf, raw = standard("wpkh")

    def dup(p: PSBT) -> None:
        p.inputs[1] = p.inputs[0]

    with pytest.raises(DuplicateInput):
        prepare(wf, _embit_mutate(raw, dup))


def test_inputs_from_two_wallets() -> None:
    a = fx.make_wallet("wpkh", account=0)
    b = fx.make_wallet("wpkh", account=1)
    pa = PSBT.parse(fx.build_psbt(a, inputs=[(0, 0, 10_000)], seed=1))
    pb = PSBT.parse(fx.build_psbt(b, inputs=[(0, 0, 10_000)], seed=2))
    pa.inputs.append(pb.inputs[0])
    with pytest.raises(MixedWallets):
        prepare(a, pa.serialize(), b)


def test_input_index_beyond_max_index() -> None:
    wf = fx.make_wallet("wpkh", max_index=10)
    raw = fx.build_psbt(wf, inputs=[(0, 11, 10_000)])
    with pytest.raises(IndexOutOfRange):
        prepare(wf, raw)


def test_change_index_beyond_max_index() -> None:
    wf = fx.make_wallet("wsh", max_index=10)
    raw = fx.build_psbt(wf, inputs=[(0, 1, 10_000)], change=[(1, 11, 9_000)])
    with pytest.raises(ChangeIndexOutOfRange) as info:
        prepare(wf, raw)
    assert info.value.output_index == 0


def test_claimed_change_with_other_script_refused() -> None:
    wf, raw = standard("wpkh")
    other = fx._derivations(wf.derive(1, 5))

    def lie(p: PSBT) -> None:
        p.outputs[2].bip32_derivations = other  # claims 1/5, script is 1/4

    with pytest.raises(ChangeNotProven):
        prepare(wf, _embit_mutate(raw, lie))


def test_claimed_change_on_bad_branch_refused() -> None:
    wf, raw = standard("wpkh")

    def lie(p: PSBT) -> None:
        for der in p.outputs[2].bip32_derivations.values():
            der.derivation[-2] = 2

    with pytest.raises(ChangeNotProven):
        prepare(wf, _embit_mutate(raw, lie))


def test_input_claiming_wrong_index_refused() -> None:
    wf, raw = standard("wpkh")
    other = fx._derivations(wf.derive(0, 2))

    def lie(p: PSBT) -> None:
        p.inputs[0].bip32_derivations = other

    with pytest.raises(NotWalletScript):
        prepare(wf, _embit_mutate(raw, lie))


def test_foreign_fingerprint() -> None:
    wf, raw = standard("wpkh")
    stranger = fx.make_wallet("wpkh", seed_label="stranger")
    with pytest.raises(ForeignInput):
        P.prepare_psbt(
            raw, wallets={stranger.wallet.name: stranger.wallet}, lookup_key=lambda k: None
        )


def test_negative_fee() -> None:
    wf = fx.make_wallet("wpkh")
    raw = fx.build_psbt(
        wf, inputs=[(0, 0, 10_000)], external=[(b"\x00\x14" + b"\x01" * 20, 10_001)]
    )
    with pytest.raises(NegativeFee):
        prepare(wf, raw)


def test_key_not_held_or_different() -> None:
    wf, raw = standard("wpkh")
    wallets = {wf.wallet.name: wf.wallet}
    with pytest.raises(KeyNotHeld, match="holds no key"):
        P.prepare_psbt(raw, wallets=wallets, lookup_key=lambda k: None)
    wrong = KeyInfo(b"K", "x", KeyAlgorithm.SECP256K1, b"\x02" + b"\x01" * 32)
    with pytest.raises(KeyNotHeld, match="different public key"):
        P.prepare_psbt(raw, wallets=wallets, lookup_key=lambda k: wrong)


def test_already_signed_and_finalized() -> None:
    wf, raw = standard("wpkh")
    req, ks = prepare(wf, raw)
    signed = req.finish(ks.sign_jobs(req.jobs))
    with pytest.raises(AlreadySigned):
        prepare(wf, signed)
    final = _add_input_field(raw, 0, IN_FINAL_SCRIPTWITNESS, b"", b"\x00")
    with pytest.raises(AlreadyFinalized):
        prepare(wf, final)


def test_bad_signatures_never_inserted() -> None:
    wf, raw = standard("wpkh")
    req, ks = prepare(wf, raw)
    sigs = ks.sign_jobs(req.jobs)
    with pytest.raises(BadHsmSignature):
        req.finish([sigs[1], sigs[0]])
    high = EcdsaSignature(sigs[0].r, SECP256K1_N - sigs[0].s)
    with pytest.raises(BadHsmSignature, match="high-S"):
        req.finish([high, sigs[1]])
    with pytest.raises(ValueError):
        req.finish(sigs[:1])
    with pytest.raises(TypeError):
        req.finish([Ed25519Signature(bytes(64)), sigs[1]])
    signed = req.finish([high.low_s(), sigs[1]])  # the normalised twin is the good signature
    assert signed == req.finish(sigs)


def test_v2_locktime_conflict_and_range() -> None:
    wf, raw0 = standard("wpkh")
    with pytest.raises(LocktimeUndeterminable):
        prepare(wf, fx.to_v2(raw0, height_locks=[100, None], time_locks=[None, 1_600_000_000]))
    with pytest.raises(PsbtBadLocktime):
        prepare(wf, fx.to_v2(raw0, time_locks=[499_999_999]))
    with pytest.raises(PsbtBadLocktime):
        prepare(wf, fx.to_v2(raw0, height_locks=[500_000_000]))
    with pytest.raises(PsbtBadLocktime):
        prepare(wf, fx.to_v2(raw0, height_locks=[0]))


def test_no_inputs() -> None:
    case = next(c for c in P_BIP174 if c["description"] == "PSBT with 0 inputs")
    with pytest.raises(NothingToSign):
        P.prepare_psbt(bytes.fromhex(case["hex"]), wallets={}, lookup_key=lambda k: None)


def test_wallet_descriptor_config_errors() -> None:
    wf = fx.make_wallet("wpkh")
    for desc in (None, "wpkh(nonsense)", wf.wallet.descriptor.replace("<0;1>", "0")):  # type: ignore[union-attr]
        with pytest.raises(WalletDescriptorError):
            WalletScripts(dataclasses.replace(wf.wallet, descriptor=desc))
    with pytest.raises(WalletDescriptorError):
        WalletScripts(dataclasses.replace(wf.wallet, account_path="m/84h/1h/5h"))


def test_every_refusal_is_a_coldvault_error() -> None:
    for cls in (PsbtRefused, TaprootRefused):
        assert issubclass(cls, Refused) and issubclass(cls, ColdvaultError)


def test_input_on_unknown_branch_refused() -> None:
    wf, raw = standard("wpkh")

    def branch2(p: PSBT) -> None:
        for der in p.inputs[0].bip32_derivations.values():
            der.derivation[-2] = 2

    with pytest.raises(IndexOutOfRange):
        prepare(wf, _embit_mutate(raw, branch2))


def test_output_to_our_other_account_is_external() -> None:
    a = fx.make_wallet("wpkh", account=0)
    b = fx.make_wallet("wpkh", account=1)
    raw = fx.build_psbt(a, inputs=[(0, 0, 10_000)], change=[(1, 0, 9_000)])

    def to_b(p: PSBT) -> None:
        d = b.derive(1, 0)
        p.outputs[0].vout.script_pubkey = d.script_pubkey()
        p.outputs[0].bip32_derivations = fx._derivations(d)

    req, _ = prepare(a, _embit_mutate(raw, to_b), b)
    assert [m.kind for m in req.review.movements] == [MovementKind.EXTERNAL]
    assert req.review.wallet == a.wallet.name


def test_no_outputs_warns_all_to_fee() -> None:
    wf = fx.make_wallet("wpkh")
    req, _ = prepare(wf, fx.build_psbt(wf, inputs=[(0, 0, 10_000)]))
    assert req.review.fee == 10_000 and req.review.movements == ()
    assert any("no outputs" in w for w in req.review.warnings)


def test_same_keys_registered_twice_is_ambiguous() -> None:
    wf, raw = standard("wpkh")
    twin = dataclasses.replace(wf.wallet, name="twin", client="client-b")
    with pytest.raises(MixedWallets, match="ambiguous"):
        prepare(wf, raw, wallet=twin)
