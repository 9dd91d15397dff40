"""PSBT key/value maps: field type numbers, per-version field specs, the bounded map reader.

A map keeps every field (unknown ones included) byte-exact and in order; :func:`check_map`
refuses malformed keys and values of known types and fields of the other PSBT version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from coldvault.requests.bitcoin.errors import (
    PsbtBadKey,
    PsbtBadValue,
    PsbtDuplicateKey,
    PsbtError,
    PsbtFieldNotAllowed,
    PsbtTooLarge,
)
from coldvault.requests.bitcoin.tx import Reader, compact_size, read_output


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


# --------------------------------------------------------------------------- maps


@dataclass(frozen=True)
class Field:
    """One key/value pair, kept byte-exact. ``key`` includes the compact-size key type."""

    key_type: int
    key_data: bytes
    key: bytes
    value: bytes
    offset: int = field(default=-1, compare=False)


#: the key prefix of each one-byte key type (every type BIP-174 defines)
_TYPE_PREFIX = tuple(bytes([t]) for t in range(0xFD))


@dataclass(frozen=True)
class KvMap:
    """A PSBT map: its fields in their original order."""

    fields: tuple[Field, ...]
    _index: dict[bytes, Field] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self._index:
            self._index.update((f.key, f) for f in self.fields)

    def get(self, key_type: int, key_data: bytes = b"") -> bytes | None:
        prefix = _TYPE_PREFIX[key_type] if key_type < 0xFD else compact_size(key_type)
        f = self._index.get(prefix + key_data)
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
        r = Reader(b)
        r.compact("count")
    except PsbtError:
        return "must be one canonical compact size"
    return None if r.remaining() == 0 else "must be exactly one compact size"


def _witness_utxo(b: bytes) -> str | None:
    r = Reader(b)
    try:
        read_output(r, "witness utxo")
    except PsbtError as exc:
        return exc.detail
    return None if r.remaining() == 0 else f"has {r.remaining()} bytes after the output"


def _witness_stack(b: bytes) -> str | None:
    r = Reader(b)
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


def read_map(r: Reader, limits: Limits, where: str) -> KvMap:
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
        if key[0] < 0xFD:  # a one-byte key type (every type BIP-174 defines)
            key_type, type_len = key[0], 1
        else:
            kr = Reader(key, what=where)
            key_type = kr.compact(f"{where} key type")
            type_len = kr.pos
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
        f = Field(key_type, key[type_len:], key, value, start)
        fields.append(f)
        index[key] = f


def check_map(m: KvMap, specs: dict[int, _Spec], version: int, where: str) -> None:
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
