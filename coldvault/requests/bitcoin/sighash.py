"""What our signatures commit to and cost: SIGHASH_ALL digests and the signed-size estimate.

BIP-143 for segwit v0 (hashPrevouts/hashSequence/hashOutputs computed once per request) and
the original algorithm for P2PKH, so the cost per segwit input is flat.
"""

from __future__ import annotations

from collections.abc import Sequence

from coldvault.crypto.hashes import hash160, sha256d
from coldvault.requests.bitcoin import parse as pp
from coldvault.requests.bitcoin.checks import SIGHASH_ALL, InputSpend
from coldvault.requests.bitcoin.tx import compact_size
from coldvault.requests.bitcoin.wallet import ScriptType


class Sighasher:
    """SIGHASH_ALL digests for one transaction; BIP-143 midstates are computed once."""

    def __init__(self, psbt: pp.Psbt, locktime: int) -> None:
        self._version = psbt.tx_version.to_bytes(4, "little")
        self._locktime = locktime.to_bytes(4, "little")
        self._ins = psbt.tx_inputs
        self._prevouts = [t.txid + t.vout.to_bytes(4, "little") for t in self._ins]
        self._sequences = [t.sequence.to_bytes(4, "little") for t in self._ins]
        self._outputs = b"".join(o.serialize() for o in psbt.tx_outputs)
        self._n_outputs = compact_size(len(psbt.tx_outputs))
        self.hash_prevouts = sha256d(b"".join(self._prevouts))
        self.hash_sequence = sha256d(b"".join(self._sequences))
        self.hash_outputs = sha256d(self._outputs)
        self._legacy_empty: list[bytes] | None = None

    def segwit_v0(self, i: int, script_code: bytes, amount: int) -> bytes:
        """BIP-143 digest; ``script_code`` without its length prefix."""
        return sha256d(
            self._version + self.hash_prevouts + self.hash_sequence + self._prevouts[i]
            + compact_size(len(script_code)) + script_code + amount.to_bytes(8, "little")
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
            self._prevouts[i] + compact_size(len(script_code)) + script_code + self._sequences[i]
        )
        return sha256d(
            self._version + compact_size(len(ins)) + b"".join(ins) + self._n_outputs
            + self._outputs + self._locktime + SIGHASH_ALL.to_bytes(4, "little")
        )  # fmt: skip


def _p2pkh_code(pubkey_hash: bytes) -> bytes:
    return b"\x76\xa9\x14" + pubkey_hash + b"\x88\xac"


def input_sighash(h: Sighasher, spend: InputSpend, pubkey: bytes) -> bytes:
    """The digest our key signs for ``spend``."""
    if spend.script_type is ScriptType.P2PKH:
        return h.legacy(spend.index, spend.script_pubkey)
    if spend.script_type in (ScriptType.P2WPKH, ScriptType.P2SH_P2WPKH):
        return h.segwit_v0(spend.index, _p2pkh_code(hash160(pubkey)), spend.amount)
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
    base = 4 + 4 + len(compact_size(len(spends))) + len(compact_size(len(psbt.tx_outputs)))
    base += sum(len(o.serialize()) for o in psbt.tx_outputs)
    witness = 0
    segwit = any(s.segwit for s in spends)
    for s in spends:
        script_sig = {
            ScriptType.P2PKH: 1 + SIG_BYTES + 1 + 33,
            ScriptType.P2SH_P2WPKH: 1 + 22,
            ScriptType.P2SH_P2WSH: 1 + 34,
        }.get(s.script_type, 0)
        base += 32 + 4 + 4 + len(compact_size(script_sig)) + script_sig
        if s.script_type in (ScriptType.P2WPKH, ScriptType.P2SH_P2WPKH):
            witness += 1 + 1 + SIG_BYTES + 1 + 33
        elif s.witness_script is not None:
            ws, m = s.witness_script, _multisig_m(s.witness_script)
            witness += 1 + 1 + m * (1 + SIG_BYTES) + len(compact_size(len(ws))) + len(ws)
        elif segwit:
            witness += 1
    weight = 4 * base + (2 + witness if segwit else 0)
    return (weight + 3) // 4
