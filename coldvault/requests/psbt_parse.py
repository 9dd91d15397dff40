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

Errors are :class:`PsbtError` subclasses carrying the field name and byte offset.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from coldvault.errors import InputError

MAGIC = b"psbt\xff"
MAX_MONEY = 21_000_000 * 100_000_000
#: Lowest value of ``nLockTime``/``PSBT_IN_REQUIRED_TIME_LOCKTIME`` that means a timestamp.
LOCKTIME_THRESHOLD = 500_000_000


@dataclass(frozen=True)
class Limits:
    """Parser bounds; the defaults suit the appliance (QR transport, 5000-input sweeps)."""

    max_bytes: int = 4_000_000
    max_inputs: int = 5000
    max_outputs: int = 5000
    max_key_bytes: int = 8192
    max_fields_per_map: int = 10_000
    max_path_depth: int = 255
    max_witness_items: int = 10_000


DEFAULT_LIMITS = Limits()


# --------------------------------------------------------------------------- errors


class PsbtError(InputError):
    """A PSBT is malformed; ``field`` names where and ``offset`` is the byte offset."""

    code = "psbt"

    def __init__(self, message: str, *, field: str = "", offset: int | None = None) -> None:
        where = f" (field {field}" if field else ""
        if offset is not None:
            where += f", byte {offset})" if where else f" (byte {offset})"
        elif where:
            where += ")"
        super().__init__(message.rstrip(".") + where + ".")
        self.detail = message.rstrip(".")
        self.field = field
        self.offset = offset


class PsbtNotPsbt(PsbtError):
    """The data is neither a binary PSBT nor base64 text of one."""


class PsbtTooLarge(PsbtError):
    """A size or count exceeds the configured :class:`Limits`."""


class PsbtTruncated(PsbtError):
    """The data ends before the structure it announces (or has bytes after it)."""


class PsbtNonCanonical(PsbtError):
    """A compact size is not minimally encoded."""


class PsbtDuplicateKey(PsbtError):
    """The same key appears twice in one map."""


class PsbtBadKey(PsbtError):
    """A key of a known type has key data of the wrong form (e.g. a bad pubkey length)."""


class PsbtBadValue(PsbtError):
    """A value of a known type is malformed (wrong length, unparsable transaction, ...)."""


class PsbtUnsupportedVersion(PsbtError):
    """``PSBT_GLOBAL_VERSION`` is neither 0 nor 2."""


class PsbtFieldNotAllowed(PsbtError):
    """A field belongs to the other PSBT version (v0 vs v2)."""


class PsbtMissingField(PsbtError):
    """A field this PSBT version requires is absent."""


class PsbtUnsignedTxNotEmpty(PsbtError):
    """The v0 unsigned transaction has a scriptSig or witness, or witness serialisation."""


class PsbtBadLocktime(PsbtBadValue):
    """A BIP-370 locktime field is out of its range."""


# --------------------------------------------------------------------------- reader


