"""UR registry Bitcoin values: ``bytes``, ``psbt``, ``seed``, ``address``, ``output``,
``account`` (each a frozen dataclass with ``to_ur``, plus its decoder)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import cbor2

from coldvault.crypto.hashes import keccak256
from coldvault.transport.registry.cbor import (
    UINT32,
    FieldError,
    Fields,
    ScriptKind,
    Tag,
    cbor_map,
    is_v2,
    tag_for,
    untag,
)
from coldvault.transport.registry.keys import CoinInfo, ECKey, HDKey, base58check_encode
from coldvault.transport.ur import UR

# --------------------------------------------------------------------------- bytes / psbt / seed


@dataclass(frozen=True)
class Bytes:
    """``bytes``: an opaque CBOR byte string."""

    data: bytes
    ur_type: str = "bytes"

    def to_ur(self) -> UR:
        return UR(self.ur_type, cbor2.dumps(self.data))


@dataclass(frozen=True)
class PSBT:
    """``crypto-psbt`` / ``psbt``: the PSBT bytes (not parsed here; see requests.psbt).
    Always emitted as ``crypto-psbt`` with an untagged byte string."""

    data: bytes

    def to_ur(self) -> UR:
        return UR("crypto-psbt", cbor2.dumps(self.data))


@dataclass(frozen=True)
class Seed:
    """``crypto-seed`` / ``seed`` (BCR-2020-006).  The payload is secret: not in repr."""

    payload: bytes
    creation_date: int | None = None  # days since 1970 (tag 100) or seconds (tag 1)
    creation_date_tag: int = Tag.DATE
    name: str | None = None
    note: str | None = None
    ur_type: str = "crypto-seed"

    def __repr__(self) -> str:
        return f"Seed(<{len(self.payload)} secret bytes>, creation_date={self.creation_date})"

    def to_ur(self) -> UR:
        date = None
        if self.creation_date is not None:
            date = cbor2.CBORTag(self.creation_date_tag, self.creation_date)
        value = cbor_map((1, self.payload), (2, date), (3, self.name), (4, self.note))
        return UR(self.ur_type, cbor2.dumps(value))


def decode_bytes(obj: Any, ur: UR) -> Bytes:
    if not isinstance(obj, bytes):
        raise FieldError(ur.type, "bytes", "expected a byte string")
    return Bytes(obj, ur.type)


def decode_psbt(obj: Any, ur: UR) -> PSBT:
    obj = untag(obj, ur.type, "psbt", Tag.PSBT)
    if not isinstance(obj, bytes) or not obj:
        raise FieldError(ur.type, "psbt", "expected a non-empty byte string")
    return PSBT(obj)


def decode_seed(obj: Any, ur: UR) -> Seed:
    f = Fields(obj, ur.type, "seed", {1: "payload", 2: "creation-date", 3: "name", 4: "note"})
    payload = f.get(1, lambda v: isinstance(v, bytes) and 1 <= len(v) <= 64, "1..64 bytes", True)
    date, date_tag = None, int(Tag.DATE)
    if 2 in f.m:
        raw = f.m[2]
        if not (isinstance(raw, cbor2.CBORTag) and raw.tag in (1, Tag.DATE)
                and type(raw.value) is int and 0 <= raw.value < 2**40):
            raise f.err(2, "expected a tagged date (tag 100 days or tag 1 seconds)")
        date, date_tag = raw.value, raw.tag
    return Seed(payload, date, date_tag, f.text(3), f.text(4), ur.type)


# --------------------------------------------------------------------------- address


@dataclass(frozen=True)
class Address:
    """``crypto-address`` / ``address`` (BCR-2020-009)."""

    data: bytes
    info: CoinInfo | None = None
    address_type: int | None = None  # 0 p2pkh, 1 p2sh, 2 p2wpkh (Bitcoin)
    ur_type: str = "crypto-address"

    def to_string(self) -> str:
        """Bitcoin base58 (p2pkh/p2sh) or EIP-55 Ethereum text; other kinds: hex."""
        coin = (self.info.coin_type if self.info else None) or 0
        testnet = self.info is not None and self.info.network == 1
        if coin == 60 and len(self.data) == 20:
            plain = self.data.hex()
            digest = keccak256(plain.encode()).hex()
            return "0x" + "".join(
                c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(plain)
            )
        if coin == 0 and len(self.data) == 20 and self.address_type in (None, 0, 1):
            version = {(0, False): 0x00, (0, True): 0x6F, (1, False): 0x05, (1, True): 0xC4}[
                (self.address_type or 0, testnet)
            ]
            return base58check_encode(bytes([version]) + self.data)
        return self.data.hex()

    def to_ur(self) -> UR:
        v2 = is_v2(self.ur_type)
        info = None if self.info is None else cbor2.CBORTag(
            tag_for(Tag.COIN_INFO, v2), self.info.to_cbor_value())
        return UR(self.ur_type, cbor2.dumps(cbor_map((1, info), (2, self.address_type),
                                                  (3, self.data))))


def decode_address(obj: Any, ur: UR) -> Address:
    f = Fields(obj, ur.type, "address", {1: "info", 2: "type", 3: "data"})
    info = f.tagged(1, Tag.COIN_INFO)
    return Address(
        f.get(3, lambda v: isinstance(v, bytes) and 1 <= len(v) <= 64, "1..64 bytes", True),
        None if info is None else CoinInfo.from_cbor_value(info, ur.type, "address.info"),
        f.uint(2, limit=255),
        ur.type,
    )


# --------------------------------------------------------------------------- output / account


@dataclass(frozen=True)
class MultiKey:
    """``multi``/``sortedmulti`` arguments: threshold and keys."""

    threshold: int
    keys: tuple[Union[HDKey, ECKey], ...]  # noqa: UP007


OutputKey = Union[HDKey, ECKey, MultiKey, bytes]  # noqa: UP007 - bytes only for RAW
_WRAPPERS = {ScriptKind.SH, ScriptKind.WSH}  # cosigner() wraps a key, not a script


@dataclass(frozen=True)
class Output:
    """``crypto-output`` (BCR-2020-010): script expressions (outermost first) and a key."""

    scripts: tuple[ScriptKind, ...]
    key: OutputKey
    ur_type: str = "crypto-output"

    def to_descriptor(self) -> str:
        """The output descriptor text, without checksum (hardened marked with ')."""
        key = self.key
        if isinstance(key, MultiKey):
            inner = ",".join([str(key.threshold)] + [_key_text(k) for k in key.keys])
        elif isinstance(key, bytes):
            inner = key.hex()
        else:
            inner = _key_text(key)
        text = inner
        for kind in reversed(self.scripts):
            text = f"{kind.name.lower().replace('_', '')}({text})"
        return text

    def to_cbor_value(self, v2: bool = False) -> Any:
        key = self.key
        if isinstance(key, MultiKey):
            value: Any = {1: key.threshold, 2: [_key_cbor(k, v2) for k in key.keys]}
        elif isinstance(key, bytes):
            value = key
        else:
            value = _key_cbor(key, v2)
        for kind in reversed(self.scripts):
            value = cbor2.CBORTag(int(kind), value)
        return value

    def to_ur(self) -> UR:
        return UR(self.ur_type, cbor2.dumps(self.to_cbor_value()))


def _key_text(key: HDKey | ECKey) -> str:
    return key.key_expression() if isinstance(key, HDKey) else key.data.hex()


def _key_cbor(key: HDKey | ECKey, v2: bool) -> cbor2.CBORTag:
    base = Tag.HDKEY if isinstance(key, HDKey) else Tag.ECKEY
    return cbor2.CBORTag(tag_for(base, v2), key.to_cbor_value(v2))


def _decode_key(obj: Any, ur_type: str, what: str) -> HDKey | ECKey:
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag in (Tag.HDKEY, Tag.HDKEY + Tag.V2_OFFSET):
            return HDKey.from_cbor_value(obj.value, ur_type, what)
        if obj.tag in (Tag.ECKEY, Tag.ECKEY + Tag.V2_OFFSET):
            return ECKey.from_cbor_value(obj.value, ur_type, what)
    raise FieldError(ur_type, what, "expected a tagged hdkey (303) or eckey (306)")


def decode_output_value(obj: Any, ur_type: str, what: str = "output") -> Output:
    """Decode a script-expression tree (as found in crypto-output and crypto-account)."""
    scripts: list[ScriptKind] = []
    while isinstance(obj, cbor2.CBORTag) and obj.tag in ScriptKind._value2member_map_:
        kind = ScriptKind(obj.tag)
        if scripts and scripts[-1] not in _WRAPPERS:
            raise FieldError(ur_type, what, f"{scripts[-1].name.lower()} cannot wrap a script")
        scripts.append(kind)
        obj = obj.value
        if len(scripts) > 3:
            raise FieldError(ur_type, what, "too many nested script expressions")
    if not scripts:
        raise FieldError(ur_type, what, "expected a script expression tag (400-410)")
    inner = scripts[-1]
    if inner in (ScriptKind.MULTI, ScriptKind.SORTED_MULTI):
        f = Fields(obj, ur_type, f"{what}.multi", {1: "threshold", 2: "keys"})
        keys = f.get(2, lambda v: isinstance(v, list) and 1 <= len(v) <= 20, "1..20 keys", True)
        threshold = f.uint(1, True, limit=len(keys)) or 0
        if threshold == 0:
            raise f.err(1, "must be at least 1")
        decoded = tuple(_decode_key(k, ur_type, f"{what}.multi.keys[{i}]")
                        for i, k in enumerate(keys))
        return Output(tuple(scripts), MultiKey(threshold, decoded), ur_type)
    if inner is ScriptKind.RAW:
        if not isinstance(obj, bytes):
            raise FieldError(ur_type, f"{what}.raw", "expected a byte string")
        return Output(tuple(scripts), obj, ur_type)
    if inner in _WRAPPERS:
        raise FieldError(ur_type, what, f"{inner.name.lower()} needs an inner script")
    return Output(tuple(scripts), _decode_key(obj, ur_type, f"{what}.key"), ur_type)


@dataclass(frozen=True)
class Account:
    """``crypto-account`` (BCR-2020-015): master fingerprint and output descriptors."""

    master_fingerprint: int
    outputs: tuple[Output, ...]
    #: Wrap each output in tag 308 (BCR-2020-015).  Keystone's encoder omits it.
    tag_outputs: bool = True
    ur_type: str = "crypto-account"

    def to_ur(self) -> UR:
        items = [o.to_cbor_value() for o in self.outputs]
        if self.tag_outputs:
            items = [cbor2.CBORTag(Tag.OUTPUT, i) for i in items]
        return UR(self.ur_type, cbor2.dumps({1: self.master_fingerprint, 2: items}))


def decode_account(obj: Any, ur: UR) -> Account:
    f = Fields(obj, ur.type, "account", {1: "master-fingerprint", 2: "output-descriptors"})
    fingerprint = f.uint(1, True, limit=UINT32) or 0
    items = f.get(2, lambda v: isinstance(v, list) and len(v) <= 256, "an array", True)
    outputs, tagged = [], []
    for i, item in enumerate(items):
        is_tagged = isinstance(item, cbor2.CBORTag) and item.tag in (Tag.OUTPUT, 40308)
        tagged.append(is_tagged)
        outputs.append(decode_output_value(item.value if is_tagged else item, ur.type,
                                           f"account.output-descriptors[{i}]"))
    return Account(fingerprint, tuple(outputs), all(tagged) if tagged else True, ur.type)
