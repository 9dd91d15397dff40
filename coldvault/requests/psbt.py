"""Bitcoin PSBT requests: analyse, plan HSM signatures, insert them (docs/psbt.md).

:func:`prepare_psbt` takes untrusted PSBT bytes (v0 or v2, binary or base64), runs the
bounded pre-parser, the BIP-174 signer checks and coldvault's safety rules (DESIGN §7),
and returns a :class:`~coldvault.requests.base.PreparedRequest`: the operator's
:class:`~coldvault.requests.base.Review`, one :class:`~coldvault.requests.base.SignJob` per
input (a secp256k1 digest for the HSM) and ``finish(signatures)``, which verifies each
signature and adds it as ``PSBT_IN_PARTIAL_SIG`` while keeping every other byte.

Sighashes are computed here (BIP-143 for segwit v0 with hashPrevouts/hashSequence/
hashOutputs computed once per request; the original algorithm for P2PKH), so the cost
per segwit input is flat. Only ``SIGHASH_ALL`` is ever signed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from coincurve import PublicKey
from embit.base import EmbitError
from embit.networks import NETWORKS
from embit.script import Script

from coldvault.errors import HardwareError, Refused
from coldvault.keystore import EcdsaSignature, KeyAlgorithm, KeyInfo, derived_key_id, path_to_str
from coldvault.requests import psbt_parse as pp
from coldvault.requests.base import Chain, Movement, MovementKind, PreparedRequest, Review, SignJob
from coldvault.requests.btc_wallet import Derived, ScriptType, TaprootRefused, WalletScripts
from coldvault.requests.psbt_v2 import determine_locktime
from coldvault.wallets import Wallet

__all__ = ["prepare_psbt", "signer_checks", "TaprootRefused"]

SIGHASH_ALL = 1
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# --------------------------------------------------------------------------- errors


class PsbtRefused(Refused):
    """The PSBT is well-formed but the appliance will not sign it; carries the input/output."""

    code = "psbt-refused"

    def __init__(
        self, message: str, *, input_index: int | None = None, output_index: int | None = None
    ) -> None:
        super().__init__(message.rstrip(".") + ".")
        self.input_index = input_index
        self.output_index = output_index


class NothingToSign(PsbtRefused):
    """The PSBT has no inputs."""


class SighashRefused(PsbtRefused):
    """An input asks for a sighash type other than SIGHASH_ALL."""


class AlreadyFinalized(PsbtRefused):
    """An input already has a final scriptSig or witness."""


class AlreadySigned(PsbtRefused):
    """An input already holds a partial signature by our key."""


class UtxoMissing(PsbtRefused):
    """An input's amount is not proven: the previous transaction (or any UTXO) is absent."""


class UtxoTxidMismatch(PsbtRefused):
    """``PSBT_IN_NON_WITNESS_UTXO`` is not the transaction the input spends."""


class UtxoDisagrees(PsbtRefused):
    """``PSBT_IN_WITNESS_UTXO`` differs from the output in ``PSBT_IN_NON_WITNESS_UTXO``."""


class WitnessUtxoForNonWitness(PsbtRefused):
    """A witness UTXO is given for an input whose script is not segwit (BIP-174 signer check)."""


class ScriptMismatch(PsbtRefused):
    """A redeemScript/witnessScript is missing or does not hash to what the input spends."""


class UnsupportedScript(PsbtRefused):
    """An input spends a script type coldvault does not sign (bare multisig, P2SH legacy...)."""


class DuplicateInput(PsbtRefused):
    """Two inputs spend the same outpoint."""


class ForeignInput(PsbtRefused):
    """An input has no key derivation of any registered wallet."""


class MixedWallets(PsbtRefused):
    """Inputs come from more than one registered wallet."""


class NotWalletScript(PsbtRefused):
    """An input claims a wallet path, but the wallet's descriptor derives another script."""


class IndexOutOfRange(PsbtRefused):
    """An input or change path uses an index beyond the wallet's ``max_index`` (or a bad branch)."""