class _Reader:
    __slots__ = ("data", "pos", "end", "what")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None, what: str = "") -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end
        self.what = what

    def remaining(self) -> int:
        return self.end - self.pos

    def read(self, n: int, what: str) -> bytes:
        if n > self.end - self.pos:
            raise PsbtTruncated(
                f"{what} needs {n} bytes but only {self.end - self.pos} remain",
                field=self.what,
                offset=self.pos,
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u32(self, what: str) -> int:
        return int.from_bytes(self.read(4, what), "little")

    def compact(self, what: str) -> int:
        start = self.pos
        first = self.read(1, what)[0]
        if first < 0xFD:
            return first
        size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
        value = int.from_bytes(self.read(size, what), "little")
        if value < {2: 0xFD, 4: 0x1_0000, 8: 0x1_0000_0000}[size]:
            raise PsbtNonCanonical(
                f"{what} is a non-minimal compact size", field=self.what, offset=start
            )
        return value


def compact_size(n: int) -> bytes:
    """Canonical compact-size encoding of ``n``."""
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFF_FFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def _sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


# --------------------------------------------------------------------------- transactions


@dataclass(frozen=True)
class TxIn:
    txid: bytes  # internal byte order (as serialised)
    vout: int
    sequence: int
    script_sig: bytes = b""

    @property
    def txid_hex(self) -> str:
        return self.txid[::-1].hex()


@dataclass(frozen=True)
class TxOut:
    amount: int
    script: bytes

    def serialize(self) -> bytes:
        return self.amount.to_bytes(8, "little") + compact_size(len(self.script)) + self.script


@dataclass(frozen=True)
class Tx:
    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    locktime: int
    txid: bytes  # internal byte order
    has_witness: bool


def read_output(r: _Reader, what: str) -> TxOut:
    start = r.pos
    amount = int.from_bytes(r.read(8, what + " amount"), "little", signed=True)
    if not 0 <= amount <= MAX_MONEY:
        raise PsbtBadValue(
            f"{what} amount {amount} is outside 0..21e14 sat", field=r.what, offset=start
        )
    script = r.read(r.compact(what + " script length"), what + " script")
    return TxOut(amount, script)


def parse_output(value: bytes, what: str = "output") -> TxOut:
    """One serialised output (amount + script) that must use every byte of ``value``."""
    r = _Reader(value, what=what)
    out = read_output(r, what)
    if r.remaining():
        raise PsbtBadValue(f"{what} has {r.remaining()} bytes after its end", field=what)
    return out


def parse_tx(data: bytes, *, what: str, allow_witness: bool, base_offset: int = 0) -> Tx:
    """Parse a whole serialised transaction (every byte must be used)."""
    r = _Reader(data, what=what)
    version = r.u32("tx version")
    has_witness = False
    if allow_witness and data[4:6] == b"\x00\x01":
        has_witness = True
        r.pos += 2
    body_start = r.pos
    n_in = r.compact("input count")
    if n_in > r.remaining() // 41:
        raise PsbtTooLarge(
            f"{what} claims {n_in} inputs, more than its size allows",
            field=what,
            offset=base_offset,
        )
    ins = []
    for _ in range(n_in):
        txid = r.read(32, "prevout txid")
        vout = r.u32("prevout index")
        script_sig = r.read(r.compact("scriptSig length"), "scriptSig")
        ins.append(TxIn(txid, vout, r.u32("sequence"), script_sig))
    n_out = r.compact("output count")
    if n_out > r.remaining() // 9:
        raise PsbtTooLarge(
            f"{what} claims {n_out} outputs, more than its size allows",
            field=what,
            offset=base_offset,
        )
    outs = tuple(read_output(r, f"output {i}") for i in range(n_out))
    body_end = r.pos
    if has_witness:
        for _ in range(n_in):
            for _ in range(r.compact("witness item count")):
                r.read(r.compact("witness item length"), "witness item")
    locktime = r.u32("locktime")
    if r.remaining():
        raise PsbtBadValue(
            f"{what} has {r.remaining()} bytes after its end",
            field=what,
            offset=base_offset + r.pos,
        )
    txid = (
        _sha256d(data[:4] + data[body_start:body_end] + data[-4:])
        if has_witness
        else _sha256d(data)
    )
    return Tx(version, tuple(ins), outs, locktime, txid, has_witness)


# --------------------------------------------------------------------------- maps


@dataclass(frozen=True)
class Field:
    """One key/value pair, kept byte-exact. ``key`` includes the compact-size key type."""

    key_type: int
    key_data: bytes
    key: bytes
    value: bytes
    offset: int = field(default=-1, compare=False)


@dataclass(frozen=True)
class KvMap:
    """A PSBT map: its fields in their original order."""

    fields: tuple[Field, ...]
    _index: dict[bytes, Field] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self._index:
            self._index.update((f.key, f) for f in self.fields)

    def get(self, key_type: int, key_data: bytes = b"") -> bytes | None:
        f = self._index.get(compact_size(key_type) + key_data)
        return None if f is None else f.value

    def all(self, key_type: int) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.key_type == key_type)

    def has(self, key_type: int) -> bool:
        return any(f.key_type == key_type for f in self.fields)

    def with_field(self, key_type: int, key_data: bytes, value: bytes) -> KvMap:
        """A copy with one more field appended (the key must be new)."""
        key = compact_size(key_type) + key_data
        if key in self._index:
            raise ValueError("key already present in map")
        return KvMap(self.fields + (Field(key_type, key_data, key, value),))

    def serialize(self) -> bytes:
        out = bytearray()
        for f in self.fields:
            out += compact_size(len(f.key)) + f.key + compact_size(len(f.value)) + f.value
        out += b"\x00"
        return bytes(out)


