"""Bounded PSBT pre-parser (BIP-174 v0 and BIP-370 v2).

Untrusted PSBT bytes are parsed here, with explicit limits, into frozen maps of raw
key/value pairs *before* any other library sees them. The parser

* accepts binary (``psbt\\xff`` magic) or base64 text, at most ``Limits.max_bytes``;
* insists on canonical compact sizes, bounded key lengths and input/output counts;
* refuses duplicate keys, malformed typed keys and values of known types;
* enforces each version's required and forbidden fields (v0 forbids v2 fields and vice
  versa), empty scriptSigs in a v0 unsigned transaction and BIP-370 locktime ranges;
* keeps every field (unknown ones included) byte-exact, in order, so that
  :meth:`Psbt.serialize` reproduces the input byte for byte.

Errors are :class:`PsbtError` subclasses carrying the field name and byte offset
(:mod:`~coldvault.requests.bitcoin.errors`).  Transactions are read by
:mod:`~coldvault.requests.bitcoin.tx`, key/value maps by :mod:`~coldvault.requests.bitcoin.maps`;
this module re-exports both and assembles the :class:`Psbt`.
"""


from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from coldvault.requests.bitcoin.errors import (
    PsbtBadLocktime,
    PsbtBadValue,
    PsbtError,
    PsbtMissingField,
    PsbtNotPsbt,
    PsbtTooLarge,
    PsbtTruncated,
    PsbtUnsignedTxNotEmpty,
    PsbtUnsupportedVersion,
)
from coldvault.requests.bitcoin.maps import (
    DEFAULT_LIMITS,
    G_INPUT_COUNT,
    G_OUTPUT_COUNT,
    G_TX_VERSION,
    G_UNSIGNED_TX,
    G_VERSION,
    GLOBAL_SPECS,
    IN_OUTPUT_INDEX,
    IN_PREVIOUS_TXID,
    IN_REQUIRED_HEIGHT_LOCKTIME,
    IN_REQUIRED_TIME_LOCKTIME,
    IN_SEQUENCE,
    INPUT_SPECS,
    OUT_AMOUNT,
    OUT_SCRIPT,
    OUTPUT_SPECS,
    KvMap,
    Limits,
    check_map,
    read_map,
)
from coldvault.requests.bitcoin.tx import (
    MAX_MONEY,
    Reader,
    Tx,
    TxIn,
    TxOut,
    parse_tx,
)

__all__ = [
    "LOCKTIME_THRESHOLD",
    "MAGIC",
    "Psbt",
    "decode_text",
    "parse_psbt",
]

MAGIC = b"psbt\xff"
#: Lowest value of ``nLockTime``/``PSBT_IN_REQUIRED_TIME_LOCKTIME`` that means a timestamp.
LOCKTIME_THRESHOLD = 500_000_000


def _u32(value: bytes) -> int:
    return int.from_bytes(value, "little")


# --------------------------------------------------------------------------- the PSBT


@dataclass(frozen=True)
class Psbt:
    """A structurally valid PSBT: raw maps plus the transaction skeleton they describe."""

    version: int
    globals: KvMap
    inputs: tuple[KvMap, ...]
    outputs: tuple[KvMap, ...]
    tx_version: int
    #: prevout + sequence of each input (v0: from the unsigned tx; v2: from the input maps)
    tx_inputs: tuple[TxIn, ...]
    tx_outputs: tuple[TxOut, ...]
    #: v0: the unsigned tx's nLockTime; v2: None (see :func:`psbt_v2.determine_locktime`)
    v0_locktime: int | None

    def serialize(self) -> bytes:
        parts = [MAGIC, self.globals.serialize()]
        parts += [m.serialize() for m in self.inputs]
        parts += [m.serialize() for m in self.outputs]
        return b"".join(parts)


