"""BIP-174 signer checks: what each input spends (script type, amount, scripts), proven.

Also the script-template predicates and the address shown for an output script.
"""

from __future__ import annotations

from dataclasses import dataclass

from embit.base import EmbitError
from embit.networks import NETWORKS
from embit.script import Script

from coldvault.crypto.hashes import hash160, sha256
from coldvault.requests.bitcoin import parse as pp
from coldvault.requests.bitcoin.errors import (
    AlreadyFinalized,
    DuplicateInput,
    PsbtBadValue,
    PsbtError,
    ScriptMismatch,
    SighashRefused,
    UnsupportedScript,
    UtxoDisagrees,
    UtxoMissing,
    UtxoTxidMismatch,
    WitnessUtxoForNonWitness,
)
from coldvault.requests.bitcoin.maps import (
    IN_FINAL_SCRIPTSIG,
    IN_FINAL_SCRIPTWITNESS,
    IN_NON_WITNESS_UTXO,
    IN_REDEEM_SCRIPT,
    IN_SIGHASH_TYPE,
    IN_TAPROOT_TYPES,
    IN_WITNESS_SCRIPT,
    IN_WITNESS_UTXO,
)
from coldvault.requests.bitcoin.tx import Tx, TxOut, compact_size, parse_output, parse_tx
from coldvault.requests.bitcoin.wallet import ScriptType, TaprootRefused

SIGHASH_ALL = 1


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


def _utxo(psbt: pp.Psbt, i: int, txs: dict[bytes, Tx]) -> tuple[TxOut, bool]:
    m, txin = psbt.inputs[i], psbt.tx_inputs[i]
    nwu, wu_raw = m.get(IN_NON_WITNESS_UTXO), m.get(IN_WITNESS_UTXO)
    wu = parse_output(wu_raw, "witness utxo") if wu_raw is not None else None
    if nwu is None:
        if wu is None:
            raise UtxoMissing(
                f"input {i} carries no UTXO, so its amount is not proven", input_index=i
            )
        return wu, False
    prev = txs.get(nwu)
    if prev is None:
        try:
            prev = parse_tx(nwu, what=f"input {i} previous transaction", allow_witness=True)
        except PsbtError as exc:
            raise PsbtBadValue(exc.detail, field="PSBT_IN_NON_WITNESS_UTXO") from exc
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
        raise UtxoDisagrees(_utxo_difference(i, wu, out), input_index=i)
    return out, True


def _utxo_difference(i: int, wu: TxOut, out: TxOut) -> str:
    """The refusal for a witness UTXO that is not the previous transaction's output."""
    if wu.amount != out.amount:
        what = (
            f"amount ({wu.amount} sat) differs from the previous transaction's output"
            f" ({out.amount} sat): refusing (the 2020 segwit fee attack)"
        )
    else:
        what = (
            f"script ({wu.script.hex()}) differs from the previous transaction's output script"
            f" ({out.script.hex()}); the amounts agree ({out.amount} sat): refusing, the"
            " coordinator describes a coin this input does not spend"
        )
    return f"input {i}'s witness UTXO {what}"


def _spend(psbt: pp.Psbt, i: int, txs: dict[bytes, Tx]) -> InputSpend:
    m = psbt.inputs[i]
    if any(f.key_type in IN_TAPROOT_TYPES for f in m.fields):
        raise TaprootRefused(f"Input {i}")
    sighash = m.get(IN_SIGHASH_TYPE)
    if sighash is not None and int.from_bytes(sighash, "little") != SIGHASH_ALL:
        kind = int.from_bytes(sighash, "little")
        raise SighashRefused(
            f"input {i} asks for sighash type {kind:#x} ({_sighash_name(kind)}); only SIGHASH_ALL"
            " (0x1) is signed",
            input_index=i,
        )
    if m.has(IN_FINAL_SCRIPTSIG) or m.has(IN_FINAL_SCRIPTWITNESS):
        raise AlreadyFinalized(f"input {i} is already finalized", input_index=i)
    out, has_prev = _utxo(psbt, i, txs)
    spk, has_wu = out.script, m.get(IN_WITNESS_UTXO) is not None
    redeem, witness = m.get(IN_REDEEM_SCRIPT), m.get(IN_WITNESS_SCRIPT)
    if _is_taproot(spk):
        raise TaprootRefused(f"Input {i}")
    inner = spk
    if _is_p2sh(spk):
        if redeem is None:
            raise ScriptMismatch(f"input {i} spends P2SH but has no redeemScript", input_index=i)
        if hash160(redeem) != spk[2:22]:
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
        if sha256(witness) != inner[2:]:
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


#: The sighash types Bitcoin defines for ECDSA (BIP-143 and legacy); 0x00 only in taproot.
_SIGHASH_NAMES = {
    0x00: "SIGHASH_DEFAULT, defined for taproot only",
    0x01: "SIGHASH_ALL",
    0x02: "SIGHASH_NONE",
    0x03: "SIGHASH_SINGLE",
    0x81: "SIGHASH_ALL|ANYONECANPAY",
    0x82: "SIGHASH_NONE|ANYONECANPAY",
    0x83: "SIGHASH_SINGLE|ANYONECANPAY",
}


def _sighash_name(kind: int) -> str:
    """What a sighash type means; an undefined value is said to be undefined, never rounded
    to the defined type its low bits resemble (0x41 is not SIGHASH_ALL)."""
    name = _SIGHASH_NAMES.get(kind)
    if name is not None:
        return name
    if kind & 0x40 and kind & ~0xC0 in (1, 2, 3):
        return "not a Bitcoin sighash type: the 0x40 bit is SIGHASH_FORKID of Bitcoin Cash"
    return "not a defined Bitcoin sighash type"


# --------------------------------------------------------------------------- dust

#: Bitcoin Core's default dust relay fee, sat per 1000 vbytes (policy.h DUST_RELAY_TX_FEE).
DUST_RELAY_FEE = 3000


def dust_threshold(script: bytes) -> int:
    """Smallest amount Bitcoin Core relays for an output paying ``script`` (policy.cpp
    ``GetDustThreshold``): the output plus the input that would spend it, at the dust relay
    fee. 0 for an unspendable (OP_RETURN) output."""
    if script[:1] == b"\x6a":
        return 0
    size = 8 + len(compact_size(len(script))) + len(script)
    # spending input: outpoint 36 + script length 1 + sequence 4 + scriptSig or witness
    size += 32 + 4 + 1 + 4 + (107 // 4 if _is_witness_program(script) else 107)
    return size * DUST_RELAY_FEE // 1000


def signer_checks(psbt: pp.Psbt) -> tuple[InputSpend, ...]:
    """BIP-174 signer checks and coldvault's per-input structural rules, for every input."""
    seen: dict[tuple[bytes, int], int] = {}
    for i, txin in enumerate(psbt.tx_inputs):
        first = seen.setdefault((txin.txid, txin.vout), i)
        if first != i:
            raise DuplicateInput(
                f"inputs {first} and {i} both spend {txin.txid_hex}:{txin.vout}", input_index=i
            )
    txs: dict[bytes, Tx] = {}
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
