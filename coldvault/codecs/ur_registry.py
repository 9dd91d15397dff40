"""Typed UR registry values: decode and encode, dispatched on the UR *type string*.

Supported (see docs/ur.md): ``crypto-psbt``/``psbt``, ``bytes``, ``crypto-seed``/``seed``,
``crypto-hdkey``/``hdkey``, ``crypto-eckey``/``eckey``, ``crypto-address``/``address``,
``crypto-keypath``/``keypath``, ``crypto-output``, ``crypto-account``, and Keystone's
``eth-sign-request``, ``eth-signature``, ``sol-sign-request``, ``sol-signature``.

Dispatch never looks at CBOR tags: Keystone's tags collide with BC's (401 is both
``eth-sign-request`` and the ``wsh`` script expression).  ``crypto-*`` types use the BC
v1 tags (303 hdkey, 304 keypath, ...); the newer names (``hdkey``, ``address``...) use the
40000-range tags.  Decoding accepts either tag family for nested items; encoding emits the
family of the value's ``ur_type``.

Untrusted CBOR is bounded before cbor2 sees it: size, nesting depth, definite lengths
only, integer/text map keys, an allow-list of tags, no trailing bytes.  Every structural
problem is a :class:`RegistryError` naming the field.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, Union

import cbor2

from coldvault.codecs.fountain import DEFAULT_MAX_MESSAGE_LEN
from coldvault.codecs.ur import UR
from coldvault.errors import DecodeError

_MAX_DEPTH = 16
#: Most CBOR data items in one registry value (a 1,000-output account is ~20k).
_MAX_ITEMS = 65536
_HARDENED = 0x80000000
_UINT32 = 0xFFFFFFFF


# --------------------------------------------------------------------------- errors


class RegistryError(DecodeError):
    """A UR payload is not a valid value of its registry type."""

    code = "ur-registry"


class UnsupportedType(RegistryError):
    code = "ur-registry-unsupported"

    def __init__(self, ur_type: str) -> None:
        super().__init__(
            f"UR type '{ur_type}' is not supported by this appliance; supported types: "
            f"{', '.join(sorted(DECODERS))}."
        )
        self.ur_type = ur_type


class MalformedCbor(RegistryError):
    code = "ur-registry-cbor"

    def __init__(self, ur_type: str, detail: str) -> None:
        super().__init__(f"The '{ur_type}' UR payload is not acceptable CBOR ({detail}).")
        self.ur_type = ur_type
        self.detail = detail


class FieldError(RegistryError):
    code = "ur-registry-field"

    def __init__(self, ur_type: str, field: str, problem: str) -> None:
        super().__init__(f"The '{ur_type}' UR has an invalid field '{field}': {problem}.")
        self.ur_type = ur_type
        self.field = field
        self.problem = problem


# --------------------------------------------------------------------------- tags


class Tag(enum.IntEnum):
    UUID = 37
    DATE = 100
    SEED = 300
    HDKEY = 303
    KEYPATH = 304
    COIN_INFO = 305
    ECKEY = 306
    ADDRESS = 307
    OUTPUT = 308
    PSBT = 310
    ACCOUNT = 311
    V2_OFFSET = 40000  # 40300 seed, 40303 hdkey, ... in the newer registry


class ScriptKind(enum.IntEnum):
    """BCR-2020-010 script-expression tags."""

    SH = 400
    WSH = 401
    PK = 402
    PKH = 403
    WPKH = 404
    COMBO = 405
    MULTI = 406
    SORTED_MULTI = 407
    RAW = 408
    TR = 409
    COSIGNER = 410


class EthDataType(enum.IntEnum):
    TRANSACTION = 1  # legacy RLP transaction
    TYPED_DATA = 2  # EIP-712
    PERSONAL_MESSAGE = 3
    TYPED_TRANSACTION = 4  # EIP-2718 (e.g. EIP-1559)


class SolSignType(enum.IntEnum):
    TRANSACTION = 1
    MESSAGE = 2


_ALLOWED_TAGS = (
    {Tag.UUID, 1, Tag.DATE}
    | set(range(300, 312))
    | set(range(40300, 40312))
    | {int(k) for k in ScriptKind}
)


def _v2(ur_type: str) -> bool:
    return not ur_type.startswith("crypto-")


def _tag(base: Tag, v2: bool) -> int:
    return int(base) + (Tag.V2_OFFSET if v2 else 0)


# --------------------------------------------------------------------------- bounded CBOR


def _scan(buf: bytes, pos: int, depth: int, ctx: str, budget: list[int]) -> int:
    """Walk one CBOR item at ``pos`` with explicit bounds; return the end position.
    ``budget[0]`` counts down the data items allowed in the whole value."""
    if depth > _MAX_DEPTH:
        raise MalformedCbor(ctx, f"nested deeper than {_MAX_DEPTH} levels")
    budget[0] -= 1
    if budget[0] < 0:
        raise MalformedCbor(ctx, f"more than {_MAX_ITEMS} data items")
    if pos >= len(buf):
        raise MalformedCbor(ctx, "truncated")
    first = buf[pos]
    major, info = first >> 5, first & 0x1F
    pos += 1
    if info < 24:
        value = info
    elif info <= 27:
        size = 1 << (info - 24)
        if pos + size > len(buf):
            raise MalformedCbor(ctx, "truncated")
        value = int.from_bytes(buf[pos : pos + size], "big")
        pos += size
    else:
        raise MalformedCbor(ctx, "indefinite or reserved length encoding")
    remaining = len(buf) - pos
    if major in (0, 1):
        return pos
    if major in (2, 3):
        if value > remaining:
            raise MalformedCbor(ctx, "string longer than the data")
        return pos + value
    if major == 4:
        if value > remaining:
            raise MalformedCbor(ctx, "array longer than the data")
        for _ in range(value):
            pos = _scan(buf, pos, depth + 1, ctx, budget)
        return pos
    if major == 5:
        if 2 * value > remaining:
            raise MalformedCbor(ctx, "map longer than the data")
        for _ in range(value):
            if pos >= len(buf) or buf[pos] >> 5 not in (0, 1, 3):
                raise MalformedCbor(ctx, "map key is not an integer or text")
            pos = _scan(buf, pos, depth + 1, ctx, budget)
            pos = _scan(buf, pos, depth + 1, ctx, budget)
        return pos
    if major == 6:
        if value not in _ALLOWED_TAGS:
            raise MalformedCbor(ctx, f"unexpected tag {value}")
        return _scan(buf, pos, depth + 1, ctx, budget)
    if info in (20, 21, 22) or info in (25, 26, 27):  # false/true/null, floats
        return pos
    raise MalformedCbor(ctx, "unexpected simple value")


def _raw_tag(tag: int) -> Callable[[Any, bool], Any]:
    return lambda value, _immutable: cbor2.CBORTag(tag, value)


_SEMANTIC = {tag: _raw_tag(tag) for tag in _ALLOWED_TAGS}


def loads_bounded(data: bytes, ur_type: str, max_len: int = DEFAULT_MAX_MESSAGE_LEN) -> Any:
    """Decode untrusted CBOR after checking its size and shape; tags stay ``CBORTag``."""
    if len(data) > max_len:
        raise MalformedCbor(ur_type, f"{len(data)} bytes exceed the limit of {max_len}")
    if _scan(data, 0, 0, ur_type, [_MAX_ITEMS]) != len(data):
        raise MalformedCbor(ur_type, "trailing bytes after the value")
    try:
        return cbor2.loads(
            data,
            semantic_decoders=_SEMANTIC,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            max_depth=_MAX_DEPTH + 2,
        )
    except (cbor2.CBORError, ValueError, TypeError, EOFError, OverflowError) as exc:
        raise MalformedCbor(ur_type, type(exc).__name__) from None


# --------------------------------------------------------------------------- field access

T = TypeVar("T")


class _Fields:
    """Typed access to a CBOR map, raising :class:`FieldError` with the field's name."""

    def __init__(self, obj: Any, ur_type: str, what: str, names: dict[int, str]) -> None:
        if not isinstance(obj, dict):
            raise FieldError(ur_type, what, "expected a map")
        self.m, self.ur_type, self.what, self.names = obj, ur_type, what, names

    def err(self, key: int, problem: str) -> FieldError:
        return FieldError(self.ur_type, f"{self.what}.{self.names.get(key, key)}", problem)

    def get(self, key: int, check: Callable[[Any], bool], kind: str, required: bool) -> Any:
        if key not in self.m:
            if required:
                raise self.err(key, "missing")
            return None
        value = self.m[key]
        if not check(value):
            raise self.err(key, f"expected {kind}")
        return value

    def uint(self, key: int, required: bool = False, limit: int = 2**64 - 1) -> int | None:
        return self.get(
            key, lambda v: type(v) is int and 0 <= v <= limit, f"an integer 0..{limit}", required
        )

    def bytes_(self, key: int, required: bool = False, sizes: tuple[int, ...] = ()) -> Any:
        kind = f"a byte string of {' or '.join(map(str, sizes))} bytes" if sizes else "bytes"
        return self.get(
            key, lambda v: isinstance(v, bytes) and (not sizes or len(v) in sizes), kind, required
        )

    def text(self, key: int, required: bool = False) -> str | None:
        return self.get(key, lambda v: isinstance(v, str) and len(v) <= 4096, "text", required)

    def boolean(self, key: int) -> bool | None:
        return self.get(key, lambda v: isinstance(v, bool), "a boolean", False)

    def tagged(self, key: int, base: Tag, required: bool = False, untagged: bool = False) -> Any:
        if key not in self.m:
            if required:
                raise self.err(key, "missing")
            return None
        value = self.m[key]
        if isinstance(value, cbor2.CBORTag):
            if value.tag not in (int(base), int(base) + Tag.V2_OFFSET):
                raise self.err(key, f"unexpected tag {value.tag}")
            return value.value
        if not untagged:
            raise self.err(key, f"expected tag {int(base)}")
        return value