class KeyNotHeld(PsbtRefused):
    """The HSM has no key for the derivation, or its public key differs from the PSBT's."""


class ChangeNotProven(PsbtRefused):
    """An output claims to be change, but re-deriving the wallet script gives another script."""


class ChangeIndexOutOfRange(IndexOutOfRange):
    """A change output's index is beyond the wallet's ``max_index``."""


class NegativeFee(PsbtRefused):
    """The outputs spend more than the inputs hold."""


class BadHsmSignature(HardwareError):
    """A signature returned for a job does not verify (or is high-S): never inserted."""

    code = "bad-signature"


# --------------------------------------------------------------------------- scripts


def _sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def _sha256d(b: bytes) -> bytes:
    return _sha256(_sha256(b))


def _hash160(b: bytes) -> bytes:
    return hashlib.new("ripemd160", _sha256(b)).digest()


def _is_p2pkh(s: bytes) -> bool:
    return len(s) == 25 and s[:3] == b"\x76\xa9\x14" and s[23:] == b"\x88\xac"


def _is_p2sh(s: bytes) -> bool:
    return len(s) == 23 and s[:2] == b"\xa9\x14" and s[22] == 0x87


def _is_p2wpkh(s: bytes) -> bool:
    return len(s) == 22 and s[:2] == b"\x00\x14"


def _is_p2wsh(s: bytes) -> bool:
    return len(s) == 34 and s[:2] == b"\x00\x20"


def _is_witness_program(s: bytes) -> bool:
    return 4 <= len(s) <= 42 and (s[0] == 0 or 0x51 <= s[0] <= 0x60) and s[1] == len(s) - 2


def _is_taproot(s: bytes) -> bool:
    return len(s) == 34 and s[:2] == b"\x51\x20"


def address(script: bytes, network: str) -> str:
    """Address for ``script`` on ``network`` ("main", "test", "regtest", "signet")."""
    if script[:1] == b"\x6a":
        return "OP_RETURN " + script[1:].hex()
    try:
        return str(Script(script).address(NETWORKS[network]))
    except (ValueError, KeyError, IndexError, EmbitError):
        return "script " + script.hex()


# --------------------------------------------------------------------------- signer checks


@dataclass(frozen=True)
class InputSpend:
    """What one input spends, after the BIP-174 signer checks."""

    index: int
    script_type: ScriptType
    script_pubkey: bytes
    amount: int
    redeem_script: bytes | None
    witness_script: bytes | None
    has_previous_tx: bool

    @property
    def segwit(self) -> bool:
        return self.script_type is not ScriptType.P2PKH


def _utxo(psbt: pp.Psbt, i: int, txs: dict[bytes, pp.Tx]) -> tuple[pp.TxOut, bool]:
    m, txin = psbt.inputs[i], psbt.tx_inputs[i]
    nwu, wu_raw = m.get(pp.IN_NON_WITNESS_UTXO), m.get(pp.IN_WITNESS_UTXO)
    wu = pp.parse_output(wu_raw, "witness utxo") if wu_raw is not None else None
    if nwu is None:
        if wu is None:
            raise UtxoMissing(
                f"input {i} carries no UTXO, so its amount is not proven", input_index=i
            )
        return wu, False
    prev = txs.get(nwu)
    if prev is None:
        try:
            prev = pp.parse_tx(nwu, what=f"input {i} previous transaction", allow_witness=True)
        except pp.PsbtError as exc:
            raise pp.PsbtBadValue(exc.detail, field="PSBT_IN_NON_WITNESS_UTXO") from exc
        txs[nwu] = prev
    if prev.txid != txin.txid:
        raise UtxoTxidMismatch(
            f"input {i}'s previous transaction has txid {prev.txid[::-1].hex()}, but the input"
            f" spends {txin.txid_hex}",
            input_index=i,
        )
    if txin.vout >= len(prev.outputs):
        raise UtxoTxidMismatch(
            f"input {i} spends output {txin.vout} of a transaction with only"
            f" {len(prev.outputs)} outputs",
            input_index=i,
        )
    out = prev.outputs[txin.vout]
    if wu is not None and wu != out:
        raise UtxoDisagrees(
            f"input {i}'s witness UTXO ({wu.amount} sat) differs from the previous transaction's"
            f" output ({out.amount} sat): refusing (the 2020 segwit fee attack)",
            input_index=i,
        )
    return out, True


