"""Bounded, canonical RLP (Ethereum's Recursive Length Prefix) decoding and encoding.

Untrusted bytes from a QR code are decoded here before anything else looks at them. The
decoder is strict: exactly one item and no trailing bytes, every length in its shortest
form (a single byte below 0x80 is never wrapped, long forms only for 56 bytes or more, no
leading zero bytes in a length), and explicit bounds on input size, nesting depth and the
number of items in a list.

An item is ``bytes`` (a string) or ``list`` of items.
"""

from __future__ import annotations

from coldvault.errors import InputError

#: Largest RLP payload accepted (bytes). A QR-borne transaction is far smaller.
MAX_RLP_SIZE = 128 * 1024
#: Deepest list nesting accepted (a transaction with an access list needs 4).
MAX_DEPTH = 8
#: Most items accepted in one list, and in the whole payload.
MAX_LIST_ITEMS = 1024
MAX_TOTAL_ITEMS = 16384

RlpItem = bytes | list["RlpItem"]


class RlpError(InputError):
    """The RLP bytes are malformed, non-canonical or exceed a bound."""

    code = "rlp"

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class _Reader:
    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.max_depth = max_depth
        self.items = 0

    def _length(self, pos: int, nbytes: int, end: int) -> int:
        if pos + nbytes > end:
            raise RlpError(f"RLP length at offset {pos} runs past the end of its data.", offset=pos)
        raw = self.data[pos : pos + nbytes]
        if raw[0] == 0:
            raise RlpError(f"RLP length at offset {pos} has a leading zero byte.", offset=pos)
        value = int.from_bytes(raw, "big")
        if value < 56:
            raise RlpError(
                f"RLP long-form length at offset {pos} is {value}; the short form is required.",
                offset=pos,
            )
        return value

    def item(self, pos: int, end: int, depth: int) -> tuple[RlpItem, int]:
        """Decode the item starting at ``pos``; return it and the offset after it."""
        self.items += 1
        if self.items > MAX_TOTAL_ITEMS:
            raise RlpError(f"RLP holds more than {MAX_TOTAL_ITEMS} items.", offset=pos)
        if pos >= end:
            raise RlpError(f"RLP item at offset {pos} is missing (data ends).", offset=pos)
        prefix = self.data[pos]
        if prefix < 0x80:
            return self.data[pos : pos + 1], pos + 1
        if prefix <= 0xB7:
            size = prefix - 0x80
            start = pos + 1
            if start + size > end:
                raise RlpError(f"RLP string at offset {pos} runs past the end.", offset=pos)
            if size == 1 and self.data[start] < 0x80:
                raise RlpError(
                    f"RLP string at offset {pos} wraps a single byte below 0x80 (non-canonical).",
                    offset=pos,
                )
            return self.data[start : start + size], start + size
        if prefix <= 0xBF:
            nbytes = prefix - 0xB7
            size = self._length(pos + 1, nbytes, end)
            start = pos + 1 + nbytes
            if start + size > end:
                raise RlpError(f"RLP string at offset {pos} runs past the end.", offset=pos)
            return self.data[start : start + size], start + size
        if prefix <= 0xF7:
            size = prefix - 0xC0
            start = pos + 1
        else:
            nbytes = prefix - 0xF7
            size = self._length(pos + 1, nbytes, end)
            start = pos + 1 + nbytes
        if start + size > end:
            raise RlpError(f"RLP list at offset {pos} runs past the end.", offset=pos)
        if depth >= self.max_depth:
            raise RlpError(
                f"RLP list at offset {pos} is nested deeper than {self.max_depth} levels.",
                offset=pos,
            )
        items: list[RlpItem] = []
        cur, list_end = start, start + size
        while cur < list_end:
            if len(items) >= MAX_LIST_ITEMS:
                raise RlpError(
                    f"RLP list at offset {pos} has more than {MAX_LIST_ITEMS} items.", offset=pos
                )
            child, cur = self.item(cur, list_end, depth + 1)
            items.append(child)
        return items, list_end


def decode(data: bytes, *, max_depth: int = MAX_DEPTH, max_size: int = MAX_RLP_SIZE) -> RlpItem:
    """Decode exactly one canonical RLP item from ``data`` (no trailing bytes)."""
    if len(data) > max_size:
        raise RlpError(
            f"RLP payload is {len(data)} bytes; the limit is {max_size} bytes.", offset=0
        )
    reader = _Reader(bytes(data), max_depth)
    value, end = reader.item(0, len(data), 0)
    if end != len(data):
        raise RlpError(
            f"RLP payload has {len(data) - end} trailing bytes after the item.", offset=end
        )
    return value


def _length_prefix(size: int, offset: int) -> bytes:
    if size < 56:
        return bytes([offset + size])
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(raw)]) + raw


def encode(item: RlpItem | int) -> bytes:
    """Canonical RLP encoding; ints become minimal big-endian strings (0 -> empty)."""
    if isinstance(item, bool):
        raise TypeError("RLP cannot encode a bool")
    if isinstance(item, int):
        if item < 0:
            raise ValueError("RLP cannot encode a negative integer")
        item = item.to_bytes((item.bit_length() + 7) // 8, "big")
    if isinstance(item, bytes | bytearray):
        if len(item) == 1 and item[0] < 0x80:
            return bytes(item)
        return _length_prefix(len(item), 0x80) + bytes(item)
    if isinstance(item, list | tuple):
        body = b"".join(encode(child) for child in item)
        return _length_prefix(len(body), 0xC0) + body
    raise TypeError(f"RLP cannot encode {type(item).__name__}")


def to_int(item: RlpItem, *, field: str, max_bytes: int = 32) -> int:
    """A canonical RLP scalar: bytes without a leading zero, at most ``max_bytes`` long."""
    if not isinstance(item, bytes):
        raise RlpError(f"Field {field} must be a number, not a list.")
    if len(item) > max_bytes:
        raise RlpError(f"Field {field} is longer than {max_bytes} bytes.")
    if item[:1] == b"\x00":
        raise RlpError(f"Field {field} has a leading zero byte (non-canonical).")
    return int.from_bytes(item, "big")