# Field type numbers (BIP-174/370/371).
G_UNSIGNED_TX, G_XPUB, G_TX_VERSION, G_FALLBACK_LOCKTIME = 0x00, 0x01, 0x02, 0x03
G_INPUT_COUNT, G_OUTPUT_COUNT, G_TX_MODIFIABLE, G_VERSION, PROPRIETARY = (
    0x04,
    0x05,
    0x06,
    0xFB,
    0xFC,
)
IN_NON_WITNESS_UTXO, IN_WITNESS_UTXO, IN_PARTIAL_SIG, IN_SIGHASH_TYPE = 0x00, 0x01, 0x02, 0x03
IN_REDEEM_SCRIPT, IN_WITNESS_SCRIPT, IN_BIP32_DERIVATION = 0x04, 0x05, 0x06
IN_FINAL_SCRIPTSIG, IN_FINAL_SCRIPTWITNESS, IN_POR_COMMITMENT = 0x07, 0x08, 0x09
IN_RIPEMD160, IN_SHA256, IN_HASH160, IN_HASH256 = 0x0A, 0x0B, 0x0C, 0x0D
IN_PREVIOUS_TXID, IN_OUTPUT_INDEX, IN_SEQUENCE = 0x0E, 0x0F, 0x10
IN_REQUIRED_TIME_LOCKTIME, IN_REQUIRED_HEIGHT_LOCKTIME = 0x11, 0x12
#: BIP-371 (and MuSig2, BIP-373) input fields: taproot, never signable by a PKCS#11 key.
IN_TAPROOT_TYPES = frozenset(range(0x13, 0x1D))
OUT_REDEEM_SCRIPT, OUT_WITNESS_SCRIPT, OUT_BIP32_DERIVATION = 0x00, 0x01, 0x02
OUT_AMOUNT, OUT_SCRIPT = 0x03, 0x04
OUT_TAPROOT_TYPES = frozenset(range(0x05, 0x09))

_Check = Callable[[bytes], str | None]  # returns a problem description or None


def _empty(kd: bytes) -> str | None:
    return None if not kd else "must have no key data"


def _pubkey(kd: bytes) -> str | None:
    if (len(kd) == 33 and kd[0] in (2, 3)) or (len(kd) == 65 and kd[0] == 4):
        return None
    return f"must be a 33- or 65-byte public key, not {len(kd)} bytes"


def _length(n: int) -> _Check:
    return lambda b: None if len(b) == n else f"must be {n} bytes, not {len(b)}"


def _any(_: bytes) -> str | None:
    return None


def _path_value(b: bytes) -> str | None:
    if len(b) < 4 or len(b) % 4 or len(b) // 4 - 1 > DEFAULT_LIMITS.max_path_depth:
        return "must be a fingerprint and a path of 4-byte indexes"
    return None


def _compact_value(b: bytes) -> str | None:
    try:
        r = _Reader(b)
        r.compact("count")
    except PsbtError:
        return "must be one canonical compact size"
    return None if r.remaining() == 0 else "must be exactly one compact size"


def _witness_utxo(b: bytes) -> str | None:
    r = _Reader(b)
    try:
        read_output(r, "witness utxo")
    except PsbtError as exc:
        return exc.detail
    return None if r.remaining() == 0 else f"has {r.remaining()} bytes after the output"


def _witness_stack(b: bytes) -> str | None:
    r = _Reader(b)
    try:
        n = r.compact("item count")
        if n > DEFAULT_LIMITS.max_witness_items:
            return "has too many witness items"
        for _ in range(n):
            r.read(r.compact("item length"), "item")
    except PsbtError as exc:
        return exc.detail
    return None if r.remaining() == 0 else f"has {r.remaining()} bytes after the witness"