def _spend(psbt: pp.Psbt, i: int, txs: dict[bytes, pp.Tx]) -> InputSpend:
    m = psbt.inputs[i]
    if any(f.key_type in pp.IN_TAPROOT_TYPES for f in m.fields):
        raise TaprootRefused(f"Input {i}")
    sighash = m.get(pp.IN_SIGHASH_TYPE)
    if sighash is not None and int.from_bytes(sighash, "little") != SIGHASH_ALL:
        kind = int.from_bytes(sighash, "little")
        raise SighashRefused(
            f"input {i} asks for sighash type {kind:#x} ({_sighash_name(kind)}); only SIGHASH_ALL"
            " is signed",
            input_index=i,
        )
    if m.has(pp.IN_FINAL_SCRIPTSIG) or m.has(pp.IN_FINAL_SCRIPTWITNESS):
        raise AlreadyFinalized(f"input {i} is already finalized", input_index=i)
    out, has_prev = _utxo(psbt, i, txs)
    spk, has_wu = out.script, m.get(pp.IN_WITNESS_UTXO) is not None
    redeem, witness = m.get(pp.IN_REDEEM_SCRIPT), m.get(pp.IN_WITNESS_SCRIPT)
    if _is_taproot(spk):
        raise TaprootRefused(f"Input {i}")
    inner = spk
    if _is_p2sh(spk):
        if redeem is None:
            raise ScriptMismatch(f"input {i} spends P2SH but has no redeemScript", input_index=i)
        if _hash160(redeem) != spk[2:22]:
            raise ScriptMismatch(
                f"input {i}'s redeemScript does not match its scriptPubKey", input_index=i
            )
        inner = redeem
    elif redeem is not None:
        raise ScriptMismatch(f"input {i} has a redeemScript but does not spend P2SH", input_index=i)
    if has_wu and not _is_witness_program(inner):
        raise WitnessUtxoForNonWitness(
            f"input {i} has a witness UTXO but spends a non-witness script", input_index=i
        )
    if _is_p2wsh(inner):
        if witness is None:
            raise ScriptMismatch(f"input {i} spends P2WSH but has no witnessScript", input_index=i)
        if _sha256(witness) != inner[2:]:
            raise ScriptMismatch(
                f"input {i}'s witnessScript does not match its script", input_index=i
            )
        kind_ = ScriptType.P2SH_P2WSH if inner is redeem else ScriptType.P2WSH
    elif witness is not None:
        raise ScriptMismatch(
            f"input {i} has a witnessScript but does not spend P2WSH", input_index=i
        )
    elif _is_p2wpkh(inner):
        kind_ = ScriptType.P2SH_P2WPKH if inner is redeem else ScriptType.P2WPKH
    elif _is_p2pkh(spk):
        kind_ = ScriptType.P2PKH
    elif _is_witness_program(inner) and inner[0] != 0:
        raise UnsupportedScript(f"input {i} spends a future segwit version", input_index=i)
    else:
        raise UnsupportedScript(f"input {i} spends an unsupported script type", input_index=i)
    return InputSpend(i, kind_, spk, out.amount, redeem, witness, has_prev)


def _sighash_name(kind: int) -> str:
    base = {1: "ALL", 2: "NONE", 3: "SINGLE"}.get(kind & 0x1F, "unknown")
    return "SIGHASH_" + base + ("|ANYONECANPAY" if kind & 0x80 else "")