def _untag(obj: Any, ur_type: str, what: str, base: int, optional: bool = True) -> Any:
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag not in (base, base + Tag.V2_OFFSET):
            raise FieldError(ur_type, what, f"unexpected tag {obj.tag}")
        return obj.value
    if not optional:
        raise FieldError(ur_type, what, f"expected tag {base}")
    return obj


def _map(*pairs: tuple[int, Any]) -> dict[int, Any]:
    return {k: v for k, v in pairs if v is not None}


# --------------------------------------------------------------------------- base58


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58check_encode(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def base58check_decode(text: str) -> bytes:
    """Decode base58check; raises ``ValueError`` on bad characters or checksum."""
    if len(text) > 200:
        raise ValueError("base58 text too long")
    n = 0
    for ch in text:
        index = _B58.find(ch)
        if index < 0:
            raise ValueError("invalid base58 character")
        n = n * 58 + index
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    data = b"\0" * (len(text) - len(text.lstrip("1"))) + body
    if len(data) < 4 or hashlib.sha256(hashlib.sha256(data[:-4]).digest()).digest()[:4] != data[
        -4:
    ]:
        raise ValueError("base58 checksum mismatch")
    return data[:-4]


# --------------------------------------------------------------------------- keypath


@dataclass(frozen=True)
class PathComponent:
    """One derivation step: an index, a wildcard (``index is None``) or a range."""

    index: int | None
    hardened: bool = False
    range_end: int | None = None

    def __str__(self) -> str:
        if self.index is None:
            text = "*"
        elif self.range_end is not None:
            text = f"<{self.index}-{self.range_end}>"
        else:
            text = str(self.index)
        return text + ("'" if self.hardened else "")


@dataclass(frozen=True)
class Keypath:
    """``crypto-keypath`` (BCR-2020-007): components, source fingerprint, depth."""

    components: tuple[PathComponent, ...] = ()
    source_fingerprint: int | None = None
    depth: int | None = None

    @classmethod
    def from_path(cls, path: str, source_fingerprint: int | None = None) -> Keypath:
        """From ``"m/44'/60'/0'/0/0"`` (``h``/``H`` also mark hardening)."""
        parts = [p for p in path.strip().split("/") if p]
        if parts and parts[0] in ("m", "M"):
            parts = parts[1:]
        comps = []
        for part in parts:
            hardened = part[-1] in "'hH"
            digits = part[:-1] if hardened else part
            if digits == "*":
                comps.append(PathComponent(None, hardened))
                continue
            if not digits.isdigit() or int(digits) >= _HARDENED:
                raise ValueError(f"invalid path component {part!r}")
            comps.append(PathComponent(int(digits), hardened))
        return cls(tuple(comps), source_fingerprint)

    @property
    def path(self) -> str:
        """E.g. ``"44'/60'/0'/0/0"`` (no ``m/`` prefix)."""
        return "/".join(str(c) for c in self.components)

    @property
    def indices(self) -> tuple[int, ...]:
        """BIP-32 indices with the hardened bit; ``ValueError`` for wildcards/ranges."""
        out = []
        for c in self.components:
            if c.index is None or c.range_end is not None:
                raise ValueError("keypath has a wildcard or range")
            out.append(c.index | (_HARDENED if c.hardened else 0))
        return tuple(out)

    @property
    def effective_depth(self) -> int:
        return self.depth if self.depth is not None else len(self.components)

    def to_cbor_value(self) -> dict[int, Any]:
        flat: list[Any] = []
        for c in self.components:
            if c.index is None:
                flat.append([])
            elif c.range_end is not None:
                flat.append([c.index, c.range_end])
            else:
                flat.append(c.index)
            flat.append(c.hardened)
        return _map((1, flat), (2, self.source_fingerprint), (3, self.depth))

    @classmethod
    def from_cbor_value(cls, obj: Any, ur_type: str, what: str = "keypath") -> Keypath:
        f = _Fields(obj, ur_type, what, {1: "components", 2: "source-fingerprint", 3: "depth"})
        flat = f.get(1, lambda v: isinstance(v, list) and len(v) % 2 == 0 and len(v) <= 512,
                     "an even-length array", True)
        comps = []
        for i in range(0, len(flat), 2):
            item, hardened = flat[i], flat[i + 1]
            if not isinstance(hardened, bool):
                raise f.err(1, f"component {i // 2} hardened flag is not a boolean")
            if type(item) is int and 0 <= item < _HARDENED:
                comps.append(PathComponent(item, hardened))
            elif item == []:
                comps.append(PathComponent(None, hardened))
            elif (isinstance(item, list) and len(item) == 2
                  and all(type(x) is int and 0 <= x < _HARDENED for x in item)):
                comps.append(PathComponent(item[0], hardened, item[1]))
            else:
                raise f.err(1, f"component {i // 2} is not an index, [] or [low, high]")
        return cls(tuple(comps), f.uint(2, limit=_UINT32), f.uint(3, limit=255))


# --------------------------------------------------------------------------- small types


@dataclass(frozen=True)
class CoinInfo:
    """``crypto-coin-info``: SLIP-44 coin type (0 BTC, 60 ETH) and network (0 main, 1 test).
    ``None`` means the field was absent (the default, 0)."""

    coin_type: int | None = None
    network: int | None = None

    def to_cbor_value(self) -> dict[int, Any]:
        return _map((1, self.coin_type), (2, self.network))

    @classmethod
    def from_cbor_value(cls, obj: Any, ur_type: str, what: str) -> CoinInfo:
        f = _Fields(obj, ur_type, what, {1: "type", 2: "network"})
        network = f.get(2, lambda v: type(v) is int and -(2**31) <= v < 2**31, "an int", False)
        return cls(f.uint(1, limit=_UINT32), network)


@dataclass(frozen=True)
class ECKey:
    """``crypto-eckey`` (BCR-2020-008)."""

    data: bytes
    curve: int | None = None
    is_private: bool | None = None
    ur_type: str = "crypto-eckey"

    def __repr__(self) -> str:
        shown = "<private>" if self.is_private else self.data.hex()
        return f"ECKey(data={shown}, curve={self.curve})"

    def to_cbor_value(self, v2: bool | None = None) -> dict[int, Any]:
        return _map((1, self.curve), (2, self.is_private), (3, self.data))

    @classmethod
    def from_cbor_value(cls, obj: Any, ur_type: str, what: str = "eckey") -> ECKey:
        f = _Fields(obj, ur_type, what, {1: "curve", 2: "is-private", 3: "data"})
        return cls(f.bytes_(3, True, (32, 33)), f.uint(1, limit=255), f.boolean(2), ur_type)

    def to_ur(self) -> UR:
        return UR(self.ur_type, cbor2.dumps(self.to_cbor_value()))


_XPUB_VERSIONS = {  # (private, testnet) -> version
    (False, False): 0x0488B21E,
    (True, False): 0x0488ADE4,
    (False, True): 0x043587CF,
    (True, True): 0x04358394,
}


@dataclass(frozen=True)
class HDKey:
    """``crypto-hdkey`` (BCR-2020-007).  ``None`` fields were absent."""

    key_data: bytes
    chain_code: bytes | None = None
    is_master: bool | None = None
    is_private: bool | None = None
    use_info: CoinInfo | None = None
    origin: Keypath | None = None
    children: Keypath | None = None
    parent_fingerprint: int | None = None
    name: str | None = None
    note: str | None = None
    ur_type: str = "crypto-hdkey"

    def __repr__(self) -> str:
        key = "<private>" if self.private else self.key_data.hex()
        return f"HDKey(key={key}, origin={self.origin}, children={self.children})"

    @property
    def private(self) -> bool:
        return bool(self.is_master or self.is_private)

    @property
    def testnet(self) -> bool:
        return self.use_info is not None and self.use_info.network == 1

    def to_base58(self) -> str:
        """The BIP-32 serialisation (``xpub``/``xprv``/``tpub``/``tprv``)."""
        if self.chain_code is None:
            raise ValueError("an hdkey without chain code has no BIP-32 serialisation")
        depth, parent, child = 0, 0, 0
        if not self.is_master and self.origin is not None:
            depth = self.origin.effective_depth
            if self.origin.components and self.origin.components[-1].index is not None:
                last = self.origin.components[-1]
                child = last.index | (_HARDENED if last.hardened else 0)  # type: ignore[operator]
            if self.parent_fingerprint is not None:
                parent = self.parent_fingerprint
            elif depth == 1 and self.origin.source_fingerprint is not None:
                parent = self.origin.source_fingerprint
        payload = (
            _XPUB_VERSIONS[(self.private, self.testnet)].to_bytes(4, "big")
            + bytes([depth & 0xFF]) + parent.to_bytes(4, "big") + child.to_bytes(4, "big")
            + self.chain_code + self.key_data
        )
        return base58check_encode(payload)

    @classmethod
    def from_base58(
        cls, text: str, *, origin: Keypath | None = None, children: Keypath | None = None,
        ur_type: str = "crypto-hdkey",
    ) -> HDKey:
        """From an xpub/tpub (public keys only; ``ValueError`` on bad input)."""
        raw = base58check_decode(text)
        if len(raw) != 78:
            raise ValueError("extended key must be 78 bytes")
        version = int.from_bytes(raw[:4], "big")
        testnet = {0x0488B21E: False, 0x043587CF: True}.get(version)
        if testnet is None:
            raise ValueError("only xpub/tpub extended public keys are accepted")
        parent = int.from_bytes(raw[5:9], "big")
        return cls(
            key_data=raw[45:], chain_code=raw[13:45],
            use_info=CoinInfo(None, 1) if testnet else None, origin=origin,
            children=children, parent_fingerprint=parent or None, ur_type=ur_type,
        )

    def to_cbor_value(self, v2: bool | None = None) -> dict[int, Any]:
        v2 = _v2(self.ur_type) if v2 is None else v2

        def tagged(base: Tag, value: Any) -> Any:
            return None if value is None else cbor2.CBORTag(_tag(base, v2), value)

        return _map(
            (1, self.is_master), (2, self.is_private), (3, self.key_data), (4, self.chain_code),
            (5, tagged(Tag.COIN_INFO, self.use_info and self.use_info.to_cbor_value())),
            (6, tagged(Tag.KEYPATH, self.origin and self.origin.to_cbor_value())),
            (7, tagged(Tag.KEYPATH, self.children and self.children.to_cbor_value())),
            (8, self.parent_fingerprint), (9, self.name), (10, self.note),
        )

    @classmethod
    def from_cbor_value(cls, obj: Any, ur_type: str, what: str = "hdkey") -> HDKey:
        names = {1: "is-master", 2: "is-private", 3: "key-data", 4: "chain-code",
                 5: "use-info", 6: "origin", 7: "children", 8: "parent-fingerprint",
                 9: "name", 10: "note"}
        f = _Fields(obj, ur_type, what, names)
        use_info = f.tagged(5, Tag.COIN_INFO)
        origin = f.tagged(6, Tag.KEYPATH)
        children = f.tagged(7, Tag.KEYPATH)
        key = cls(
            key_data=f.bytes_(3, True, (33,)), chain_code=f.bytes_(4, False, (32,)),
            is_master=f.boolean(1), is_private=f.boolean(2),
            use_info=None if use_info is None else CoinInfo.from_cbor_value(
                use_info, ur_type, f"{what}.use-info"),
            origin=None if origin is None else Keypath.from_cbor_value(
                origin, ur_type, f"{what}.origin"),
            children=None if children is None else Keypath.from_cbor_value(
                children, ur_type, f"{what}.children"),
            parent_fingerprint=f.uint(8, limit=_UINT32), name=f.text(9), note=f.text(10),
            ur_type=ur_type,
        )
        if key.is_master and key.chain_code is None:
            raise f.err(4, "a master key needs a chain code")
        if key.key_data[0] not in ((0,) if key.private else (2, 3)):
            raise f.err(3, "key data prefix does not match is-private")
        return key

    def to_ur(self) -> UR:
        return UR(self.ur_type, cbor2.dumps(self.to_cbor_value()))

    def key_expression(self) -> str:
        """Descriptor key expression: ``[fp/path]xpub.../children``."""
        text = self.to_base58()
        if self.origin is not None and self.origin.source_fingerprint is not None:
            path = "/" + self.origin.path if self.origin.components else ""
            text = f"[{self.origin.source_fingerprint:08x}{path}]" + text
        if self.children is not None and self.children.components:
            text += "/" + self.children.path
        return text


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
        value = _map((1, self.payload), (2, date), (3, self.name), (4, self.note))
        return UR(self.ur_type, cbor2.dumps(value))


def _decode_bytes(obj: Any, ur: UR) -> Bytes:
    if not isinstance(obj, bytes):
        raise FieldError(ur.type, "bytes", "expected a byte string")
    return Bytes(obj, ur.type)


def _decode_psbt(obj: Any, ur: UR) -> PSBT:
    obj = _untag(obj, ur.type, "psbt", Tag.PSBT)
    if not isinstance(obj, bytes) or not obj:
        raise FieldError(ur.type, "psbt", "expected a non-empty byte string")
    return PSBT(obj)


def _decode_seed(obj: Any, ur: UR) -> Seed:
    f = _Fields(obj, ur.type, "seed", {1: "payload", 2: "creation-date", 3: "name", 4: "note"})
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
            from Crypto.Hash import keccak

            plain = self.data.hex()
            digest = keccak.new(digest_bits=256, data=plain.encode()).hexdigest()
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
        v2 = _v2(self.ur_type)
        info = None if self.info is None else cbor2.CBORTag(
            _tag(Tag.COIN_INFO, v2), self.info.to_cbor_value())
        return UR(self.ur_type, cbor2.dumps(_map((1, info), (2, self.address_type),
                                                  (3, self.data))))


def _decode_address(obj: Any, ur: UR) -> Address:
    f = _Fields(obj, ur.type, "address", {1: "info", 2: "type", 3: "data"})
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
    return cbor2.CBORTag(_tag(base, v2), key.to_cbor_value(v2))


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
        f = _Fields(obj, ur_type, f"{what}.multi", {1: "threshold", 2: "keys"})
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


def _decode_account(obj: Any, ur: UR) -> Account:
    f = _Fields(obj, ur.type, "account", {1: "master-fingerprint", 2: "output-descriptors"})
    fingerprint = f.uint(1, True, limit=_UINT32) or 0
    items = f.get(2, lambda v: isinstance(v, list) and len(v) <= 256, "an array", True)
    outputs, tagged = [], []
    for i, item in enumerate(items):
        is_tagged = isinstance(item, cbor2.CBORTag) and item.tag in (Tag.OUTPUT, 40308)
        tagged.append(is_tagged)
        outputs.append(decode_output_value(item.value if is_tagged else item, ur.type,
                                           f"account.output-descriptors[{i}]"))
    return Account(fingerprint, tuple(outputs), all(tagged) if tagged else True, ur.type)


# --------------------------------------------------------------------------- keystone


def _uuid_cbor(value: uuid.UUID | None) -> Any:
    return None if value is None else cbor2.CBORTag(Tag.UUID, value.bytes)


def _request_id(f: _Fields) -> uuid.UUID | None:
    raw = f.tagged(1, Tag.UUID, untagged=True)
    if raw is None:
        return None
    if not isinstance(raw, bytes) or len(raw) != 16:
        raise f.err(1, "expected a 16-byte UUID")
    return uuid.UUID(bytes=raw)


def _path(f: _Fields, key: int) -> Keypath:
    return Keypath.from_cbor_value(f.tagged(key, Tag.KEYPATH, True), f.ur_type,
                                   f"{f.what}.derivation-path")


def _keypath_cbor(path: Keypath) -> cbor2.CBORTag:
    return cbor2.CBORTag(Tag.KEYPATH, path.to_cbor_value())


def _enum(f: _Fields, key: int, cls: type[T], required: bool = True) -> T | None:
    value = f.uint(key, required, limit=255)
    if value is None:
        return None
    try:
        return cls(value)  # type: ignore[call-arg]
    except ValueError:
        raise f.err(key, f"unknown value {value}") from None


@dataclass(frozen=True)
class EthSignRequest:
    """Keystone ``eth-sign-request``."""

    sign_data: bytes
    data_type: EthDataType
    derivation_path: Keypath
    chain_id: int | None = None
    request_id: uuid.UUID | None = None
    address: bytes | None = None
    origin: str | None = None

    def to_ur(self) -> UR:
        value = _map(
            (1, _uuid_cbor(self.request_id)), (2, self.sign_data), (3, int(self.data_type)),
            (4, self.chain_id), (5, _keypath_cbor(self.derivation_path)), (6, self.address),
            (7, self.origin),
        )
        return UR("eth-sign-request", cbor2.dumps(value))


def _decode_eth_request(obj: Any, ur: UR) -> EthSignRequest:
    f = _Fields(obj, ur.type, "eth-sign-request", {
        1: "request-id", 2: "sign-data", 3: "data-type", 4: "chain-id",
        5: "derivation-path", 6: "address", 7: "origin"})
    sign_data = f.get(2, lambda v: isinstance(v, bytes) and len(v) > 0, "non-empty bytes", True)
    data_type = _enum(f, 3, EthDataType)
    chain_id = f.get(4, lambda v: type(v) is int and 0 < v < 2**63, "a positive chain id", False)
    return EthSignRequest(
        sign_data, data_type, _path(f, 5), chain_id, _request_id(f),  # type: ignore[arg-type]
        f.bytes_(6, False, (20,)), f.text(7),
    )


@dataclass(frozen=True)
class EthSignature:
    """Keystone ``eth-signature``: r || s || v (65 bytes; v may be longer for EIP-155)."""

    signature: bytes
    request_id: uuid.UUID | None = None
    origin: str | None = None

    def to_ur(self) -> UR:
        value = _map((1, _uuid_cbor(self.request_id)), (2, self.signature), (3, self.origin))
        return UR("eth-signature", cbor2.dumps(value))


def _decode_eth_signature(obj: Any, ur: UR) -> EthSignature:
    f = _Fields(obj, ur.type, "eth-signature", {1: "request-id", 2: "signature", 3: "origin"})
    sig = f.get(2, lambda v: isinstance(v, bytes) and 65 <= len(v) <= 72, "65..72 bytes", True)
    return EthSignature(sig, _request_id(f), f.text(3))


@dataclass(frozen=True)
class SolSignRequest:
    """Keystone ``sol-sign-request``."""

    sign_data: bytes
    derivation_path: Keypath
    sign_type: SolSignType = SolSignType.TRANSACTION
    request_id: uuid.UUID | None = None
    address: bytes | None = None
    origin: str | None = None

    def to_ur(self) -> UR:
        value = _map(
            (1, _uuid_cbor(self.request_id)), (2, self.sign_data),
            (3, _keypath_cbor(self.derivation_path)), (4, self.address), (5, self.origin),
            (6, int(self.sign_type)),
        )
        return UR("sol-sign-request", cbor2.dumps(value))


def _decode_sol_request(obj: Any, ur: UR) -> SolSignRequest:
    f = _Fields(obj, ur.type, "sol-sign-request", {
        1: "request-id", 2: "sign-data", 3: "derivation-path", 4: "address", 5: "origin",
        6: "type"})
    sign_data = f.get(2, lambda v: isinstance(v, bytes) and len(v) > 0, "non-empty bytes", True)
    return SolSignRequest(
        sign_data, _path(f, 3), _enum(f, 6, SolSignType),  # type: ignore[arg-type]
        _request_id(f), f.bytes_(4, False, (32,)), f.text(5),
    )


@dataclass(frozen=True)
class SolSignature:
    """Keystone ``sol-signature``: a 64-byte Ed25519 signature."""

    signature: bytes
    request_id: uuid.UUID | None = None

    def to_ur(self) -> UR:
        value = _map((1, _uuid_cbor(self.request_id)), (2, self.signature))
        return UR("sol-signature", cbor2.dumps(value))


def _decode_sol_signature(obj: Any, ur: UR) -> SolSignature:
    f = _Fields(obj, ur.type, "sol-signature", {1: "request-id", 2: "signature"})
    return SolSignature(f.bytes_(2, True, (64,)), _request_id(f))


# --------------------------------------------------------------------------- dispatch


RegistryValue = Union[  # noqa: UP007
    Bytes, PSBT, Seed, HDKey, ECKey, Keypath, Address, Output, Account,
    EthSignRequest, EthSignature, SolSignRequest, SolSignature,
]


def _decode_keypath(obj: Any, ur: UR) -> Keypath:
    return Keypath.from_cbor_value(obj, ur.type)


def _decode_output(obj: Any, ur: UR) -> Output:
    return decode_output_value(obj, ur.type)


DECODERS: dict[str, Callable[[Any, UR], Any]] = {
    "bytes": _decode_bytes,
    "crypto-psbt": _decode_psbt,
    "psbt": _decode_psbt,
    "crypto-seed": _decode_seed,
    "seed": _decode_seed,
    "crypto-hdkey": lambda obj, ur: HDKey.from_cbor_value(obj, ur.type),
    "hdkey": lambda obj, ur: HDKey.from_cbor_value(obj, ur.type),
    "crypto-eckey": lambda obj, ur: ECKey.from_cbor_value(obj, ur.type),
    "eckey": lambda obj, ur: ECKey.from_cbor_value(obj, ur.type),
    "crypto-keypath": _decode_keypath,
    "keypath": _decode_keypath,
    "crypto-address": _decode_address,
    "address": _decode_address,
    "crypto-output": _decode_output,
    "crypto-account": _decode_account,
    "eth-sign-request": _decode_eth_request,
    "eth-signature": _decode_eth_signature,
    "sol-sign-request": _decode_sol_request,
    "sol-signature": _decode_sol_signature,
}


def decode_registry(ur: UR, *, max_len: int = DEFAULT_MAX_MESSAGE_LEN) -> RegistryValue:
    """Decode ``ur`` into its typed value, chosen by ``ur.type`` (never by CBOR tag).

    Raises :class:`UnsupportedType`, :class:`MalformedCbor` or :class:`FieldError`.
    """
    decoder = DECODERS.get(ur.type)
    if decoder is None:
        raise UnsupportedType(ur.type)
    obj = loads_bounded(ur.cbor, ur.type, max_len)
    try:
        return decoder(obj, ur)  # type: ignore[no-any-return]
    except RegistryError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # Defensive: a structure the field checks did not anticipate.
        raise MalformedCbor(ur.type, f"unexpected structure ({type(exc).__name__})") from None


# --------------------------------------------------------------------------- encoders


def encode_psbt(psbt: bytes) -> UR:
    """``crypto-psbt`` UR for a PSBT."""
    return PSBT(bytes(psbt)).to_ur()


def encode_eth_signature(
    signature: bytes, request_id: uuid.UUID | None, origin: str | None = None
) -> UR:
    if len(signature) < 65:
        raise ValueError("an eth-signature is r || s || v, at least 65 bytes")
    return EthSignature(bytes(signature), request_id, origin).to_ur()


def encode_sol_signature(signature: bytes, request_id: uuid.UUID | None) -> UR:
    if len(signature) != 64:
        raise ValueError("a Solana signature is 64 bytes")
    return SolSignature(bytes(signature), request_id).to_ur()


def encode_output(output: Output) -> UR:
    return output.to_ur()


def encode_account(master_fingerprint: int, outputs: tuple[Output, ...]) -> UR:
    return Account(master_fingerprint, tuple(outputs)).to_ur()


def encode_hdkey(key: HDKey) -> UR:
    return key.to_ur()
