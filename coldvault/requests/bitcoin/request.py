"""Bitcoin PSBT requests: analyse, plan HSM signatures, insert them (docs/psbt.md).

:func:`prepare_psbt` takes untrusted PSBT bytes (v0 or v2, binary or base64), runs the
bounded pre-parser, the BIP-174 signer checks and coldvault's safety rules (DESIGN §7),
and returns a :class:`~coldvault.requests.base.PreparedRequest`: the operator's
:class:`~coldvault.requests.base.Review`, one :class:`~coldvault.requests.base.SignJob` per
input (a secp256k1 digest for the HSM) and ``finish(signatures)``, which verifies each
signature and adds it as ``PSBT_IN_PARTIAL_SIG`` while keeping every other byte.

Only ``SIGHASH_ALL`` is ever signed. The parts: :mod:`~coldvault.requests.bitcoin.parse`
(bounded pre-parser), :mod:`~coldvault.requests.bitcoin.checks` (signer checks),
:mod:`~coldvault.requests.bitcoin.match` (wallet and change),
:mod:`~coldvault.requests.bitcoin.sighash` (digests, size) and
:mod:`~coldvault.requests.bitcoin.errors`; this module plans and finishes the request.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from coldvault.crypto.hashes import sha256
from coldvault.crypto.paths import path_to_str
from coldvault.crypto.secp256k1 import EcdsaSignature
from coldvault.keys.keystore import KeyAlgorithm, Signature, derived_key_id
from coldvault.requests.amounts import format_amount
from coldvault.requests.base import (
    AuditStamp,
    Chain,
    Movement,
    MovementKind,
    PreparedRequest,
    Review,
    SignJob,
)
from coldvault.requests.bitcoin import parse as pp
from coldvault.requests.bitcoin.checks import address, dust_threshold, signer_checks
from coldvault.requests.bitcoin.errors import (
    AlreadySigned,
    BadHsmSignature,
    KeyNotHeld,
    NegativeFee,
    NothingToSign,
    UtxoMissing,
)
from coldvault.requests.bitcoin.locktime import determine_locktime, timelock_warnings
from coldvault.requests.bitcoin.maps import (
    DEFAULT_LIMITS,
    G_TX_MODIFIABLE,
    IN_PARTIAL_SIG,
    PROPRIETARY,
    KvMap,
    Limits,
)
from coldvault.requests.bitcoin.match import OurInput, assign_wallet, classify_output
from coldvault.requests.bitcoin.sighash import Sighasher, estimate_vsize, input_sighash
from coldvault.requests.bitcoin.wallet import WalletScripts
from coldvault.requests.keys import KeyLookup
from coldvault.requests.wallets import Wallet

__all__ = [
    "SignPlan",
    "finish_psbt",
    "prepare_psbt",
]

# --------------------------------------------------------------------------- prepare / finish


@dataclass(frozen=True)
class SignPlan:
    """One signature ``finish`` will insert: input index, our pubkey, the signed digest."""

    input: int
    pubkey: bytes
    sighash: bytes


def _locktime_text(locktime: int) -> str:
    if locktime == 0:
        return "0 (none)"
    if locktime < pp.LOCKTIME_THRESHOLD:
        return f"{locktime} (block height)"
    return f"{locktime} (unix time)"


def _key_job(ours: OurInput, ws: WalletScripts, lookup_key: KeyLookup) -> bytes:
    i, d = ours.spend.index, ours.derived
    key_id = derived_key_id(ws.fingerprint, d.our_path)
    info = lookup_key(key_id)
    if info is not None and info.algorithm is KeyAlgorithm.SECP256K1 and (
        info.public_key == d.our_pubkey
    ):
        return key_id
    where = f"{ws.wallet.master_fingerprint}/{path_to_str(d.our_path, prefix='')}"
    if info is None:
        raise KeyNotHeld(f"the HSM holds no key {where} needed by input {i}", input_index=i)
    raise KeyNotHeld(
        f"the HSM key {where} has a different public key than the one input {i} needs",
        input_index=i,
    )


def prepare_psbt(
    data: bytes | str,
    *,
    wallets: Mapping[str, Wallet],
    lookup_key: KeyLookup,
    request_digest: bytes | None = None,
    limits: Limits = DEFAULT_LIMITS,
    now: float | None = None,
) -> PreparedRequest:
    """Parse, check and plan a PSBT signing request (see docs/psbt.md for every check).

    ``now`` (unix time, default the host clock) is what "far-future locktime" is measured
    against."""
    raw_request = data.encode() if isinstance(data, str) else bytes(data)
    psbt = pp.parse_psbt(data, limits=limits)
    if not psbt.inputs:
        raise NothingToSign("the PSBT has no inputs, so there is nothing to sign")
    locktime = determine_locktime(psbt)
    spends = signer_checks(psbt)
    ws, ours = assign_wallet(psbt, spends, wallets)
    wallet = ws.wallet
    require_prev = wallet.require_non_witness_utxo
    warnings: list[str] = []
    witness_only = [s.index for s in spends if not s.has_previous_tx]
    if witness_only and require_prev:
        i = witness_only[0]
        raise UtxoMissing(
            f"input {i} has no previous transaction (PSBT_IN_NON_WITNESS_UTXO), so its amount is"
            " not proven (the 2020 segwit fee attack); wallet option require_non_witness_utxo"
            " is on",
            input_index=i,
        )
    if witness_only:
        warnings.append(
            f"{len(witness_only)} input(s) prove their amount by witness UTXO only"
            " (wallet allows it); the fee shown relies on the coordinator"
        )

    hasher = Sighasher(psbt, locktime)
    jobs: list[SignJob] = []
    plans: list[SignPlan] = []
    for o in ours:
        i, pubkey = o.spend.index, o.derived.our_pubkey
        if psbt.inputs[i].get(IN_PARTIAL_SIG, pubkey) is not None:
            raise AlreadySigned(f"input {i} already has our signature", input_index=i)
        key_id = _key_job(o, ws, lookup_key)
        digest = input_sighash(hasher, o.spend, pubkey)
        jobs.append(SignJob(key_id, KeyAlgorithm.SECP256K1, digest, f"input {i}"))
        plans.append(SignPlan(i, pubkey, digest))

    movements: list[Movement] = []
    for i, (out, m) in enumerate(zip(psbt.tx_outputs, psbt.outputs, strict=True)):
        derived = classify_output(i, out, m, ws)
        dest = address(out.script, wallet.network)
        dust = dust_threshold(out.script)
        if out.amount < dust:
            warnings.append(
                f"output {i} pays {out.amount} sat to {dest}, below the {dust} sat dust limit"
                " for its script: Bitcoin nodes will not relay the transaction"
            )
        if derived is None:
            movements.append(
                Movement(MovementKind.EXTERNAL, "BTC", out.amount, dest, f"output {i}")
            )
            continue
        note = f"output {i}, {wallet.master_fingerprint}/{path_to_str(derived.our_path, prefix='')}"
        movements.append(Movement(MovementKind.CHANGE, "BTC", out.amount, dest, note))
        if derived.branch == 0:
            warnings.append(f"output {i} returns change to a receive address (branch 0)")

    total_in = sum(s.amount for s in spends)
    total_out = sum(o.amount for o in psbt.tx_outputs)
    fee = total_in - total_out
    if fee < 0:
        raise NegativeFee(f"the outputs ({total_out} sat) exceed the inputs ({total_in} sat)")
    vsize = estimate_vsize(psbt, spends)
    rbf = any(t.sequence < 0xFFFF_FFFE for t in psbt.tx_inputs)
    details = [
        ("PSBT version", str(psbt.version)),
        ("transaction version", str(psbt.tx_version)),
        ("locktime", _locktime_text(locktime)),
        ("inputs", f"{len(spends)} ({ws.script_type.value})"),
        ("outputs", str(len(psbt.tx_outputs))),
        ("input total", format_amount("BTC", total_in)),
        ("estimated vsize", f"{vsize} vB"),
        ("replaceable (BIP-125)", "yes" if rbf else "no"),
    ]
    if not psbt.tx_outputs:
        warnings.append("the transaction has no outputs: the whole input total goes to the fee")
    warnings += timelock_warnings(
        psbt, locktime, wallet.network, time.time() if now is None else now
    )
    modifiable = psbt.globals.get(G_TX_MODIFIABLE)
    if modifiable and modifiable[0]:
        warnings.append("the PSBT marks its inputs/outputs as modifiable; SIGHASH_ALL fixes them")
    review = Review(
        chain=Chain.BITCOIN,
        network=wallet.network,
        kind="psbt",
        wallet=wallet.name,
        client=wallet.client,
        movements=tuple(movements),
        fee=fee,
        fee_rate=round(fee / vsize, 2),
        details=tuple(details),
        warnings=tuple(warnings),
        request_digest=request_digest or sha256(raw_request),
    )
    frozen_plans = tuple(plans)

    def finish(signatures: Sequence[Signature], /, *, audit: AuditStamp | None = None) -> bytes:
        return finish_psbt(psbt, frozen_plans, signatures, audit=audit)

    return PreparedRequest(review, tuple(jobs), finish, response_type="crypto-psbt")


#: The global proprietary field (BIP-174 ``0xFC``) carrying the appliance's audit head:
#: key ``0xFC || 0x09 "coldvault" || 0x01``, value the sequence number (8 bytes, big-endian)
#: followed by the 32-byte entry hash (docs/audit.md).
AUDIT_PROPRIETARY_ID = b"coldvault"
AUDIT_SUBTYPE = 0x01
AUDIT_KEY_DATA = bytes([len(AUDIT_PROPRIETARY_ID)]) + AUDIT_PROPRIETARY_ID + bytes([AUDIT_SUBTYPE])


def audit_stamp_of(psbt_bytes: bytes) -> AuditStamp | None:
    """The audit head a signed PSBT carries, if any (for coordinators and tests)."""
    value = pp.parse_psbt(psbt_bytes).globals.get(PROPRIETARY, AUDIT_KEY_DATA)
    if value is None:
        return None
    if len(value) != 40:
        raise ValueError("the coldvault audit field is not 8 + 32 bytes")
    return AuditStamp(int.from_bytes(value[:8], "big"), value[8:])


def finish_psbt(
    psbt: pp.Psbt,
    plans: Sequence[SignPlan],
    signatures: Sequence[Signature],
    *,
    audit: AuditStamp | None = None,
) -> bytes:
    """Verify each signature and add it as PSBT_IN_PARTIAL_SIG; every other byte is kept.
    With ``audit`` the global proprietary field :data:`AUDIT_KEY_DATA` carries it (a
    coordinator's own field of that key is replaced)."""
    if len(signatures) != len(plans):
        raise ValueError(f"expected {len(plans)} signatures, got {len(signatures)}")
    inputs = list(psbt.inputs)
    for plan, sig in zip(plans, signatures, strict=True):
        if not isinstance(sig, EcdsaSignature):
            raise TypeError("PSBT signatures must be EcdsaSignature objects")
        if not sig.is_low_s:
            raise BadHsmSignature(f"the signature for input {plan.input} is high-S.")
        if not sig.verify(plan.pubkey, plan.sighash):
            raise BadHsmSignature(
                f"the signature for input {plan.input} does not verify against its key and"
                " sighash; nothing was inserted."
            )
        inputs[plan.input] = inputs[plan.input].with_field(
            IN_PARTIAL_SIG, plan.pubkey, sig.der + b"\x01"
        )
    out = dataclasses.replace(psbt, inputs=tuple(inputs))
    if audit is not None:
        kept = tuple(
            f for f in psbt.globals.fields
            if not (f.key_type == PROPRIETARY and f.key_data == AUDIT_KEY_DATA)
        )
        stamped = KvMap(kept).with_field(
            PROPRIETARY, AUDIT_KEY_DATA, audit.seq.to_bytes(8, "big") + audit.head
        )
        out = dataclasses.replace(out, globals=stamped)
    return out.serialize()