@dataclass(frozen=True)
class _Spec:
    name: str
    key: _Check
    value: _Check
    versions: frozenset[int] = frozenset({0, 2})


_BOTH, _V0, _V2 = frozenset({0, 2}), frozenset({0}), frozenset({2})

GLOBAL_SPECS: dict[int, _Spec] = {
    G_UNSIGNED_TX: _Spec("PSBT_GLOBAL_UNSIGNED_TX", _empty, _any, _V0),
    G_XPUB: _Spec("PSBT_GLOBAL_XPUB", _length(78), _path_value),
    G_TX_VERSION: _Spec("PSBT_GLOBAL_TX_VERSION", _empty, _length(4), _V2),
    G_FALLBACK_LOCKTIME: _Spec("PSBT_GLOBAL_FALLBACK_LOCKTIME", _empty, _length(4), _V2),
    G_INPUT_COUNT: _Spec("PSBT_GLOBAL_INPUT_COUNT", _empty, _compact_value, _V2),
    G_OUTPUT_COUNT: _Spec("PSBT_GLOBAL_OUTPUT_COUNT", _empty, _compact_value, _V2),
    G_TX_MODIFIABLE: _Spec("PSBT_GLOBAL_TX_MODIFIABLE", _empty, _length(1), _V2),
    G_VERSION: _Spec("PSBT_GLOBAL_VERSION", _empty, _length(4)),
}
INPUT_SPECS: dict[int, _Spec] = {
    IN_NON_WITNESS_UTXO: _Spec("PSBT_IN_NON_WITNESS_UTXO", _empty, _any),
    IN_WITNESS_UTXO: _Spec("PSBT_IN_WITNESS_UTXO", _empty, _witness_utxo),
    IN_PARTIAL_SIG: _Spec(
        "PSBT_IN_PARTIAL_SIG", _pubkey, lambda b: None if b else "must not be empty"
    ),
    IN_SIGHASH_TYPE: _Spec("PSBT_IN_SIGHASH_TYPE", _empty, _length(4)),
    IN_REDEEM_SCRIPT: _Spec("PSBT_IN_REDEEM_SCRIPT", _empty, _any),
    IN_WITNESS_SCRIPT: _Spec("PSBT_IN_WITNESS_SCRIPT", _empty, _any),
    IN_BIP32_DERIVATION: _Spec("PSBT_IN_BIP32_DERIVATION", _pubkey, _path_value),
    IN_FINAL_SCRIPTSIG: _Spec("PSBT_IN_FINAL_SCRIPTSIG", _empty, _any),
    IN_FINAL_SCRIPTWITNESS: _Spec("PSBT_IN_FINAL_SCRIPTWITNESS", _empty, _witness_stack),
    IN_POR_COMMITMENT: _Spec("PSBT_IN_POR_COMMITMENT", _empty, _any),
    IN_RIPEMD160: _Spec("PSBT_IN_RIPEMD160", _length(20), _any),
    IN_SHA256: _Spec("PSBT_IN_SHA256", _length(32), _any),
    IN_HASH160: _Spec("PSBT_IN_HASH160", _length(20), _any),
    IN_HASH256: _Spec("PSBT_IN_HASH256", _length(32), _any),
    IN_PREVIOUS_TXID: _Spec("PSBT_IN_PREVIOUS_TXID", _empty, _length(32), _V2),
    IN_OUTPUT_INDEX: _Spec("PSBT_IN_OUTPUT_INDEX", _empty, _length(4), _V2),
    IN_SEQUENCE: _Spec("PSBT_IN_SEQUENCE", _empty, _length(4), _V2),
    IN_REQUIRED_TIME_LOCKTIME: _Spec("PSBT_IN_REQUIRED_TIME_LOCKTIME", _empty, _length(4), _V2),
    IN_REQUIRED_HEIGHT_LOCKTIME: _Spec("PSBT_IN_REQUIRED_HEIGHT_LOCKTIME", _empty, _length(4), _V2),
}
OUTPUT_SPECS: dict[int, _Spec] = {
    OUT_REDEEM_SCRIPT: _Spec("PSBT_OUT_REDEEM_SCRIPT", _empty, _any),
    OUT_WITNESS_SCRIPT: _Spec("PSBT_OUT_WITNESS_SCRIPT", _empty, _any),
    OUT_BIP32_DERIVATION: _Spec("PSBT_OUT_BIP32_DERIVATION", _pubkey, _path_value),
    OUT_AMOUNT: _Spec("PSBT_OUT_AMOUNT", _empty, _length(8), _V2),
    OUT_SCRIPT: _Spec("PSBT_OUT_SCRIPT", _empty, _any, _V2),
}