def signer_checks(psbt: pp.Psbt) -> tuple[InputSpend, ...]:
    """BIP-174 signer checks and coldvault's per-input structural rules, for every input."""
    seen: dict[tuple[bytes, int], int] = {}
    for i, txin in enumerate(psbt.tx_inputs):
        first = seen.setdefault((txin.txid, txin.vout), i)
        if first != i:
            raise DuplicateInput(
                f"inputs {first} and {i} both spend {txin.txid_hex}:{txin.vout}", input_index=i
            )
    txs: dict[bytes, pp.Tx] = {}
    spends: list[InputSpend] = []
    unsupported: UnsupportedScript | None = None
    for i in range(len(psbt.inputs)):
        try:
            spends.append(_spend(psbt, i, txs))
        except UnsupportedScript as exc:  # report inconsistencies in later inputs first
            unsupported = unsupported or exc
    if unsupported is not None:
        raise unsupported
    return tuple(spends)


# --------------------------------------------------------------------------- sighash


class Sighasher:
    """SIGHASH_ALL digests for one transaction; BIP-143 midstates are computed once."""

    def __init__(self, psbt: pp.Psbt, locktime: int) -> None:
        self._version = psbt.tx_version.to_bytes(4, "little")
        self._locktime = locktime.to_bytes(4, "little")
        self._ins = psbt.tx_inputs
        self._prevouts = [t.txid + t.vout.to_bytes(4, "little") for t in self._ins]
        self._sequences = [t.sequence.to_bytes(4, "little") for t in self._ins]
        self._outputs = b"".join(o.serialize() for o in psbt.tx_outputs)
        self._n_outputs = pp.compact_size(len(psbt.tx_outputs))
        self.hash_prevouts = _sha256d(b"".join(self._prevouts))
        self.hash_sequence = _sha256d(b"".join(self._sequences))
        self.hash_outputs = _sha256d(self._outputs)
        self._legacy_empty: list[bytes] | None = None

    def segwit_v0(self, i: int, script_code: bytes, amount: int) -> bytes:
        """BIP-143 digest; ``script_code`` without its length prefix."""
        return _sha256d(
            self._version + self.hash_prevouts + self.hash_sequence + self._prevouts[i]
            + pp.compact_size(len(script_code)) + script_code + amount.to_bytes(8, "little")
            + self._sequences[i] + self.hash_outputs + self._locktime
            + SIGHASH_ALL.to_bytes(4, "little")
        )  # fmt: skip

    def legacy(self, i: int, script_code: bytes) -> bytes:
        """Original (pre-segwit) SIGHASH_ALL digest: O(tx size) per input by design."""
        if self._legacy_empty is None:
            self._legacy_empty = [
                p + b"\x00" + s for p, s in zip(self._prevouts, self._sequences, strict=True)
            ]
        ins = list(self._legacy_empty)
        ins[i] = (
            self._prevouts[i] + pp.compact_size(len(script_code)) + script_code + self._sequences[i]
        )
        return _sha256d(
            self._version + pp.compact_size(len(ins)) + b"".join(ins) + self._n_outputs
            + self._outputs + self._locktime + SIGHASH_ALL.to_bytes(4, "little")
        )  # fmt: skip


def _p2pkh_code(pubkey_hash: bytes) -> bytes:
    return b"\x76\xa9\x14" + pubkey_hash + b"\x88\xac"


def input_sighash(h: Sighasher, spend: InputSpend, pubkey: bytes) -> bytes:
    """The digest our key signs for ``spend``."""
    if spend.script_type is ScriptType.P2PKH:
        return h.legacy(spend.index, spend.script_pubkey)
    if spend.script_type in (ScriptType.P2WPKH, ScriptType.P2SH_P2WPKH):
        return h.segwit_v0(spend.index, _p2pkh_code(_hash160(pubkey)), spend.amount)
    if spend.witness_script is None:
        raise ValueError("P2WSH spend without witness script")
    return h.segwit_v0(spend.index, spend.witness_script, spend.amount)


# --------------------------------------------------------------------------- size estimate