def decode_text(data: bytes | str, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Binary PSBT bytes from binary or base64 input (bounded before decoding)."""
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        if raw.startswith(MAGIC):
            if len(raw) > limits.max_bytes:
                raise PsbtTooLarge(
                    f"PSBT is {len(raw)} bytes, more than the limit of {limits.max_bytes}"
                )
            return raw
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise PsbtNotPsbt(
                "data is not a PSBT: no psbt magic and not base64 text", offset=0
            ) from exc
    elif isinstance(data, str):
        text = data
    else:
        raise TypeError("PSBT must be bytes or str")
    text = "".join(text.split())
    if len(text) > (limits.max_bytes + 2) // 3 * 4:
        raise PsbtTooLarge(f"PSBT text is {len(text)} characters, more than the limit allows")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PsbtNotPsbt(
            "data is not a PSBT: no psbt magic and not valid base64", offset=0
        ) from exc
    if not raw.startswith(MAGIC):
        raise PsbtNotPsbt(
            "data is not a PSBT: it does not start with the psbt magic bytes", offset=0
        )
    if len(raw) > limits.max_bytes:
        raise PsbtTooLarge(f"PSBT is {len(raw)} bytes, more than the limit of {limits.max_bytes}")
    return raw


def parse_psbt(data: bytes | str, *, limits: Limits = DEFAULT_LIMITS) -> Psbt:
    """Parse and structurally validate a PSBT (binary or base64). Raises :class:`PsbtError`."""
    raw = decode_text(data, limits)
    r = Reader(raw, pos=len(MAGIC), what="global map")
    gmap = read_map(r, limits, "global map")
    version_raw = gmap.get(G_VERSION)
    if version_raw is not None and len(version_raw) != 4:
        raise PsbtBadValue("PSBT_GLOBAL_VERSION must be 4 bytes", field="PSBT_GLOBAL_VERSION")
    version = 0 if version_raw is None else _u32(version_raw)
    if version not in (0, 2):
        raise PsbtUnsupportedVersion(f"PSBT version {version} is not supported (only 0 and 2)")
    check_map(gmap, GLOBAL_SPECS, version, "global map")

    if version == 0:
        utx_raw = gmap.get(G_UNSIGNED_TX)
        if utx_raw is None:
            raise PsbtMissingField(
                "PSBT v0 has no unsigned transaction", field="PSBT_GLOBAL_UNSIGNED_TX"
            )
        utx = _parse_unsigned_tx(utx_raw, gmap)
        n_in, n_out = len(utx.inputs), len(utx.outputs)
        _bound_counts(n_in, n_out, limits)
        tx_version, locktime = utx.version, utx.locktime
    else:
        for t in (G_TX_VERSION, G_INPUT_COUNT, G_OUTPUT_COUNT):
            name = GLOBAL_SPECS[t].name
            if gmap.get(t) is None:
                raise PsbtMissingField(f"PSBT v2 has no {name}", field=name)
        n_in = Reader(gmap.get(G_INPUT_COUNT) or b"").compact("input count")
        n_out = Reader(gmap.get(G_OUTPUT_COUNT) or b"").compact("output count")
        _bound_counts(n_in, n_out, limits)
        tx_version, locktime = _u32(gmap.get(G_TX_VERSION) or b""), None

    inputs = []
    for i in range(n_in):
        r.what = f"input {i}"
        m = read_map(r, limits, f"input {i}")
        check_map(m, INPUT_SPECS, version, f"input {i}")
        inputs.append(m)
    outputs = []
    for i in range(n_out):
        r.what = f"output {i}"
        m = read_map(r, limits, f"output {i}")
        check_map(m, OUTPUT_SPECS, version, f"output {i}")
        outputs.append(m)
    if r.remaining():
        raise PsbtTruncated(
            f"PSBT has {r.remaining()} unexpected bytes after its last map", offset=r.pos
        )

    if version == 0:
        tx_inputs, tx_outputs = utx.inputs, utx.outputs
    else:
        tx_inputs, tx_outputs = _v2_skeleton(inputs, outputs)
    return Psbt(
        version, gmap, tuple(inputs), tuple(outputs), tx_version, tx_inputs, tx_outputs, locktime
    )


def _bound_counts(n_in: int, n_out: int, limits: Limits) -> None:
    if n_in > limits.max_inputs:
        raise PsbtTooLarge(f"PSBT has {n_in} inputs, more than the limit of {limits.max_inputs}")
    if n_out > limits.max_outputs:
        raise PsbtTooLarge(f"PSBT has {n_out} outputs, more than the limit of {limits.max_outputs}")


def _parse_unsigned_tx(utx_raw: bytes, gmap: KvMap) -> Tx:
    name = "PSBT_GLOBAL_UNSIGNED_TX"
    offset = next(f.offset for f in gmap.fields if f.key_type == G_UNSIGNED_TX)
    try:
        utx = parse_tx(
            utx_raw, what="unsigned transaction", allow_witness=False, base_offset=offset
        )
    except PsbtError as exc:
        try:
            witness_form = parse_tx(
                utx_raw, what="unsigned transaction", allow_witness=True
            ).has_witness
        except PsbtError:
            witness_form = False
        if witness_form:
            raise PsbtUnsignedTxNotEmpty(
                "the unsigned transaction uses the witness serialisation", field=name, offset=offset
            ) from exc
        raise PsbtBadValue(
            f"the unsigned transaction is malformed: {exc.detail}", field=name, offset=offset
        ) from exc
    for i, txin in enumerate(utx.inputs):
        if txin.script_sig:
            raise PsbtUnsignedTxNotEmpty(
                f"unsigned transaction input {i} has a scriptSig", field=name, offset=offset
            )
    return utx


def _v2_skeleton(
    inputs: list[KvMap], outputs: list[KvMap]
) -> tuple[tuple[TxIn, ...], tuple[TxOut, ...]]:
    tx_inputs = []
    for i, m in enumerate(inputs):
        txid, vout = m.get(IN_PREVIOUS_TXID), m.get(IN_OUTPUT_INDEX)
        if txid is None:
            raise PsbtMissingField(
                f"PSBT v2 input {i} has no previous txid", field="PSBT_IN_PREVIOUS_TXID"
            )
        if vout is None:
            raise PsbtMissingField(
                f"PSBT v2 input {i} has no output index", field="PSBT_IN_OUTPUT_INDEX"
            )
        seq = m.get(IN_SEQUENCE)
        t = m.get(IN_REQUIRED_TIME_LOCKTIME)
        if t is not None and _u32(t) < LOCKTIME_THRESHOLD:
            raise PsbtBadLocktime(
                f"input {i} PSBT_IN_REQUIRED_TIME_LOCKTIME {_u32(t)} is below {LOCKTIME_THRESHOLD}",
                field="PSBT_IN_REQUIRED_TIME_LOCKTIME",
            )
        h = m.get(IN_REQUIRED_HEIGHT_LOCKTIME)
        if h is not None and not 0 < _u32(h) < LOCKTIME_THRESHOLD:
            raise PsbtBadLocktime(
                f"input {i} PSBT_IN_REQUIRED_HEIGHT_LOCKTIME {_u32(h)} is not a block height"
                f" (1..{LOCKTIME_THRESHOLD - 1})",
                field="PSBT_IN_REQUIRED_HEIGHT_LOCKTIME",
            )
        tx_inputs.append(TxIn(txid, _u32(vout), 0xFFFF_FFFF if seq is None else _u32(seq)))
    tx_outputs = []
    for i, m in enumerate(outputs):
        amount, script = m.get(OUT_AMOUNT), m.get(OUT_SCRIPT)
        if amount is None:
            raise PsbtMissingField(f"PSBT v2 output {i} has no amount", field="PSBT_OUT_AMOUNT")
        if script is None:
            raise PsbtMissingField(f"PSBT v2 output {i} has no script", field="PSBT_OUT_SCRIPT")
        value = int.from_bytes(amount, "little", signed=True)
        if not 0 <= value <= MAX_MONEY:
            raise PsbtBadValue(
                f"output {i} amount {value} is outside 0..21e14 sat", field="PSBT_OUT_AMOUNT"
            )
        tx_outputs.append(TxOut(value, script))
    return tuple(tx_inputs), tuple(tx_outputs)
