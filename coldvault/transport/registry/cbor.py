"""Bounded CBOR for UR registry values: errors, tag numbers, the pre-scan and field access.

Untrusted CBOR is bounded before cbor2 sees it: size, nesting depth, definite lengths
only, integer/text map keys, an allow-list of tags, no trailing bytes.  Every structural
problem is a :class:`RegistryError` naming the field.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import cbor2

from coldvault.errors import DecodeError
from coldvault.transport.fountain import DEFAULT_MAX_MESSAGE_LEN

_MAX_DEPTH = 16
#: Most CBOR data items in one registry value (a 1,000-output account is ~20k).
_MAX_ITEMS = 65536
UINT32 = 0xFFFFFFFF


# --------------------------------------------------------------------------- errors


class RegistryError(DecodeError):
    """A UR payload is not a valid value of its registry type."""

    code = "ur-registry"


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


_ALLOWED_TAGS = (
    {Tag.UUID, 1, Tag.DATE}
    | set(range(300, 312))
    | set(range(40300, 40312))
    | {int(k) for k in ScriptKind}
)


def is_v2(ur_type: str) -> bool:
    """Newer (40000-range tag) registry name, as opposed to a ``crypto-*`` one."""
    return not ur_type.startswith("crypto-")


def tag_for(base: Tag, v2: bool) -> int:
    """The tag number of ``base`` in the v1 or v2 family."""
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


class Fields:
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


def untag(obj: Any, ur_type: str, what: str, base: int, optional: bool = True) -> Any:
    """Strip tag ``base`` (either family) from ``obj``; it may be absent if ``optional``."""
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag not in (base, base + Tag.V2_OFFSET):
            raise FieldError(ur_type, what, f"unexpected tag {obj.tag}")
        return obj.value
    if not optional:
        raise FieldError(ur_type, what, f"expected tag {base}")
    return obj


def cbor_map(*pairs: tuple[int, Any]) -> dict[int, Any]:
    """A CBOR map of the pairs whose value is not ``None``."""
    return {k: v for k, v in pairs if v is not None}