#: A low-S DER signature is 70 bytes except when r needs 33 bytes (~half the time): the
#: estimate uses 71 (70 + sighash byte), so fee_rate errs high by at most ~1 vB per signature.
SIG_BYTES = 71


def _multisig_m(witness_script: bytes) -> int:
    op = witness_script[0] if witness_script else 0
    return op - 0x50 if 0x51 <= op <= 0x60 else 1


def estimate_vsize(psbt: pp.Psbt, spends: Sequence[InputSpend]) -> int:
    """Virtual size of the fully signed transaction (see SIG_BYTES)."""
    base = 4 + 4 + len(pp.compact_size(len(spends))) + len(pp.compact_size(len(psbt.tx_outputs)))
    base += sum(len(o.serialize()) for o in psbt.tx_outputs)
    witness = 0
    segwit = any(s.segwit for s in spends)
    for s in spends:
        script_sig = {
            ScriptType.P2PKH: 1 + SIG_BYTES + 1 + 33,
            ScriptType.P2SH_P2WPKH: 1 + 22,
            ScriptType.P2SH_P2WSH: 1 + 34,
        }.get(s.script_type, 0)
        base += 32 + 4 + 4 + len(pp.compact_size(script_sig)) + script_sig
        if s.script_type in (ScriptType.P2WPKH, ScriptType.P2SH_P2WPKH):
            witness += 1 + 1 + SIG_BYTES + 1 + 33
        elif s.witness_script is not None:
            ws, m = s.witness_script, _multisig_m(s.witness_script)
            witness += 1 + 1 + m * (1 + SIG_BYTES) + len(pp.compact_size(len(ws))) + len(ws)
        elif segwit:
            witness += 1
    weight = 4 * base + (2 + witness if segwit else 0)
    return (weight + 3) // 4


# --------------------------------------------------------------------------- wallet matching


@dataclass(frozen=True)
class _Ours:
    spend: InputSpend
    derived: Derived


def _path(value: bytes) -> tuple[int, ...]:
    return tuple(int.from_bytes(value[j : j + 4], "little") for j in range(4, len(value), 4))


def _wallet_scripts(psbt: pp.Psbt, wallets: Mapping[str, Wallet]) -> list[WalletScripts]:
    fps = {f.value[:4].hex() for m in psbt.inputs for f in m.all(pp.IN_BIP32_DERIVATION)}
    out = []
    for w in wallets.values():
        if w.chain is Chain.BITCOIN and w.master_fingerprint.lower() in fps:
            out.append(WalletScripts(w))
    return out


def _match_input(
    spend: InputSpend, m: pp.KvMap, scripts: list[WalletScripts]
) -> list[tuple[WalletScripts, _Ours]]:
    i, found = spend.index, []
    for ws in scripts:
        for f in m.all(pp.IN_BIP32_DERIVATION):
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
            found.append((ws, _Ours(spend, derived)))
    return found


def _assign_wallet(
    psbt: pp.Psbt, spends: Sequence[InputSpend], wallets: Mapping[str, Wallet]
) -> tuple[WalletScripts, list[_Ours]]:
    scripts = _wallet_scripts(psbt, wallets)
    chosen: WalletScripts | None = None
    ours: list[_Ours] = []
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


def _classify_output(i: int, out: pp.TxOut, m: pp.KvMap, ws: WalletScripts) -> Derived | None:
    claims = [
        (f, _path(f.value))
        for f in m.all(pp.OUT_BIP32_DERIVATION)
        if f.value[:4] == ws.fingerprint and ws.under_account(_path(f.value))
    ]
    derived = None
    for _f, path in claims:
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


