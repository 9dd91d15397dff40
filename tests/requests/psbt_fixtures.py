"""Seeded generator of Bitcoin test wallets and PSBTs (built with embit, the independent
library), plus a software stand-in for the HSM's ``sign_ecdsa``.

Everything is deterministic: seeds are ``sha256("coldvault/psbt-fixtures/" + label)`` and
all other randomness comes from ``random.Random(seed)``. ``n_input_psbt`` builds large PSBTs
quickly for ``make bench`` (about 1 ms per input).

The software keystore exists ONLY for pure-library unit tests of the PSBT module; the
real HSM path (SoftHSM) is tested at the appliance level.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from coincurve import PrivateKey
from embit import bip32
from embit.descriptor import Descriptor
from embit.psbt import PSBT, DerivationPath
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from coldvault.crypto.secp256k1 import EcdsaSignature
from coldvault.keys.keystore import KeyAlgorithm, KeyInfo, derived_key_label
from coldvault.requests.base import Chain, SignJob
from coldvault.requests.bitcoin import parse as pp
from coldvault.requests.bitcoin.maps import (
    G_FALLBACK_LOCKTIME,
    G_INPUT_COUNT,
    G_OUTPUT_COUNT,
    G_TX_MODIFIABLE,
    G_TX_VERSION,
    G_VERSION,
    IN_OUTPUT_INDEX,
    IN_PREVIOUS_TXID,
    IN_REQUIRED_HEIGHT_LOCKTIME,
    IN_REQUIRED_TIME_LOCKTIME,
    IN_SEQUENCE,
    OUT_AMOUNT,
    OUT_SCRIPT,
    KvMap,
)
from coldvault.requests.bitcoin.tx import compact_size
from coldvault.requests.wallets import Wallet

KINDS = ("pkh", "wpkh", "sh-wpkh", "wsh", "sh-wsh")
ACCOUNTS = {
    "pkh": "m/44h/1h/{a}h",
    "wpkh": "m/84h/1h/{a}h",
    "sh-wpkh": "m/49h/1h/{a}h",
    "wsh": "m/48h/1h/{a}h/2h",
    "sh-wsh": "m/48h/1h/{a}h/1h",
}
TEMPLATES = {
    "pkh": "pkh({k})",
    "wpkh": "wpkh({k})",
    "sh-wpkh": "sh(wpkh({k}))",
    "wsh": "wsh(sortedmulti(2,{k}))",
    "sh-wsh": "sh(wsh(sortedmulti(2,{k})))",
}
COSIGNER_LABELS = ("cosigner-b", "cosigner-c")


def seed_of(label: str) -> bytes:
    return hashlib.sha256(b"coldvault/psbt-fixtures/" + label.encode()).digest()


def root_of(label: str) -> bip32.HDKey:
    return bip32.HDKey.from_seed(seed_of(label))


@dataclass
class WalletFixture:
    kind: str
    wallet: Wallet
    root: bip32.HDKey
    cosigners: tuple[bip32.HDKey, ...]
    descriptor: Descriptor
    _cache: dict[tuple[int, int], Descriptor] = field(default_factory=dict, repr=False)

    def derive(self, branch: int, index: int) -> Descriptor:
        d = self._cache.get((branch, index))
        if d is None:
            d = self.descriptor.derive(index, branch_index=branch)
            self._cache[(branch, index)] = d
        return d

    def script(self, branch: int, index: int) -> bytes:
        return self.derive(branch, index).script_pubkey().data


def make_wallet(
    kind: str,
    *,
    name: str | None = None,
    seed_label: str = "ours",
    account: int = 0,
    max_index: int = 99,
    network: str = "test",
    client: str = "client-a",
) -> WalletFixture:
    root = root_of(seed_label)
    cosigners = tuple(root_of(c) for c in COSIGNER_LABELS) if kind in ("wsh", "sh-wsh") else ()
    path = ACCOUNTS[kind].format(a=account)
    keys = []
    for r in (root, *cosigners):
        xpub = r.derive(path).to_public().to_base58()
        keys.append(f"[{r.my_fingerprint.hex()}{path[1:]}]{xpub}/<0;1>/*")
    text = TEMPLATES[kind].format(k=",".join(keys))
    wallet = Wallet(
        name=name or f"{kind}-{seed_label}-{account}",
        client=client,
        chain=Chain.BITCOIN,
        network=network,
        template=kind,
        master_fingerprint=root.my_fingerprint.hex(),
        account_path=path,
        descriptor=text,
        max_index=max_index,
    )
    return WalletFixture(kind, wallet, root, cosigners, Descriptor.from_string(text))


class SoftwareKeystore:
    """Implements ``lookup_key`` and ``sign_ecdsa`` of the Keystore with coincurve (low-S).

    A stand-in for the HSM in pure-library unit tests only.
    """

    def __init__(self, *roots: bip32.HDKey) -> None:
        self._roots = {r.my_fingerprint: r for r in roots}
        self._keys: dict[bytes, tuple[bytes, bytes]] = {}
        self.signed: list[bytes] = []

    def _key(self, key_id: bytes) -> tuple[bytes, bytes] | None:
        hit = self._keys.get(key_id)
        if hit is not None:
            return hit
        if key_id[:1] != b"K" or len(key_id) < 5 or (len(key_id) - 5) % 4:
            return None
        root = self._roots.get(key_id[1:5])
        if root is None:
            return None
        path = [int.from_bytes(key_id[j : j + 4], "big") for j in range(5, len(key_id), 4)]
        child = root.derive(path)
        hit = (child.key.secret, child.key.get_public_key().sec())
        self._keys[key_id] = hit
        return hit

    def lookup_key(self, key_id: bytes) -> KeyInfo | None:
        hit = self._key(key_id)
        if hit is None:
            return None
        path = [int.from_bytes(key_id[j : j + 4], "big") for j in range(5, len(key_id), 4)]
        label = derived_key_label(key_id[1:5], path)
        return KeyInfo(key_id, label, KeyAlgorithm.SECP256K1, hit[1])

    def sign_ecdsa(self, key_id: bytes, digest: bytes) -> EcdsaSignature:
        hit = self._key(key_id)
        if hit is None:
            raise KeyError(key_id)
        compact = PrivateKey(hit[0]).sign_recoverable(digest, hasher=None)
        self.signed.append(key_id)
        return EcdsaSignature(
            int.from_bytes(compact[:32], "big"), int.from_bytes(compact[32:64], "big")
        )

    def sign_jobs(self, jobs: Sequence[SignJob]) -> list[EcdsaSignature]:
        return [self.sign_ecdsa(j.key_id, j.payload) for j in jobs]


def _derivations(desc: Descriptor) -> dict:
    return {
        k.get_public_key(): DerivationPath(k.origin.fingerprint, list(k.origin.derivation))
        for k in desc.keys
    }


def external_script(rng: random.Random, kind: str = "p2wpkh") -> bytes:
    if kind == "p2tr":
        return b"\x51\x20" + rng.randbytes(32)
    if kind == "p2sh":
        return b"\xa9\x14" + rng.randbytes(20) + b"\x87"
    if kind == "p2pkh":
        return b"\x76\xa9\x14" + rng.randbytes(20) + b"\x88\xac"
    return b"\x00\x14" + rng.randbytes(20)


def _funding_tx(rng: random.Random, spk: bytes, amount: int) -> tuple[Transaction, int]:
    vout = rng.randrange(2)
    outs = [TransactionOutput(rng.randrange(1000, 10**6), Script(external_script(rng)))]
    outs.insert(vout, TransactionOutput(amount, Script(spk)))
    tx = Transaction(
        version=2,
        vin=[TransactionInput(rng.randbytes(32), rng.randrange(4), Script(b""), 0xFFFFFFFE)],
        vout=outs,
        locktime=0,
    )
    # a scriptSig makes the funding tx look real; it never matters for the txid check
    tx.vin[0].script_sig = Script(b"\x00" + rng.randbytes(20))
    return tx, vout


def build_psbt(
    wf: WalletFixture,
    *,
    inputs: Sequence[tuple[int, int, int]] = ((0, 0, 100_000),),
    external: Sequence[tuple[bytes, int]] = (),
    change: Sequence[tuple[int, int, int]] = (),
    seed: int = 0,
    prev_tx: bool = True,
    witness_utxo: bool = True,
    sequence: int = 0xFFFFFFFD,
    locktime: int = 0,
) -> bytes:
    """A v0 PSBT spending ``inputs`` ((branch, index, sat) of ``wf``) to ``external``
    ((script, sat)) and ``change`` ((branch, index, sat)), as a coordinator would make it."""
    rng = random.Random(seed)
    funding = []
    vin = []
    for branch, index, amount in inputs:
        tx, vout = _funding_tx(rng, wf.script(branch, index), amount)
        funding.append((tx, vout))
        vin.append(TransactionInput(tx.txid(), vout, Script(b""), sequence))
    vout_list = [TransactionOutput(a, Script(s)) for s, a in external]
    vout_list += [TransactionOutput(a, Script(wf.script(b, i))) for b, i, a in change]
    psbt = PSBT(Transaction(version=2, vin=vin, vout=vout_list, locktime=locktime))
    segwit = wf.kind != "pkh"
    for pin, (tx, vout), (branch, index, _) in zip(psbt.inputs, funding, inputs, strict=True):
        d = wf.derive(branch, index)
        if prev_tx:
            pin.non_witness_utxo = tx
        if segwit and witness_utxo:
            pin.witness_utxo = tx.vout[vout]
        if wf.kind in ("sh-wpkh", "sh-wsh"):
            pin.redeem_script = d.redeem_script()
        if wf.kind in ("wsh", "sh-wsh"):
            pin.witness_script = d.witness_script()
        pin.bip32_derivations = _derivations(d)
    for pout, (branch, index, _) in zip(psbt.outputs[len(external) :], change, strict=True):
        d = wf.derive(branch, index)
        if wf.kind in ("sh-wpkh", "sh-wsh"):
            pout.redeem_script = d.redeem_script()
        if wf.kind in ("wsh", "sh-wsh"):
            pout.witness_script = d.witness_script()
        pout.bip32_derivations = _derivations(d)
    return psbt.serialize()


def n_input_psbt(wf: WalletFixture, n: int, *, seed: int = 0, amount: int = 50_000) -> bytes:
    """``n`` inputs (receive indexes 0..n-1, wrapping at max_index), one external output
    and one change output: the shape ``make bench`` times."""
    rng = random.Random(seed)
    top = wf.wallet.max_index + 1
    inputs = [(0, i % top, amount + i) for i in range(n)]
    total = sum(a for _, _, a in inputs)
    fee = 200 * n + 500
    send = (total - fee) // 2
    ext = [(external_script(rng), send)]
    chg = [(1, 0, total - fee - send)]
    # distinct outpoints even when indexes wrap: each funding tx is random
    return build_psbt(wf, inputs=inputs, external=ext, change=chg, seed=seed)


# ---------------------------------------------------------------- v0 <-> v2 (own maps)


def _map(fields: Sequence[tuple[int, bytes, bytes]]) -> KvMap:
    m = KvMap(())
    for t, kd, v in fields:
        m = m.with_field(t, kd, v)
    return m


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


def to_v2(
    v0: bytes,
    *,
    fallback_locktime: int | None = None,
    time_locks: Sequence[int | None] = (),
    height_locks: Sequence[int | None] = (),
    modifiable: int | None = None,
) -> bytes:
    """The same request as a PSBT v2 (BIP-370), optionally with locktime fields."""
    p = pp.parse_psbt(v0)
    g: list[tuple[int, bytes, bytes]] = [(G_TX_VERSION, b"", _u32(p.tx_version))]
    if fallback_locktime is not None:
        g.append((G_FALLBACK_LOCKTIME, b"", _u32(fallback_locktime)))
    g += [
        (G_INPUT_COUNT, b"", compact_size(len(p.inputs))),
        (G_OUTPUT_COUNT, b"", compact_size(len(p.outputs))),
    ]
    if modifiable is not None:
        g.append((G_TX_MODIFIABLE, b"", bytes([modifiable])))
    g.append((G_VERSION, b"", _u32(2)))
    g += [(f.key_type, f.key_data, f.value) for f in p.globals.fields if f.key_type != 0]
    ins = []
    for i, (m, t) in enumerate(zip(p.inputs, p.tx_inputs, strict=True)):
        fs = [(f.key_type, f.key_data, f.value) for f in m.fields]
        fs += [
            (IN_PREVIOUS_TXID, b"", t.txid),
            (IN_OUTPUT_INDEX, b"", _u32(t.vout)),
            (IN_SEQUENCE, b"", _u32(t.sequence)),
        ]
        if i < len(time_locks) and time_locks[i] is not None:
            fs.append((IN_REQUIRED_TIME_LOCKTIME, b"", _u32(time_locks[i] or 0)))
        if i < len(height_locks) and height_locks[i] is not None:
            fs.append((IN_REQUIRED_HEIGHT_LOCKTIME, b"", _u32(height_locks[i] or 0)))
        ins.append(_map(fs))
    outs = []
    for m, o in zip(p.outputs, p.tx_outputs, strict=True):
        fs = [(f.key_type, f.key_data, f.value) for f in m.fields]
        fs += [(OUT_AMOUNT, b"", o.amount.to_bytes(8, "little")), (OUT_SCRIPT, b"", o.script)]
        outs.append(_map(fs))
    return pp.MAGIC + b"".join(x.serialize() for x in [_map(g), *ins, *outs])


def to_v0(v2: bytes, locktime: int) -> bytes:
    """A v2 PSBT as v0 (for embit, which gets v2 wrong), with the given locktime."""
    p = pp.parse_psbt(v2)
    tx = Transaction(
        version=p.tx_version,
        vin=[TransactionInput(t.txid[::-1], t.vout, Script(b""), t.sequence) for t in p.tx_inputs],
        vout=[TransactionOutput(o.amount, Script(o.script)) for o in p.tx_outputs],
        locktime=locktime,
    )
    v2_globals = {2, 3, 4, 5, 6, 0xFB}
    g = [(0, b"", tx.serialize())] + [
        (f.key_type, f.key_data, f.value) for f in p.globals.fields if f.key_type not in v2_globals
    ]
    ins = [
        _map(
            [(f.key_type, f.key_data, f.value) for f in m.fields if not 0x0E <= f.key_type <= 0x12]
        )
        for m in p.inputs
    ]
    outs = [
        _map([(f.key_type, f.key_data, f.value) for f in m.fields if f.key_type not in (3, 4)])
        for m in p.outputs
    ]
    return pp.MAGIC + b"".join(x.serialize() for x in [_map(g), *ins, *outs])


# ---------------------------------------------------------------- timing (not a test)


def time_prepare(kind: str, sizes: Sequence[int] = (10, 500), repeat: int = 3) -> list[str]:
    """Per-input cost of prepare_psbt (+ software signing + finish) for N-input PSBTs."""
    import time

    from coldvault.requests.bitcoin.request import prepare_psbt

    wf = make_wallet(kind, max_index=999)
    ks = SoftwareKeystore(wf.root)
    lines = []
    for n in sizes:
        t0 = time.perf_counter()
        raw = n_input_psbt(wf, n)
        build = time.perf_counter() - t0
        best_prep = best_fin = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            req = prepare_psbt(raw, wallets={wf.wallet.name: wf.wallet}, lookup_key=ks.lookup_key)
            t1 = time.perf_counter()
            sigs = ks.sign_jobs(req.jobs)
            t2 = time.perf_counter()
            req.finish(sigs)
            t3 = time.perf_counter()
            best_prep, best_fin = min(best_prep, t1 - t0), min(best_fin, t3 - t2)
        lines.append(
            f"{kind:8} n={n:4} bytes={len(raw):8} build={build * 1e3:8.1f} ms"
            f" prepare={best_prep * 1e3:8.1f} ms ({best_prep / n * 1e6:6.0f} us/input)"
            f" finish={best_fin * 1e3:7.1f} ms ({best_fin / n * 1e6:5.0f} us/input)"
        )
    return lines


if __name__ == "__main__":  # python tests/requests/psbt_fixtures.py [N ...]
    import sys

    sizes = [int(a) for a in sys.argv[1:]] or [10, 500]
    for k in KINDS:
        for line in time_prepare(k, sizes):
            print(line)  # noqa: T201