def _read_map(r: _Reader, limits: Limits, where: str) -> KvMap:
    fields: list[Field] = []
    index: dict[bytes, Field] = {}
    while True:
        start = r.pos
        key_len = r.compact(f"{where} key length")
        if key_len == 0:
            return KvMap(tuple(fields), index)
        if key_len > limits.max_key_bytes:
            raise PsbtTooLarge(f"{where} has a {key_len}-byte key", field=where, offset=start)
        key = r.read(key_len, f"{where} key")
        kr = _Reader(key, what=where)
        key_type = kr.compact(f"{where} key type")
        value = r.read(r.compact(f"{where} value length"), f"{where} value")
        if key in index:
            raise PsbtDuplicateKey(
                f"{where} has the key {key.hex()[:80]} twice", field=where, offset=start
            )
        if len(fields) >= limits.max_fields_per_map:
            raise PsbtTooLarge(
                f"{where} has more than {limits.max_fields_per_map} fields",
                field=where,
                offset=start,
            )
        f = Field(key_type, key[kr.pos :], key, value, start)
        fields.append(f)
        index[key] = f


def _check_map(m: KvMap, specs: dict[int, _Spec], version: int, where: str) -> None:
    for f in m.fields:
        spec = specs.get(f.key_type)
        if spec is None:
            continue
        if version not in spec.versions:
            raise PsbtFieldNotAllowed(
                f"{where} has {spec.name}, which PSBT version {version} does not allow",
                field=spec.name,
                offset=f.offset,
            )
        problem = spec.key(f.key_data)
        if problem:
            raise PsbtBadKey(f"{where} {spec.name} key {problem}", field=spec.name, offset=f.offset)
        problem = spec.value(f.value)
        if problem:
            raise PsbtBadValue(
                f"{where} {spec.name} value {problem}", field=spec.name, offset=f.offset
            )


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

    def replace_input(self, index: int, new: KvMap) -> Psbt:
        inputs = list(self.inputs)
        inputs[index] = new
        return Psbt(
            self.version, self.globals, tuple(inputs), self.outputs, self.tx_version,
            self.tx_inputs, self.tx_outputs, self.v0_locktime,
        )  # fmt: skip


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
    r = _Reader(raw, pos=len(MAGIC), what="global map")
    gmap = _read_map(r, limits, "global map")
    version_raw = gmap.get(G_VERSION)
    if version_raw is not None and len(version_raw) != 4:
        raise PsbtBadValue("PSBT_GLOBAL_VERSION must be 4 bytes", field="PSBT_GLOBAL_VERSION")
    version = 0 if version_raw is None else _u32(version_raw)
    if version not in (0, 2):
        raise PsbtUnsupportedVersion(f"PSBT version {version} is not supported (only 0 and 2)")
    _check_map(gmap, GLOBAL_SPECS, version, "global map")

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
        n_in = _Reader(gmap.get(G_INPUT_COUNT) or b"").compact("input count")
        n_out = _Reader(gmap.get(G_OUTPUT_COUNT) or b"").compact("output count")
        _bound_counts(n_in, n_out, limits)
        tx_version, locktime = _u32(gmap.get(G_TX_VERSION) or b""), None

    inputs = []
    for i in range(n_in):
        r.what = f"input {i}"
        m = _read_map(r, limits, f"input {i}")
        _check_map(m, INPUT_SPECS, version, f"input {i}")
        inputs.append(m)
    outputs = []
    for i in range(n_out):
        r.what = f"output {i}"
        m = _read_map(r, limits, f"output {i}")
        _check_map(m, OUTPUT_SPECS, version, f"output {i}")
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