def _key_job(
    ours: _Ours, ws: WalletScripts, lookup_key: Callable[[bytes], KeyInfo | None]
) -> bytes:
    i, d = ours.spend.index, ours.derived
    key_id = derived_key_id(ws.fingerprint, d.our_path)
    info = lookup_key(key_id)
    where = f"{ws.wallet.master_fingerprint}/{path_to_str(d.our_path, prefix='')}"
    if info is None:
        raise KeyNotHeld(f"the HSM holds no key {where} needed by input {i}", input_index=i)
    if info.algorithm is not KeyAlgorithm.SECP256K1 or info.public_key != d.our_pubkey:
        raise KeyNotHeld(
            f"the HSM key {where} has a different public key than the one input {i} needs",
            input_index=i,
        )
    return key_id


def prepare_psbt(
    data: bytes | str,
    *,
    wallets: Mapping[str, Wallet],
    lookup_key: Callable[[bytes], KeyInfo | None],
    request_digest: bytes | None = None,
    limits: pp.Limits = pp.DEFAULT_LIMITS,
) -> PreparedRequest:
    """Parse, check and plan a PSBT signing request (see docs/psbt.md for every check)."""
    raw_request = data.encode() if isinstance(data, str) else bytes(data)
    psbt = pp.parse_psbt(data, limits=limits)
    if not psbt.inputs:
        raise NothingToSign("the PSBT has no inputs, so there is nothing to sign")
    locktime = determine_locktime(psbt)
    spends = signer_checks(psbt)
    ws, ours = _assign_wallet(psbt, spends, wallets)
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
        if psbt.inputs[i].get(pp.IN_PARTIAL_SIG, pubkey) is not None:
            raise AlreadySigned(f"input {i} already has our signature", input_index=i)
        key_id = _key_job(o, ws, lookup_key)
        digest = input_sighash(hasher, o.spend, pubkey)
        jobs.append(SignJob(key_id, KeyAlgorithm.SECP256K1, digest, f"input {i}"))
        plans.append(SignPlan(i, pubkey, digest))

    movements: list[Movement] = []
    for i, (out, m) in enumerate(zip(psbt.tx_outputs, psbt.outputs, strict=True)):
        derived = _classify_output(i, out, m, ws)
        dest = address(out.script, wallet.network)
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
        ("input total", f"{total_in} sat"),
        ("estimated vsize", f"{vsize} vB"),
        ("replaceable (BIP-125)", "yes" if rbf else "no"),
    ]
    if not psbt.tx_outputs:
        warnings.append("the transaction has no outputs: the whole input total goes to the fee")
    modifiable = psbt.globals.get(pp.G_TX_MODIFIABLE)
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
        request_digest=request_digest or _sha256(raw_request),
    )
    frozen_plans = tuple(plans)

    def finish(signatures: Sequence[object]) -> bytes:
        return finish_psbt(psbt, frozen_plans, signatures)

    return PreparedRequest(review, tuple(jobs), finish, response_type="crypto-psbt")


def finish_psbt(psbt: pp.Psbt, plans: Sequence[SignPlan], signatures: Sequence[object]) -> bytes:
    """Verify each signature and add it as PSBT_IN_PARTIAL_SIG; every other byte is kept."""
    if len(signatures) != len(plans):
        raise ValueError(f"expected {len(plans)} signatures, got {len(signatures)}")
    inputs = list(psbt.inputs)
    for plan, sig in zip(plans, signatures, strict=True):
        if not isinstance(sig, EcdsaSignature):
            raise TypeError("PSBT signatures must be EcdsaSignature objects")
        if not (0 < sig.r < _SECP256K1_N and 0 < sig.s <= _SECP256K1_N // 2):
            raise BadHsmSignature(
                f"the signature for input {plan.input} is out of range or high-S."
            )
        if not PublicKey(plan.pubkey).verify(sig.der, plan.sighash, hasher=None):
            raise BadHsmSignature(
                f"the signature for input {plan.input} does not verify against its key and"
                " sighash; nothing was inserted."
            )
        inputs[plan.input] = inputs[plan.input].with_field(
            pp.IN_PARTIAL_SIG, plan.pubkey, sig.der + b"\x01"
        )
    out = dataclasses.replace(psbt, inputs=tuple(inputs))
    return out.serialize()
